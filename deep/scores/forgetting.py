"""forgetting: how often each sample goes from correctly classified to misclassified during query training.

Correctness is that of the training steps themselves (train mode, the batch the sample was in), as in Toneva et
al. (2019) and the DRoP authors' code: one forgetting event is a correct -> wrong change between the sample's
visits in consecutive epochs, every sample starting as "not learned". Samples never classified correctly at any
epoch rank hardest: they get (number of epochs + 1), above every count that is reachable.
"""

from __future__ import annotations

import numpy as np

from deep.scores.base import QueryModel, Scorer


def forgetting_events(correct: np.ndarray) -> np.ndarray:
    """Forgetting counts from per-epoch correctness (E, N); never-learned samples get E + 1, as float64 (N,)."""
    correct = np.asarray(correct, dtype=bool)
    forgotten = (correct[:-1] & ~correct[1:]).sum(0)
    return np.where(correct.any(0), forgotten, correct.shape[0] + 1).astype(np.float64)


def score(query: QueryModel) -> np.ndarray:
    """Forgetting counts over the query training's trace."""
    return forgetting_events(query.trace.correct)


SCORER = Scorer(
    score=score, epoch_fraction=1.0, min_epochs=2,
    description="forgetting events: correct -> wrong transitions between epochs (Toneva et al. 2019)",
)

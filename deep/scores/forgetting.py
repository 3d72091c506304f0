"""forgetting: how often each sample goes from correctly classified to misclassified during query training.

Correctness is that of the training steps themselves (train mode, the batch the sample was in), as in Toneva et
al. (2019) and the DRoP authors' code: one forgetting event is a correct -> wrong change between the sample's
visits in consecutive epochs, every sample starting as "not learned". Samples never classified correctly at any
epoch have no forgetting event. The option `never_learned` (--scorer-option forgetting.never_learned=first, or its
alias --never-learned first) says where they rank: "last" scores them 0, so they are pruned first (the DRoP
authors' code); "first" scores them (epochs + 1), above every reachable count, so they are kept first (Toneva et
al. 2019).
"""

from __future__ import annotations

import numpy as np

from deep.options import Option
from deep.scores.base import QueryModel, Scorer


NEVER_LEARNED = ("last", "first")


def forgetting_events(correct: np.ndarray, never_learned: str = "last") -> np.ndarray:
    """Forgetting counts from per-epoch correctness (E, N), never-learned samples scored per `never_learned`; (N,)."""
    if never_learned not in NEVER_LEARNED:
        raise ValueError(f"never_learned must be one of {', '.join(NEVER_LEARNED)}, got {never_learned!r}")
    correct = np.asarray(correct, dtype=bool)
    forgotten = (correct[:-1] & ~correct[1:]).sum(0)
    never = 0 if never_learned == "last" else correct.shape[0] + 1
    return np.where(correct.any(0), forgotten, never).astype(np.float64)


def score(query: QueryModel) -> np.ndarray:
    """Forgetting counts over the query training's trace."""
    return forgetting_events(query.trace.correct, query.options["never_learned"])


SCORER = Scorer(score=score, epoch_fraction=1.0, min_epochs=2, options={"never_learned": Option(
    str, "last", "rank never-learned samples last (score 0, pruned first: the reference code) or first (kept first: "
    "Toneva et al.)", choices=NEVER_LEARNED, alias="--never-learned")})

"""forgetting: how often each sample goes from correctly classified to misclassified during query training.

Correctness is evaluated for every training sample after each epoch (eval mode, the full training split),
not per minibatch as in Toneva et al. (2019): one forgetting event is a correct → wrong change between
consecutive epochs. Samples never classified correctly at any epoch rank hardest: they get
(number of epochs + 1), above every count that is reachable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deep.scores.base import ScoreContext, Scorer
from deep.scores.outputs import epoch_logits, is_correct


class ForgettingEvents:
    """Counts learned → forgotten transitions per sample over the epochs it is called on."""

    def __init__(self, context: ScoreContext) -> None:
        n = len(context.train)
        self.context = context
        self.epochs = 0
        self.previous = np.zeros(n, dtype=bool)  # "not yet learned" before the first epoch, as in the original
        self.learned = np.zeros(n, dtype=bool)
        self.forgotten = np.zeros(n, dtype=np.int64)

    def __call__(self, state: Any) -> None:
        """Compare this epoch's correctness with the previous epoch's."""
        correct = is_correct(epoch_logits(state, self.context.train.x), self.context.train.y)
        self.forgotten += self.previous & ~correct
        self.learned |= correct
        self.previous = correct
        self.epochs += 1

    def result(self) -> np.ndarray:
        """Forgetting counts; never-learned samples get epochs + 1."""
        return np.where(self.learned, self.forgotten, self.epochs + 1).astype(np.float64)


SCORER = Scorer(
    make=ForgettingEvents, epoch_fraction=1.0, min_epochs=2,
    description="forgetting events: correct -> wrong transitions between epochs (Toneva et al. 2019)",
)

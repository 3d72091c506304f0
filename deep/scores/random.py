"""random: uniform scores from the query seed, no training (the `random` protocol's ranking)."""

from __future__ import annotations

import numpy as np

from deep.scores.base import ScoreContext, Scorer


class RandomScores:
    """Ignores training; `result` gives seeded uniform [0, 1) scores, one per training sample."""

    def __init__(self, context: ScoreContext) -> None:
        self.context = context

    def __call__(self, state: object) -> None:
        """Nothing to record."""

    def result(self) -> np.ndarray:
        """Uniform scores drawn from `context.seed`: the same seed gives the same scores."""
        return np.random.default_rng(self.context.seed).random(len(self.context.train))


SCORER = Scorer(make=RandomScores, epoch_fraction=0.0, description="seeded uniform scores (no query training)")

"""random: uniform scores from the query model's seed, no training (the `random` protocol's ranking)."""

from __future__ import annotations

import numpy as np

from deep.scores.base import QueryModel, Scorer


def score(query: QueryModel) -> np.ndarray:
    """Uniform [0, 1) scores drawn from the query model's seed: the same seed gives the same scores."""
    return np.random.default_rng(query.seed).random(len(query.train))


SCORER = Scorer(score=score, epoch_fraction=0.0)

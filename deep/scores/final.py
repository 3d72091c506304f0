"""The recorder of scorers that look at the query model once, at the last epoch of query training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deep.scores.base import ScoreContext

ScoreFn = Callable[[Any, ScoreContext], np.ndarray]  # (EpochState at the last epoch, context) -> scores (N,)


class AtFinalEpoch:
    """Runs `score(state, context)` when the epoch `context.epochs` ends; `result` returns those scores."""

    def __init__(self, context: ScoreContext, score: ScoreFn, name: str) -> None:
        if context.epochs < 1:
            raise ValueError(f"scorer {name!r} needs at least 1 query epoch, got epochs={context.epochs}")
        self.context = context
        self.score = score
        self.name = name
        self.scores: np.ndarray | None = None

    def __call__(self, state: Any) -> None:
        """Score the training set if `state` is the last query epoch; earlier epochs are ignored."""
        if state.epoch == self.context.epochs:
            self.scores = np.asarray(self.score(state, self.context), dtype=np.float64)

    def result(self) -> np.ndarray:
        """The scores recorded at the last epoch (RuntimeError if training never reached it)."""
        if self.scores is None:
            raise RuntimeError(f"scorer {self.name!r} was never called at the final query epoch {self.context.epochs}")
        return self.scores

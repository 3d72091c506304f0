"""dynamic_uncertainty: mean over epochs of the windowed std of the true-class probability (He et al. 2024).

With p_k the softmax probability of the true class after epoch k (k = 1..E), every epoch k >= J gives
the standard deviation of (p_{k-J+1}, ..., p_k) (population std, ddof = 0; the ranking does not depend
on the choice) and the score is the mean of these E - J + 1 values. The window J is the scorer option
`window` (default 10), capped at the query length E so that short queries still give a score (J = E:
one window over the whole training). Only the last J probabilities are kept in memory.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from deep.scores.base import ScoreContext, Scorer
from deep.scores.outputs import epoch_logits, true_class_probability

DEFAULT_WINDOW = 10


def window_length(params: dict, epochs: int) -> int:
    """The window J: `params["window"]` (default 10) capped at `epochs`; ValueError unless both allow J >= 2."""
    window = params.get("window", DEFAULT_WINDOW)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"dynamic_uncertainty window must be an integer >= 2 epochs, got window={window!r}")
    if epochs < 2:
        raise ValueError(f"dynamic_uncertainty needs at least 2 query epochs, got epochs={epochs}")
    return min(int(window), epochs)


class WindowedUncertainty:
    """Accumulates the std of the true-class probability over each window of the last J epochs."""

    def __init__(self, context: ScoreContext) -> None:
        self.context = context
        self.window = window_length(context.params, context.epochs)
        self.recent: deque[np.ndarray] = deque(maxlen=self.window)
        self.total = np.zeros(len(context.train), dtype=np.float64)
        self.windows = 0

    def __call__(self, state: Any) -> None:
        """Add this epoch's probabilities; once J are held, add the std of the window ending here."""
        self.recent.append(true_class_probability(epoch_logits(state, self.context.train.x), self.context.train.y))
        if len(self.recent) == self.window:
            self.total += np.std(np.stack(self.recent), axis=0)
            self.windows += 1

    def result(self) -> np.ndarray:
        """Mean windowed std per sample (RuntimeError if fewer than J epochs were recorded)."""
        if self.windows == 0:
            raise RuntimeError(
                f"dynamic_uncertainty needs {self.window} recorded epochs, got {len(self.recent)}"
            )
        return self.total / self.windows


SCORER = Scorer(
    make=WindowedUncertainty, epoch_fraction=1.0, min_epochs=2,
    description="dynamic uncertainty: mean windowed std of the true-class probability (He et al. 2024)",
)

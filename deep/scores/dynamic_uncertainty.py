"""dynamic_uncertainty: mean over epochs of the windowed std of the true-class probability (He et al. 2024).

With p_k the softmax probability of the true class at epoch k (k = 1..E, from the training steps, as in the
DRoP authors' code), every epoch k >= J gives the standard deviation of (p_{k-J+1}, ..., p_k) (population std,
ddof = 0; the ranking does not depend on the choice) and the score is the mean of these E - J + 1 values. The
window J is the scorer option `window` (default 10; --scorer-option dynamic_uncertainty.window=J), capped at
the query length E so that short queries still give a score (J = E: one window over the whole training).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from deep.options import Option
from deep.scores.base import QueryModel, Scorer


def windowed_uncertainty(prob: np.ndarray, window: int) -> np.ndarray:
    """Mean over the sliding windows of `window` epochs of the std of the true-class probability, float64 (N,)."""
    prob = np.asarray(prob, dtype=np.float64)
    if window < 2 or prob.shape[0] < window:
        raise ValueError(f"dynamic_uncertainty needs a window of >= 2 epochs within {prob.shape[0]}, got {window}")
    return sliding_window_view(prob, window, axis=0).std(axis=-1).mean(axis=0)


def score(query: QueryModel) -> np.ndarray:
    """Dynamic uncertainty over the query training's trace, window capped at its length."""
    return windowed_uncertainty(query.trace.prob, min(query.options["window"], query.trace.epochs))


SCORER = Scorer(
    score=score, epoch_fraction=1.0, min_epochs=2,
    options={"window": Option(int, 10, "sliding window J in epochs (capped at the query length)", minimum=2)},
)

"""dynamic_uncertainty: mean over epochs of the windowed std of the true-class probability (He et al. 2024).

With p_k the softmax probability of the true class at epoch k (k = 1..E, from the training steps, as in the
DRoP authors' code), every epoch k >= J gives the standard deviation of (p_{k-J+1}, ..., p_k) (population std,
ddof = 0; the ranking does not depend on the choice) and the score is the mean of these E - J + 1 values. The
window J is the scorer option `window` (default 10; --scorer-option dynamic_uncertainty.window=J), capped at
the query length E so that short queries still give a score (J = E: one window over the whole training).
Option `windows`: "paper" (above) or "official", the authors' code (scorers/dynamic_uncertainty.py): at the start
of each epoch e >= J it adds the (sample, ddof 1) std of the J - 1 previous epochs, so the windows are epochs
e-J+1 .. e-1 for e = J .. E, the last epoch's probabilities are never used, and the sum is divided by E - J (not by
the E - J + 1 windows); J is capped at E - 1 so that E - J >= 1.
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


WINDOWS = ("paper", "official")


def official_uncertainty(prob: np.ndarray, window: int) -> np.ndarray:
    """The authors' variant: sum of ddof-1 stds over windows of J - 1 epochs within epochs 1..E-1, over E - J."""
    prob = np.asarray(prob, dtype=np.float64)
    epochs = prob.shape[0]
    if window < 3 or epochs <= window:
        raise ValueError(f"dynamic_uncertainty (official windows) needs 3 <= J < E epochs, got J = {window}, E = {epochs}")
    stds = sliding_window_view(prob[: epochs - 1], window - 1, axis=0).std(axis=-1, ddof=1)
    return stds.sum(axis=0) / (epochs - window)


def score(query: QueryModel) -> np.ndarray:
    """Dynamic uncertainty over the query training's trace, window capped at its length."""
    window, windows = query.options["window"], query.options["windows"]
    if windows == "official":
        return official_uncertainty(query.trace.prob, min(window, query.trace.epochs - 1))
    return windowed_uncertainty(query.trace.prob, min(window, query.trace.epochs))


SCORER = Scorer(
    score=score, epoch_fraction=1.0, min_epochs=2,
    options={"window": Option(int, 10, "sliding window J in epochs (capped at the query length)", minimum=2),
             "windows": Option(str, "paper", "paper: J epochs incl. the last, averaged; official: the authors' code, "
                               "J - 1 epochs within 1..E-1, summed / (E - J)", choices=WINDOWS)},
)

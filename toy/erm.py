"""Exact 0-1 empirical risk minimisation of the threshold rule 1(x > t), vectorised over many datasets."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_binary_labels(y: ArrayLike, shape: tuple[int, ...], name: str = "y") -> np.ndarray:
    """Return y as an array after checking it has the given shape and only 0/1 values."""
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"{name} must have at least one axis (..., n)")
    if y.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (the shape of x), got {y.shape}")
    if y.dtype != bool and not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{name} must hold binary labels 0/1")
    return y


def fit_threshold(x: ArrayLike, y: ArrayLike, weight: ArrayLike | None = None) -> np.ndarray:
    """Thresholds (...) minimising the (weighted) empirical 0-1 error of 1(x > t) for data of shape (..., n).

    The error is piecewise constant in t with breaks at the distinct x of points with positive
    weight; the optimal set is a union of such plateaus. The result is the midpoint of the LOWEST
    optimal plateau, -inf / +inf when that plateau is unbounded below / above (-inf also when a
    dataset has no point of positive weight). Points with weight 0 (e.g. keep-mask False) are ignored.
    Cost: one argsort along the last axis plus linear passes.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        raise ValueError("x must have at least one axis (..., n)")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite (no NaN or inf)")
    y = as_binary_labels(y, x.shape)
    # Moving t from below to above a point changes the error by +w (class 1) or -w (class 0).
    step = y.astype(np.int8)
    step *= 2
    step -= 1
    if weight is not None:
        weight = np.asarray(weight)
        if weight.shape != x.shape:
            raise ValueError(f"weight must have shape {x.shape} (the shape of x), got {weight.shape}")
        if weight.dtype != bool and not np.all(np.isfinite(weight) & (weight >= 0)):
            raise ValueError("weight must be finite and >= 0 (a 0/1 keep mask or nonnegative weights)")
        step = step * weight
        # Weight-0 points go to +inf so that they bound no plateau below the last real point.
        x = np.where(weight > 0, x, np.inf)
    n = x.shape[-1]
    if n == 0:
        return np.full(x.shape[:-1], -np.inf)

    x, step = x.reshape(-1, n), step.reshape(-1, n)
    order = np.argsort(x, axis=-1)
    # Flat indices make the two gathers much cheaper than take_along_axis.
    order += np.arange(0, x.size, n)[:, None]
    xs = np.take(x, order)
    # excess[:, j]: error with the j+1 smallest points below t, minus the error of t = -inf.
    excess = np.cumsum(np.take(step, order), axis=-1, dtype=np.result_type(step, np.int32))
    # A cut between equal x values is not realisable by any threshold.
    unreachable = np.inf if excess.dtype.kind == "f" else np.iinfo(excess.dtype).max
    np.copyto(excess[:, :-1], unreachable, where=xs[:, :-1] == xs[:, 1:])

    rows = np.arange(len(xs))
    j = np.argmin(excess, axis=-1)
    t = 0.5 * xs[rows, j] + 0.5 * xs[rows, np.minimum(j + 1, n - 1)]
    t[j == n - 1] = np.inf
    # argmin returns the first minimum; t = -inf (excess 0) is lower still and wins ties.
    t[excess[rows, j] >= 0] = -np.inf
    return t.reshape(y.shape[:-1])

"""1-D data pruning, vectorised over datasets of shape (..., n): random with class densities, SSP margin, both mixed.

Every function returns a boolean keep mask of x's (or y's) shape. Kept counts are exact: a
fraction d of m points keeps floor(d m + 0.5) of them (halves round up).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from toy.erm import as_binary_labels


def _rounded_count(fraction: ArrayLike, total: ArrayLike) -> np.ndarray:
    return np.floor(np.asarray(fraction) * total + 0.5).astype(np.int64)


def _check_density(density: float) -> None:
    if not 0 < density <= 1:
        raise ValueError(f"density must lie in (0, 1] (the fraction of points kept), got {density!r}")


def class_counts(y: ArrayLike, keep: ArrayLike) -> np.ndarray:
    """Kept points per class, shape (..., 2)."""
    y = np.asarray(y)
    keep = np.asarray(keep, dtype=bool)
    y = as_binary_labels(y, keep.shape)
    ones = np.count_nonzero(keep & (y == 1), axis=-1)
    return np.stack([np.count_nonzero(keep, axis=-1) - ones, ones], axis=-1).astype(np.int64)


def _random_per_class(y: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep counts[..., k] points of class k per dataset, uniformly at random."""
    n = y.shape[-1]
    # Visiting points in a random order per dataset, a point is kept while its class quota lasts.
    order = rng.permuted(np.broadcast_to(np.arange(n), y.shape), axis=-1)
    visited_one = np.take_along_axis(y == 1, order, axis=-1)
    ones_seen = np.cumsum(visited_one, axis=-1, dtype=np.int32)
    zeros_seen = np.arange(1, n + 1, dtype=np.int32) - ones_seen
    # Boolean algebra instead of np.where, which is several times slower on these arrays.
    kept = (visited_one & (ones_seen <= counts[..., 1:])) | (~visited_one & (zeros_seen <= counts[..., :1]))
    keep = np.empty(y.shape, dtype=bool)
    np.put_along_axis(keep, order, kept, axis=-1)
    return keep


def random_class_densities(y: ArrayLike, densities: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Keep exactly floor(d_k n_k + 0.5) points of class k per dataset, uniformly at random; densities = (d0, d1)."""
    y = np.asarray(y)
    y = as_binary_labels(y, y.shape)
    densities = np.asarray(densities, dtype=float)
    if densities.shape != (2,) or not np.all((densities >= 0) & (densities <= 1)):
        raise ValueError(f"densities must be a pair (d0, d1) of class densities in [0, 1], got {densities!r}")
    ones = np.count_nonzero(y == 1, axis=-1)
    sizes = np.stack([y.shape[-1] - ones, ones], axis=-1)
    return _random_per_class(y, _rounded_count(densities, sizes), rng)


def ssp_margin(x: ArrayLike, y: ArrayLike, density: float, means: Sequence[float] | None = None) -> np.ndarray:
    """Supervised SSP: keep the floor(d n + 0.5) points farthest from their own class mean, whatever their class.

    Equivalently, remove every point within a margin M of its class mean, with M set by the density.
    means = (m0, m1) for all datasets, or None for each dataset's empirical class means.
    """
    x = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite (no NaN or inf)")
    y = as_binary_labels(y, x.shape)
    _check_density(density)
    is_one = y == 1
    if means is None:
        ones = np.count_nonzero(is_one, axis=-1)
        sum_ones = np.sum(x * is_one, axis=-1)
        sums = np.stack([np.sum(x, axis=-1) - sum_ones, sum_ones], axis=-1)
        # An empty class has no points whose distance it would define, so its mean is irrelevant.
        class_means = sums / np.maximum(np.stack([x.shape[-1] - ones, ones], axis=-1), 1)
    else:
        class_means = np.asarray(means, dtype=float)
        if class_means.shape != (2,) or not np.all(np.isfinite(class_means)):
            raise ValueError(f"means must be None or a pair (m0, m1) of finite class means, got {means!r}")
    own_mean = np.where(is_one, class_means[..., 1:], class_means[..., :1])
    n_removed = x.shape[-1] - int(_rounded_count(density, x.shape[-1]))
    keep = np.ones(x.shape, dtype=bool)
    if n_removed > 0:
        nearest = np.argpartition(np.abs(x - own_mean), n_removed - 1, axis=-1)[..., :n_removed]
        np.put_along_axis(keep, nearest, False, axis=-1)
    return keep


def random_ssp_ratios(
    x: ArrayLike, y: ArrayLike, density: float, rng: np.random.Generator, means: Sequence[float] | None = None
) -> np.ndarray:
    """Keep as many points per class as ssp_margin would, but chosen uniformly at random inside each class."""
    keep_ssp = ssp_margin(x, y, density, means)
    y = np.asarray(y)
    return _random_per_class(y, class_counts(y, keep_ssp), rng)

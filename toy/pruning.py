"""1-D data pruning, vectorised over datasets of shape (..., n): random with class densities, SSP margin, both mixed.

Every sampling function returns a boolean keep mask of x's (or y's) shape. Kept counts are exact: a
fraction d of m points keeps floor(d m + 0.5) of them (halves round up).

SSP on the population (`ssp_population_*`): with the class means known, supervised SSP removes every point within
M of its class mean, M set so that a fraction d of the mixture is left. The 0-1 risk of a threshold on what is left
has several local minima (the average-optimal crossing t*(phi0/phi1) when it lies outside both holes, and the outer
edges of the holes), which is why ERM on SSP-pruned samples lands near one or another of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq, minimize_scalar
from scipy.special import ndtr

from toy.erm import as_binary_labels
from toy.gaussians import TwoGaussians
from toy.quotas import kept_count


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


def _class_sizes(is_one: np.ndarray) -> np.ndarray:
    """Points per class, shape (..., 2), from a boolean "is class 1" array."""
    ones = np.count_nonzero(is_one, axis=-1)
    return np.stack([is_one.shape[-1] - ones, ones], axis=-1)


def _keep_counts(is_one: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep counts[..., k] points of class k per dataset, uniformly at random (inputs already checked)."""
    n = is_one.shape[-1]
    flat = is_one.reshape(-1, n)
    quota = counts.reshape(-1, 2)
    # Sorting iid random keys shuffles uniformly; the label as the top bit puts class 0 first, and the index in the
    # low bits makes one plain sort (several times cheaper than argsort) also give the order. The first counts[k]
    # points of class k in that order are kept.
    index_bits = max(1, (n - 1).bit_length())
    index_mask = np.uint64((1 << index_bits) - 1)
    keys = rng.bit_generator.random_raw(flat.size).reshape(flat.shape)  # 64 random bits each
    keys >>= np.uint64(1)  # bit 63: the class
    keys &= ~index_mask  # low bits: the index
    keys |= np.arange(n, dtype=np.uint64)
    keys |= flat.astype(np.uint64) << np.uint64(63)
    keys.sort(axis=-1)
    order = (keys & index_mask).astype(np.intp)
    zeros = n - np.count_nonzero(flat, axis=-1, keepdims=True)
    position = np.arange(n)
    kept = (position < quota[:, :1]) | ((position >= zeros) & (position < zeros + quota[:, 1:]))
    # Flat indices make the scatter much cheaper than put_along_axis.
    order += np.arange(0, flat.size, n)[:, None]
    keep = np.empty(flat.size, dtype=bool)
    keep[order.ravel()] = kept.ravel()
    return keep.reshape(is_one.shape)


def random_class_counts(y: ArrayLike, counts: ArrayLike, rng: np.random.Generator) -> np.ndarray:
    """Keep exactly counts[..., k] points of class k per dataset (counts of shape (..., 2)), uniformly at random."""
    y = np.asarray(y)
    is_one = as_binary_labels(y, y.shape) == 1
    counts = np.asarray(counts)
    if counts.shape != (*y.shape[:-1], 2) or not np.all((counts >= 0) & (counts <= _class_sizes(is_one))):
        raise ValueError(f"counts must have shape {(*y.shape[:-1], 2)} with 0 <= counts[..., k] <= class size")
    return _keep_counts(is_one, counts, rng)


def random_class_densities(y: ArrayLike, densities: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Keep exactly floor(d_k n_k + 0.5) points of class k per dataset, uniformly at random; densities = (d0, d1)."""
    y = np.asarray(y)
    is_one = as_binary_labels(y, y.shape) == 1
    densities = np.asarray(densities, dtype=float)
    if densities.shape != (2,) or not np.all((densities >= 0) & (densities <= 1)):
        raise ValueError(f"densities must be a pair (d0, d1) of class densities in [0, 1], got {densities!r}")
    return _keep_counts(is_one, kept_count(densities, _class_sizes(is_one)), rng)


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
    n_removed = x.shape[-1] - int(kept_count(density, x.shape[-1]))
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
    return random_class_counts(y, class_counts(y, keep_ssp), rng)


def ssp_population_margin(model: TwoGaussians, density: float) -> float:
    """The margin M such that removing every point within M of its own class mean leaves a fraction `density`."""
    _check_density(density)
    if density == 1:
        return 0.0
    sigmas = np.array([model.sigma0, model.sigma1])
    priors = np.array([model.phi0, model.phi1])
    # Kept mass 2 sum_k phi_k Phi(-M / s_k) falls from 1 at M = 0 to below any density > 0 at 40 standard deviations.
    return float(brentq(lambda m: 2.0 * priors @ ndtr(-m / sigmas) - density, 0.0, 40.0 * sigmas.max(), xtol=1e-14))


def ssp_population_risk(model: TwoGaussians, density: float, t: ArrayLike) -> np.ndarray:
    """0-1 risk of 1(x > t) on the population left by supervised SSP at `density` (the kept mass renormalised)."""
    margin = ssp_population_margin(model, density)
    t = np.asarray(t, dtype=float)

    def kept_above(mu: float, sigma: float) -> np.ndarray:
        """P(x > t and |x - mu| > M) for x ~ N(mu, sigma^2): the kept part of the class beyond t."""
        z, a = (t - mu) / sigma, margin / sigma
        return np.maximum(ndtr(-a) - ndtr(z), 0.0) + ndtr(-np.maximum(z, a))

    kept1 = 2.0 * ndtr(-margin / model.sigma1)
    errors = model.phi0 * kept_above(model.mu0, model.sigma0) + model.phi1 * (kept1 - kept_above(model.mu1, model.sigma1))
    return errors / density


def ssp_population_minima(model: TwoGaussians, density: float, points: int = 4001) -> np.ndarray:
    """The local minimisers of ssp_population_risk, ascending, found on a grid over the classes and refined."""
    low = min(model.mu0 - 8.0 * model.sigma0, model.mu1 - 8.0 * model.sigma1)
    high = max(model.mu0 + 8.0 * model.sigma0, model.mu1 + 8.0 * model.sigma1)
    grid = np.linspace(low, high, points)
    risk = ssp_population_risk(model, density, grid)
    # Strict descent into the point and no descent out of it; the tolerance ignores rounding noise in flat tails.
    noise = 1e-12
    inner = np.flatnonzero((risk[:-2] - risk[1:-1] > noise) & (risk[2:] - risk[1:-1] >= -noise)) + 1
    minima = [
        minimize_scalar(lambda t: float(ssp_population_risk(model, density, t)), bounds=(grid[i - 1], grid[i + 1]),
                        method="bounded", options={"xatol": 1e-10}).x
        for i in inner
    ]
    return np.array(minima, dtype=float)

"""Monte Carlo over many datasets at once: sample, prune, fit the ERM threshold, evaluate class risks in closed form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from toy.erm import fit_threshold
from toy.gaussians import TwoGaussians
from toy.pruning import class_counts, random_class_counts, random_class_densities, random_ssp_ratios, ssp_margin
from toy.quotas import drop_quotas

Pruner = Callable[[TwoGaussians, np.ndarray, np.ndarray, float, np.random.Generator], np.ndarray]
"""A pruning method: (model, x, y, density, rng) -> boolean keep mask of x's shape (..., n)."""

ClassErrors = Callable[[TwoGaussians, np.ndarray], np.ndarray]
"""Per-class errors that set DRoP quotas: (model, class sizes (G, 2)) -> positive errors (G, 2)."""


def keep_all(model: TwoGaussians, x: np.ndarray, y: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """No pruning: keep every point (density is ignored)."""
    return np.ones(x.shape, dtype=bool)


def keep_uniform(model: TwoGaussians, x: np.ndarray, y: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """Uniform random pruning: keep round(density * n) points of each dataset, whatever their class."""
    # Every point in one pseudo-class: the class-wise sampler then draws uniformly over the whole dataset.
    return random_class_densities(np.zeros_like(y), (density, density), rng)


def keep_ssp(model: TwoGaussians, x: np.ndarray, y: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """Supervised SSP: drop the points nearest their own empirical class mean, globally."""
    return ssp_margin(x, y, density)


def keep_random_ssp_ratios(
    model: TwoGaussians, x: np.ndarray, y: np.ndarray, density: float, rng: np.random.Generator
) -> np.ndarray:
    """Random pruning inside each class with the class counts SSP would keep."""
    return random_ssp_ratios(x, y, density, rng)


def optimal_errors(model: TwoGaussians, sizes: np.ndarray) -> np.ndarray:
    """Errors proportional to sigma_k / N_k, so that DRoP counts satisfy d0 N0 / (d1 N1) = sigma0 / sigma1 (exact DRoP)."""
    # An empty class gets no quota whatever its error, so max(N_k, 1) only avoids dividing by zero.
    raw = np.array([model.sigma0, model.sigma1]) / np.maximum(sizes, 1)
    return raw / raw.max(axis=-1, keepdims=True)


def bayes_errors(model: TwoGaussians, sizes: np.ndarray) -> np.ndarray:
    """Class risks R_k(t*(N0/N1)) of the average-optimal threshold for the dataset's own class ratio (practical DRoP)."""
    both = (sizes > 0).all(axis=-1)
    # With a class missing every quota goes to the other one; any positive errors give that.
    ratio = np.where(both, sizes[:, 0] / np.maximum(sizes[:, 1], 1), 1.0)
    r0, r1 = model.class_risks(np.asarray(model.t_star(ratio), dtype=float))
    return np.where(both[:, None], np.stack([r0, r1], axis=-1), 1.0)


def keep_with_drop_quotas(
    errors: ClassErrors, model: TwoGaussians, y: np.ndarray, density: float, rng: np.random.Generator,
    exponent: float = 1.0,
) -> np.ndarray:
    """Random pruning inside each class with toy.quotas.drop_quotas counts from per-class errors (tempered by exponent)."""
    flat = y.reshape(-1, y.shape[-1])
    sizes = class_counts(flat, np.ones(flat.shape, dtype=bool))
    # Datasets sharing class sizes share quotas: one allocator call per distinct (N0, N1), not per dataset.
    distinct, group = np.unique(sizes, axis=0, return_inverse=True)
    class_errors = errors(model, distinct)
    quotas = np.array([drop_quotas(density, size, 1.0 - error, exponent=exponent)
                       for size, error in zip(distinct, class_errors, strict=True)])
    return random_class_counts(flat, quotas[group.reshape(-1)], rng).reshape(y.shape)


def keep_random_optimal(model: TwoGaussians, x: np.ndarray, y: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """Exact DRoP: random pruning inside classes with d0 N0 / (d1 N1) = sigma0 / sigma1 at total density d."""
    return keep_with_drop_quotas(optimal_errors, model, y, density, rng)


def keep_drop(model: TwoGaussians, x: np.ndarray, y: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """Practical DRoP: random pruning inside classes with densities proportional to R_k(t*(N0/N1))."""
    return keep_with_drop_quotas(bayes_errors, model, y, density, rng)


METHODS: dict[str, Pruner] = {
    "none": keep_all,
    "random": keep_uniform,
    "random_optimal": keep_random_optimal,
    "drop": keep_drop,
    "ssp": keep_ssp,
    "random_ssp_ratios": keep_random_ssp_ratios,
}


def _sample_std(values: np.ndarray) -> np.ndarray:
    """Sample standard deviation over datasets (ddof=1); NaN when there is a single dataset."""
    if values.shape[0] < 2:
        return np.full(values.shape[1:], np.nan)
    return values.std(axis=0, ddof=1)


@dataclass(frozen=True)
class MonteCarloResult:
    """Per-dataset ERM thresholds, closed-form class risks at them (B, 2) and kept class counts (B, 2)."""

    thresholds: np.ndarray
    risks: np.ndarray
    kept_counts: np.ndarray

    @property
    def batch(self) -> int:
        """Number of datasets."""
        return int(self.thresholds.shape[0])

    @property
    def mean_threshold(self) -> float:
        """Mean fitted threshold (±inf or NaN if some datasets gave infinite thresholds)."""
        return float(self.thresholds.mean())

    @property
    def std_threshold(self) -> float:
        """Sample standard deviation of the fitted thresholds."""
        return float(_sample_std(self.thresholds))

    @property
    def stderr_threshold(self) -> float:
        """Standard error of the mean threshold."""
        return self.std_threshold / np.sqrt(self.batch)

    @property
    def mean_risks(self) -> np.ndarray:
        """Mean class risks (R0, R1) over datasets."""
        return self.risks.mean(axis=0)

    @property
    def std_risks(self) -> np.ndarray:
        """Sample standard deviation of the class risks over datasets."""
        return _sample_std(self.risks)

    @property
    def stderr_risks(self) -> np.ndarray:
        """Standard errors of the mean class risks."""
        return self.std_risks / np.sqrt(self.batch)

    @property
    def mean_kept_counts(self) -> np.ndarray:
        """Mean number of kept points per class."""
        return self.kept_counts.mean(axis=0)


def _check_method(method: str) -> Pruner:
    """The pruner registered under `method`, or a ValueError listing the registered names."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    return METHODS[method]


def _check_density(density: float) -> float:
    """`density` as a float in (0, 1], or a ValueError."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    return float(density)


def prune(
    model: TwoGaussians, method: str, density: float, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Boolean keep mask of x's shape from the registered pruning `method` at dataset `density`."""
    return _check_method(method)(model, x, y, _check_density(density), rng)


def evaluate(model: TwoGaussians, x: np.ndarray, y: np.ndarray, keep: np.ndarray) -> MonteCarloResult:
    """Fit ERM on the kept points of each dataset (B, n) and evaluate the class risks in closed form."""
    thresholds = np.atleast_1d(np.asarray(fit_threshold(x, y, weight=keep), dtype=float))
    r0, r1 = model.class_risks(thresholds)
    return MonteCarloResult(
        thresholds=thresholds,
        risks=np.stack([np.asarray(r0, dtype=float), np.asarray(r1, dtype=float)], axis=-1),
        kept_counts=np.asarray(class_counts(y, keep)).reshape(-1, 2),
    )


def simulate(
    model: TwoGaussians, method: str, density: float, n: int, batch: int, rng: np.random.Generator
) -> MonteCarloResult:
    """Sample `batch` datasets of `n` points, prune each with `method` to `density`, fit ERM and evaluate."""
    if n < 1:
        raise ValueError(f"n (points per dataset) must be at least 1, got {n!r}")
    if batch < 1:
        raise ValueError(f"batch (number of datasets) must be at least 1, got {batch!r}")
    x, y = model.sample(n, rng, batch=batch)
    return evaluate(model, x, y, prune(model, method, density, x, y, rng))

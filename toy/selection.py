"""Choosing DRoP's quota exponent (and recall prior) on validation: the rule `deep` uses, and its two-Gaussian check.

The rule (`choose`): among candidates (beta, alpha), take the one with the highest validation worst-class (or
worst-group) accuracy; ties go to the candidate nearest beta = 1 (the paper's Algorithm 1), then to the preferred
prior alpha, so that "auto" departs from the paper only when validation says so.

The check (`simulate_selection`): on a two-Gaussian mixture with equal priors, the same rule applied to Monte Carlo
datasets (each pruned at random inside classes with tempered DRoP quotas from the class risks of t*(N0/N1), fitted by
ERM, scored on a validation sample of its own) should land near the closed-form beta* (`toy.gaussians.exact_exponent`),
the exponent whose pruned priors make ERM worst-class optimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toy.erm import fit_threshold
from toy.gaussians import TwoGaussians
from toy.montecarlo import bayes_errors, keep_with_drop_quotas

PAPER_EXPONENT = 1.0  # Algorithm 1 of paper 003: ties are resolved towards it


def preference(beta: float, prior: float, preferred_prior: float) -> tuple[float, bool, float, float]:
    """Sort key of a candidate among equals: nearest beta = 1 first, then the preferred prior, then by value."""
    return (abs(beta - PAPER_EXPONENT), prior != preferred_prior, -beta, prior)


def choose(
    betas: Sequence[float], priors: Sequence[float], worst: Sequence[float], preferred_prior: float = 1.0
) -> int:
    """Index of the candidate (betas[i], priors[i]) with the highest validation worst-unit accuracy worst[i];
    ties to the nearest beta = 1, then to `preferred_prior`."""
    if not (len(betas) == len(priors) == len(worst)) or not betas:
        raise ValueError(f"candidates: betas, priors and worst must be non-empty and of one length, got "
                         f"{len(betas)}, {len(priors)}, {len(worst)}")
    if not np.all(np.isfinite(np.asarray(worst, dtype=float))):
        raise ValueError(f"worst: every candidate needs a finite validation accuracy, got {list(worst)}")
    best = max(worst)
    tied = [i for i, w in enumerate(worst) if w == best]
    return min(tied, key=lambda i: preference(float(betas[i]), float(priors[i]), preferred_prior))


@dataclass(frozen=True)
class SelectionCheck:
    """One mixture's Monte Carlo selection: the grid, the mean validation worst-class accuracy at each beta, the
    beta the rule chose and the closed-form beta*."""

    betas: np.ndarray
    worst_accuracy: np.ndarray
    chosen: float
    exact: float


def validation_worst_accuracy(model: TwoGaussians, thresholds: np.ndarray, n_val: int, rng: np.random.Generator) -> np.ndarray:
    """Worst-class accuracy of each threshold (B,) on a fresh validation sample of n_val points per dataset."""
    x, y = model.sample(n_val, rng, batch=thresholds.size)
    correct = (x > thresholds[:, None]) == (y == 1)
    per_class = [np.sum(correct & (y == k), axis=1) / np.maximum(np.sum(y == k, axis=1), 1) for k in (0, 1)]
    return np.minimum(*per_class)


def simulate_selection(
    model: TwoGaussians, density: float, betas: Sequence[float], n: int, batch: int, rng: np.random.Generator,
    exact: float = float("nan"),
) -> SelectionCheck:
    """The validation rule on `batch` Monte Carlo datasets of n points (validation samples of n points each): the
    beta of `betas` with the highest mean validation worst-class accuracy (ties to beta = 1)."""
    x, y = model.sample(n, rng, batch=batch)
    worst = []
    for beta in betas:
        keep = keep_with_drop_quotas(bayes_errors, model, y, density, rng, exponent=float(beta))
        thresholds = np.atleast_1d(np.asarray(fit_threshold(x, y, weight=keep), dtype=float))
        worst.append(float(validation_worst_accuracy(model, thresholds, n, rng).mean()))
    grid = np.asarray(betas, dtype=float)
    chosen = grid[choose(list(grid), [0.0] * grid.size, worst, 0.0)]
    return SelectionCheck(grid, np.asarray(worst), float(chosen), float(exact))

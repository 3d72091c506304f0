"""`--quota-exponent auto` and `--recall-prior auto`: DRoP's exponent beta and recall prior alpha chosen on validation.

Per seed and density, a selection task (deep.sweep.selection_task) forms the candidates (the exponent grid, default
{0.25, 0.5, 0.75, 1}, times the priors {0, 1}; a setting given as a number stays fixed), computes each candidate's
kept set with `deep.prune.keep`, trains ONE short proxy per distinct kept set (candidates whose kept sets coincide
share it), scores it on the validation split and picks by `toy.selection.choose`: the best validation worst-class
(worst-group under group quotas) accuracy, ties to the candidate nearest beta = 1, then to the dataset's default
prior. The test split is never read. Everything here is numpy only; the task's runner is deep.selection_task.

Cost: a proxy trains the final run's density-scaled schedule compressed into PROXY_FRACTION of its epochs (at least
one), with plain ERM whatever the final method (so final runs of every method share one selection). In full-data
epochs that is about PROXY_FRACTION (0.5 + 0.5 d) E per proxy against (0.5 + 0.5 d) E for the final run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toy.selection import choose

AUTO = "auto"
DEFAULT_GRID = (0.25, 0.5, 0.75, 1.0)
AUTO_PRIORS = (0.0, 1.0)  # raw recalls (Algorithm 1) and Laplace's rule
PROXY_FRACTION = 0.05  # of the final run's (density-scaled) epochs; sized so that the main job's selection costs
# <= 25 % of its final runs (sweep --dry-run prints the ratio)


@dataclass(frozen=True)
class Candidate:
    """One setting a selection tries: quota exponent beta and recall prior alpha."""

    quota_exponent: float
    recall_prior: float


def is_auto(value: object) -> bool:
    """Whether a setting is to be chosen on validation."""
    return value == AUTO


def check_grid(grid: Sequence[float]) -> tuple[float, ...]:
    """The exponent grid as sorted distinct floats, or ValueError naming --exponent-grid."""
    values = tuple(sorted({float(b) for b in grid}))
    if not values or not all(np.isfinite(b) and b > 0 for b in values):
        raise ValueError(f"--exponent-grid needs at least one finite exponent > 0, got {list(grid)}")
    return values


def candidates(exponent: float | str, prior: float | str, grid: Sequence[float] = DEFAULT_GRID) -> list[Candidate]:
    """The grid of candidates: every exponent of `grid` if `exponent` is auto, every prior of AUTO_PRIORS if `prior`
    is, a given number otherwise."""
    betas = check_grid(grid) if is_auto(exponent) else (float(exponent),)
    priors = AUTO_PRIORS if is_auto(prior) else (float(prior),)
    return [Candidate(b, a) for b in betas for a in priors]


def proxy_epochs(final_epochs: int) -> int:
    """Epochs of a proxy training: PROXY_FRACTION of the final run's density-scaled epochs, at least 1."""
    return max(1, int(round(PROXY_FRACTION * final_epochs)))


def shared_proxies(kept_sets: Sequence[np.ndarray]) -> list[int]:
    """For each candidate's kept indices, the index of the first candidate with the same kept set (its proxy)."""
    first: dict[bytes, int] = {}
    return [first.setdefault(np.sort(np.asarray(k, dtype=np.int64)).tobytes(), i) for i, k in enumerate(kept_sets)]


def validation_accuracies(y: np.ndarray, predicted: np.ndarray, units: np.ndarray, num_units: int) -> tuple[float, float]:
    """(worst-unit accuracy, average accuracy) of predictions on the validation split; units are classes or groups."""
    correct = np.asarray(y) == np.asarray(predicted)
    units = np.asarray(units)
    sizes = np.bincount(units, minlength=num_units)
    hits = np.bincount(units[correct], minlength=num_units)
    present = sizes > 0
    return float(np.min(hits[present] / sizes[present])), float(correct.mean())


def select(cands: Sequence[Candidate], worst: Sequence[float], average: Sequence[float], proxies: Sequence[int],
           preferred_prior: float) -> dict:
    """The chosen candidate and the record metrics.json keeps: every candidate with its validation accuracies."""
    i = choose([c.quota_exponent for c in cands], [c.recall_prior for c in cands], list(worst), preferred_prior)
    return {
        "quota_exponent": cands[i].quota_exponent,
        "recall_prior": cands[i].recall_prior,
        "exponent_selection": [
            {"quota_exponent": c.quota_exponent, "recall_prior": c.recall_prior, "val_worst_accuracy": w,
             "val_accuracy": a, "proxy": p, "chosen": j == i}
            for j, (c, w, a, p) in enumerate(zip(cands, worst, average, proxies, strict=True))
        ],
    }

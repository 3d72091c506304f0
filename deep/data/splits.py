"""Seeded, stratified splits: fixed holdouts, the val/test halving, and long-tailed train subsets."""

from __future__ import annotations

import math

import numpy as np
import torch

from deep.data.base import Split

# Data that ship without a test split (digits, an npz without `split`) get a fixed stratified 70/30 split,
# drawn with seed 0 whatever the run seed, so that every run of a sweep is tested on the same rows.
HOLDOUT_TEST_FRACTION = 0.3
HOLDOUT_SEED = 0


def _class_indices(y: torch.Tensor, num_classes: int) -> list[np.ndarray]:
    """For each class 0..num_classes-1, the row indices holding it, in order."""
    labels = y.numpy()
    return [np.flatnonzero(labels == k) for k in range(num_classes)]


def _as_index(parts: list[np.ndarray]) -> torch.Tensor:
    """Concatenated row indices, sorted so that subsets keep the original row order."""
    joined = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return torch.from_numpy(np.sort(joined).astype(np.int64))


def stratified_split(y: torch.Tensor, fraction: float, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Split rows into (part, rest): part takes floor(fraction * n_k) random rows of each class k."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    labels = y.numpy()
    part, rest = [], []
    # Over the labels present, not range(max + 1): a huge label must not mean a huge loop. Absent classes drew
    # nothing from rng before either, so the split is the same.
    for rows in (np.flatnonzero(labels == k) for k in np.unique(labels)):
        shuffled = rng.permutation(rows)
        # The 1e-9 keeps exact products such as 0.3 * 10 from flooring one short.
        take = math.floor(fraction * len(rows) + 1e-9)
        part.append(shuffled[:take])
        rest.append(shuffled[take:])
    return _as_index(part), _as_index(rest)


def first_half_split(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split rows into (first, rest): the first int(n_k / 2) rows of each class k in file order (the authors' code)."""
    labels = y.numpy()
    first, rest = [], []
    for rows in (np.flatnonzero(labels == k) for k in np.unique(labels)):
        first.append(rows[: len(rows) // 2])
        rest.append(rows[len(rows) // 2 :])
    return _as_index(first), _as_index(rest)


def long_tail_counts(class_sizes: list[int], imbalance: float) -> list[int]:
    """Class sizes N_k = floor(N_max * I^(-k/(K-1))), k = 0..K-1, capped by what each class has (at least 1)."""
    if not (isinstance(imbalance, (int, float)) and math.isfinite(imbalance) and imbalance >= 1):
        raise ValueError(f"imbalance must be a number >= 1 (the ratio of the largest to the smallest class), got {imbalance}")
    num_classes = len(class_sizes)
    n_max = max(class_sizes, default=0)
    targets = [
        n_max if num_classes == 1 else max(1, math.floor(n_max * imbalance ** (-k / (num_classes - 1)) + 1e-9))
        for k in range(num_classes)
    ]
    return [min(size, target) for size, target in zip(class_sizes, targets)]


def long_tail_indices(y: torch.Tensor, num_classes: int, imbalance: float, rng: np.random.Generator) -> torch.Tensor:
    """Rows of a long-tailed subset: a random long_tail_counts(...)[k] rows of each class k (class 0 the largest)."""
    rows = _class_indices(y, num_classes)
    counts = long_tail_counts([len(r) for r in rows], imbalance)
    return _as_index([rng.choice(r, size=n, replace=False) for r, n in zip(rows, counts)])


def holdout(whole: Split) -> tuple[Split, Split]:
    """The fixed (train, test) split of data without one: HOLDOUT_TEST_FRACTION of each class to test, seed 0."""
    test, train = stratified_split(whole.y, HOLDOUT_TEST_FRACTION, np.random.default_rng(HOLDOUT_SEED))
    return whole.subset(train), whole.subset(test)

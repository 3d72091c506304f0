"""The val/test halving, the fixed holdout and the long-tailed train subsets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.data import DATASETS, load_dataset
from deep.data.splits import long_tail_counts, long_tail_indices, stratified_split

labels = st.lists(st.integers(0, 4), min_size=1, max_size=80).map(lambda v: torch.tensor(v, dtype=torch.int64))


@settings(max_examples=60, deadline=None)
@given(y=labels, fraction=st.sampled_from([0.0, 0.3, 0.5, 1.0]), seed=st.integers(0, 2**16))
def test_stratified_split_is_a_partition_with_floor_counts(y: torch.Tensor, fraction: float, seed: int) -> None:
    part, rest = stratified_split(y, fraction, np.random.default_rng(seed))
    assert sorted(part.tolist() + rest.tolist()) == list(range(len(y)))
    sizes = torch.bincount(y, minlength=5)
    assert torch.bincount(y[part], minlength=5).tolist() == [math.floor(fraction * n + 1e-9) for n in sizes.tolist()]
    again, _ = stratified_split(y, fraction, np.random.default_rng(seed))
    assert torch.equal(part, again)


def test_stratified_split_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(torch.zeros(4, dtype=torch.int64), 1.5, np.random.default_rng(0))


@settings(max_examples=80, deadline=None)
@given(sizes=st.lists(st.integers(0, 600), min_size=1, max_size=12), imbalance=st.floats(1.0, 200.0))
def test_long_tail_counts_follow_the_exponential_formula(sizes: list[int], imbalance: float) -> None:
    counts = long_tail_counts(sizes, imbalance)
    k_max = len(sizes) - 1
    n_max = max(sizes)
    for k, (size, count) in enumerate(zip(sizes, counts)):
        target = n_max * imbalance ** (-k / k_max) if k_max else n_max
        assert count == min(size, max(1, math.floor(target + 1e-9)))


def test_long_tail_counts_reference_values() -> None:
    # Tiny ImageNet with I = 20: 500 images in class 0 down to 25 in class 199
    counts = long_tail_counts([500] * 200, 20)
    assert counts[0] == 500 and counts[-1] == 25 and counts == sorted(counts, reverse=True)
    assert long_tail_counts([100, 100, 100], 4) == [100, 50, 25]
    assert long_tail_counts([100, 100, 100], 1) == [100, 100, 100]


@pytest.mark.parametrize("imbalance", [0.5, float("nan"), float("inf"), -2])
def test_imbalance_below_one_is_refused(imbalance: float) -> None:
    with pytest.raises(ValueError, match="imbalance"):
        load_dataset("debug", imbalance=imbalance)


def test_long_tail_indices_are_a_seeded_subset() -> None:
    y = torch.arange(300) % 3
    rows = long_tail_indices(y, 3, 9.0, np.random.default_rng(0))
    assert torch.bincount(y[rows]).tolist() == [100, 33, 11]
    assert len(set(rows.tolist())) == len(rows)
    assert torch.equal(rows, long_tail_indices(y, 3, 9.0, np.random.default_rng(0)))
    assert not torch.equal(rows, long_tail_indices(y, 3, 9.0, np.random.default_rng(1)))


def rows_of(x: torch.Tensor) -> set[tuple[float, ...]]:
    """The rows of a feature matrix as a set of tuples (debug rows are continuous, hence distinct)."""
    return {tuple(row) for row in x.tolist()}


@pytest.mark.parametrize("seed", [0, 7])
def test_val_and_test_are_disjoint_stratified_halves_of_the_test_split(seed: int) -> None:
    raw = DATASETS["debug"](None, False)
    data = load_dataset("debug", seed=seed)
    assert rows_of(data.val.x).isdisjoint(rows_of(data.test.x))
    assert rows_of(data.val.x) | rows_of(data.test.x) == rows_of(raw.test.x)
    sizes = torch.bincount(raw.test.y).tolist()
    assert torch.bincount(data.val.y).tolist() == [n // 2 for n in sizes]
    assert torch.bincount(data.test.y).tolist() == [n - n // 2 for n in sizes]
    assert torch.equal(data.train.x, raw.train.x)


def test_val_split_depends_on_the_seed_only() -> None:
    first, again, other = (load_dataset("debug_images", seed=s) for s in (3, 3, 4))
    assert torch.equal(first.val.x, again.val.x) and torch.equal(first.test.x, again.test.x)
    assert not torch.equal(first.val.x, other.val.x)


def test_imbalanced_train_split_and_provenance() -> None:
    data = load_dataset("digits", seed=2, imbalance=10)
    balanced = load_dataset("digits", seed=2)
    full = torch.bincount(balanced.train.y, minlength=10).tolist()
    assert data.info["train_class_counts"] == long_tail_counts(full, 10)
    assert data.info["train_class_counts"][0] == full[0] and data.info["train_class_counts"][-1] == max(full) // 10
    assert data.info["imbalance"] == 10 and data.info["sizes"]["train"] == len(data.train)
    assert torch.equal(data.val.x, balanced.val.x) and torch.equal(data.test.x, balanced.test.x)
    assert rows_of(data.train.x) <= rows_of(balanced.train.x)

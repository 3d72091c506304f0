"""Stable sample ids: every dataset names each row, and the names survive every subset taken of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deep.data import DATASETS, load_dataset
from deep.data.base import Split
from deep.data.store import StoredImages
from tests.test_data import fixture_path, write_npz


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_split_of_every_dataset_has_unique_ids(name: str, tmp_path: Path) -> None:
    data = load_dataset(name, fixture_path(name, tmp_path), seed=3)
    for split in (data.train, data.val, data.test):
        assert split.ids is not None and split.ids.shape == (len(split),)
        assert len(np.unique(split.ids)) == len(split)


@pytest.mark.parametrize("name", list(DATASETS))
def test_ids_survive_the_long_tail_and_the_val_test_halving(name: str, tmp_path: Path) -> None:
    path = fixture_path(name, tmp_path)
    full = load_dataset(name, path, seed=3)
    tail = load_dataset(name, path, seed=3, imbalance=3)
    assert len(tail.train) < len(full.train)
    # Each kept row keeps its id: the id finds the same row (same label, same input) in the full training set.
    where = {key: row for row, key in enumerate(full.train.ids.tolist())}
    rows = torch.tensor([where[key] for key in tail.train.ids.tolist()])
    def pixels(x):  # noqa: ANN001, ANN202 - a tensor, or an image store (imagenet) read back
        return x.load() if isinstance(x, StoredImages) else x

    assert torch.equal(full.train.y[rows], tail.train.y) and torch.equal(pixels(full.train.x[rows]), pixels(tail.train.x))
    if not full.info["official_val"]:  # validation and reported test halve one test split: disjoint ids
        assert not set(full.val.ids.tolist()) & set(full.test.ids.tolist())


def test_npz_ids_are_the_rows_of_the_file(tmp_path: Path) -> None:
    split = np.where(np.arange(60) % 4 == 0, "test", "train")
    with_split, without = write_npz(tmp_path / "d.npz", split=split), write_npz(tmp_path / "h.npz")
    for path, imbalance in ((with_split, 2.0), (without, None)):  # the file's split and the fixed holdout
        data = load_dataset("npz", path, imbalance=imbalance)
        rows = np.load(path)["X"].astype(np.float32)
        for part in (data.train, data.val, data.test):
            np.testing.assert_array_equal(part.x.numpy(), rows[part.ids])
    assert sorted(load_dataset("npz", with_split).train.ids.tolist()) == np.flatnonzero(split == "train").tolist()


def test_subset_slices_ids_by_position_and_by_mask() -> None:
    split = Split(torch.arange(5.0)[:, None], torch.zeros(5, dtype=torch.long), ids=np.array(list("abcde")))
    assert split.subset(torch.tensor([4, 0])).ids.tolist() == ["e", "a"]
    assert split.subset(torch.tensor([True, False, True, False, False])).ids.tolist() == ["a", "c"]
    with pytest.raises(ValueError, match="ids has 2 rows"):
        Split(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), ids=np.arange(2))

"""The dataset registry and load_dataset: a registered dataset with its validation split and optional long tail.

Each loader reads one path (the CLI's --data: a file or folder; default DEFAULT_ROOT/<name>, where
DEFAULT_ROOT is $DROP_DATA if set, else ./data) and downloads only when download=True. Missing or
incomplete data raise FileNotFoundError saying where to put which files. Options a dataset declares on its
registry entry (deep.data.registry) are passed as load_dataset(name, options={...}).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from deep.data import (cifar, debug, digits, imagefolder, imagenet, imagenet64, mnist, mnist1d, npz, spurious_digits,
                       tinyimagenet, waterbirds)
from deep.data.base import Dataset, RawDataset, Split
from deep.data.checks import check_evaluation, check_raw
from deep.data.files import DEFAULT_ROOT
from deep.data.registry import DatasetEntry, Defaults, Loader, Option, option_flag
from deep.data.splits import long_tail_indices, stratified_split
from deep.plugins import add_plugins
from deep.schedule import TrainConfig

# Adding a dataset = one module defining `DATASET = DatasetEntry(load, options, defaults)` and one line below (or,
# from another package, one entry point in the group `drop_pruning.datasets`: see deep.plugins). Small CPU data
# take deep.data.registry.CPU_DEFAULTS; the paper's datasets declare the paper's protocol.
DATASETS: dict[str, DatasetEntry] = {
    "digits": digits.DATASET,
    "mnist1d": mnist1d.DATASET,
    "mnist": mnist.DATASET,
    "npz": npz.DATASET,
    "cifar10": cifar.CIFAR10_DATASET,
    "cifar100": cifar.CIFAR100_DATASET,
    "tinyimagenet": tinyimagenet.DATASET,
    "waterbirds": waterbirds.DATASET,
    "imagefolder": imagefolder.DATASET,
    "imagenet": imagenet.DATASET,
    "imagenet64": imagenet64.DATASET,
    "debug": debug.DATASET,
    "debug_images": debug.IMAGES_DATASET,
    "spurious_digits": spurious_digits.DATASET,
}
add_plugins("datasets", DATASETS)

# Independent random streams per use of the run seed, so that changing one never shifts the other.
VAL_STREAM, IMBALANCE_STREAM = 0, 1

__all__ = ["DATASETS", "DEFAULT_ROOT", "Dataset", "DatasetEntry", "Defaults", "Loader", "Option", "RawDataset",
           "Split", "default_config", "load_dataset", "option_flag"]


def default_config(dataset: str, model: str) -> TrainConfig:
    """The reference schedule of `model` on `dataset`, as its registry entry declares it."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[dataset].defaults.schedule(model)


def class_counts(split: Split, num_classes: int) -> list[int]:
    """Rows per class 0..num_classes-1."""
    return torch.bincount(split.y, minlength=num_classes).tolist()


def numbered(split: Split) -> Split:
    """`split` itself when it has ids, else a copy whose ids are its row numbers."""
    return split if split.ids is not None else replace(split, ids=np.arange(len(split)))


def load_dataset(name: str, data: Path | str | None = None, *, options: Mapping[str, object] | None = None,
                 seed: int = 0, imbalance: float | None = None, download: bool = False) -> Dataset:
    """Load a registered dataset, check it, and derive its train, validation and reported test splits.

    options: values for the options the dataset's registry entry declares (the others take their defaults).
    Checks (deep.data.checks, ValueError naming the dataset and its source): at least 2 classes, labels
    0..K-1 in every split with every class in train, valid group ids, finite float inputs, and every class
    in the validation and the reported test split.

    Validation: a random floor(n_k / 2) rows of each test class k (seeded); the other ceil(n_k / 2) form the
    reported test set. Datasets with an official validation split (waterbirds) use it instead, untouched.
    imbalance I >= 1: the train split becomes long-tailed, class k keeping a random
    floor(N_max * I^(-k/(K-1))) of its rows (class 0 the largest, class K-1 about N_max / I; seeded);
    validation and test stay as they are.
    Every split carries ids (Split.ids), subsets included; a loader that sets none gets row numbers.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    entry = DATASETS[name]
    resolved = entry.resolve(name, options)
    raw = entry.load(None if data is None else Path(data), download, **resolved)
    raw = replace(raw, train=numbered(raw.train), test=numbered(raw.test),
                  val=None if raw.val is None else numbered(raw.val))
    label = f"dataset {name} ({raw.source})"
    check_raw(label, raw)
    num_classes = len(raw.classes)
    if raw.val is not None:
        val, test = raw.val, raw.test
    else:
        val_rows, test_rows = stratified_split(raw.test.y, 0.5, np.random.default_rng((seed, VAL_STREAM)))
        val, test = raw.test.subset(val_rows), raw.test.subset(test_rows)
    check_evaluation(label, raw.classes, val, test, halved=raw.val is None)
    train = raw.train
    if imbalance is not None:
        train = train.subset(long_tail_indices(train.y, num_classes, imbalance, np.random.default_rng((seed, IMBALANCE_STREAM))))
    info = {
        "name": name,
        "path": raw.source,
        "options": resolved,
        "seed": seed,
        "imbalance": imbalance,
        "official_val": raw.val is not None,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "train_class_counts": class_counts(train, num_classes),
    }
    return Dataset(name, train, val, test, raw.classes, raw.group_names, raw.mean, raw.std, info)

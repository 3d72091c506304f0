"""What every dataset loader returns, and the splits derived from it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """One part of a dataset: inputs, labels, optional group ids and the stable id of every row."""

    x: torch.Tensor  # uint8 images (N, C, H, W) or float32 features (N, D)
    y: torch.Tensor  # int64 labels (N,)
    group: torch.Tensor | None = None  # int64 group ids (N,), e.g. Waterbirds 2*y + place
    # Each row's id in the source, unique within the split and unchanged by subsets: int64 row numbers (npz,
    # CIFAR, digits) or str relative file paths (image folders). Lets a subset made here be named elsewhere.
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, rows in (("x", self.x), ("group", self.group), ("ids", self.ids)):
            if rows is not None and rows.shape[0] != self.y.shape[0]:
                raise ValueError(f"{name} has {rows.shape[0]} rows but y has {self.y.shape[0]}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: torch.Tensor) -> Split:
        """The rows `index` (positions or a boolean mask) of this split, ids included."""
        return Split(self.x[index], self.y[index], None if self.group is None else self.group[index],
                     None if self.ids is None else self.ids[np.asarray(index)])


@dataclass(frozen=True)
class RawDataset:
    """What a loader in the registry returns: a train and a test split with their names."""

    train: Split
    test: Split
    classes: list[str]
    group_names: list[str] | None = None
    # The input normalisation x -> (x - mean) / std the trainer applies (deep.train.InputPipeline): per channel for
    # uint8 images (N, C, H, W), in [0, 1] units (deep.data.images.channel_stats); per feature for float features
    # (N, D) (`feature_stats`); length 1 = one value for all. None: float features used as they are.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # An official validation split (Waterbirds); when None, load_dataset halves each test class instead.
    val: Split | None = None
    # Where the data came from: the file or folder read, or a short description for built-in data.
    source: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A dataset ready for training: train, validation (half of each test class) and test."""

    name: str
    train: Split
    val: Split
    test: Split
    classes: list[str]
    group_names: list[str] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    info: dict = field(default_factory=dict)  # provenance: path, seed, imbalance, sizes

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def num_groups(self) -> int:
        """Number of groups (0 when the dataset has none)."""
        return 0 if self.group_names is None else len(self.group_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. (3, 32, 32) or (64,)."""
        return tuple(self.train.x.shape[1:])

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(mean, std) per channel for the trainer's input pipeline, or None for features used as they are."""
        return None if self.mean is None else (self.mean, self.std)


def feature_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-feature mean and std (ddof 0) of float features (N, D), for RawDataset.mean/std (usually of the train
    split); a constant feature gets std 1, so that it becomes 0 instead of non-finite."""
    values = x.double()
    mean, std = values.mean(0), values.std(0, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple(mean.tolist()), tuple(std.tolist())

"""Small synthetic data for tests and smoke runs: Gaussian classes with a spurious binary attribute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.images import channel_stats
from deep.data.registry import CPU_DEFAULTS, DatasetEntry, Defaults

NUM_CLASSES = 3
SIZE = 200  # rows in train and in test
# The attribute a agrees with y % 2 in this fraction of train rows and half of test rows, so group = 2 * y + a
# has minority groups, as in Waterbirds.
TRAIN_AGREEMENT = 0.85


def synthetic(shape: tuple[int, ...], data: Path | None) -> RawDataset:
    """Classes centred at random points of `shape`, unit noise, plus a shift along one direction when a = 1."""
    if data is not None:
        raise ValueError(f"the debug datasets are generated in memory and read no files, but --data {data} was given")
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=1.5, size=(NUM_CLASSES, *shape))
    direction = rng.normal(size=shape)

    def split(agreement: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = np.arange(SIZE) % NUM_CLASSES
        a = np.where(rng.random(SIZE) < agreement, y % 2, 1 - y % 2)
        x = centers[y] + a.reshape(-1, *[1] * len(shape)) * direction + rng.normal(size=(SIZE, *shape))
        return x, y, 2 * y + a

    parts = [split(TRAIN_AGREEMENT), split(0.5)]
    image = len(shape) == 3
    # Images: about 3 standard deviations either side of mid-grey fit in 0..255.
    to_x = (lambda x: np.clip(128 + 40 * x, 0, 255).astype(np.uint8)) if image else (lambda x: x.astype(np.float32))
    # ids: the row number among the 2 * SIZE rows generated, train first.
    train, test = (Split(torch.from_numpy(to_x(x)), torch.from_numpy(y), torch.from_numpy(g), i * SIZE + np.arange(SIZE))
                   for i, (x, y, g) in enumerate(parts))
    mean, std = channel_stats(train.x) if image else (None, None)
    return RawDataset(
        train, test,
        classes=[f"class {k}" for k in range(NUM_CLASSES)],
        group_names=[f"class {k}/attr {a}" for k in range(NUM_CLASSES) for a in (0, 1)],
        mean=mean, std=std, source=f"synthetic {shape}, seed 0",
    )


def load_debug(data: Path | None = None, download: bool = False) -> RawDataset:
    """200 train and 200 test rows of float32 features (N, 10), 3 classes, 6 groups (2 * y + attribute)."""
    return synthetic((10,), data)


def load_debug_images(data: Path | None = None, download: bool = False) -> RawDataset:
    """The same design as `debug` with uint8 images (N, 3, 8, 8)."""
    return synthetic((3, 8, 8), data)


DATASET = DatasetEntry(load_debug)
IMAGES_DATASET = DatasetEntry(load_debug_images, defaults=Defaults("cnn", CPU_DEFAULTS.train, recall_prior=1.0))

"""Downsampled ImageNet 64 x 64 (Chrabaszcz, Loshchilov and Hutter, 2017) from its official npz batches, in memory.

ROOT (--data) holds train_data_batch_1.npz .. train_data_batch_10.npz and val_data.npz, directly or one folder down
(as the archives Imagenet64_train_part1_npz.zip, ..._part2_npz.zip and Imagenet64_val_npz.zip unpack). Each holds
`data`, uint8 rows of 3 x 64 x 64 values (the red plane, then green, then blue, each row-major), and `labels`, 1..1000
(class k here is label k + 1, classes up to the largest label: 1000 in the official files; the class names are the
labels unless map_clsloc.txt, "wnid label name" per line, lies beside them). The official validation set (50 per class) is the test split, halved per class into validation and
reported test as for CIFAR. Sample ids: row numbers over the batches in order (batch 1 first). The training set is
1,281,167 x 12,288 bytes = 15.7 GB held in memory: a cheaper ImageNet for small labs, not a streamed one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.files import location
from deep.data.images import channel_stats
from deep.data.registry import DatasetEntry, Defaults
from deep.schedule import TrainConfig

SIDE = 64
TRAIN_FILES = tuple(f"train_data_batch_{i}.npz" for i in range(1, 11))
VAL_FILE = "val_data.npz"
CLASSES = 1000
SOURCE = "https://image-net.org/download-images (Downsampled ImageNet 64x64, npz format)"


def find_file(root: Path, name: str) -> Path | None:
    """ROOT/name or ROOT/<folder>/name, whichever exists first; None when neither does."""
    found = [root / name, *sorted(root.glob(f"*/{name}"))] if root.is_dir() else []
    return next((path for path in found if path.is_file()), None)


def read_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 3, 64, 64) and 0-based labels of the npz batches at `paths`, copied once into one array."""
    labels, sizes = [], []
    for path in paths:
        with np.load(path, allow_pickle=False) as batch:
            if not {"data", "labels"} <= set(batch.files):
                raise ValueError(f"imagenet64: {path} must hold the arrays data and labels; it holds {batch.files}")
            labels.append(np.asarray(batch["labels"], dtype=np.int64).reshape(-1))
            sizes.append(len(labels[-1]))
    x = np.empty((sum(sizes), 3, SIDE, SIDE), dtype=np.uint8)
    start = 0
    for path, size in zip(paths, sizes):
        with np.load(path, allow_pickle=False) as batch:
            data = batch["data"]
            if data.dtype != np.uint8 or data.shape != (size, 3 * SIDE * SIDE):
                raise ValueError(f"imagenet64: {path} holds data of shape {data.shape} and dtype {data.dtype}; the "
                                 f"64x64 set has uint8 rows of {3 * SIDE * SIDE} values, one per label")
            x[start : start + size] = data.reshape(size, 3, SIDE, SIDE)
        start += size
    y = np.concatenate(labels) - 1
    if len(y) and (y.min() < 0 or y.max() >= CLASSES):
        raise ValueError(f"imagenet64: labels must be 1..{CLASSES} (the official files are 1-based); found "
                         f"{y.min() + 1}..{y.max() + 1} in {paths[0].parent}")
    return x, y


def class_names(folder: Path, count: int) -> list[str]:
    """wnids by label from map_clsloc.txt ("wnid label name" lines) when present, else the labels 1..count."""
    mapping = folder / "map_clsloc.txt"
    names = [str(k + 1) for k in range(count)]
    if mapping.is_file():
        for line in mapping.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit() and 1 <= int(parts[1]) <= count:
                names[int(parts[1]) - 1] = parts[0]
    return names


def load_imagenet64(data: Path | None = None, download: bool = False) -> RawDataset:
    """Downsampled ImageNet 64x64: uint8 (N, 3, 64, 64), 1000 classes, the official validation set as test."""
    if download:
        raise ValueError(f"imagenet64 cannot be downloaded here (it needs a login): get it from {SOURCE}")
    root = location(data, "imagenet64")
    train_paths = [find_file(root, name) for name in TRAIN_FILES]
    val_path = find_file(root, VAL_FILE)
    missing = [name for name, path in zip((*TRAIN_FILES, VAL_FILE), (*train_paths, val_path)) if path is None]
    if missing:
        raise FileNotFoundError(f"imagenet64: {root.resolve()} (or a folder inside it) lacks {', '.join(missing)}. "
                                f"Unpack the 64x64 npz archives from {SOURCE} there and pass --data ROOT")
    x, y = read_batches(train_paths)
    val_x, val_y = read_batches([val_path])
    train = Split(torch.from_numpy(x), torch.from_numpy(y))
    mean, std = channel_stats(train.x)
    return RawDataset(train, Split(torch.from_numpy(val_x), torch.from_numpy(val_y)), class_names(train_paths[0].parent, int(y.max()) + 1),
                      mean=mean, std=std, source=str(root.resolve()))


# Ours, not the paper's (Chrabaszcz et al. train Wide ResNets on GPUs): the small `cnn` for 10 epochs, SGD lr 0.05,
# batch 256, weight decay 5e-4, x0.2 at epochs 5 and 8, RandomCrop(64, padding 4) + flip: a CPU-sized recipe, not
# tuned on the full set. On a GPU, --model resnet18 with TinyImageNet's schedule is the closer reference.
DATASET = DatasetEntry(load_imagenet64, defaults=Defaults("cnn", {"*": TrainConfig(
    10, 256, 0.05, momentum=0.9, weight_decay=5e-4, milestones=(5, 8), gamma=0.2, crop_padding=4)}))

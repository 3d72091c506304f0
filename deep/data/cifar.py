"""CIFAR-10 and CIFAR-100 from their standard python-version batches.

The batches are Python pickles, and unpickling can run code: they are read only from the folder the user
names with --data (or the default DEFAULT_ROOT/cifar10, DEFAULT_ROOT/cifar100), never found elsewhere.
torchvision's CIFAR classes are not used for reading because they md5-check every file even without a
download; torchvision's downloader is used, md5-checked, only when the user passes download=True.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.files import Archive, Layout, find_folder
from deep.data.images import channel_stats
from deep.data.registry import DatasetEntry, Defaults
from deep.schedule import TrainConfig

SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (the CIFAR python version)"


@dataclass(frozen=True)
class CifarFormat:
    """One CIFAR variant: its folder, its files, and the dict keys of its pickles."""

    name: str
    num_classes: int
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: bytes
    names_key: bytes
    archive: Archive

    @property
    def layout(self) -> Layout:
        """The folder layout: exactly the files this variant reads."""
        required = (*self.train_files, self.test_file, self.meta_file)
        return Layout(self.name, self.folder, required, SOURCE, self.archive)


CIFAR10 = CifarFormat(
    "cifar10", 10, "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
    b"labels", b"label_names",
    Archive("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
)
CIFAR100 = CifarFormat(
    "cifar100", 100, "cifar-100-python", ("train",), "test", "meta", b"fine_labels", b"fine_label_names",
    Archive("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
)


def unpickle(path: Path, keys: tuple[bytes, ...]) -> dict:
    """One CIFAR pickle, written by Python 2, as a dict with bytes keys that holds at least `keys`."""
    again = f"replace it with the file from {SOURCE}"
    try:
        with path.open("rb") as file:
            content = pickle.load(file, encoding="bytes")
    # A truncated, empty or overwritten pickle fails in many ways (EOFError, UnpicklingError, ValueError,
    # AttributeError, ...); whichever it is, the file is not a CIFAR batch.
    except Exception as error:
        raise ValueError(f"{path} is not a readable CIFAR python-version file ({type(error).__name__}: {error}); "
                         f"{again}") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} is not a CIFAR python-version file (it holds a {type(content).__name__}, not a dict); "
                         f"{again}")
    missing = [key for key in keys if key not in content]
    if missing:
        raise ValueError(f"{path} lacks the keys {missing} of a CIFAR file; it has {sorted(content)}; {again}")
    return content


def read_batches(paths: list[Path], variant: CifarFormat) -> Split:
    """Images uint8 (N, 3, 32, 32) and labels from CIFAR batch files, in file order, checked."""
    xs, ys = [], []
    for path in paths:
        batch = unpickle(path, (b"data", variant.label_key))
        x = np.asarray(batch[b"data"])
        y = np.asarray(batch[variant.label_key])
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or y.shape != (len(x),):
            raise ValueError(f"{path} holds data of shape {x.shape} and labels of shape {y.shape}; a CIFAR batch holds "
                             f"(N, 3072) pixels and N labels; replace it with the file from {SOURCE}")
        if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= variant.num_classes):
            raise ValueError(f"{path} holds labels outside 0..{variant.num_classes - 1} ({variant.name} has "
                             f"{variant.num_classes} classes); replace it with the file from {SOURCE}")
        xs.append(x.astype(np.uint8).reshape(-1, 3, 32, 32))
        ys.append(y.astype(np.int64))
    # ids: the index in the official set, batches in file order (torchvision's CIFAR order too).
    return Split(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)),
                 ids=np.arange(sum(map(len, ys))))


def class_names(path: Path, variant: CifarFormat) -> list[str]:
    """The class names in the meta file, checked to number exactly variant.num_classes."""
    names = unpickle(path, (variant.names_key,))[variant.names_key]
    if not isinstance(names, list) or len(names) != variant.num_classes:
        count = len(names) if isinstance(names, list) else type(names).__name__
        raise ValueError(f"{path} names {count} classes under {variant.names_key!r}; {variant.name} has "
                         f"{variant.num_classes}; replace it with the file from {SOURCE}")
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


def load_cifar(variant: CifarFormat, data: Path | None = None, download: bool = False) -> RawDataset:
    """A CIFAR variant from its python-version folder: train and official test split, mean/std of train."""
    folder = find_folder(variant.layout, data, download)
    train = read_batches([folder / name for name in variant.train_files], variant)
    test = read_batches([folder / variant.test_file], variant)
    classes = class_names(folder / variant.meta_file, variant)
    mean, std = channel_stats(train.x)
    return RawDataset(train, test, classes, mean=mean, std=std, source=str(folder.resolve()))


def load_cifar10(data: Path | None = None, download: bool = False) -> RawDataset:
    """CIFAR-10: 50,000 train and 10,000 test images, uint8 (N, 3, 32, 32), 10 classes."""
    return load_cifar(CIFAR10, data, download)


def load_cifar100(data: Path | None = None, download: bool = False) -> RawDataset:
    """CIFAR-100: 50,000 train and 10,000 test images, uint8 (N, 3, 32, 32), 100 fine classes."""
    return load_cifar(CIFAR100, data, download)


def _cifar_schedule(weight_decay: float) -> TrainConfig:
    """The reference code's CIFAR schedule: SGD lr 0.1, batch 128, 160 epochs, x0.2 at 80 and 120, translate 0.15 + flip."""
    return TrainConfig(epochs=160, batch_size=128, lr=0.1, momentum=0.9, weight_decay=weight_decay,
                       milestones=(80, 120), gamma=0.2, translate=0.15)


# VGG-16 on CIFAR-10 (weight decay 1e-4) and VGG-19 on CIFAR-100 (5e-4), as the reference code's config.py.
CIFAR10_DATASET = DatasetEntry(load_cifar10, defaults=Defaults("vgg16", {"*": _cifar_schedule(1e-4)}))
CIFAR100_DATASET = DatasetEntry(load_cifar100, defaults=Defaults("vgg19", {"*": _cifar_schedule(5e-4)}))

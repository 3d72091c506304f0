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

SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (the CIFAR python version)"


@dataclass(frozen=True)
class CifarFormat:
    """One CIFAR variant: its folder, its files, and the dict keys of its pickles."""

    name: str
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
    "cifar10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
    b"labels", b"label_names",
    Archive("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
)
CIFAR100 = CifarFormat(
    "cifar100", "cifar-100-python", ("train",), "test", "meta", b"fine_labels", b"fine_label_names",
    Archive("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
)


def unpickle(path: Path) -> dict:
    """One CIFAR pickle, written by Python 2, as a dict with bytes keys."""
    with path.open("rb") as file:
        content = pickle.load(file, encoding="bytes")
    if not isinstance(content, dict):
        raise ValueError(f"{path} is not a CIFAR python-version file (it holds a {type(content).__name__}, not a dict)")
    return content


def read_batches(paths: list[Path], label_key: bytes) -> Split:
    """Images uint8 (N, 3, 32, 32) and labels from CIFAR batch files, in file order."""
    xs, ys = [], []
    for path in paths:
        batch = unpickle(path)
        if b"data" not in batch or label_key not in batch:
            raise ValueError(f"{path} lacks the keys b'data' and {label_key!r} of a CIFAR batch; it has {sorted(batch)}")
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    return Split(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)))


def load_cifar(variant: CifarFormat, data: Path | None = None, download: bool = False) -> RawDataset:
    """A CIFAR variant from its python-version folder: train and official test split, mean/std of train."""
    folder = find_folder(variant.layout, data, download)
    train = read_batches([folder / name for name in variant.train_files], variant.label_key)
    test = read_batches([folder / variant.test_file], variant.label_key)
    classes = [name.decode() for name in unpickle(folder / variant.meta_file)[variant.names_key]]
    mean, std = channel_stats(train.x)
    return RawDataset(train, test, classes, mean=mean, std=std, source=str(folder.resolve()))


def load_cifar10(data: Path | None = None, download: bool = False) -> RawDataset:
    """CIFAR-10: 50,000 train and 10,000 test images, uint8 (N, 3, 32, 32), 10 classes."""
    return load_cifar(CIFAR10, data, download)


def load_cifar100(data: Path | None = None, download: bool = False) -> RawDataset:
    """CIFAR-100: 50,000 train and 10,000 test images, uint8 (N, 3, 32, 32), 100 fine classes."""
    return load_cifar(CIFAR100, data, download)

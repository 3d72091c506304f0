"""MNIST from its four IDX files as distributed, gzipped or not.

Files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each
may be <name>.gz), in the --data folder (default DEFAULT_ROOT/mnist) or its MNIST/raw subfolder, where
torchvision's MNIST puts them. download=True fetches the gzipped files from torchvision's mirror, md5-checked.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.files import Archive, Layout, find_folder
from deep.data.images import channel_stats
from deep.data.registry import DatasetEntry, Defaults
from deep.schedule import TrainConfig

MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# md5 of the gzipped files, as torchvision's MNIST lists them.
FILES = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
LAYOUT = Layout(
    "mnist", "MNIST/raw", tuple(FILES), f"http://yann.lecun.com/exdb/mnist/ or the mirror {MIRROR}",
    tuple(Archive(f"{MIRROR}{name}.gz", md5) for name, md5 in FILES.items()), gzipped=True,
)
UNSIGNED_BYTE = 0x08  # the IDX type code of uint8 data
NUM_CLASSES = 10


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array in an IDX file (gunzipped when its name ends in .gz), checked against its header."""
    try:
        content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    # BadGzipFile is an OSError; a truncated stream raises EOFError, corrupt compressed data zlib.error.
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"mnist: {path} cannot be read or unzipped ({error}); download it again") from error
    header = 4 + 4 * ndim
    if len(content) < header or content[:3] != bytes((0, 0, UNSIGNED_BYTE)) or content[3] != ndim:
        raise ValueError(f"mnist: {path} is not an IDX file of unsigned bytes with {ndim} dimension(s) "
                         f"(it starts with {content[:4].hex() or 'nothing'}); download it again")
    shape = struct.unpack(f">{ndim}I", content[4:header])
    if len(content) - header != math.prod(shape):
        raise ValueError(f"mnist: {path} holds {len(content) - header} bytes of data but its header announces shape "
                         f"{shape}, {math.prod(shape)} bytes: the file is truncated or corrupt; download it again")
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_split(folder: Path, prefix: str) -> Split:
    """Images uint8 (N, 1, H, W) and labels of one split ("train" or "t10k")."""
    images_path, labels_path = (LAYOUT.present(folder / f"{prefix}-{kind}") for kind in ("images-idx3-ubyte",
                                                                                          "labels-idx1-ubyte"))
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise ValueError(f"mnist: {images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                         "labels; download both again")
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        raise ValueError(f"mnist: {labels_path} holds label {int(labels.max())}; MNIST labels are 0..9")
    return Split(torch.from_numpy(images[:, None]), torch.from_numpy(labels.astype(np.int64)))


def load_mnist(data: Path | None = None, download: bool = False) -> RawDataset:
    """MNIST: 60,000 train and 10,000 test images, uint8 (N, 1, 28, 28), 10 classes, mean/std of train."""
    folder = find_folder(LAYOUT, data, download)
    train, test = read_split(folder, "train"), read_split(folder, "t10k")
    mean, std = channel_stats(train.x)
    return RawDataset(train, test, [str(k) for k in range(NUM_CLASSES)], mean=mean, std=std,
                      source=str(folder.resolve()))


# LeNet-300-100 as the reference code's config.py: SGD lr 0.1, weight decay 5e-4, batch 128, 160 epochs, x0.2 at
# 40, 80 and 120. No augmentation: crop + flip are wrong for digits (the reference's 4-degree rotation is not used).
DATASET = DatasetEntry(load_mnist, defaults=Defaults("lenet300100", {"*": TrainConfig(
    epochs=160, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, milestones=(40, 80, 120), gamma=0.2,
    augment=False)}))

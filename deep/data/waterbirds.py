"""Waterbirds (Sagawa et al., 2020) from its standard folder with metadata.csv.

metadata.csv columns used: img_filename (relative to the folder), y (0 landbird, 1 waterbird), split
(0 train, 1 val, 2 test) and place (0 land, 1 water background); group = 2 * y + place.
Unlike the other datasets, validation is the official val split (split == 1), not half of the test split:
it is returned as RawDataset.val and load_dataset uses it as is; the test split is the official test.
Images: resized to round(image_size * 256/224) pixels square, then centre-cropped to image_size (the
evaluation transform of Sagawa et al.; 256 then 224 by default), cached (deep.data.image_cache) so that only
the first load decodes; with --stream, streamed from an image store instead (deep.data.store). Sample ids: img_filename, the image's path relative to the folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.files import Archive, Layout, find_folder
from deep.data.images import ResizeCenterCrop, path_ids
from deep.data.registry import DatasetEntry, Defaults
from deep.data.store import image_rows, image_stats
from deep.numbers import ids_from_text
from deep.schedule import TrainConfig

URL = "https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz"
# No checksum for this archive is published, so the download is not md5-checked.
LAYOUT = Layout("waterbirds", "waterbird_complete95_forest2water2", ("metadata.csv",),
                f"{URL} (unpacked as is)", Archive(URL, None))
COLUMNS = ("img_filename", "y", "split", "place")
CLASSES = ["landbird", "waterbird"]
GROUP_NAMES = [f"{bird}/{place}" for bird in CLASSES for place in ("land", "water")]
TRAIN, VAL, TEST = 0, 1, 2


def read_metadata(folder: Path) -> tuple[list[Path], np.ndarray]:
    """Image paths and an int array (N, 3) of y, split, place from metadata.csv, checked."""
    with (folder / "metadata.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    absent = [column for column in COLUMNS if rows and column not in rows[0]]
    if not rows or absent:
        raise ValueError(f"waterbirds: {folder.resolve() / 'metadata.csv'} must have a header with columns "
                         f"{', '.join(COLUMNS)} and one row per image; it lacks {absent or 'rows'}")
    where = f"waterbirds: {folder.resolve() / 'metadata.csv'}"
    values = np.stack([ids_from_text([row[key] or "" for row in rows], f"{where}, column {key}")
                       for key in ("y", "split", "place")], axis=1)
    if not (np.isin(values[:, 0], (0, 1)).all() and np.isin(values[:, 1], (TRAIN, VAL, TEST)).all()
            and np.isin(values[:, 2], (0, 1)).all()):
        raise ValueError("waterbirds: metadata.csv needs y and place in {0, 1} and split in {0, 1, 2}")
    paths = [folder / row["img_filename"] for row in rows]
    absent_images = [path for path in paths if not path.is_file()]
    if absent_images:
        raise FileNotFoundError(f"waterbirds: {len(absent_images)} images listed in metadata.csv are missing, "
                                f"e.g. {absent_images[0].resolve()}; unpack {URL} again")
    return paths, values


def load_waterbirds(data: Path | None = None, download: bool = False, *, image_size: int = 224) -> RawDataset:
    """Waterbirds: uint8 (N, 3, image_size, image_size), 2 classes, 4 groups, official train/val/test."""
    folder = find_folder(LAYOUT, data, download)
    paths, values = read_metadata(folder)
    transform = ResizeCenterCrop(image_size, round(image_size * 256 / 224))
    y, split, place = values.T

    def read(which: int, desc: str) -> Split:
        # One split at a time, so the images are never held twice in memory.
        rows = np.flatnonzero(split == which)
        files = [paths[i] for i in rows]
        x = image_rows(files, (image_size, image_size), transform, desc=f"waterbirds {desc}")
        return Split(x, torch.from_numpy(y[rows]), torch.from_numpy(2 * y[rows] + place[rows]),
                     ids=path_ids(files, folder))

    train, val, test = read(TRAIN, "train"), read(VAL, "val"), read(TEST, "test")
    mean, std = image_stats(train.x)
    return RawDataset(train, test, list(CLASSES), list(GROUP_NAMES), mean, std, val=val, source=str(folder.resolve()))


# An ImageNet-pretrained ResNet-50 fine-tuned as in the group-DRO reference setup (Sagawa et al. 2020, ERM on
# Waterbirds): SGD lr 1e-3, momentum 0.9, weight decay 1e-4, batch 128, 300 epochs, no schedule, no augmentation.
DATASET = DatasetEntry(load_waterbirds, defaults=Defaults("resnet50_imagenet", {"*": TrainConfig(
    epochs=300, batch_size=128, lr=1e-3, momentum=0.9, weight_decay=1e-4, augment=False)}, pretrained="imagenet"))

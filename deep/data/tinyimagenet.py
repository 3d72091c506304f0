"""Tiny ImageNet (200 classes, 64x64) read from the tiny-imagenet-200 folder exactly as distributed.

Train: train/<wnid>/images/*.JPEG (500 per class). Test: the official val set, val/images/*.JPEG labelled by
val/val_annotations.txt (50 per class); the official test set has no labels and is not read. Class k is the
k-th wnid in sorted order (as torchvision's ImageFolder numbers them); its name is the first synonym in words.txt.
Sample ids: the path relative to the tiny-imagenet-200 folder (e.g. "train/n01443537/images/n01443537_0.JPEG"),
which names an image unambiguously; the distribution defines no numbering of its own. Decoded pixels are cached
(deep.data.image_cache), so only the first load decodes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deep.data.base import RawDataset, Split
from deep.data.files import Archive, Layout, find_folder
from deep.data.image_cache import cached_images
from deep.data.images import channel_stats, path_ids
from deep.data.registry import DatasetEntry, Defaults
from deep.schedule import TrainConfig

SIZE = 64
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
LAYOUT = Layout(
    "tinyimagenet", "tiny-imagenet-200",
    ("wnids.txt", "words.txt", "train", "val/images", "val/val_annotations.txt"),
    f"{URL} (unzipped as is, not rearranged)",
    Archive(URL, "90528d7ca1a48142e341f4ef8d21d0de"),
)


def class_names(folder: Path, wnids: list[str]) -> list[str]:
    """The first synonym of each wnid in words.txt (the wnid itself where words.txt has no line for it)."""
    words = dict(line.split("\t", 1) for line in (folder / "words.txt").read_text().splitlines() if "\t" in line)
    return [words.get(wnid, wnid).split(",")[0].strip() for wnid in wnids]


def train_files(folder: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    """Paths and labels of the train images, class by class, in sorted file order."""
    paths: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        found = sorted((folder / "train" / wnid / "images").glob("*.JPEG"))
        if not found:
            raise FileNotFoundError(f"tinyimagenet: no images in {folder.resolve() / 'train' / wnid / 'images'}; "
                                    f"the folder is incomplete: unzip {URL} again")
        paths += found
        labels += [label] * len(found)
    return paths, labels


def val_files(folder: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    """Paths and labels of the official val images, from val/val_annotations.txt."""
    index = {wnid: label for label, wnid in enumerate(wnids)}
    paths: list[Path] = []
    labels: list[int] = []
    for line in (folder / "val" / "val_annotations.txt").read_text().splitlines():
        if not line.strip():
            continue
        name, wnid = line.split("\t")[:2]
        if wnid not in index:
            raise ValueError(f"tinyimagenet: val_annotations.txt labels {name} with {wnid}, which is not in wnids.txt")
        paths.append(folder / "val" / "images" / name)
        labels.append(index[wnid])
    absent = [path for path in paths if not path.is_file()]
    if absent:
        raise FileNotFoundError(f"tinyimagenet: {len(absent)} val images listed in val_annotations.txt are missing, "
                                f"e.g. {absent[0].resolve()}; unzip {URL} again")
    return paths, labels


def read_split(folder: Path, paths: list[Path], labels: list[int], desc: str) -> Split:
    """Decoded 64x64 RGB images, their labels, and their paths relative to `folder` as ids."""
    x = torch.from_numpy(cached_images(paths, (SIZE, SIZE), desc=desc))
    return Split(x, torch.tensor(labels, dtype=torch.int64), ids=path_ids(paths, folder))


def load_tinyimagenet(data: Path | None = None, download: bool = False) -> RawDataset:
    """Tiny ImageNet: 100,000 train and 10,000 test (official val) images, uint8 (N, 3, 64, 64), 200 classes."""
    folder = find_folder(LAYOUT, data, download)
    wnids = sorted(line.strip() for line in (folder / "wnids.txt").read_text().splitlines() if line.strip())
    train = read_split(folder, *train_files(folder, wnids), desc="tinyimagenet train")
    test = read_split(folder, *val_files(folder, wnids), desc="tinyimagenet val")
    mean, std = channel_stats(train.x)
    return RawDataset(train, test, class_names(folder, wnids), mean=mean, std=std, source=str(folder.resolve()))


# ResNet-18 as the reference code's config.py: SGD lr 0.2, weight decay 1e-4, batch 256, 200 epochs, x0.2 at 100 and
# 150; RandomCrop(64, padding=4) + flip as its data/vision/tinyimagenet.py.
DATASET = DatasetEntry(load_tinyimagenet, defaults=Defaults("resnet18", {"*": TrainConfig(
    epochs=200, batch_size=256, lr=0.2, momentum=0.9, weight_decay=1e-4, milestones=(100, 150), gamma=0.2,
    crop_padding=4)}))

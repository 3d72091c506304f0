"""ImageNet (ILSVRC-2012) read from its folders as distributed, preprocessed once into an image store and streamed.

ROOT (--data) holds train/<wnid>/*.JPEG (1000 WordNet-id folders, class k the k-th in sorted order, as torchvision
numbers them) and val/, either
- in class folders, val/<wnid>/*.JPEG (as torchvision's ImageNet and most preparation scripts leave it), or
- flat, val/ILSVRC2012_val_00000001.JPEG ..., labelled by LOC_val_solution.csv (Kaggle's ImageId,PredictionString;
  the label is the first wnid of the string; looked for in ROOT and up to three folders above it), or by the devkit's
  ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt (line i: the ILSVRC2012_ID of image i) with its
  meta.mat, which maps ILSVRC2012_IDs to wnids (in ROOT, or the devkit folder given as ROOT/ILSVRC2012_devkit_t12).
The official validation set (50 per class) is the test split; load_dataset halves it per class into DRoP's
validation and the reported test set, as for CIFAR. Sample ids: paths relative to ROOT ("train/n01440764/x.JPEG").

Images are decoded once (deep.data.store: worker processes, resumable, in $DROP_CACHE) with the shorter side resized
to image_size and the central image_size square kept (default 256, torchvision's Resize(256)); the model sees
crop x crop views of them, crop = round(image_size * 224 / 256) (224 by default): RandomResizedCrop + flip for
training, the centre crop for evaluation (torchvision's CenterCrop(224) of Resize(256)). Kept: the
central square of every image at the resolution its evaluation needs. Lost: the margins of non-square images outside
that square (RandomResizedCrop draws from the square, not from the whole photo) and detail above image_size pixels.
Normalisation: the published ImageNet mean and std that torchvision's recipe and the reference code use.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.files import location
from deep.data.images import ResizeCenterCrop, path_ids
from deep.data.registry import DatasetEntry, Defaults, Option
from deep.data.store import StoredImages, build_store
from deep.schedule import TrainConfig

SOURCE = "https://image-net.org/download (ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar, the devkit)"
WNID = re.compile(r"n\d{8}")
EXTENSIONS = (".jpeg", ".jpg", ".png")
SOLUTION = "LOC_val_solution.csv"
DEVKIT = "ILSVRC2012_devkit_t12"
GROUND_TRUTH = "data/ILSVRC2012_validation_ground_truth.txt"
MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation (the reference code's data/vision/imagenet.py)
STD = (0.229, 0.224, 0.225)


def crop_size(image_size: int) -> int:
    """The side of the model's input for stored images of side image_size: 224 for 256, in proportion otherwise."""
    return round(image_size * 224 / 256)


def _images(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted; hidden files skipped."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and not p.name.startswith("."))


def train_files(root: Path) -> tuple[list[str], list[Path], list[int]]:
    """The wnids (sorted), and the paths and labels of train/<wnid>/*.JPEG; ValueError for a mislabelled tree."""
    folder = root / "train"
    if not folder.is_dir():
        raise FileNotFoundError(f"imagenet: no folder {folder.resolve()}. Unpack ILSVRC2012_img_train.tar (and the "
                                f"per-class tars inside it) into ROOT/train/<wnid>/*.JPEG and pass --data ROOT; get it "
                                f"from {SOURCE}")
    wnids = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    wrong = [name for name in wnids if not WNID.fullmatch(name)]
    if wrong or not wnids:
        raise ValueError(f"imagenet: {folder.resolve()} must hold one folder per class named by its WordNet id "
                         f"(n01440764, ...); found {', '.join(wrong[:5]) or 'no folders'}")
    paths: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        found = _images(folder / wnid)
        if not found:
            raise ValueError(f"imagenet: {folder.resolve() / wnid} holds no images: the training set is partial; "
                             "unpack its tar again or remove the folder")
        paths += found
        labels += [label] * len(found)
    return wnids, paths, labels


def _solution_labels(root: Path) -> dict[str, str] | None:
    """Image name (no extension) -> wnid from LOC_val_solution.csv in ROOT or up to three folders above; None if absent."""
    for folder in [root, *root.resolve().parents][:4]:
        if (folder / SOLUTION).is_file():
            with (folder / SOLUTION).open(newline="") as file:
                rows = list(csv.DictReader(file))
            if rows and not {"ImageId", "PredictionString"} <= set(rows[0]):
                raise ValueError(f"imagenet: {folder / SOLUTION} needs the columns ImageId,PredictionString")
            return {row["ImageId"]: row["PredictionString"].split()[0] for row in rows}
    return None


def _devkit_labels(root: Path, names: list[str]) -> dict[str, str] | None:
    """Image name -> wnid from the devkit's ground truth and meta.mat; None when there is no devkit."""
    devkit = next((d for d in (root / DEVKIT, root) if (d / GROUND_TRUTH).is_file()), None)
    if devkit is None:
        return None
    from scipy.io import loadmat  # only the devkit's MATLAB file needs it

    synsets = loadmat(str(devkit / "data" / "meta.mat"), squeeze_me=True)["synsets"]
    wnid_of = {int(i): str(w) for i, w in zip(synsets["ILSVRC2012_ID"], synsets["WNID"])}
    ids = [int(line) for line in (devkit / GROUND_TRUTH).read_text().split()]
    # Image ILSVRC2012_val_<i>: line i of the ground truth (1-based).
    labels = {}
    for name in names:
        number = int(name.rsplit("_", 1)[-1])
        if not 1 <= number <= len(ids):
            raise ValueError(f"imagenet: {name} has no line in {devkit / GROUND_TRUTH} ({len(ids)} lines)")
        labels[name] = wnid_of[ids[number - 1]]
    return labels


def val_files(root: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    """Paths and labels of the official validation images, in class folders or flat with a ground truth."""
    folder = root / "val"
    if not folder.is_dir():
        raise FileNotFoundError(f"imagenet: no folder {folder.resolve()}: unpack ILSVRC2012_img_val.tar into ROOT/val")
    index = {wnid: label for label, wnid in enumerate(wnids)}
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders:
        unknown = [name for name in subfolders if name not in index]
        if unknown:
            raise ValueError(f"imagenet: {folder.resolve()} has class folders that train/ lacks: {', '.join(unknown[:5])}")
        paths = [path for name in subfolders for path in _images(folder / name)]
        return paths, [index[path.parent.name] for path in paths]
    paths = _images(folder)
    if not paths:
        raise FileNotFoundError(f"imagenet: {folder.resolve()} holds no images: unpack ILSVRC2012_img_val.tar into it")
    names = [path.stem for path in paths]
    labels = _solution_labels(root) or _devkit_labels(root, names)
    if labels is None:
        raise FileNotFoundError(f"imagenet: {folder.resolve()} is flat, so its labels are needed: put {SOLUTION} in "
                                f"{root.resolve()} or the devkit ({DEVKIT}/ with data/meta.mat and {GROUND_TRUTH}) "
                                "there, or sort the images into val/<wnid>/ folders")
    unlabelled = [name for name in names if name not in labels]
    if unlabelled:
        raise ValueError(f"imagenet: the ground truth has no label for {len(unlabelled)} validation images, e.g. "
                         f"{unlabelled[0]}: it does not belong to these images")
    absent = sorted(set(labels) - set(names)) if len(labels) > len(names) else []
    if absent:
        raise FileNotFoundError(f"imagenet: {len(absent)} validation images of the ground truth are missing from "
                                f"{folder.resolve()}, e.g. {absent[0]}: the validation set is partial; unpack it again")
    foreign = sorted({labels[name] for name in names} - set(index))
    if foreign:
        raise ValueError(f"imagenet: the validation ground truth names classes that train/ lacks: {', '.join(foreign[:5])}")
    return paths, [index[labels[name]] for name in names]


def load_imagenet(data: Path | None = None, download: bool = False, *, image_size: int = 256) -> RawDataset:
    """ImageNet as image stores of image_size x image_size uint8 images, seen as crop_size(image_size) crops."""
    if download:
        raise ValueError(f"imagenet cannot be downloaded here (it needs a login): get it from {SOURCE} and pass --data")
    root = location(data, "imagenet")
    wnids, train_paths, train_labels = train_files(root)
    val_paths, val_labels = val_files(root, wnids)
    transform = ResizeCenterCrop(image_size, image_size, keep_aspect=True)

    def split(paths: list[Path], labels: list[int], desc: str) -> Split:
        store = build_store(paths, (image_size, image_size), transform, desc=f"imagenet {desc}")
        return Split(StoredImages(store, crop=crop_size(image_size)), torch.tensor(labels, dtype=torch.int64), ids=path_ids(paths, root))

    return RawDataset(split(train_paths, train_labels, "train"), split(val_paths, val_labels, "val"), wnids,
                      mean=MEAN, std=STD, source=str(root.resolve()))


# The reference code's ResNet50 setting (OFF config.py:59-67): SGD lr 0.4, momentum 0.9, weight decay 1e-4, batch 512,
# 90 epochs, x0.2 (OFF trainer.py's gamma) at 30, 60 and 80; torchvision's ResNet-50 from scratch.
DATASET = DatasetEntry(load_imagenet, {
    "image_size": Option(int, 256, "side of the stored square images (shorter side resized to S, centre S x S kept); "
                                   "the model sees crops of side round(S * 224 / 256): 224 for 256", minimum=8),
}, defaults=Defaults("resnet50_imagenet", {"*": TrainConfig(
    90, 512, 0.4, momentum=0.9, weight_decay=1e-4, milestones=(30, 60, 80), gamma=0.2)}))

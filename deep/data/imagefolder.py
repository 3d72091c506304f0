"""Any image dataset in torchvision's ImageFolder layout: ROOT/train/<class>/..., optional ROOT/val/<class>/...
and ROOT/test/<class>/....

Classes: the folders of train/ in sorted order, class k the k-th (as torchvision's ImageFolder numbers them;
hidden folders such as .ipynb_checkpoints are skipped). Images: every file under a class folder, recursively,
whose extension PIL can open (.png, .jpg, .jpeg, .bmp, .gif, .tif, .webp, ...), in sorted order; other files
are ignored. Each is decoded to RGB; with image_size S > 0 the shorter side is resized to S and the central S x S
crop kept (torchvision's Resize(S) + CenterCrop(S)); with 0 (the default) every image must have the first one's
size. On the command line: --imagefolder-image-size S.
Splits: with both val/ and test/, val is the official validation split; with one of them, it is the test split,
which load_dataset halves into validation and reported test; with neither, the fixed stratified 70/30 holdout
of train (as for npz). Sample ids: the path relative to ROOT, e.g. "train/cat/001.png". Decoded pixels are
cached (deep.data.image_cache), so only the first load decodes. With --stream ($DROP_STREAM=1) the pixels are
decoded by worker processes into an image store (deep.data.store) and read a batch at a time, never held in memory:
for folders larger than memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from deep.data.base import RawDataset, Split
from deep.data.files import location
from deep.data.images import ImageSizeError, ResizeCenterCrop, decode, path_ids
from deep.data.registry import CPU_DEFAULTS, DatasetEntry, Defaults, Option, option_flag
from deep.data.splits import holdout
from deep.data.store import image_rows, image_stats

SPLITS = ("train", "val", "test")


def image_extensions() -> frozenset[str]:
    """Lower-case file extensions of the formats PIL can open."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def class_folders(folder: Path) -> list[str]:
    """The visible sub-folders of `folder`, sorted; ValueError when two of them are one folder (a link to another)."""
    names = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))
    first: dict[str, str] = {}
    for name in names:
        real = os.path.realpath(folder / name)
        if real in first:
            raise ValueError(f"imagefolder: the class folders {folder / first[real]} and {folder / name} are one "
                             f"folder ({real}); two classes cannot share images: remove the link")
        first[real] = name
    return names


def image_files(folder: Path, extensions: frozenset[str], earlier: dict[str, str] | None = None) -> list[str]:
    """Image files under `folder`, recursively, in sorted order, hidden files skipped. Links are followed once per
    real path: a link to a folder above it (a cycle) is a ValueError naming the link, and a folder or file reached
    twice is listed once. `earlier` maps the real path of every file other folders listed to its path (updated
    here): a file of theirs reached again is a ValueError naming both, as it would be in two classes or splits."""
    earlier = {} if earlier is None else earlier
    seen: dict[str, str] = {}
    visited: set[str] = set()
    found: list[str] = []

    def walk(path: str, above: frozenset[str]) -> None:
        real = os.path.realpath(path)
        if real in above:
            raise ValueError(f"imagefolder: {path} is a link to the folder {real} that contains it, a cycle; "
                             "remove the link")
        if real in visited:
            return
        visited.add(real)
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            if entry.is_dir():
                walk(entry.path, above | {real})
            elif not entry.name.startswith(".") and os.path.splitext(entry.name)[1].lower() in extensions:
                real_file = os.path.realpath(entry.path)
                if real_file in earlier:
                    raise ValueError(f"imagefolder: {entry.path} is the file {earlier[real_file]} again (through a "
                                     "link); a file belongs to one class of one split: remove the link or the copy")
                if entry.is_file() and real_file not in seen:
                    seen[real_file] = entry.path
                    found.append(entry.path)

    # A link to any folder above `folder` (its class or split folder included) leads back into it: a cycle.
    walk(os.fspath(folder), frozenset(map(str, Path(folder).resolve().parents)))
    earlier.update(seen)
    return found


def list_split(root: Path, split: str, classes: list[str],
               seen: dict[str, str] | None = None) -> tuple[list[str], list[int]]:
    """Paths and labels of ROOT/split/<class>/... for the train classes `classes`; a file reached from two class
    folders or splits (through links; `seen` holds the files of earlier splits) is a ValueError naming both."""
    index = {name: label for label, name in enumerate(classes)}
    folders = class_folders(root / split)
    unknown = [name for name in folders if name not in index]
    if unknown:
        raise ValueError(f"imagefolder: {root / split} has class folders that train/ lacks: {', '.join(unknown[:5])}; "
                         "every class needs training images")
    extensions = image_extensions()
    paths: list[str] = []
    labels: list[int] = []
    for name in folders:
        found = image_files(root / split / name, extensions, seen)
        if split == "train" and not found:
            raise ValueError(f"imagefolder: {root / split / name} holds no image files PIL can read "
                             f"(extensions {', '.join(sorted(extensions)[:8])}, ...); add images or remove the folder")
        paths += found
        labels += [index[name]] * len(found)
    return paths, labels


def load_imagefolder(data: Path | None = None, download: bool = False, *, image_size: int = 0) -> RawDataset:
    """Images uint8 (N, 3, H, W) from an ImageFolder tree (see the module docstring), classes = train/ folders."""
    root = location(data, "imagefolder")
    if download:
        raise ValueError("imagefolder reads your own folder and has nothing to download: drop --download")
    if not (root / "train").is_dir():
        raise FileNotFoundError(f"imagefolder: no folder {(root / 'train').resolve()}. Arrange your images as "
                                "ROOT/train/<class>/<image>, optionally ROOT/val/<class>/... and ROOT/test/<class>/..., "
                                "and pass --data ROOT")
    classes = class_folders(root / "train")
    if not classes:
        raise ValueError(f"imagefolder: {(root / 'train').resolve()} has no class folders; "
                         "put each class's images in train/<class>/")
    seen: dict[str, str] = {}  # real path of every image listed -> its path, across classes and splits
    listed = {split: list_split(root, split, classes, seen) for split in SPLITS if (root / split).is_dir()}
    if not image_size:
        width, height = decode(listed["train"][0][0]).size  # every other image must have this size too
        shape, transform = (height, width), None
    else:
        shape, transform = (image_size, image_size), ResizeCenterCrop(image_size, image_size, keep_aspect=True)

    def read(split: str) -> Split:
        paths, labels = listed[split]
        try:
            x = image_rows(paths, shape, transform, desc=f"imagefolder {split}")
        except ImageSizeError as error:
            raise ImageSizeError(f"imagefolder: {error}, the size of {listed['train'][0][0]}; give every image one "
                                 f"size, or pass {option_flag('imagefolder', 'image_size')} S to resize them") from error
        return Split(x, torch.tensor(labels, dtype=torch.int64), ids=path_ids(paths, root))

    train = read("train")
    given = [split for split in ("val", "test") if split in listed]
    if len(given) == 2:
        val, test = read("val"), read("test")
    elif given:
        val, test = None, read(given[0])
    else:
        (train, test), val = holdout(train), None
    mean, std = image_stats(train.x)
    return RawDataset(train, test, classes, mean=mean, std=std, val=val, source=str(root.resolve()))


# Nothing is known of a user's images: the defaults are the CPU-sized ones of debug_images (the cnn, which takes
# any image size; Laplace-smoothed recalls, as the validation half may be small); flags override each.
DATASET = DatasetEntry(load_imagefolder, {
    "image_size": Option(int, 0, "resize the shorter side to S pixels and crop the central S x S square "
                                 "(torchvision's Resize + CenterCrop); 0 keeps the images' own size, which must "
                                 "then be the same for all", minimum=0),
}, defaults=Defaults("cnn", CPU_DEFAULTS.train, recall_prior=1.0))

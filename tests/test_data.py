"""Dataset loaders, each on small files that the tests write in the real on-disk format."""

from __future__ import annotations

import csv
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deep._torchvision import import_torchvision
from deep.data import DATASETS, DatasetEntry, RawDataset, load_dataset, option_flag
from deep.data import files
from deep.data.cifar import CIFAR10, CIFAR100
from deep.data.images import ResizeCenterCrop, channel_stats
from deep.data.splits import HOLDOUT_TEST_FRACTION
from deep.data.store import StoredImages, image_stats, streamed
from deep.data.waterbirds import load_waterbirds
from tests.test_imagenet import write_imagenet, write_imagenet64

RNG = np.random.default_rng(0)


# ---- writers of the real formats ----

def write_cifar(root: Path, name: str, per_class_train: int = 6, per_class_test: int = 4) -> Path:
    """A cifar-10-batches-py or cifar-100-python folder with the real file names and dict keys."""
    fmt = {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]
    num_classes = 10 if name == "cifar10" else 100
    folder = root / fmt.folder
    folder.mkdir(parents=True)

    def batch(labels: np.ndarray, label: str) -> dict:
        data = RNG.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        data[:, 1024 + 32 + 1] = labels  # green channel, pixel (1, 1) holds the label, to check the reshape
        content = {b"batch_label": label.encode(), b"data": data,
                   b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
        if name == "cifar10":
            content[b"labels"] = labels.tolist()
        else:
            content[b"fine_labels"] = labels.tolist()
            content[b"coarse_labels"] = (labels // 5).tolist()
        return content

    train_labels = RNG.permutation(np.repeat(np.arange(num_classes), per_class_train))
    parts = np.array_split(train_labels, len(fmt.train_files))
    for file_name, labels in zip(fmt.train_files, parts):
        (folder / file_name).write_bytes(pickle.dumps(batch(labels, f"training batch {file_name}"), protocol=2))
    test_labels = RNG.permutation(np.repeat(np.arange(num_classes), per_class_test))
    (folder / fmt.test_file).write_bytes(pickle.dumps(batch(test_labels, "testing batch 1 of 1"), protocol=2))
    names = [f"class_{k}".encode() for k in range(num_classes)]
    meta = ({b"label_names": names, b"num_cases_per_batch": 10000, b"num_vis": 3072} if name == "cifar10"
            else {b"fine_label_names": names, b"coarse_label_names": [f"super_{k}".encode() for k in range(20)]})
    (folder / fmt.meta_file).write_bytes(pickle.dumps(meta, protocol=2))
    return root


TINY_WNIDS = ["n09999999", "n01443537", "n02000000"]  # deliberately unsorted, as in the real wnids.txt
COLORS = [(220, 30, 30), (30, 220, 30), (30, 30, 220)]  # per sorted class index


def write_jpeg(path: Path, color: tuple[int, int, int], size: tuple[int, int], mode: str = "RGB") -> None:
    """A solid-colour JPEG (converted to `mode`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).convert(mode).save(path, "JPEG", quality=95)


def write_tinyimagenet(root: Path, n_train: int = 4, n_val: int = 2) -> Path:
    """A tiny-imagenet-200 tree as distributed: wnids.txt, words.txt, train/<wnid>/images, val annotations."""
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    words = {"n01443537": "goldfish, Carassius auratus", "n02000000": "heron", "n09999999": "bubble",
             "n00000001": "entity"}
    (folder / "words.txt").write_text("".join(f"{w}\t{text}\n" for w, text in words.items()))
    for label, wnid in enumerate(sorted(TINY_WNIDS)):
        for i in range(n_train):
            mode = "L" if (label, i) == (0, 0) else "RGB"  # the real set has some greyscale JPEGs
            write_jpeg(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", COLORS[label], (64, 64), mode)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    lines = []
    for i in range(n_val * len(TINY_WNIDS)):
        label = i % len(TINY_WNIDS)
        wnid = sorted(TINY_WNIDS)[label]
        write_jpeg(folder / "val" / "images" / f"val_{i}.JPEG", COLORS[label], (64, 64))
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t3\t60\t55")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def write_waterbirds(root: Path, per_group_split: int = 2) -> Path:
    """A waterbirds folder: metadata.csv (img_id, img_filename, y, split, place, place_filename) and JPEGs."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for split in (0, 1, 2):
        for y in (0, 1):
            for place in (0, 1):
                for _ in range(per_group_split):
                    img_id = len(rows) + 1
                    name = f"{100 + y:03d}.Bird_{y}/Bird_{y}_{img_id:04d}.jpg"
                    write_jpeg(root / name, COLORS[2 * place], (48 + img_id, 40))
                    rows.append({"img_id": img_id, "img_filename": name, "y": y, "split": split, "place": place,
                                 "place_filename": f"/x/place_{place}.jpg"})
    with (root / "metadata.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def write_imagefolder(root: Path, per_class: int = 3) -> Path:
    """A torchvision ImageFolder tree: train/<class>/*.png and test/<class>/*.png, one solid colour per class."""
    for split, count in (("train", per_class), ("test", 2)):
        for label, name in enumerate(["red", "green", "blue"]):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (12, 12), COLORS[label]).save(root / split / name / f"{i}.png")
    return root


def write_npz(path: Path, n: int = 60, images: bool = False, **extra: np.ndarray) -> Path:
    """An .npz with X, y (3 classes) and whatever `extra` arrays are given."""
    x = RNG.integers(0, 256, size=(n, 3, 5, 5), dtype=np.uint8) if images else RNG.normal(size=(n, 4))
    np.savez(path, X=x, y=np.arange(n) % 3, **extra)
    return path


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """An IDX file of unsigned bytes (magic 0x0000080D, D = array.ndim), gzipped as path.gz when gz."""
    content = bytes((0, 0, 0x08, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


def write_mnist(folder: Path, per_class_train: int = 3, per_class_test: int = 2, gz: bool = False) -> Path:
    """The four MNIST IDX files in `folder`; pixel (0, 0) of each 28x28 image holds its label."""
    for prefix, per_class in (("train", per_class_train), ("t10k", per_class_test)):
        labels = RNG.permutation(np.repeat(np.arange(10), per_class))
        images = RNG.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return folder


# Options that keep generated datasets small in the registry-wide tests.
FIXTURE_OPTIONS: dict[str, dict[str, object]] = {"mnist1d": {"samples": 1000}, "imagenet": {"image_size": 16}}


def fixture_path(name: str, tmp_path: Path) -> Path | None:
    """Data for registry entry `name` written under tmp_path (None for in-memory datasets)."""
    writers = {
        "mnist": lambda: write_mnist(tmp_path / "mnist"),
        # The folder for its cache, never the default ./data; one per test session (the folder above each test's
        # own), so that the default 20,000 samples are generated once (10 s), not by every test that loads them.
        "mnist1d": lambda: tmp_path.parent / "mnist1d",
        "cifar10": lambda: write_cifar(tmp_path, "cifar10"),
        "cifar100": lambda: write_cifar(tmp_path, "cifar100", per_class_train=2, per_class_test=2),
        "tinyimagenet": lambda: write_tinyimagenet(tmp_path),
        "waterbirds": lambda: write_waterbirds(tmp_path / "wb", per_group_split=1),
        "npz": lambda: write_npz(tmp_path / "data.npz", group=np.arange(60) % 2),
        "imagefolder": lambda: write_imagefolder(tmp_path / "folder"),
        "imagenet": lambda: write_imagenet(tmp_path / "imagenet", "csv", train=2, val=2),
        "imagenet64": lambda: write_imagenet64(tmp_path / "imagenet64"),
    }
    return writers[name]() if name in writers else None


# ---- the registry as a whole ----

@pytest.mark.parametrize("name", list(DATASETS))
def test_every_registered_loader_returns_consistent_data(name: str, tmp_path: Path) -> None:
    raw: RawDataset = DATASETS[name](fixture_path(name, tmp_path), False, **FIXTURE_OPTIONS.get(name, {}))
    image = raw.train.x.dim() == 4
    for split in (raw.train, raw.test) + (() if raw.val is None else (raw.val,)):
        assert split.x.dtype == (torch.uint8 if image else torch.float32)
        assert split.x.dim() in (2, 4) and split.x.shape[1:] == raw.train.x.shape[1:]
        assert split.y.dtype == torch.int64 and 0 <= int(split.y.min()) and int(split.y.max()) < len(raw.classes)
        if raw.group_names is not None:
            assert split.group is not None and int(split.group.max()) < len(raw.group_names)
    assert (raw.mean is not None) == (raw.std is not None) and (raw.mean is not None or not image)
    if raw.mean is not None:  # per channel for images, per feature for vectors, or one value for all
        assert len(raw.mean) == len(raw.std) and len(raw.mean) in (1, raw.train.x.shape[1])
    assert isinstance(raw.source, str) and raw.source


@pytest.mark.parametrize("name", list(DATASETS))
def test_load_dataset_derives_val_and_test_for_every_entry(name: str, tmp_path: Path) -> None:
    data = load_dataset(name, fixture_path(name, tmp_path), options=FIXTURE_OPTIONS.get(name), seed=1)
    assert data.info["name"] == name and data.info["seed"] == 1
    assert data.info["options"] == DATASETS[name].resolve(name, FIXTURE_OPTIONS.get(name))
    assert data.info["sizes"] == {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
    assert len(data.val) > 0 and len(data.test) >= len(data.val) // 2
    assert sum(data.info["train_class_counts"]) == len(data.train)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_entry_declares_options_with_valid_flags_and_defaults(name: str) -> None:
    entry = DATASETS[name]
    assert isinstance(entry, DatasetEntry)
    for option_name, option in entry.options.items():
        flag = option_flag(name, option_name)
        assert flag.startswith(f"--{name.replace('_', '-')}-") and " " not in flag and option.help
        assert option.check(flag, option.default) == option.default  # the default passes its own checks
    assert entry.resolve(name, None) == {key: option.default for key, option in entry.options.items()}


def test_option_flags_are_distinct_across_datasets() -> None:
    flags = [option_flag(name, key) for name, entry in DATASETS.items() for key in entry.options]
    assert "--mnist1d-samples" in flags and len(flags) == len(set(flags))


def test_unknown_or_bad_options_are_refused_naming_the_flag() -> None:
    with pytest.raises(ValueError, match="'digits' has no option 'samples'; its options: none"):
        load_dataset("digits", options={"samples": 5})
    with pytest.raises(ValueError, match="no option 'sample'; its options: samples"):
        load_dataset("mnist1d", options={"sample": 5})
    for value, message in ((10, "--mnist1d-samples must be at least 1000"), ("many", "must be an integer"),
                           (True, "must be an integer"), (2000.5, "must be an integer")):
        with pytest.raises(ValueError, match=message):
            load_dataset("mnist1d", options={"samples": value})


def test_unknown_dataset_lists_the_names() -> None:
    with pytest.raises(ValueError, match="cifar10.*tinyimagenet.*waterbirds"):
        load_dataset("cifar-10")


# ---- digits and debug ----

def test_digits_is_real_sklearn_data_with_fixed_stratified_holdout() -> None:
    raw = DATASETS["digits"](None, False)
    assert raw.classes == [str(k) for k in range(10)]
    assert raw.train.x.shape == (1262, 64) and raw.test.x.shape == (535, 64)
    assert float(raw.train.x.min()) == 0.0 and float(raw.train.x.max()) == 1.0
    sizes = torch.bincount(torch.cat([raw.train.y, raw.test.y]), minlength=10)
    expected_test = torch.floor(sizes * HOLDOUT_TEST_FRACTION + 1e-9).long()
    assert torch.equal(torch.bincount(raw.test.y, minlength=10), expected_test)
    again = DATASETS["digits"](None, False)
    assert torch.equal(again.test.x, raw.test.x)  # the holdout does not depend on anything random at run time


def test_digits_refuses_a_data_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="npz"):
        load_dataset("digits", tmp_path)


def test_debug_sets_have_groups_and_the_promised_shapes() -> None:
    features, images = DATASETS["debug"](None, False), DATASETS["debug_images"](None, False)
    assert features.train.x.shape == (200, 10) and features.test.x.shape == (200, 10)
    assert images.train.x.shape == (200, 3, 8, 8) and images.train.x.dtype == torch.uint8
    assert features.group_names is not None and len(features.group_names) == 6
    counts = torch.bincount(features.train.group, minlength=6)
    assert int(counts.min()) < int(counts.max()) // 2  # the attribute is correlated with y: minority groups exist


# ---- CIFAR ----

@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reads_real_batch_layout(name: str, tmp_path: Path) -> None:
    num_classes = 10 if name == "cifar10" else 100
    raw = DATASETS[name](write_cifar(tmp_path, name, per_class_train=5, per_class_test=2), False)
    assert raw.train.x.shape == (5 * num_classes, 3, 32, 32) and raw.test.x.shape == (2 * num_classes, 3, 32, 32)
    assert raw.classes == [f"class_{k}" for k in range(num_classes)]
    # pixel (1, 1) of the green channel was written as the label: checks the (N, 3, 32, 32) reshape
    assert torch.equal(raw.train.x[:, 1, 1, 1].long(), raw.train.y)
    assert torch.equal(torch.bincount(raw.train.y), torch.full((num_classes,), 5))
    mean, std = channel_stats(raw.train.x)
    assert raw.mean == pytest.approx(mean) and raw.std == pytest.approx(std)


def test_cifar_accepts_the_batches_folder_itself(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10")
    raw = DATASETS["cifar10"](tmp_path / "cifar-10-batches-py", False)
    assert len(raw.train) == 60


def test_missing_cifar_says_where_to_put_which_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("cifar10", tmp_path / "nowhere")
    message = str(error.value)
    assert str((tmp_path / "nowhere" / "cifar-10-batches-py").resolve()) in message
    assert "data_batch_1" in message and "batches.meta" in message and "--download" in message


def test_incomplete_cifar_names_the_missing_file(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete.*data_batch_3"):
        load_dataset("cifar10", tmp_path)


def test_default_location_is_default_root_slash_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "DEFAULT_ROOT", tmp_path)
    write_cifar(tmp_path / "cifar100", "cifar100", per_class_train=1, per_class_test=2)
    assert load_dataset("cifar100").info["path"] == str((tmp_path / "cifar100" / "cifar-100-python").resolve())


def test_download_only_when_asked_and_with_the_standard_archive(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, str | None]] = []

    def fake_download(url: str, download_root: str, md5: str | None = None) -> None:
        calls.append((url, download_root, md5))
        write_cifar(Path(download_root), "cifar10")

    monkeypatch.setattr(import_torchvision().datasets.utils, "download_and_extract_archive", fake_download)
    with pytest.raises(FileNotFoundError):
        load_dataset("cifar10", tmp_path / "c10")
    assert calls == []
    data = load_dataset("cifar10", tmp_path / "c10", download=True)
    assert calls == [(CIFAR10.archive.url, str(tmp_path / "c10"), "c58f30108f718f92721af3b95e74349a")]
    assert len(data.train) == 60
    load_dataset("cifar10", tmp_path / "c10", download=True)
    assert len(calls) == 1  # present already: nothing fetched


# ---- Tiny ImageNet ----

def test_tinyimagenet_reads_the_distributed_tree(tmp_path: Path) -> None:
    raw = DATASETS["tinyimagenet"](write_tinyimagenet(tmp_path, n_train=4, n_val=2), False)
    assert raw.train.x.shape == (12, 3, 64, 64) and raw.test.x.shape == (6, 3, 64, 64)
    assert raw.classes == ["goldfish", "heron", "bubble"]  # sorted wnids, first synonym
    for split in (raw.train, raw.test):
        colours = split.x.float().mean(dim=(2, 3))
        expected = torch.tensor(COLORS, dtype=torch.float32)[split.y]
        # label k must carry colour k (the greyscale image keeps only its luminance)
        rgb = split.x[:, 0] != split.x[:, 1]
        assert torch.allclose(colours[rgb.any(dim=(1, 2))], expected[rgb.any(dim=(1, 2))], atol=6)


def test_tinyimagenet_missing_val_image_is_reported(tmp_path: Path) -> None:
    write_tinyimagenet(tmp_path)
    (tmp_path / "tiny-imagenet-200" / "val" / "images" / "val_1.JPEG").unlink()
    with pytest.raises(FileNotFoundError, match="val_1.JPEG"):
        DATASETS["tinyimagenet"](tmp_path, False)


def test_tinyimagenet_incomplete_folder_says_what_is_missing(tmp_path: Path) -> None:
    write_tinyimagenet(tmp_path)
    (tmp_path / "tiny-imagenet-200" / "val" / "val_annotations.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val/val_annotations.txt.*tiny-imagenet-200.zip"):
        DATASETS["tinyimagenet"](tmp_path, False)


# ---- Waterbirds ----

def test_waterbirds_groups_official_splits_and_resize_policy(tmp_path: Path) -> None:
    raw = load_waterbirds(write_waterbirds(tmp_path, per_group_split=3), image_size=16)
    assert raw.train.x.shape == (12, 3, 16, 16) and raw.val is not None and len(raw.val) == 12 and len(raw.test) == 12
    assert raw.group_names == ["landbird/land", "landbird/water", "waterbird/land", "waterbird/water"]
    for split in (raw.train, raw.val, raw.test):
        assert torch.equal(torch.bincount(split.group, minlength=4), torch.full((4,), 3))
        assert torch.equal(split.group // 2, split.y)
        place = split.group % 2
        red = split.x[:, 0].float().mean(dim=(1, 2))
        assert torch.all((red > 128) == (place == 0))  # land images were written red, water ones blue
    data = load_dataset("waterbirds", tmp_path, seed=5)
    assert data.info["official_val"] and len(data.val) == 12 and len(data.test) == 12
    assert data.input_shape == (3, 224, 224)


def test_resize_center_crop_drops_the_border() -> None:
    image = Image.new("RGB", (256, 256), (0, 0, 0))
    image.paste((255, 255, 255), (16, 16, 240, 240))
    cropped = ResizeCenterCrop(224, 256)(image)
    assert cropped.size == (224, 224) and np.asarray(cropped).min() == 255


def test_waterbirds_streams_at_224_pixels_with_the_same_pixels_and_constants(tmp_path: Path) -> None:
    root = write_waterbirds(tmp_path / "wb", per_group_split=1)
    held = load_waterbirds(root)
    with streamed(True):
        stored = load_waterbirds(root)
    assert isinstance(stored.train.x, StoredImages) and stored.train.x.shape == (4, 3, 224, 224)
    for a, b in ((held.train, stored.train), (held.val, stored.val), (held.test, stored.test)):
        assert torch.equal(a.x, b.x.load()) and torch.equal(a.group, b.group)
    assert (held.mean, held.std) == (stored.mean, stored.std)
    assert (held.mean, held.std) == image_stats(stored.train.x)  # read back from the counts kept beside the store


def test_waterbirds_bad_metadata(tmp_path: Path) -> None:
    write_waterbirds(tmp_path)
    (tmp_path / "metadata.csv").write_text("img_filename,y\na.jpg,0\n")
    with pytest.raises(ValueError, match="split"):
        DATASETS["waterbirds"](tmp_path, False)


# ---- npz ----

def test_npz_features_with_split_strings_groups_and_names(tmp_path: Path) -> None:
    split = np.where(np.arange(60) < 40, "train", "test")
    path = write_npz(tmp_path / "mine.npz", group=np.arange(60) % 2, split=split,
                     classes=np.array(["a", "b", "c"]), group_names=np.array(["g0", "g1"]))
    raw = DATASETS["npz"](path, False)
    assert raw.train.x.shape == (40, 4) and raw.train.x.dtype == torch.float32 and len(raw.test) == 20
    assert raw.classes == ["a", "b", "c"] and raw.group_names == ["g0", "g1"] and raw.mean is None
    assert torch.equal(raw.train.group, torch.arange(40) % 2)


def test_npz_images_from_a_folder_with_integer_split(tmp_path: Path) -> None:
    write_npz(tmp_path / "data.npz", images=True, split=(np.arange(60) >= 45).astype(np.int64))
    raw = DATASETS["npz"](tmp_path, False)
    assert raw.train.x.shape == (45, 3, 5, 5) and raw.train.x.dtype == torch.uint8
    assert raw.classes == ["0", "1", "2"] and raw.mean is not None and len(raw.std) == 3


def test_npz_without_split_uses_the_stratified_holdout(tmp_path: Path) -> None:
    raw = DATASETS["npz"](write_npz(tmp_path / "d.npz", n=90), False)
    assert torch.equal(torch.bincount(raw.test.y), torch.full((3,), 9))  # floor(0.3 * 30) per class


BAD_NPZ = [
    (dict(X=np.zeros((10, 4)), y=np.zeros(9, dtype=int)), r"'y' has shape \(9,\); expected \(10,\)"),
    (dict(X=np.zeros((10, 4)), y=np.full(10, 0.5)), "non-integer"),
    (dict(X=np.zeros((10, 4)), y=-np.ones(10, dtype=int)), "negative"),
    (dict(X=np.zeros((10, 4, 4)), y=np.zeros(10, dtype=int)), r"expected uint8 images \(N, C, H, W\)"),
    (dict(X=np.zeros((10, 3, 4, 4)), y=np.zeros(10, dtype=int)), r"or numeric features \(N, D\)"),
    (dict(X=np.zeros((10, 4, 4, 3), dtype=np.uint8), y=np.zeros(10, dtype=int)), "transpose"),
    (dict(X=np.full((10, 4), np.nan), y=np.zeros(10, dtype=int)), "NaN"),
    (dict(features=np.zeros((10, 4)), y=np.zeros(10, dtype=int)), r"lacks \['X'\]"),
    (dict(X=np.zeros((10, 4)), y=np.zeros(10, dtype=int), split=np.array(["train"] * 9 + ["dev"])), "dev"),
    (dict(X=np.zeros((10, 4)), y=np.zeros(10, dtype=int), split=np.zeros(10, dtype=int)), "test with 0"),
    (dict(X=np.zeros((10, 4)), y=np.arange(10) % 3, classes=np.array(["a", "b"])), "expected 3 names"),
    (dict(X=np.zeros((10, 4)), y=np.zeros(10, dtype=int), group=np.array([None] * 10)), "object arrays"),
]


@pytest.mark.parametrize(("arrays", "message"), BAD_NPZ)
def test_npz_bad_input_says_what_is_wrong(arrays: dict[str, np.ndarray], message: str, tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        DATASETS["npz"](tmp_path / "bad.npz", False)


def test_npz_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="np.savez"):
        load_dataset("npz", tmp_path / "absent.npz")


def _wine(mean: bool = True) -> RawDataset:
    """scikit-learn's wine data (178 rows, 13 features on scales from 0.1 to 1,000): tabular, per-feature stats."""
    from sklearn.datasets import load_wine

    from deep.data.base import Split, feature_stats
    from deep.data.splits import holdout

    x, y = load_wine(return_X_y=True)
    train, test = holdout(Split(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y), ids=np.arange(len(y))))
    stats = feature_stats(train.x) if mean else ((0.0,) * 12, (1.0,) * 12)
    return RawDataset(train, test, ["0", "1", "2"], mean=stats[0], std=stats[1], source="sklearn load_wine")


def test_tabular_data_carry_per_feature_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    from deep.train import InputPipeline

    monkeypatch.setitem(DATASETS, "wine", DatasetEntry(lambda data, download: _wine()))
    data = load_dataset("wine")
    assert len(data.normalization[0]) == 13 and data.train.x[:, 12].max() > 100  # stored raw
    x = InputPipeline(data.normalization, torch.device("cpu"))(data.train.x).double()
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(0, correction=0), 1, atol=1e-5)
    monkeypatch.setitem(DATASETS, "wine", DatasetEntry(lambda data, download: _wine(mean=False)))
    with pytest.raises(ValueError, match="12 normalisation mean values for 13 features"):
        load_dataset("wine")

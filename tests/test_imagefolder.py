"""--dataset imagefolder: torchvision's ImageFolder layout, read from PNG and JPEG trees the tests write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deep.data import DATASETS, load_dataset
from deep.data import images as images_module
from deep.data import imagefolder
from deep.data.imagefolder import load_imagefolder

# Class folders in an order that is not sorted, with the colour each class's images are drawn in.
CLASSES = {"zebra": (200, 40, 40), "ant": (40, 200, 40), "moth": (40, 40, 200)}


def write_tree(root: Path, splits: dict[str, int], size: tuple[int, int] = (10, 10)) -> Path:
    """root/<split>/<class>/<i>.png with `count` images per class, one solid colour per class; one JPEG per split."""
    for split, count in splits.items():
        for name, colour in CLASSES.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", size, colour).save(folder / f"{i}.png")
        Image.new("RGB", size, CLASSES["moth"]).save(root / split / "moth" / "nested.jpeg", quality=95)
    return root


def test_classes_labels_pixels_and_ids_follow_the_folders(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"train": 3, "test": 2})
    (root / "train" / "ant" / "notes.txt").write_text("not an image: ignored")
    (root / "train" / ".ipynb_checkpoints").mkdir()  # a hidden folder is no class
    Image.new("L", (10, 10), 90).save(root / "train" / "ant" / "grey.png")  # greyscale becomes 3 equal channels
    raw = load_imagefolder(root)
    assert raw.classes == ["ant", "moth", "zebra"]  # sorted, as torchvision numbers them
    assert raw.train.x.shape == (3 + 1 + 4 + 3, 3, 10, 10) and raw.train.x.dtype == torch.uint8
    ids = raw.train.ids.tolist()
    assert ids[:5] == ["train/ant/0.png", "train/ant/1.png", "train/ant/2.png", "train/ant/grey.png", "train/moth/0.png"]
    assert "train/moth/nested.jpeg" in ids and len(raw.test) == 3 * 2 + 1
    for split in (raw.train, raw.test):
        for row, key in enumerate(split.ids.tolist()):
            name = key.split("/")[1]
            assert int(split.y[row]) == raw.classes.index(name)
            expected = (90, 90, 90) if key.endswith("grey.png") else CLASSES[name]
            assert torch.allclose(split.x[row].float().mean((1, 2)), torch.tensor(expected, dtype=torch.float32),
                                  atol=3), key  # the JPEG is lossy
    assert raw.mean is not None and raw.val is None


def test_image_size_resizes_the_shorter_side_and_crops_the_centre(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    image = Image.new("RGB", (30, 20), (0, 0, 0))
    image.paste((255, 255, 255), (5, 0, 25, 20))  # a white 20x20 centre between black 5-pixel margins
    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                image.save(root / split / name / f"wide{i}.png")
    data = load_dataset("imagefolder", root, options={"image_size": 8})
    assert data.input_shape == (3, 8, 8) and data.info["options"] == {"image_size": 8}
    assert int(data.train.x.min()) > 200  # the black margins fell outside the central crop


def test_mixed_sizes_without_image_size_name_the_file_and_the_flag(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"train": 2})
    Image.new("RGB", (12, 10), (0, 0, 0)).save(root / "train" / "zebra" / "odd.png")
    with pytest.raises(ValueError, match=r"odd\.png is 12x10 pixels .*expected 10x10, the size of .*--imagefolder-image-size S"):
        load_imagefolder(root)
    assert load_imagefolder(root, image_size=10).train.x.shape[1:] == (3, 10, 10)


@pytest.mark.parametrize(("splits", "official_val", "sizes"), [
    ({"train": 4, "val": 2, "test": 2}, True, (3 * 4 + 1, 3 * 2 + 1, 3 * 2 + 1)),
    ({"train": 4, "val": 4}, False, (3 * 4 + 1, 6, 7)),  # val/ alone is the test split, halved per class
    ({"train": 10}, False, (3 * 7 + 1, 3 * 1, 3 * 2)),  # neither: the 70/30 holdout (3 of 10 or 11), halved
])
def test_splits_from_val_and_test_folders(tmp_path: Path, splits: dict[str, int], official_val: bool,
                                          sizes: tuple[int, int, int]) -> None:
    data = load_dataset("imagefolder", write_tree(tmp_path, splits))
    assert data.info["official_val"] == official_val
    assert (len(data.train), len(data.val), len(data.test)) == sizes
    assert not set(data.train.ids.tolist()) & (set(data.val.ids.tolist()) | set(data.test.ids.tolist()))


def test_second_load_decodes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tree(tmp_path, {"train": 2, "test": 1})
    first = load_imagefolder(root)
    decoded: list[Path] = []
    original = images_module.decode

    def counting(path: Path, transform: object = None) -> Image.Image:
        decoded.append(path)
        return original(path, transform)

    for module in (images_module, imagefolder):
        monkeypatch.setattr(module, "decode", counting)
    second = load_imagefolder(root)
    # Only the first train image is opened, for its size; no split is decoded.
    assert [Path(path) for path in decoded] == [root / "train" / "ant" / "0.png"]
    assert torch.equal(first.train.x, second.train.x) and torch.equal(first.test.x, second.test.x)


@pytest.mark.parametrize(("change", "error", "match"), [
    ("no_train", FileNotFoundError, r"ROOT/train/<class>"),
    ("unknown_test_class", ValueError, r"class folders that train/ lacks: whale"),
    ("empty_class", ValueError, r"train/zebra holds no image files"),
    ("no_classes", ValueError, r"no class folders"),
    ("corrupt", ValueError, r"cannot decode the image .*ant/1\.png"),
])
def test_bad_trees_say_what_is_wrong(tmp_path: Path, change: str, error: type, match: str) -> None:
    root = write_tree(tmp_path / "root", {"train": 2, "test": 1})
    if change == "no_train":
        root = tmp_path / "elsewhere"
    elif change == "unknown_test_class":
        (root / "test" / "whale").mkdir()
    elif change == "empty_class":
        for path in (root / "train" / "zebra").iterdir():
            path.unlink()
    elif change == "no_classes":
        root = tmp_path / "flat"
        (root / "train").mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(root / "train" / "loose.png")
    else:
        (root / "train" / "ant" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(error, match=match):
        load_dataset("imagefolder", root)


def test_image_size_is_an_option_of_imagefolder_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dataset 'digits' has no option 'image_size'"):
        load_dataset("digits", options={"image_size": 32})
    with pytest.raises(ValueError, match="--imagefolder-image-size must be at least 0"):
        load_dataset("imagefolder", tmp_path, options={"image_size": -3})
    assert DATASETS["imagefolder"].options["image_size"].default == 0


def test_ids_are_unique_posix_paths(tmp_path: Path) -> None:
    data = load_dataset("imagefolder", write_tree(tmp_path, {"train": 3, "test": 2}), imbalance=3)
    ids = data.train.ids
    assert len(np.unique(ids)) == len(ids) and all(key.startswith("train/") and "\\" not in key for key in ids)


def test_a_link_to_a_folder_above_it_is_a_cycle_named_by_the_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROP_CACHE", str(tmp_path / "cache"))
    root = write_tree(tmp_path / "tree", {"train": 3})
    link = root / "train" / "zebra" / "loop"
    link.symlink_to(root / "train", target_is_directory=True)
    with pytest.raises(ValueError, match=rf"{link} is a link to the folder .* that contains it, a cycle"):
        load_imagefolder(root)


def test_a_file_or_folder_reached_twice_inside_a_class_is_one_sample(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROP_CACHE", str(tmp_path / "cache"))
    root = write_tree(tmp_path / "tree", {"train": 4})
    before = len(load_imagefolder(root).train) + len(load_imagefolder(root).test)
    cat = root / "train" / "zebra"
    (cat / "sub").mkdir()
    first = sorted(p for p in cat.iterdir() if p.is_file())[0]
    (cat / "sub" / "again.png").symlink_to(first)
    (cat / "again_dir").symlink_to(cat / "sub", target_is_directory=True)
    raw = load_imagefolder(root)
    assert len(raw.train) + len(raw.test) == before


def test_a_file_reached_from_two_classes_or_two_class_folders_that_are_one_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROP_CACHE", str(tmp_path / "cache"))
    root = write_tree(tmp_path / "tree", {"train": 3})
    cat, dog = root / "train" / "zebra", root / "train" / "ant"
    shared = sorted(cat.iterdir())[0]
    (dog / "borrowed.png").symlink_to(shared)
    with pytest.raises(ValueError, match="again .*one class of one split"):
        load_imagefolder(root)
    (dog / "borrowed.png").unlink()
    (root / "train" / "zebra_too").symlink_to(cat, target_is_directory=True)
    with pytest.raises(ValueError, match="class folders .* are one folder"):
        load_imagefolder(root)

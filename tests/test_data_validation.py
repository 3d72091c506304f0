"""Hostile data at the door (issue 10): every bad dataset or file is a ValueError or FileNotFoundError that names
the dataset or the file and says what to do, before anything trains; never a hang, a phantom class or a traceback."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from deep.data import DATASETS, DatasetEntry, RawDataset, Split, load_dataset
from deep.data.cifar import CIFAR10, CIFAR100

from tests.test_data import write_cifar


def split(y: list[int], x: torch.Tensor | None = None, group: list[int] | None = None) -> Split:
    """Float features (N, 2) with labels y."""
    return Split(torch.zeros(len(y), 2) if x is None else x, torch.tensor(y, dtype=torch.int64),
                 None if group is None else torch.tensor(group, dtype=torch.int64))


GOOD_TRAIN, GOOD_TEST = [0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]
NAMES = ["cat", "dog", "bird"]


def registered(monkeypatch: pytest.MonkeyPatch, raw: RawDataset) -> str:
    """Register a loader that returns `raw` and give its name."""
    monkeypatch.setitem(DATASETS, "fake", DatasetEntry(lambda data, download: raw))
    return "fake"


BAD_DATASETS: list[tuple[str, RawDataset, str]] = [
    ("single class", RawDataset(split([0, 0]), split([0, 0]), ["only"]), "1 class; a classifier needs at least 2"),
    ("huge label", RawDataset(split([0, 1, 2**40]), split([0, 1]), ["a", "b"]),
     r"train split, holds label 1099511627776, but labels must be integers 0..1"),
    ("negative label", RawDataset(split([0, 1]), split([0, -1]), ["a", "b"]), r"test split, holds label -1"),
    ("label beyond the names", RawDataset(split(GOOD_TRAIN), split([0, 1, 3]), NAMES), "holds label 3"),
    ("phantom class", RawDataset(split([0, 0, 2, 2]), split([0, 1, 2]), NAMES), r"class 1 \(dog\) has no training rows"),
    ("more classes than rows", RawDataset(split([0, 1]), split([0, 1]), ["a", "b", "c"]), "3 classes but has 2 training rows"),
    ("class absent from test", RawDataset(split(GOOD_TRAIN), split([0, 0, 1, 1]), NAMES),
     r"class 2 \(bird\) has no validation rows \(validation is half of each class of the test split"),
    ("one test row", RawDataset(split(GOOD_TRAIN), split([0, 0, 1, 1, 2]), NAMES), r"class 2 \(bird\) has no validation"),
    ("official val lacks a class", RawDataset(split(GOOD_TRAIN), split(GOOD_TEST), NAMES, val=split([0, 1])),
     r"class 2 \(bird\) has no validation rows, so"),
    ("NaN input", RawDataset(split(GOOD_TRAIN, torch.tensor([[float("nan"), 0.0]] * 6)), split(GOOD_TEST), NAMES),
     "NaN or infinite"),
    ("infinite test input", RawDataset(split(GOOD_TRAIN), split(GOOD_TEST, torch.full((6, 2), float("inf"))), NAMES),
     "test split, holds NaN or infinite"),
    ("group beyond the names", RawDataset(split(GOOD_TRAIN, group=[0, 1, 0, 1, 0, 2]), split(GOOD_TEST, group=[0] * 6),
                                          NAMES, ["g0", "g1"]), "holds group 2"),
    ("groups without names", RawDataset(split(GOOD_TRAIN, group=[0] * 6), split(GOOD_TEST, group=[0] * 6), NAMES),
     "group ids but the dataset names no groups"),
]


@pytest.mark.parametrize(("raw", "message"), [case[1:] for case in BAD_DATASETS], ids=[case[0] for case in BAD_DATASETS])
def test_load_dataset_refuses_bad_data_naming_the_dataset(raw: RawDataset, message: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    raw = RawDataset(raw.train, raw.test, raw.classes, raw.group_names, val=raw.val, source="/data/fake.bin")
    with pytest.raises(ValueError, match=message) as error:
        load_dataset(registered(monkeypatch, raw))
    assert "dataset fake (/data/fake.bin)" in str(error.value)


def test_many_absent_classes_are_counted_not_all_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    classes = [str(k) for k in range(20)]
    raw = RawDataset(split(list(range(20)) * 2), split([0, 0, 1, 1]), classes)
    with pytest.raises(ValueError, match=r"classes 2, 3, 4, 5, 6 and 13 more have no"):
        load_dataset(registered(monkeypatch, raw))


# ---- bad files: each is written by the test, and the error names the file ----

def write_npz_arrays(**arrays: np.ndarray) -> Callable[[Path], Path]:
    """A writer of an .npz holding `arrays`."""
    def write(folder: Path) -> Path:
        np.savez(folder / "data.npz", **arrays)
        return folder / "data.npz"
    return write


def write_npy(folder: Path) -> Path:
    np.save(folder / "data.npy", np.zeros((6, 2)))
    return folder / "data.npy"


def write_truncated_npz(folder: Path) -> Path:
    path = write_npz_arrays(X=np.zeros((30, 2)), y=np.arange(30) % 3)(folder)
    path.write_bytes(path.read_bytes()[:300])
    return path


def write_empty(folder: Path) -> Path:
    (folder / "data.npz").write_bytes(b"")
    return folder / "data.npz"


def write_text(folder: Path) -> Path:
    (folder / "data.npz").write_text("X,y\n1,0\n")
    return folder / "data.npz"


X30 = np.random.default_rng(0).normal(size=(30, 2))
BAD_NPZ_FILES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("npy, not npz", write_npy, "single array in .npy format"),
    ("truncated zip", write_truncated_npz, "not a readable .npz"),
    ("empty file", write_empty, "not a readable .npz"),
    ("text file", write_text, "not a readable .npz"),
    ("labels 3, 7, 100", write_npz_arrays(X=X30, y=np.array([3, 7, 100] * 10)), r"\{3, 7, 100\}.*remap"),
    ("label 2**40", write_npz_arrays(X=X30, y=np.array([0, 1, 2**40] * 10)), r"\{0, 1, 1099511627776\}.*remap"),
    ("group ids 0 and 2", write_npz_arrays(X=X30, y=np.arange(30) % 3, group=np.arange(30) % 2 * 2), r"'group'.*\{0, 2\}"),
    ("more class names than classes", write_npz_arrays(X=X30, y=np.arange(30) % 3, classes=np.array(list("abcd"))),
     "4 names but the data use ids 0..2"),
    ("class only in test", write_npz_arrays(X=X30, y=np.arange(30) % 3, split=np.where(np.arange(30) % 3 == 2, 1, 0)),
     r"class 2 has no training rows"),
    ("class absent from test", write_npz_arrays(X=X30, y=np.arange(30) % 3, split=(np.arange(30) == 0).astype(int)),
     r"class(es)? .* no validation rows"),
]


@pytest.mark.parametrize(("write", "message"), [case[1:] for case in BAD_NPZ_FILES], ids=[case[0] for case in BAD_NPZ_FILES])
def test_bad_npz_files_are_value_errors_naming_the_file(write: Callable[[Path], Path], message: str,
                                                        tmp_path: Path) -> None:
    path = write(tmp_path)
    with pytest.raises(ValueError, match=message) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value) or str(path.resolve()) in str(error.value)


def test_npz_folder_without_data_npz_is_file_not_found(tmp_path: Path) -> None:
    write_npy(tmp_path)
    with pytest.raises(FileNotFoundError, match="data.npz"):
        load_dataset("npz", tmp_path)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def rewrite(path: Path, change: Callable[[dict], object]) -> None:
    """Replace the content of the CIFAR pickle at `path` by change(content)."""
    path.write_bytes(pickle.dumps(change(pickle.loads(path.read_bytes(), encoding="bytes")), protocol=2))


def edit(key: bytes, change: Callable[[object], object]) -> Callable[[Path], None]:
    """A corruption that replaces the entry `key` of a CIFAR pickle by change(entry)."""
    return lambda path: rewrite(path, lambda content: content | {key: change(content[key])})


BAD_CIFAR_FILES: list[tuple[str, str, Callable[[Path], None], str]] = [
    ("truncated batch", "data_batch_2", truncate, "not a readable CIFAR"),
    ("empty test batch", "test_batch", empty, "not a readable CIFAR"),
    ("truncated meta", "batches.meta", truncate, "not a readable CIFAR"),
    ("label 10", "data_batch_1", edit(b"labels", lambda labels: [10, *labels[1:]]), r"labels outside 0..9"),
    ("label -1", "test_batch", edit(b"labels", lambda labels: [-1, *labels[1:]]), r"labels outside 0..9"),
    ("short meta", "batches.meta", edit(b"label_names", lambda names: names[:9]),
     "names 9 classes under b'label_names'; cifar10 has 10"),
    ("meta without names", "batches.meta", lambda p: rewrite(p, lambda meta: {b"num_vis": 3072}), "lacks the keys"),
    ("pixels cut short", "data_batch_3", edit(b"data", lambda data: data[:, :100]), r"\(N, 3072\) pixels"),
    ("fewer labels than images", "data_batch_4", edit(b"labels", lambda labels: labels[:-1]), "N labels"),
    ("not a dict", "data_batch_5", lambda p: rewrite(p, lambda batch: [1, 2, 3]), "holds a list, not a dict"),
]


@pytest.mark.parametrize(("file", "corrupt", "message"), [case[1:] for case in BAD_CIFAR_FILES],
                         ids=[case[0] for case in BAD_CIFAR_FILES])
def test_bad_cifar_files_are_value_errors_naming_the_file(file: str, corrupt: Callable[[Path], None], message: str,
                                                          tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10", per_class_train=5, per_class_test=2)
    path = tmp_path / CIFAR10.folder / file
    corrupt(path)
    with pytest.raises(ValueError, match=message) as error:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(error.value)


def test_cifar100_label_beyond_its_100_classes_names_the_file(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar100", per_class_train=2, per_class_test=2)
    path = tmp_path / CIFAR100.folder / "train"
    edit(b"fine_labels", lambda labels: [100, *labels[1:]])(path)
    with pytest.raises(ValueError, match=r"labels outside 0..99") as error:
        load_dataset("cifar100", tmp_path)
    assert str(path) in str(error.value)

"""MNIST from IDX files the tests write (raw and gzipped), its download convention, and LeNet-300-100."""

from __future__ import annotations

import gzip
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deep._torchvision import import_torchvision
from deep.data import DATASETS, load_dataset
from deep.data.mnist import FILES, LAYOUT, MIRROR
from deep.models import build_model

from tests.test_data import write_idx, write_mnist


@pytest.mark.parametrize("gz", [False, True])
def test_reads_the_idx_files_raw_or_gzipped(gz: bool, tmp_path: Path) -> None:
    write_mnist(tmp_path, per_class_train=4, per_class_test=3, gz=gz)
    assert all((tmp_path / f"{name}{'.gz' if gz else ''}").is_file() for name in FILES)
    raw = DATASETS["mnist"](tmp_path, False)
    assert raw.train.x.shape == (40, 1, 28, 28) and raw.test.x.shape == (30, 1, 28, 28)
    assert raw.train.x.dtype == torch.uint8 and raw.classes == [str(k) for k in range(10)]
    for split in (raw.train, raw.test):
        assert torch.equal(split.x[:, 0, 0, 0].long(), split.y)  # pixel (0, 0) was written as the label
    assert raw.mean is not None and raw.mean[0] == pytest.approx(raw.train.x.double().mean().item() / 255)


def test_finds_torchvisions_mnist_raw_folder(tmp_path: Path) -> None:
    write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    data = load_dataset("mnist", tmp_path, seed=0)
    assert data.info["path"] == str((tmp_path / "MNIST" / "raw").resolve()) and data.input_shape == (1, 28, 28)


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def wrong_magic(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[2] = 0x0D  # the IDX code of float32 data
    path.write_bytes(bytes(content))


def too_long(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0")


def truncated_gzip(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def not_gzip(path: Path) -> None:
    path.write_bytes(b"this is not gzip data")


def fewer_labels(path: Path) -> None:
    write_idx(path.with_name("train-labels-idx1-ubyte"), np.zeros(29, dtype=np.uint8), gz=path.suffix == ".gz")


def label_ten(path: Path) -> None:
    write_idx(path.with_name("t10k-labels-idx1-ubyte"), np.full(20, 10, dtype=np.uint8), gz=path.suffix == ".gz")


def gzip_of_truncated(path: Path) -> None:
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))


BAD_IDX: list[tuple[str, bool, str, Callable[[Path], None], str]] = [
    ("truncated images", False, "train-images-idx3-ubyte", truncated, "truncated or corrupt"),
    ("truncated labels", False, "t10k-labels-idx1-ubyte", truncated, "truncated or corrupt"),
    ("trailing bytes", False, "t10k-images-idx3-ubyte", too_long, "truncated or corrupt"),
    ("empty", False, "train-labels-idx1-ubyte", empty, "not an IDX file of unsigned bytes with 1 dimension"),
    ("float IDX", False, "train-images-idx3-ubyte", wrong_magic, "not an IDX file of unsigned bytes with 3 dim"),
    ("labels swapped for images", False, "train-images-idx3-ubyte",
     lambda p: p.write_bytes(p.with_name("train-labels-idx1-ubyte").read_bytes()), "with 3 dimension"),
    ("fewer labels than images", False, "train-labels-idx1-ubyte", fewer_labels, "30 images but"),
    ("label 10", False, "t10k-labels-idx1-ubyte", label_ten, "holds label 10; MNIST labels are 0..9"),
    ("truncated gzip", True, "train-images-idx3-ubyte.gz", truncated_gzip, "cannot be read or unzipped"),
    ("not gzip", True, "t10k-labels-idx1-ubyte.gz", not_gzip, "cannot be read or unzipped"),
    ("gzip of a truncated file", True, "t10k-images-idx3-ubyte.gz", gzip_of_truncated, "truncated or corrupt"),
]


@pytest.mark.parametrize(("gz", "file", "corrupt", "message"), [case[1:] for case in BAD_IDX],
                         ids=[case[0] for case in BAD_IDX])
def test_broken_idx_files_are_value_errors_naming_the_file(gz: bool, file: str, corrupt: Callable[[Path], None],
                                                           message: str, tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=gz)
    path = tmp_path / file
    corrupt(path)
    with pytest.raises(ValueError, match=message) as error:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(error.value)


def test_missing_files_say_what_to_put_where(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"incomplete, it lacks t10k-labels-idx1-ubyte.*gzipped.*--download"):
        load_dataset("mnist", tmp_path)


def test_download_fetches_the_four_gzipped_files_only_when_asked(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, str | None]] = []
    published = write_mnist(tmp_path / "published", gz=True)

    def fake_download(url: str, download_root: str, md5: str | None = None) -> None:
        calls.append((url, download_root, md5))
        name = url.rsplit("/", 1)[1]
        (Path(download_root) / name).write_bytes((published / name).read_bytes())

    monkeypatch.setattr(import_torchvision().datasets.utils, "download_and_extract_archive", fake_download)
    with pytest.raises(FileNotFoundError):
        load_dataset("mnist", tmp_path / "m")
    assert calls == []
    load_dataset("mnist", tmp_path / "m", download=True)
    assert calls == [(f"{MIRROR}{name}.gz", str(tmp_path / "m"), md5) for name, md5 in FILES.items()]
    assert [archive.url for archive in LAYOUT.archives] == [url for url, _, _ in calls]
    load_dataset("mnist", tmp_path / "m", download=True)
    assert len(calls) == 4  # present already: nothing fetched


# ---- LeNet-300-100 ----

def test_lenet300100_is_the_official_architecture() -> None:
    model = build_model("lenet300100", 10, (1, 28, 28))
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [(m.in_features, m.out_features, m.bias is not None) for m in linear] == [
        (784, 300, False), (300, 100, False), (100, 10, True)]
    assert [(m.num_features, m.momentum) for m in norms] == [(300, 0.01), (100, 0.01)]
    # 784*300 + 300*100 + 100*10 + 10 weights and biases, plus 2 * (300 + 100) batch-norm affine parameters
    assert sum(p.numel() for p in model.parameters()) == 235_200 + 30_000 + 1_010 + 800
    assert torch.count_nonzero(model.head.bias) == 0
    # Xavier normal with gain sqrt(2): std = sqrt(2) * sqrt(2 / (fan_in + fan_out))
    assert linear[0].weight.std().item() == pytest.approx(math.sqrt(2) * math.sqrt(2 / 1084), rel=0.02)


def test_lenet300100_embeds_100_features_and_flattens_any_input() -> None:
    model = build_model("lenet300100", 3, (2, 5, 5)).eval()
    x = torch.randn(4, 2, 5, 5)
    with torch.no_grad():
        assert model.embed(x).shape == (4, 100)
        torch.testing.assert_close(model(x), model.head(model.embed(x)))
    with pytest.raises(ValueError, match="input_shape"):
        build_model("lenet300100", 3, ())

"""MNIST-1D: offline generation, deterministic for its arguments, cached on disk and rebuilt when the cache is broken."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from deep.data import load_dataset, mnist1d
from deep.data.mnist1d import DEFAULT_SAMPLES, generate, load_mnist1d
from tests.test_data import fixture_path

SMALL = 1000  # the smallest sample count the option accepts; generates in a fraction of a second


def cache_files(folder: Path) -> list[Path]:
    """Every file in the cache folder, temp files included."""
    return sorted(folder.iterdir())


def assert_same(first, second) -> None:
    """Two raw datasets hold identical arrays."""
    for a, b in ((first.train, second.train), (first.test, second.test)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_generation_is_deterministic_and_leaves_the_global_generators_alone() -> None:
    random.seed(5)
    np.random.seed(5)
    expected_python, expected_numpy = random.random(), np.random.random()
    random.seed(5)
    np.random.seed(5)
    first = generate(SMALL)
    assert (random.random(), np.random.random()) == (expected_python, expected_numpy)
    again, other = generate(SMALL), generate(SMALL + 10)
    for key in first:
        assert np.array_equal(first[key], again[key]), key
    assert not np.array_equal(first["x_test"][:50], other["x_test"][:50])


def test_shapes_split_and_classes_follow_the_package(tmp_path: Path) -> None:
    raw = load_mnist1d(tmp_path, samples=SMALL)
    assert raw.train.x.shape == (800, 40) and raw.test.x.shape == (200, 40)  # the package's 80/20 split
    assert raw.train.x.dtype == torch.float32 and raw.classes == [str(k) for k in range(10)]
    y = torch.cat([raw.train.y, raw.test.y])
    assert torch.equal(torch.bincount(y), torch.full((10,), SMALL // 10))  # the generator's equal classes
    assert raw.mean is None and "num_samples=1000" in raw.source


def test_the_cache_is_reused_and_keyed_by_the_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_mnist1d(tmp_path, samples=SMALL)
    [cached] = cache_files(tmp_path)
    assert cached.name.startswith(f"mnist1d_{SMALL}_") and cached.suffix == ".npz"
    other = load_mnist1d(tmp_path, samples=SMALL + 10)
    assert len(cache_files(tmp_path)) == 2 and len(other.train) + len(other.test) == SMALL + 10

    def fail(samples: int) -> None:
        raise AssertionError("regenerated although a valid cache exists")

    monkeypatch.setattr(mnist1d, "generate", fail)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(load_mnist1d(tmp_path, samples=SMALL), first)


def corrupt_truncate(path: Path, other: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_empty(path: Path, other: Path) -> None:
    path.write_bytes(b"")


def corrupt_flip_a_data_byte(path: Path, other: Path) -> None:
    content = bytearray(path.read_bytes())
    content[len(content) // 3] ^= 0xFF  # inside x_train: the zip member's CRC-32 fails
    path.write_bytes(bytes(content))


def corrupt_arrays_in_a_valid_zip(path: Path, other: Path) -> None:
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["y_train"][0] = (arrays["y_train"][0] + 1) % 10  # a valid file whose sha256 no longer matches
    np.savez(path, **arrays)


def corrupt_other_arguments(path: Path, other: Path) -> None:
    path.write_bytes(other.read_bytes())  # a valid cache, but of another sample count


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory):
    """MNIST-1D with SMALL samples, generated into a cache of its own."""
    return load_mnist1d(tmp_path_factory.mktemp("clean"), samples=SMALL)


@pytest.mark.parametrize("corrupt", [corrupt_truncate, corrupt_empty, corrupt_flip_a_data_byte,
                                     corrupt_arrays_in_a_valid_zip, corrupt_other_arguments])
def test_a_broken_cache_is_detected_and_rebuilt_never_used(corrupt, fresh, tmp_path: Path) -> None:
    load_mnist1d(tmp_path, samples=SMALL)
    load_mnist1d(tmp_path, samples=SMALL + 10)
    path, other = (next(tmp_path.glob(f"mnist1d_{n}_*.npz")) for n in (SMALL, SMALL + 10))
    corrupt(path, other)
    with pytest.warns(UserWarning, match="generating the data again"):
        rebuilt = load_mnist1d(tmp_path, samples=SMALL)
    assert_same(rebuilt, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten cache is valid again
        assert_same(load_mnist1d(tmp_path, samples=SMALL), fresh)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_data_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="folder for its cache"):
        load_mnist1d(tmp_path / "file", samples=SMALL)


def test_default_size_leaves_150_rows_per_class_in_validation_and_test(tmp_path: Path) -> None:
    data = load_dataset("mnist1d", fixture_path("mnist1d", tmp_path), seed=3)
    assert data.info["options"] == {"samples": DEFAULT_SAMPLES}
    assert data.info["sizes"]["train"] == int(0.8 * DEFAULT_SAMPLES)
    for split in (data.val, data.test):
        assert int(torch.bincount(split.y, minlength=10).min()) >= 150

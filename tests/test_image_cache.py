"""The decoded-image cache (decode once, reuse everywhere, never serve stale or broken pixels) and image statistics."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from deep.data import DATASETS, image_cache
from deep.data.image_cache import cache_dir, cache_key, cached_images
from deep.data.images import ResizeCenterCrop, channel_stats, read_images
from tests.test_data import write_tinyimagenet, write_waterbirds

RNG = np.random.default_rng(0)


def write_images(folder: Path, count: int = 6, size: int = 8) -> list[Path]:
    """`count` random RGB PNGs of size x size pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i}.png" for i in range(count)]
    for path in paths:
        Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return paths


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images each read_images call of the cache decoded, in call order."""
    calls: list[int] = []

    def counting(paths, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - read_images' own signature
        calls.append(len(paths))
        return read_images(paths, *args, **kwargs)

    monkeypatch.setattr(image_cache, "read_images", counting)
    return calls


def test_second_load_maps_the_cache_without_decoding(tmp_path: Path, decodes: list[int]) -> None:
    paths = write_images(tmp_path / "img")
    first = cached_images(paths, (8, 8))
    second = cached_images(paths, (8, 8))
    assert decodes == [6]
    assert isinstance(second, np.memmap) and second.shape == (6, 3, 8, 8) and second.dtype == np.uint8
    expected = np.stack([np.asarray(Image.open(p)).transpose(2, 0, 1) for p in paths])
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)
    second[0] = 0  # copy on write: the file and later loads keep the pixels
    np.testing.assert_array_equal(cached_images(paths, (8, 8)), expected)


def test_changed_added_or_reordered_files_and_other_transforms_get_new_keys(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "img")
    key = cache_key(paths, (8, 8), None)
    assert cache_key(paths[::-1], (8, 8), None) != key
    assert cache_key(paths[:-1], (8, 8), None) != key
    assert cache_key(paths, (4, 4), ResizeCenterCrop(4, 4)) != cache_key(paths, (4, 4), ResizeCenterCrop(4, 5))
    stat = paths[0].stat()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(paths[0])
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert cache_key(paths, (8, 8), None) != key


def test_an_edited_image_is_decoded_again(tmp_path: Path, decodes: list[int]) -> None:
    paths = write_images(tmp_path / "img")
    cached_images(paths, (8, 8))
    Image.new("RGB", (8, 8), (1, 2, 3)).save(paths[2])
    os.utime(paths[2], ns=(0, 10**18))  # a different mtime whatever the clock's resolution
    again = cached_images(paths, (8, 8))
    assert decodes == [6, 6] and (again[2] == np.array([1, 2, 3])[:, None, None]).all()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_shape"])
def test_a_broken_cache_file_is_rebuilt(tmp_path: Path, decodes: list[int], damage: str) -> None:
    paths = write_images(tmp_path / "img")
    good = np.array(cached_images(paths, (8, 8)))
    target = cache_dir() / f"{cache_key(paths, (8, 8), None)}.npy"
    content = target.read_bytes()
    broken = {"truncate": content[: len(content) // 2], "garbage": b"\x00" * len(content), "empty": b""}
    if damage == "wrong_shape":
        np.save(target, good[:3])
    else:
        target.write_bytes(broken[damage])
    np.testing.assert_array_equal(cached_images(paths, (8, 8)), good)
    assert decodes == [6, 6]
    assert target.read_bytes() == content


def test_concurrent_builders_decode_once(tmp_path: Path, decodes: list[int]) -> None:
    paths = write_images(tmp_path / "img", count=40)
    start = threading.Barrier(3)
    results: list[np.ndarray] = []

    def load() -> None:
        start.wait()
        results.append(np.array(cached_images(paths, (8, 8))))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each open() of the lock file is its own flock holder, so threads contend for it as processes do.
    assert decodes == [40] and len(results) == 3
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    assert not list(cache_dir().glob("*.tmp"))


def test_temporary_files_of_killed_writers_are_removed(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "img")
    key = cache_key(paths, (8, 8), None)
    cache_dir().mkdir(parents=True, exist_ok=True)
    stale = cache_dir() / f"{key}.12345.deadbeef.tmp"
    stale.write_bytes(b"half written")
    cached_images(paths, (8, 8))
    assert not stale.exists()


def test_an_unwritable_cache_warns_and_decodes_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_images(tmp_path / "img")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DROP_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="DROP_CACHE"):
        images = cached_images(paths, (8, 8))
    assert images.shape == (6, 3, 8, 8) and not isinstance(images, np.memmap)


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_an_undecodable_image_is_a_value_error_naming_the_file(tmp_path: Path, content: bytes | str) -> None:
    paths = write_images(tmp_path / "img")
    bad = tmp_path / "img" / "bad.jpg"
    if content == "truncated":
        Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(bad, "JPEG")
        content = bad.read_bytes()[:-40]
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=r"cannot decode the image .*bad\.jpg"):
        cached_images([*paths, bad], (8, 8))
    assert not list(cache_dir().glob("*.tmp"))


def test_the_cache_folder_follows_drop_cache_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROP_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("DROP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "drop-pruning" / "images"


@pytest.mark.parametrize("name", ["tinyimagenet", "waterbirds"])
def test_image_datasets_decode_once_and_name_a_corrupt_file(name: str, tmp_path: Path, decodes: list[int]) -> None:
    root = write_tinyimagenet(tmp_path) if name == "tinyimagenet" else write_waterbirds(tmp_path / "wb")
    first = DATASETS[name](root, False)
    decoded = len(decodes)
    second = DATASETS[name](root, False)
    assert len(decodes) == decoded  # every split came from the cache
    assert torch.equal(first.train.x, second.train.x) and np.array_equal(first.train.ids, second.train.ids)
    victim = sorted(root.rglob("*.JPEG" if name == "tinyimagenet" else "*.jpg"))[1]
    victim.write_bytes(victim.read_bytes()[:100])  # truncated, as an interrupted copy leaves it
    with pytest.raises(ValueError, match=f"cannot decode the image .*{victim.name}"):
        DATASETS[name](root, False)


@settings(max_examples=25, deadline=None)
@given(images=arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 4), st.integers(1, 9), st.integers(1, 9))))
def test_channel_stats_equal_float64_moments(images: np.ndarray) -> None:
    mean, std = channel_stats(torch.from_numpy(images))
    scaled = images.astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, scaled.mean(axis=(0, 2, 3)), rtol=1e-12, atol=1e-15)
    expected = scaled.std(axis=(0, 2, 3))
    constant = (images == images[:1, :, :1, :1]).all(axis=(0, 2, 3))
    # A constant channel gets std 1 (numpy's float64 std of it is rounding noise such as 3e-18, not 0).
    np.testing.assert_allclose(std, np.where(constant, 1.0, expected), rtol=1e-9, atol=1e-12)

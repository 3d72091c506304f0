"""A memory-mapped uint8 cache of decoded images, shared by every run and worker process that reads the same files.

Decoding TinyImageNet's 110,000 JPEGs takes tens of CPU seconds (Waterbirds' resizing more), and every sweep
worker used to do it again at start-up. Here a list of image files is decoded once into DIRECTORY/<key>.npy, an
(N, 3, H, W) uint8 array that later loads map into memory (copy on write: the pages are shared between processes
and nothing is read until used). The key hashes the format version, the output shape, the transform's repr, and
every file's absolute path, size and modification time: changing, adding, removing or reordering a file gives a
new key, so a stale array is never read (old entries stay behind; delete the folder to reclaim the space). A
cache file is written under a temporary name and renamed, while holding an exclusive lock on <key>.lock, so
concurrent builders decode once and readers never see a partial file; a file that does not hold the expected
array is rebuilt. DIRECTORY is $DROP_CACHE, else $XDG_CACHE_HOME/drop-pruning/images, else
~/.cache/drop-pruning/images. Where it cannot be written the images are decoded in memory, with a warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from deep.data.images import FilePath, Transform, read_images

VERSION = 2  # bump when the decoded pixels of the same files would change (decoder policy, layout)


def cache_dir() -> Path:
    """Where cached arrays live: $DROP_CACHE, else $XDG_CACHE_HOME/drop-pruning/images, else ~/.cache/..."""
    if os.environ.get("DROP_CACHE"):
        return Path(os.environ["DROP_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "drop-pruning" / "images"


def cache_key(paths: Sequence[FilePath], shape: tuple[int, int], transform: Transform | None) -> str:
    """A hex digest of the files (absolute path, size, mtime, in order), the output shape and the transform."""
    digest = hashlib.sha256(f"v{VERSION}\n{shape}\n{transform!r}\n".encode())
    cwd = os.getcwd()
    for path in paths:
        stat = os.stat(path)
        # join, not abspath: no normalisation per file (two spellings of one file only cost a second decode)
        digest.update(f"{os.path.join(cwd, path)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def cached_images(paths: Sequence[FilePath], shape: tuple[int, int], transform: Transform | None = None,
                  desc: str = "images") -> np.ndarray:
    """The images at `paths` as uint8 (N, 3, height, width), as read_images decodes them, through the cache."""
    expected = (len(paths), 3, *shape)
    target = cache_dir() / f"{cache_key(paths, shape, transform)}.npy"
    cached = _open(target, expected)
    if cached is not None:
        return cached
    with _locked(target.with_suffix(".lock")) as exclusive:
        # Another process may have built it while this one waited for the lock.
        cached = _open(target, expected)
        if cached is not None:
            return cached
        images = read_images(paths, shape, transform, f"{desc} (decoding once into {target.parent})")
        try:
            _write(target, images, clean=exclusive)
        except OSError as error:
            warnings.warn(f"cannot write the image cache {target} ({error}); every load decodes the images again. "
                          "Set DROP_CACHE to a writable folder.", stacklevel=2)
            return images
    # The mapped file rather than this process's private copy: its pages are shared with every other reader.
    cached = _open(target, expected)
    return images if cached is None else cached


def _open(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The array at `path`, memory-mapped copy-on-write, or None when it is absent or not a `shape` uint8 array."""
    try:
        array = np.load(path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError, EOFError):  # absent, truncated or overwritten: the caller rebuilds it
        return None
    return array if array.dtype == np.uint8 and array.shape == shape else None


@contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on `path`, yielding True; False where the folder or file system allows none."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    except OSError:  # an unwritable folder: _write fails too, and says so
        yield False
        return
    with handle:  # closing the file releases the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            locked = True
        except OSError:  # some network file systems: the atomic rename alone still keeps readers safe
            locked = False
        yield locked


def _write(target: Path, images: np.ndarray, clean: bool) -> None:
    """Save `images` under a temporary name beside `target`, sync it to disk and rename it to `target`."""
    if clean:
        # Under the lock nobody else writes this key: temporary files found here were left by killed writers.
        for stale in target.parent.glob(f"{target.stem}.*.tmp"):
            stale.unlink(missing_ok=True)
    temporary = target.with_name(f"{target.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temporary.open("wb") as file:
            np.lib.format.write_array(file, images, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)

"""Image stores for data larger than memory: decoded once into an on-disk uint8 array, then read a batch at a time.

`build_store` decodes a list of image files into DIRECTORY/<key>.npy, the same (N, 3, H, W) uint8 file the image
cache (deep.data.image_cache) writes, under the same key, folder ($DROP_CACHE) and lock, but without ever holding
the array: worker processes decode chunks of CHUNK images straight into a memory-mapped `<key>.partial.npy`, and a
`<key>.done.npy` mask records each finished chunk, so a killed build resumes where it stopped. When every chunk is
done the file is synced and renamed to <key>.npy. A file that cannot be decoded is an error naming it.

`StoredImages` is a lazy view of rows of such a file: it stands where a Split holds its image tensor (shape,
dtype, subsets as x[index]) and is read a batch at a time with positioned reads (`read`), never mapped, so the
pages read count towards the page cache, not towards the process's resident memory.

Loaders of decoded images (imagefolder, waterbirds) hold their pixels in memory unless $DROP_STREAM is 1 (the CLI's
--stream sets it): then `image_rows` gives them as StoredImages. Streaming changes no result (the trainer gives the
same batches; the normalisation constants are computed from every image either way), so it is not part of any run's
configuration, and worker processes inherit it with the environment.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from deep.data.image_cache import _locked, _open, cache_dir, cache_key, cached_images
from deep.data.images import FilePath, ImageSizeError, Transform, channel_counts, counts_stats, decode

CHUNK = 256  # images per unit of work and of resumption: one chunk is lost at most when a build is killed
STREAM_ENV = "DROP_STREAM"


@dataclass(frozen=True, eq=False)
class StoredImages:
    """Rows `rows` of the uint8 (N, C, H, W) array in the .npy file `path`; with `crop`, batches are crop x crop views.

    crop: the size of the model's input when the stored images are larger (ImageNet: stored 256, crop 224). Training
    batches are then RandomResizedCrop(crop) + flip, evaluation batches the centre crop (deep.augment.resized_view).
    """

    path: Path
    crop: int | None = None
    rows: np.ndarray | None = None  # None: every row of the file
    header: tuple[int, tuple[int, ...]] = field(init=False)  # (byte offset of the data, shape of the whole file)

    def __post_init__(self) -> None:
        with open(self.path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(file)
            offset = file.tell()
        if dtype != np.uint8 or fortran or len(shape) != 4:
            raise ValueError(f"{self.path} is not a C-ordered uint8 (N, C, H, W) image store: delete it to rebuild it")
        object.__setattr__(self, "header", (offset, tuple(shape)))
        if self.rows is None:
            object.__setattr__(self, "rows", np.arange(shape[0], dtype=np.int64))

    @property
    def stored_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image as stored."""
        return self.header[1][1:]

    @property
    def shape(self) -> torch.Size:
        """(N, C, H, W) of the batches this view gives (H = W = crop with a crop)."""
        channels, height, width = self.stored_shape
        size = (height, width) if self.crop is None else (self.crop, self.crop)
        return torch.Size((len(self.rows), channels, *size))

    dtype = torch.uint8

    def dim(self) -> int:
        """4, as for an image tensor."""
        return 4

    def is_floating_point(self) -> bool:
        """False: the pixels are uint8."""
        return False

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: torch.Tensor | np.ndarray | slice) -> StoredImages:
        """The lazy view of rows `index` (positions, a boolean mask or a slice) of this view: nothing is read."""
        picked = self.rows[index.cpu().numpy() if isinstance(index, torch.Tensor) else index]
        view = StoredImages.__new__(StoredImages)
        for name, value in (("path", self.path), ("crop", self.crop), ("rows", np.asarray(picked, np.int64)),
                            ("header", self.header)):
            object.__setattr__(view, name, value)
        return view

    def read(self, positions: np.ndarray | torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The stored images at `positions` of this view as uint8 (k, C, H, W), read in file order into `out`."""
        positions = positions.cpu().numpy() if isinstance(positions, torch.Tensor) else np.asarray(positions)
        rows = self.rows[positions]
        if out is None:
            out = torch.empty((len(rows), *self.stored_shape), dtype=torch.uint8)
        target = out.numpy()
        size = int(np.prod(self.stored_shape))
        offset = self.header[0]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            # Ascending file offsets: sequential on a disk, and the kernel's read-ahead helps.
            for slot in np.argsort(rows, kind="stable"):
                view = memoryview(target[slot]).cast("B")
                got = os.preadv(fd, [view], offset + int(rows[slot]) * size)
                if got != size:
                    raise ValueError(f"{self.path} is truncated (row {rows[slot]}): delete it to rebuild the store")
        finally:
            os.close(fd)
        return out

    def load(self) -> torch.Tensor:
        """Every image of this view in memory (small data and tests only)."""
        return self.read(np.arange(len(self.rows)))


def _decode_chunk(task: tuple[str, Sequence[FilePath], int, tuple[int, int], Transform | None]) -> int:
    """Decode one chunk of files into rows start.. of the partial file; returns start (runs in a worker)."""
    partial, paths, start, (height, width), transform = task
    array = np.load(partial, mmap_mode="r+")
    for i, path in enumerate(paths):
        rgb = decode(path, transform)
        if rgb.size != (width, height):
            raise ImageSizeError(f"{path} is {rgb.size[0]}x{rgb.size[1]} pixels (width x height); "
                                 f"expected {width}x{height}")
        array[start + i] = np.asarray(rgb).transpose(2, 0, 1)
    array.flush()
    del array
    return start


def build_store(paths: Sequence[FilePath], shape: tuple[int, int], transform: Transform | None = None,
                desc: str = "images", workers: int | None = None) -> Path:
    """The store file of `paths` decoded (and transformed) to uint8 (N, 3, *shape), built or resumed as needed.

    workers: decoding processes (None: one per CPU core; 0: in this process).
    """
    expected = (len(paths), 3, *shape)
    key = cache_key(paths, shape, transform)
    target = cache_dir() / f"{key}.npy"
    if _open(target, expected) is not None:
        return target
    with _locked(target.with_suffix(".lock")):
        if _open(target, expected) is not None:  # built by another process meanwhile
            return target
        partial, done_file = target.with_suffix(".partial.npy"), target.with_suffix(".done.npy")
        chunks = -(-len(paths) // CHUNK)
        try:
            array = np.load(partial, mmap_mode="r+")
            done = np.load(done_file, mmap_mode="r+")
            fresh = array.shape != expected or array.dtype != np.uint8 or done.shape != (chunks,)
        except (OSError, ValueError, EOFError):
            fresh = True
        if fresh:
            array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=expected)
            done = np.lib.format.open_memmap(done_file, mode="w+", dtype=np.bool_, shape=(chunks,))
        del array
        pending = [c for c in range(chunks) if not done[c]]
        tasks = [(str(partial), list(paths[c * CHUNK:(c + 1) * CHUNK]), c * CHUNK, shape, transform) for c in pending]
        count = len(os.sched_getaffinity(0)) if workers is None else workers
        bar = tqdm(total=len(paths), initial=len(paths) - sum(len(t[1]) for t in tasks), unit="img",
                   desc=f"{desc} (decoding once into {target.parent})")
        # fork: workers start at once and share the listing; they use PIL and numpy only, never torch.
        pool = multiprocessing.get_context("fork").Pool(min(count, len(tasks))) if count and tasks else None
        try:
            results = pool.imap_unordered(_decode_chunk, tasks) if pool else map(_decode_chunk, tasks)
            for start in results:
                done[start // CHUNK] = True
                done.flush()  # the chunk's pixels were flushed by its worker before it returned
                bar.update(min(CHUNK, len(paths) - start))
        finally:
            bar.close()
            if pool is not None:
                pool.terminate()
        with open(partial, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(partial, target)
        del done
        done_file.unlink(missing_ok=True)
    return target


def streaming() -> bool:
    """Whether image loaders stream from a store ($DROP_STREAM=1, set by --stream) instead of holding the pixels."""
    return os.environ.get(STREAM_ENV, "") == "1"


@contextmanager
def streamed(on: bool) -> Iterator[None]:
    """Within the block, image loaders stream when `on` (the CLI's --stream); the environment is restored after."""
    before = os.environ.get(STREAM_ENV)
    if on:
        os.environ[STREAM_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STREAM_ENV, None)
        else:
            os.environ[STREAM_ENV] = before


def image_rows(paths: Sequence[FilePath], shape: tuple[int, int], transform: Transform | None = None,
               desc: str = "images") -> torch.Tensor | StoredImages:
    """The images at `paths` as uint8 (N, 3, *shape): streamed from a store when streaming(), else in memory (cached)."""
    if streaming():
        return StoredImages(build_store(paths, shape, transform, desc))
    return torch.from_numpy(cached_images(paths, shape, transform, desc))


def image_stats(x: torch.Tensor | StoredImages) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (deep.data.images.channel_stats), for a store too: its histograms are
    computed a chunk at a time over every row of the view and kept beside the store file."""
    if not isinstance(x, StoredImages):
        return counts_stats(channel_counts(x))
    whole = np.array_equal(x.rows, np.arange(x.header[1][0]))
    saved = x.path.with_suffix(".counts.npy")
    if whole and saved.is_file():
        return counts_stats(torch.from_numpy(np.load(saved, allow_pickle=False)))
    counts = sum(channel_counts(x.read(np.arange(start, min(start + CHUNK, len(x)))))
                 for start in range(0, len(x), CHUNK))
    if whole:
        temporary = saved.with_name(f"{saved.stem}.{os.getpid()}.tmp.npy")
        np.save(temporary, counts.numpy(), allow_pickle=False)
        os.replace(temporary, saved)
    return counts_stats(counts)

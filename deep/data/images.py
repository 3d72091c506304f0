"""Decoding image files into one uint8 array, the resizing policies, and per-channel statistics of uint8 images."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

# Image files are named by str or Path: folder listings of 100,000 files stay strings, since building a Path
# per file costs more than the rest of a cached load.
FilePath = str | os.PathLike
# A transform's repr names it in the image cache's key, so transforms are frozen dataclasses, not closures.
Transform = Callable[[Image.Image], Image.Image]
# What PIL raises on a file it cannot decode: unknown format and truncated data (OSError), bad headers
# (SyntaxError, ValueError), or more pixels than Image.MAX_IMAGE_PIXELS allows.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class ImageSizeError(ValueError):
    """An image whose size (after the transform) is not the size the array expects."""


@dataclass(frozen=True)
class ResizeCenterCrop:
    """Resize (both sides to `resize`, or the shorter side when keep_aspect), then take the central size x size crop."""

    size: int
    resize: int
    keep_aspect: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.size, int) and 1 <= self.size <= self.resize):
            raise ValueError(f"the image size must be a positive integer no larger than the resize {self.resize}, "
                             f"got {self.size!r}")

    def __call__(self, image: Image.Image) -> Image.Image:
        """The resized and cropped image."""
        width, height = image.size
        if self.keep_aspect:
            scale = self.resize / min(width, height)
            target = (round(width * scale), round(height * scale))
        else:
            target = (self.resize, self.resize)
        image = image.resize(target, Image.Resampling.BILINEAR)
        left, top = (target[0] - self.size) // 2, (target[1] - self.size) // 2
        return image.crop((left, top, left + self.size, top + self.size))


# Modes whose 8-bit values PIL's own convert("RGB") keeps as they are (CMYK, YCbCr, LAB, HSV by their formulas).
EIGHT_BIT = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
# Integer modes beyond 8 bits, scaled from 0..65535 to 0..255 (PIL's convert would clip them at 255). 16-bit PNGs
# open as "I" (32-bit) in recent Pillow; their values must then lie in 0..65535 too.
SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
ALPHA = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})


class ImageModeError(ValueError):
    """An image whose pixel values cannot be mapped to 8 bits without guessing (float, out-of-range, unknown)."""


def to_rgb(image: Image.Image, path: FilePath) -> Image.Image:
    """`image` as 8-bit RGB by its values: EXIF orientation applied, 16-bit scaled (v * 255 / 65535, rounded),
    transparency composited over black (premultiplied: value * alpha / 255), other 8-bit modes by PIL's convert.
    ImageModeError naming the file and mode for float images and values outside 16 bits."""
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in SIXTEEN_BIT:
        values = np.asarray(image, dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageModeError(f"{path}: mode {mode} holds values {values.min()}..{values.max()}, beyond 16 bits; "
                                 "save it as an 8- or 16-bit image")
        grey = (values * 255 + 32767) // 65535  # round half up, 65535 -> 255 exactly
        return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")
    if mode in ALPHA or (mode in EIGHT_BIT and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.int64)
        rgb = (rgba[..., :3] * rgba[..., 3:] + 127) // 255
        return Image.fromarray(rgb.astype(np.uint8), "RGB")
    if mode in EIGHT_BIT:
        return image.convert("RGB")
    raise ImageModeError(f"{path}: images of mode {mode} (e.g. float pixels) have no known 8-bit range; convert the "
                         "file to an 8-bit RGB or greyscale (L) image, or a 16-bit one")


def decode(path: FilePath, transform: Transform | None = None) -> Image.Image:
    """The image at `path` as 8-bit RGB by its values (to_rgb), transformed; ValueError naming the file when it
    cannot be decoded or its mode has no 8-bit meaning."""
    try:
        with Image.open(path) as image:
            image.load()
            rgb = to_rgb(image, path)
    except ImageModeError:
        raise
    except DECODE_ERRORS as error:
        raise ValueError(f"cannot decode the image {path} ({type(error).__name__}: {error}): "
                         "replace the file with a readable image or delete it") from error
    return rgb if transform is None else transform(rgb)


def read_images(paths: Sequence[FilePath], shape: tuple[int, int], transform: Transform | None = None,
                desc: str = "images") -> np.ndarray:
    """Decode `paths` as RGB, apply `transform`, and stack them as uint8 (N, 3, height, width)."""
    height, width = shape
    out = np.empty((len(paths), 3, height, width), dtype=np.uint8)

    def read(i: int) -> None:
        rgb = decode(paths[i], transform)
        if rgb.size != (width, height):
            raise ImageSizeError(f"{paths[i]} is {rgb.size[0]}x{rgb.size[1]} pixels (width x height); "
                                 f"expected {width}x{height}")
        out[i] = np.asarray(rgb).transpose(2, 0, 1)

    # Pillow releases the GIL while decoding, so threads overlap decoding and file reads.
    pool = ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) + 2))
    try:
        for _ in tqdm(pool.map(read, range(len(paths))), total=len(paths), desc=desc, unit="img"):
            pass
    finally:
        # On a bad file, stop at once instead of decoding the rest of a large set first.
        pool.shutdown(cancel_futures=True)
    return out


def path_ids(paths: Sequence[FilePath], root: FilePath) -> np.ndarray:
    """Each path (root/...) relative to `root`, '/'-separated: the stable sample ids of datasets made of files."""
    # Paths built as Path(root) / ... start with str(Path(root)), which pathlib normalises ("./x/" -> "x"), and
    # with no prefix at all when that is ".".
    folder = os.fspath(Path(root))
    prefix = "" if folder == "." else os.path.join(folder, "")
    if not all(os.fspath(path).startswith(prefix) for path in paths):
        raise ValueError(f"path_ids: every path must lie under {prefix}")
    return np.array([os.fspath(path)[len(prefix):].replace(os.sep, "/") for path in paths])


def channel_counts(x: torch.Tensor) -> torch.Tensor:
    """How often each value 0..255 occurs in each channel of uint8 images (N, C, H, W): int64 (C, 256)."""
    channels = x.shape[1]
    counts = torch.zeros(channels, 256, dtype=torch.int64, device=x.device)
    # Histograms instead of float sums: exact, and 5-10x faster (20,000 64x64 images: 0.3 s instead of 2-4 s),
    # which matters because the stats are most of a cached dataset's load time. Chunks of about 2**22 values
    # keep the channel-major copy in the CPU cache.
    chunk = max(1, 2**22 // max(1, x[0].numel()))
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk].transpose(0, 1).reshape(channels, -1)
        for channel in range(channels):
            counts[channel] += torch.bincount(part[channel], minlength=256)
    return counts


def counts_stats(counts: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units from value histograms (C, 256) (see channel_stats)."""
    values = torch.arange(256, dtype=torch.float64, device=counts.device) / 255.0
    total = counts.sum(1).double()
    mean = (counts * values).sum(1) / total
    std = ((counts * (values - mean[:, None]).square()).sum(1) / total).sqrt()
    # Constant exactly when one value occurs: the float std of such a channel can be rounding noise (3e-18), not 0.
    constant = (counts > 0).sum(1) == 1
    std = torch.where(constant, torch.ones_like(std), std)
    return tuple(mean.tolist()), tuple(std.tolist())


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), in [0, 1] units, from exact value histograms.

    A constant channel gets std 1 instead of 0: these are the normalisation constants, and dividing by 1 keeps
    such a channel (it carries nothing) at x - mean instead of making every input non-finite.
    """
    return counts_stats(channel_counts(x))

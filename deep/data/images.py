"""Reading image files into one uint8 array, and per-channel statistics of uint8 images."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

Transform = Callable[[Image.Image], Image.Image]


def resize_center_crop(size: int, resize: int) -> Transform:
    """Resize to resize x resize (aspect not kept), then take the central size x size crop."""

    def transform(image: Image.Image) -> Image.Image:
        image = image.resize((resize, resize), Image.Resampling.BILINEAR)
        left = (resize - size) // 2
        return image.crop((left, left, left + size, left + size))

    return transform


def read_images(paths: Sequence[Path], size: int, transform: Transform | None = None, desc: str = "images") -> np.ndarray:
    """Decode `paths` as RGB, apply `transform`, and stack them as uint8 (N, 3, size, size)."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def read(i: int) -> None:
        with Image.open(paths[i]) as image:
            rgb = image.convert("RGB")  # some JPEGs in these sets are greyscale or CMYK
        if transform is not None:
            rgb = transform(rgb)
        if rgb.size != (size, size):
            raise ValueError(f"{paths[i]} is {rgb.size[0]}x{rgb.size[1]} pixels; expected {size}x{size}")
        out[i] = np.asarray(rgb).transpose(2, 0, 1)

    # Pillow releases the GIL while decoding, so threads overlap decoding and file reads.
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) + 2)) as pool:
        for _ in tqdm(pool.map(read, range(len(paths))), total=len(paths), desc=desc, unit="img"):
            pass
    return out


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), in [0, 1] units."""
    channels = x.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    # About 2**24 values per chunk, so large image sets never get a float copy of the whole array.
    chunk = max(1, 2**24 // max(1, x[0].numel()))
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk].to(torch.float64).div_(255.0)
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0.0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())

"""Batch augmentation for image tensors: random crop with zero padding and horizontal flip, vectorised."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def default_padding(height: int) -> int:
    """Crop padding for images of this height: 4 for 32-pixel CIFAR images, scaled alike (H // 8)."""
    return height // 8


def crop_flip(
    x: torch.Tensor, generator: torch.Generator, padding: int | None = None, flip: bool = True
) -> torch.Tensor:
    """Randomly crop every image of a batch (N, C, H, W) from its zero-padded copy and flip half of them.

    Equivalent to torchvision's RandomCrop(H, padding) + RandomHorizontalFlip() applied per sample,
    but done for the whole batch with one gather. Draws come from `generator`, which must live on
    x's device. Works for any dtype (zero padding = black for uint8 images). The result has x's shape
    and dtype and is laid out channels_last in memory.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    n, _, height, width = x.shape
    pad = default_padding(height) if padding is None else padding
    if pad < 0:
        raise ValueError(f"padding must be >= 0, got {pad}")
    device = x.device
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    top = torch.randint(0, 2 * pad + 1, (n, 1), device=device, generator=generator)
    left = torch.randint(0, 2 * pad + 1, (n, 1), device=device, generator=generator)
    if flip:
        # A flipped crop reads the columns of the padded image right to left: the flip costs nothing extra.
        flipped = torch.rand((n, 1), device=device, generator=generator) < 0.5
        cols = torch.where(flipped, width - 1 - cols, cols)
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x
    # Indices (N, H, 1) and (N, 1, W) around the channel slice give (N, H, W, C); permuting back is free.
    sample = torch.arange(n, device=device)[:, None, None]
    out = padded[sample, :, (top + rows)[:, :, None], (left + cols)[:, None, :]]
    return out.permute(0, 3, 1, 2)

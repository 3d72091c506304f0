"""Batch augmentation for image tensors: a random shift (crop from a zero-padded copy, or translation) and a
horizontal flip, and a random rotation, vectorised over the batch (CPU and GPU alike)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def default_padding(height: int) -> int:
    """Crop padding for images of this height: 4 for 32-pixel CIFAR images, scaled alike (H // 8)."""
    return height // 8


def _offsets(n: int, pad: int, limit: float | None, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Where each crop starts in the padded image (N, 1): uniform in [0, 2 pad], or pad + round(U(-limit, limit))."""
    if limit is None:
        return torch.randint(0, 2 * pad + 1, (n, 1), device=device, generator=generator)
    shift = torch.rand((n, 1), device=device, generator=generator) * (2 * limit) - limit
    return pad + torch.round(shift).long()


def crop_flip(
    x: torch.Tensor, generator: torch.Generator, padding: int | None = None, flip: bool = True,
    translate: float | None = None,
) -> torch.Tensor:
    """Randomly shift every image of a batch (N, C, H, W), filling with zeros, and flip half of them.

    The shift is torchvision's RandomCrop(H, padding) (uniform integer offsets in [-padding, padding]), or with
    `translate` t its RandomAffine(degrees=0, translate=(t, t)) (offsets round(U(-t W, t W)) and round(U(-t H, t H))),
    followed by RandomHorizontalFlip(), done for the whole batch with one gather. Draws come from `generator`,
    which must live on x's device. Works for any dtype (zero fill = black for uint8 images). The result has
    x's shape and dtype and is laid out channels_last in memory.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    n, _, height, width = x.shape
    if translate is not None and not 0 < translate < 1:
        raise ValueError(f"translate must lie in (0, 1), got {translate}")
    limits = (None, None) if translate is None else (translate * height, translate * width)
    pad = default_padding(height) if padding is None else padding
    if pad < 0:
        raise ValueError(f"padding must be >= 0, got {pad}")
    pad_h, pad_w = (pad, pad) if translate is None else (math.ceil(limits[0]), math.ceil(limits[1]))
    device = x.device
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    top = _offsets(n, pad_h, limits[0], generator, device)
    left = _offsets(n, pad_w, limits[1], generator, device)
    if flip:
        # A flipped crop reads the columns of the padded image right to left: the flip costs nothing extra.
        flipped = torch.rand((n, 1), device=device, generator=generator) < 0.5
        cols = torch.where(flipped, width - 1 - cols, cols)
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h)) if pad_h or pad_w else x
    # Indices (N, H, 1) and (N, 1, W) around the channel slice give (N, H, W, C); permuting back is free.
    sample = torch.arange(n, device=device)[:, None, None]
    out = padded[sample, :, (top + rows)[:, :, None], (left + cols)[:, None, :]]
    return out.permute(0, 3, 1, 2)


def rotate(x: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate every image of a batch (N, C, H, W) by its own angle, uniform in [-degrees, degrees], about its centre.

    torchvision's RandomRotation(degrees) (nearest neighbour, zero fill, as the authors' MNIST pipeline applies it
    before normalisation) for a whole batch with one affine_grid/grid_sample; draws come from `generator`, on x's
    device. Any dtype (uint8 images are sampled in float32 and cast back); the result has x's shape and dtype.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    if not 0 <= degrees <= 180:
        raise ValueError(f"rotation must lie in [0, 180] degrees, got {degrees}")
    angles = (torch.rand(x.shape[0], device=x.device, generator=generator) * 2 - 1) * math.radians(degrees)
    return rotate_by(x, angles)


def rotate_by(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate image i of the batch by angles[i] radians about its centre (nearest neighbour, zero fill)."""
    _, _, height, width = x.shape
    cos, sin = torch.cos(angles), torch.sin(angles)
    # affine_grid works in coordinates normalised to [-1, 1] per axis: the aspect ratio makes a true rotation.
    theta = torch.stack((torch.stack((cos, -sin * height / width, torch.zeros_like(cos)), 1),
                         torch.stack((sin * width / height, cos, torch.zeros_like(cos)), 1)), 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.round().to(x.dtype) if not x.dtype.is_floating_point else out.to(x.dtype)

"""Batch augmentation for image tensors, vectorised over the batch: a random shift (crop from a zero-padded copy, or
translation), a horizontal flip and a random rotation; for images stored larger than the model's input (ImageNet),
RandomResizedCrop + flip and the evaluation centre crop."""

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
    grid = F.affine_grid(theta.float(), list(x.shape), align_corners=False)
    return _sample(x, grid, "nearest", "zeros")


def _sample(x: torch.Tensor, grid: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    """x (N, C, H, W) sampled at `grid` (N, H', W', 2: F.grid_sample's normalised coordinates, pixel centres:
    align_corners=False), as x's dtype again (rounded for integer images)."""
    out = F.grid_sample(x.float(), grid, mode=mode, padding_mode=padding, align_corners=False)
    return out.to(x.dtype) if x.dtype.is_floating_point else out.round_().to(x.dtype)


# torchvision's RandomResizedCrop defaults: the crop covers 8-100 % of the image area with aspect ratio 3/4 to 4/3,
# drawn up to 10 times before falling back to the whole image (its ratio clamped to that range).
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3 / 4, 4 / 3)
RRC_ATTEMPTS = 10
# The evaluation view: torchvision's Resize(256) + CenterCrop(224), the centre 224/256 of the shorter side.
EVAL_FRACTION = 224 / 256


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator,
             device: torch.device) -> torch.Tensor:
    """Uniform draws in [low, high) from `generator`."""
    return torch.rand(shape, device=device, generator=generator, dtype=torch.float64) * (high - low) + low


def resized_crop_boxes(n: int, height: int, width: int, generator: torch.Generator,
                       device: torch.device) -> torch.Tensor:
    """RandomResizedCrop's boxes (N, 4) as (top, left, h, w) pixels: torchvision's rule, drawn for a whole batch."""
    area = height * width
    scale = _uniform((n, RRC_ATTEMPTS), *RRC_SCALE, generator, device)
    ratio = torch.exp(_uniform((n, RRC_ATTEMPTS), math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1]), generator, device))
    w = torch.round(torch.sqrt(area * scale * ratio))
    h = torch.round(torch.sqrt(area * scale / ratio))
    fits = (w >= 1) & (h >= 1) & (w <= width) & (h <= height)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # the first attempt that fits, as torchvision's loop takes
    w, h = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0]
    # Fallback: the whole image, its aspect ratio clamped to RRC_RATIO (torchvision's centre crop after 10 misses).
    aspect = width / height
    fw = width if aspect <= RRC_RATIO[1] else round(height * RRC_RATIO[1])
    fh = height if aspect >= RRC_RATIO[0] else round(width / RRC_RATIO[0])
    found = fits.any(1)
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))
    top = torch.floor(torch.rand(n, device=device, generator=generator, dtype=torch.float64) * (height - h + 1))
    left = torch.floor(torch.rand(n, device=device, generator=generator, dtype=torch.float64) * (width - w + 1))
    top = torch.where(found, top, torch.floor((height - h) / 2))
    left = torch.where(found, left, torch.floor((width - w) / 2))
    return torch.stack([top, left, h, w], 1)


def _resample(x: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None) -> torch.Tensor:
    """The boxes (N, 4: top, left, h, w) of x resized to size x size, flipped where `flip`, in x's dtype.

    Bilinear at half-pixel centres, source positions clamped to the image (F.grid_sample with border padding): output
    pixel j of a box reads source position start + (j + 1/2) length / size - 1/2. One batched kernel on every device;
    on a CPU it took about half the time of separable gathers or per-image matrix products (benchmarks/README.md).
    """
    _, _, height, width = x.shape
    top, left, h, w = boxes.to(torch.float64).unbind(1)
    # Normalised coordinates (-1 and 1 the image's outer edges) of the output's pixel centres: the box's extent scales
    # them, its centre moves them, a flip mirrors them. The map is axis-aligned, so the grid is two broadcast vectors
    # (F.affine_grid's batched product took as long as the sampling itself on a CPU).
    centres = (2 * torch.arange(size, device=x.device, dtype=torch.float64) + 1) / size - 1
    scale_x = w / width
    if flip is not None:
        scale_x = torch.where(flip, -scale_x, scale_x)
    across = scale_x[:, None] * centres + ((2 * left + w) / width - 1)[:, None]  # (N, size)
    down = (h / height)[:, None] * centres + ((2 * top + h) / height - 1)[:, None]
    grid = torch.empty((len(boxes), size, size, 2), device=x.device)
    grid[..., 0], grid[..., 1] = across[:, None, :], down[:, :, None]
    return _sample(x, grid, "bilinear", "border")


def random_resized_crop(x: torch.Tensor, size: int, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """torchvision's RandomResizedCrop(size) + RandomHorizontalFlip() on every image of a batch (N, C, H, W) at once.

    Boxes follow torchvision's rule (resized_crop_boxes); each is resized by bilinear interpolation without
    antialiasing (torchvision's tensor path with antialias=False; its PIL path smooths downscales, which for 224 crops
    of 256-pixel images are at most 256/224 = 1.14x).
    Draws come from `generator`, on x's device. Returns uint8 (N, C, size, size).
    """
    n, _, height, width = x.shape
    boxes = resized_crop_boxes(n, height, width, generator, x.device)
    flipped = torch.rand(n, device=x.device, generator=generator) < 0.5 if flip else None
    return _resample(x, boxes, size, flipped)


def centre_view(x: torch.Tensor, size: int) -> torch.Tensor:
    """The evaluation view of stored images (N, C, S, S): the centre round(S * 224/256) square resized to size x size
    (Resize(256) + CenterCrop(224) for S = 256 and size = 224, where it is a plain crop)."""
    stored = x.shape[-1]
    side = round(stored * EVAL_FRACTION)
    start = (stored - side) // 2
    crop = x[..., start : start + side, start : start + side]
    if side == size:
        return crop
    return F.interpolate(crop.float(), size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).round_().clamp_(0, 255).to(torch.uint8)


def train_view(x: torch.Tensor, generator: torch.Generator | None, crop: int | None, padding: int | None = None,
               translate: float | None = None) -> torch.Tensor:
    """A training batch as the model sees it: with a crop size, RandomResizedCrop + flip (or the centre view when not
    augmenting); without, the random shift + flip of crop_flip (or the batch itself)."""
    if crop is not None:
        return centre_view(x, crop) if generator is None else random_resized_crop(x, crop, generator)
    return x if generator is None else crop_flip(x, generator, padding=padding, translate=translate)

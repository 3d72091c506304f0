"""Batch augmentation for image tensors, vectorised over the batch: a random shift (crop from a zero-padded copy, or
translation) and a horizontal flip; for images stored larger than the model's input (ImageNet), RandomResizedCrop +
flip and the evaluation centre crop."""

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


def _taps(start: torch.Tensor, length: torch.Tensor, size: int, out: int,
          flip: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps resizing the spans [start, start + length) of an axis of `size` pixels to `out` per image:
    the lower and upper source pixel (N, out) and the upper one's weight (half-pixel centres, edges clamped:
    F.grid_sample's bilinear with border padding), reversed where `flip`."""
    positions = torch.arange(out, device=start.device, dtype=torch.float64) + 0.5
    source = start[:, None] + positions[None, :] * (length / out)[:, None] - 0.5
    if flip is not None:
        source = torch.where(flip[:, None], source.flip(1), source)
    source = source.clamp(0, size - 1)
    low = source.floor()
    weight = (source - low).float()
    low = low.long()
    return low, (low + 1).clamp(max=size - 1), weight


def _resample(x: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None) -> torch.Tensor:
    """The boxes (N, 4: top, left, h, w) of x resized to size x size, flipped where `flip`, as uint8 again.

    Bilinear and separable: columns, then rows, each two gathers and a blend per output pixel (a per-image matrix
    product would cost `size` times more arithmetic; F.grid_sample several times more time on a CPU).
    """
    n, channels, height, width = x.shape
    top, left, h, w = boxes.unbind(1)
    low, high, weight = _taps(left, w, width, size, flip)
    shape = (n, channels, height, size)
    a = x.gather(3, low[:, None, None, :].expand(shape)).float()
    b = x.gather(3, high[:, None, None, :].expand(shape)).float()
    columns = torch.lerp(a, b, weight[:, None, None, :])  # (N, C, H, size)
    low, high, weight = _taps(top, h, height, size, None)
    shape = (n, channels, size, size)
    a = columns.gather(2, low[:, None, :, None].expand(shape))
    b = columns.gather(2, high[:, None, :, None].expand(shape))
    return torch.lerp(a, b, weight[:, None, :, None]).round_().clamp_(0, 255).to(torch.uint8)


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

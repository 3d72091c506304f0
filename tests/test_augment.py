"""Tests for deep.augment: the vectorised crop + flip equals the per-sample definition and is seeded."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.augment import (_resample, centre_view, crop_flip, default_padding, random_resized_crop, resized_crop_boxes,
                          train_view)


def _images(n: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, 256, (n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _candidates(image: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Every crop of the zero-padded image, flipped and not: what RandomCrop + RandomHorizontalFlip can give."""
    _, h, w = image.shape
    padded = F.pad(image, (pad, pad, pad, pad))
    crops = [padded[:, top : top + h, left : left + w] for top in range(2 * pad + 1) for left in range(2 * pad + 1)]
    return crops + [crop.flip(-1) for crop in crops]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 5), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
    pad=st.integers(0, 3), seed=st.integers(0, 2**31),
)
def test_each_output_is_a_padded_crop_maybe_flipped(n: int, c: int, h: int, w: int, pad: int, seed: int) -> None:
    x = _images(n, c, h, w, seed)
    out = crop_flip(x, torch.Generator().manual_seed(seed), padding=pad)
    assert out.shape == x.shape and out.dtype == x.dtype
    for image, result in zip(x, out):
        assert any(torch.equal(result, candidate) for candidate in _candidates(image, pad))


def test_crop_shifts_stay_within_padding_and_cover_it() -> None:
    x = _images(400, 1, 8, 8)
    out = crop_flip(x, torch.Generator().manual_seed(1), padding=2, flip=False)
    shifts = set()
    for image, result in zip(x, out):
        matches = [i for i, candidate in enumerate(_candidates(image, 2)[:25]) if torch.equal(result, candidate)]
        assert matches, "output is not a crop of the padded image"
        shifts.add(divmod(matches[0], 5))
    assert shifts == {(top, left) for top in range(5) for left in range(5)}


def test_flip_really_flips_about_half() -> None:
    x = _images(200, 3, 6, 6)
    out = crop_flip(x, torch.Generator().manual_seed(2), padding=0)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((flipped | same).all())
    assert 60 < int(flipped.sum()) < 140
    assert torch.equal(crop_flip(x, torch.Generator().manual_seed(2), padding=0, flip=False), x)


def test_seeded() -> None:
    x = _images(32, 3, 16, 16)
    a = crop_flip(x, torch.Generator().manual_seed(5))
    b = crop_flip(x, torch.Generator().manual_seed(5))
    c = crop_flip(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_float_images_and_default_padding() -> None:
    x = torch.rand(4, 3, 32, 32)
    out = crop_flip(x, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert default_padding(32) == 4 and default_padding(64) == 8 and default_padding(224) == 28


def test_rejects_non_image_batches() -> None:
    with pytest.raises(ValueError, match="N, C, H, W"):
        crop_flip(torch.zeros(4, 10), torch.Generator())
    with pytest.raises(ValueError, match="padding"):
        crop_flip(torch.zeros(1, 1, 4, 4), torch.Generator(), padding=-1)


def test_translate_follows_random_affine_shift_distribution() -> None:
    """translate=t shifts by round(U(-t H, t H)) pixels with zero fill: at t = 0.15 on 32 px, shifts -5..5 with the
    outer two rare (each (4.8 - 4.5) / 9.6 of the mass), as torchvision's RandomAffine(translate=(0.15, 0.15))."""
    n, size = 4000, 32
    x = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    x[:, :, size // 2, size // 2] = 255  # one bright pixel: where it lands is the shift
    out = crop_flip(x, torch.Generator().manual_seed(0), translate=0.15, flip=False)
    rows, cols = (out[:, 0] == 255).nonzero()[:, 1], (out[:, 0] == 255).nonzero()[:, 2]
    assert len(rows) == n  # never shifted out of the image at 15%
    shifts = torch.cat([rows, cols]) - size // 2
    assert int(shifts.abs().max()) == 5
    outer = float((shifts.abs() == 5).float().mean())
    assert outer == pytest.approx(2 * 0.3 / 9.6, abs=0.02)
    inner = torch.bincount(shifts[shifts.abs() < 5] + 4, minlength=9).float() / len(shifts)
    assert torch.allclose(inner, torch.full((9,), 1 / 9.6), atol=0.015)  # uniform over -4..4


def test_translate_and_padding_are_validated() -> None:
    with pytest.raises(ValueError, match="translate"):
        crop_flip(_images(2, 1, 8, 8), torch.Generator(), translate=1.5)


def test_resized_crop_boxes_follow_torchvisions_ranges() -> None:
    generator = torch.Generator().manual_seed(0)
    boxes = resized_crop_boxes(4000, 60, 80, generator, torch.device("cpu"))
    top, left, h, w = boxes.unbind(1)
    assert bool((top >= 0).all() and (left >= 0).all() and (top + h <= 60).all() and (left + w <= 80).all())
    area = h * w / (60 * 80)
    # Rounded sides: the area and aspect ratio keep their ranges up to a pixel.
    assert float(area.min()) > 0.08 * 0.8 and float(area.max()) <= 1.0
    ratio = w / h
    assert float(ratio.min()) > 0.75 * 0.85 and float(ratio.max()) < 4 / 3 * 1.15
    assert len(set(zip(top.tolist(), left.tolist()))) > 1000  # positions vary
    again = resized_crop_boxes(4000, 60, 80, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert torch.equal(boxes, again)


def test_resampling_a_whole_image_is_the_identity_and_flips_exactly() -> None:
    x = torch.randint(0, 256, (3, 3, 12, 12), dtype=torch.uint8)
    whole = torch.tensor([[0.0, 0.0, 12.0, 12.0]] * 3, dtype=torch.float64)
    assert torch.equal(_resample(x, whole, 12, None), x)
    assert torch.equal(_resample(x, whole, 12, torch.tensor([True, False, True])),
                       torch.stack([x[0].flip(-1), x[1], x[2].flip(-1)]))
    half = torch.tensor([[0.0, 0.0, 6.0, 6.0]] * 3, dtype=torch.float64)  # a corner, upscaled 2x
    up = _resample(x, half, 12, None).int()
    assert up[:, :, 0, 0].equal(x[:, :, 0, 0].int()) and up.min() >= x[:, :, :6, :6].int().amin((1, 2, 3)).min()


def test_resampling_a_box_at_least_the_output_size_is_crop_then_bilinear_resize() -> None:
    # torchvision's tensor path (crop, then F.interpolate without antialiasing): for boxes no smaller than the output
    # every source position lies inside the box, so clamping at the image's or the box's edge is the same.
    x = torch.randint(0, 256, (4, 3, 40, 50), dtype=torch.uint8)
    boxes = torch.tensor([[0, 0, 40, 50], [3, 7, 20, 31], [10, 2, 17, 16], [5, 20, 35, 30]], dtype=torch.float64)
    out = _resample(x, boxes, 16, torch.tensor([False, True, False, True]))
    for i, (top, left, h, w) in enumerate(boxes.long().tolist()):
        crop = x[i : i + 1, :, top : top + h, left : left + w].float()
        expected = F.interpolate(crop, size=(16, 16), mode="bilinear", align_corners=False).round()[0]
        expected = expected.flip(-1) if i % 2 else expected
        assert (out[i].int() - expected.int()).abs().max() <= 1  # float32 rounding of the sampling grid


def test_random_resized_crop_and_the_centre_view() -> None:
    x = torch.randint(0, 256, (5, 3, 256, 256), dtype=torch.uint8)
    out = random_resized_crop(x, 224, torch.Generator().manual_seed(1))
    assert out.shape == (5, 3, 224, 224) and out.dtype == torch.uint8
    assert torch.equal(centre_view(x, 224), x[:, :, 16:240, 16:240])  # Resize(256) + CenterCrop(224)
    assert centre_view(x[:, :, :64, :64], 56).shape == (5, 3, 56, 56)
    assert train_view(x, None, 224).shape == (5, 3, 224, 224)

"""Every image mode decodes to its values (deep.data.images.decode): tiny files written with Pillow, known pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deep.data.images import ImageModeError, decode


def _decoded(path: Path) -> np.ndarray:
    return np.asarray(decode(path))


def test_16_bit_is_scaled_by_its_range_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "grey16.png"
    Image.fromarray(np.array([[0, 257, 32768, 65535]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode in ("I;16", "I")
    # v * 255 / 65535 rounded: PIL's own convert clips everything above 255 to white.
    np.testing.assert_array_equal(_decoded(path)[0, :, 0], [0, 1, 128, 255])
    assert (_decoded(path)[..., 0] == _decoded(path)[..., 2]).all()


def test_palette_with_transparency_is_composited_over_black(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.save(path, transparency=0)  # palette entry 0 (red) is fully transparent
    np.testing.assert_array_equal(_decoded(path)[0], [[0, 0, 0], [0, 0, 255]])


def test_cmyk_converts_by_its_formula(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.tiff"
    image = Image.new("CMYK", (3, 1))
    for x, value in enumerate([(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255)]):
        image.putpixel((x, 0), value)
    image.save(path)
    np.testing.assert_array_equal(_decoded(path)[0], [[255, 255, 255], [0, 255, 255], [0, 0, 0]])


@pytest.mark.parametrize("mode, pixel, expected", [
    ("LA", (200, 128), (100, 100, 100)),  # 200 * 128 / 255 = 100.4
    ("RGBA", (200, 100, 50, 128), (100, 50, 25)),
    ("RGBA", (200, 100, 50, 255), (200, 100, 50)),
    ("RGBA", (200, 100, 50, 0), (0, 0, 0)),
])
def test_alpha_is_premultiplied(tmp_path: Path, mode: str, pixel: tuple, expected: tuple) -> None:
    path = tmp_path / f"{mode}.png"
    Image.new(mode, (1, 1), pixel).save(path)
    np.testing.assert_array_equal(_decoded(path)[0, 0], expected)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.png"
    image = Image.new("RGB", (2, 1))
    image.putpixel((0, 0), (255, 0, 0))
    image.putpixel((1, 0), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(path, exif=exif)
    decoded = _decoded(path)
    assert decoded.shape == (2, 1, 3)  # 2 wide, 1 high on disk; 1 wide, 2 high as displayed
    np.testing.assert_array_equal(decoded[:, 0], [[255, 0, 0], [0, 0, 255]])


@pytest.mark.parametrize("mode, values", [
    ("F", np.array([[0.5, 2.0]], dtype=np.float32)),
    ("I", np.array([[0, 70000]], dtype=np.int32)),
])
def test_modes_without_an_8_bit_meaning_are_refused_naming_file_and_mode(tmp_path: Path, mode: str,
                                                                         values: np.ndarray) -> None:
    path = tmp_path / f"{mode}.tiff"
    Image.fromarray(values, mode).save(path)
    with pytest.raises(ImageModeError, match=rf"{path}: .*mode {mode}"):
        decode(path)

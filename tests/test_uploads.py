"""Uploads are decoded upright: the EXIF orientation tag of phone photos is applied, so the
array looks as an image viewer shows the photo (both pages decode with load_image_bytes)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from stn_explore.explorer import playground as pg

ORIENTATION = 0x0112


def photo(width: int, height: int, orientation: int | None, mode: str = "L") -> tuple[bytes, np.ndarray]:
    """A JPEG stored ``width × height`` with a white block in its stored top-left corner and
    the given EXIF orientation tag; also the stored pixels as an ``(H, W)`` array."""
    stored = np.zeros((height, width), np.uint8)
    stored[: height // 4, : width // 4] = 255
    im = Image.fromarray(stored).convert(mode)
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    im.save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue(), stored


def corners(img: np.ndarray) -> dict[str, float]:
    """Mean brightness of each corner region (an eighth of each side)."""
    if img.ndim == 3:
        img = img.mean(axis=2)
    h, w = img.shape[0] // 8, img.shape[1] // 8
    return {"top-left": img[:h, :w].mean(), "top-right": img[:h, -w:].mean(),
            "bottom-left": img[-h:, :w].mean(), "bottom-right": img[-h:, -w:].mean()}


def bright_corner(img: np.ndarray) -> str:
    c = corners(img)
    best = max(c, key=c.get)
    assert c[best] > 0.8 and all(v < 0.2 for k, v in c.items() if k != best), c
    return best


# the viewer's picture of the stored pixels, per the EXIF/TIFF definition of the tag
VIEWED = {
    1: lambda a: a,
    3: lambda a: np.rot90(a, 2),          # stored upside down
    6: lambda a: np.rot90(a, -1),         # viewer turns it 90° clockwise (phone held upright)
    8: lambda a: np.rot90(a, 1),          # viewer turns it 90° counter-clockwise
    2: lambda a: a[:, ::-1],              # mirrored
}


@pytest.mark.parametrize("orientation", sorted(VIEWED))
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_upload_is_decoded_as_a_viewer_shows_it(orientation, mode):
    data, stored = photo(60, 40, orientation, mode)
    img, note = pg.load_image_bytes(data)
    expected = VIEWED[orientation](stored) / 255.0
    assert img.shape[:2] == expected.shape and note is None
    assert img.ndim == (2 if mode == "L" else 3)
    assert bright_corner(img) == bright_corner(expected)


def test_portrait_phone_photo_is_40_wide_and_60_high():
    data, _ = photo(60, 40, 6)
    img, _ = pg.load_image_bytes(data)
    assert img.shape == (60, 40)
    assert bright_corner(img) == "top-right"  # the stored top-left corner, turned clockwise


def test_downscale_note_gives_the_upright_size():
    data, _ = photo(600, 400, 8)
    img, note = pg.load_image_bytes(data, max_side=256)
    assert img.shape == (256, 171)
    assert "downscaled from 400×600 to 171×256" in note


def test_an_unreadable_orientation_keeps_the_stored_image():
    data, stored = photo(60, 40, 99)  # not one of 1–8
    img, _ = pg.load_image_bytes(data)
    assert img.shape == stored.shape

"""The image upload that /playground and /compare share: decoded by ``stn_explore``, errors
shown in the page.

Every uploaded file is hostile until decoded: :func:`decode_upload` turns anything that is not
a usable image into an :class:`~stn_explore.explorer.playground.ImageInputError` with a clear
message (Pillow raises many exception types on damaged files, and ``DecompressionBombError``
is not a ``ValueError``), bounds how many decodes run at once (each can take a few hundred
MB for a 40-megapixel image), and :func:`display_name` keeps a file name from being read as
Markdown or HTML wherever the pages show it.
"""

from __future__ import annotations

import io
import re
import threading
import unicodedata
from typing import Callable

import numpy as np
import streamlit as st

#: largest accepted upload, in MB; the server refuses larger requests too
#: (``server.maxUploadSize`` in .streamlit/config.toml, kept equal)
UPLOAD_LIMIT_MB = 20
#: decodes running at once in this server process; more sessions wait their turn, so the
#: memory of decoding stays bounded however many students upload together
DECODE_SLOTS = 2
_slots = threading.BoundedSemaphore(DECODE_SLOTS)
#: file names are shown at most this long
NAME_CHARS = 80
#: what can start Markdown, HTML, LaTeX or a Streamlit directive inside a line of text
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>!$~|:])")


def display_name(name: str) -> str:
    """A file name as the pages may show it in Markdown, HTML or plain text: letters, digits,
    spaces and ``. - _ ( ) , +`` kept, control and format characters dropped, every other
    character (markup, quotes, slashes) replaced by ``_``; at most :data:`NAME_CHARS`
    characters (a long name keeps its extension)."""
    name = unicodedata.normalize("NFC", str(name))
    safe = "".join(c if c.isalnum() or c in " .-_(),+" else "_" for c in name
                   if not unicodedata.category(c).startswith("C")).strip() or "upload"
    if len(safe) <= NAME_CHARS:
        return safe
    stem, dot, ext = safe.rpartition(".")
    ext = dot + ext if stem and len(ext) <= 8 else ""
    return safe[:NAME_CHARS - 1 - len(ext)] + "…" + ext


def escape_markdown(text: str) -> str:
    """``text`` on one line, with the characters that start Markdown, HTML, LaTeX (``$``) or a
    Streamlit directive (``:red[…]``) backslash-escaped, for ``st.error``/``st.caption``."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


def decode_upload(data: bytes) -> tuple[np.ndarray, str | None]:
    """``load_image_bytes`` of an upload, guarded: the size limit, at most :data:`DECODE_SLOTS`
    decodes at once, 16-bit and transparent images converted first (see :func:`_prepare`), and
    any failure raised as ``ImageInputError`` with a message for the page.
    Returns ``(image, note)``."""
    from PIL import Image

    from stn_explore.explorer.playground import MAX_UPLOAD_PIXELS, ImageInputError, load_image_bytes

    if len(data) > UPLOAD_LIMIT_MB * 1024 * 1024:
        raise ImageInputError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {UPLOAD_LIMIT_MB} MB")
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or head.startswith(b"<?xml") and b"<svg" in data[:4096].lower():
        raise ImageInputError("SVG is a vector format and is not decoded here; export it as PNG first")
    with _slots:
        try:
            data, notes = _prepare(data)
            img, note = load_image_bytes(data)
        except ImageInputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            size = f" declares {int(pixels.group(1)) / 1e6:,.0f} megapixels" if pixels else " is too large"
            raise ImageInputError(f"the image{size} (a decompression bomb?); the limit is "
                                  f"{MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels") from None
        except MemoryError:
            raise ImageInputError("the image is too large to decode on this server") from None
        except Exception as exc:  # noqa: BLE001 — a damaged file makes Pillow raise almost anything
            raise ImageInputError(f"the image could not be decoded ({type(exc).__name__}); is the file "
                                  f"damaged or truncated?") from None
    notes = [*notes, note] if note else notes
    return img, "; ".join(notes) or None


def _prepare(data: bytes) -> tuple[bytes, list[str]]:
    """The bytes to decode, and notes for the page. Most files pass unchanged; two kinds are
    re-encoded (as an uncompressed PNG keeping the EXIF orientation) because a plain
    conversion to 8-bit grey or RGB would lose the picture:

    * 16-bit (and 32-bit) greyscale: Pillow's conversion to 8 bits clips at 255, turning all
      but the darkest tones white; here the values are scaled to 0–255 instead;
    * transparency (RGBA, LA, palette or greyscale with a transparent colour): dropping the
      alpha channel shows what happens to be stored under transparent pixels — often black,
      which hides a black digit drawn on a transparent background; here transparent areas are
      composited onto white, as an image viewer shows them.
    """
    from PIL import Image

    from stn_explore.explorer.playground import MAX_UPLOAD_PIXELS

    notes: list[str] = []
    try:
        im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise
    except Exception:  # noqa: BLE001 — not an image: load_image_bytes says so in its words
        return data, notes
    with im:
        if im.width * im.height > MAX_UPLOAD_PIXELS:
            return data, notes   # refused by load_image_bytes with its message, before decoding
        frames = getattr(im, "n_frames", 1)
        if frames > 1 and im.format in ("GIF", "PNG", "WEBP"):
            notes.append(f"an animation of {frames} frames: the first one is used")
        high_depth = im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
        alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
        if not (high_depth or alpha):
            return data, notes
        exif = im.getexif()
        im.load()
        if high_depth:
            a = np.asarray(im, dtype=np.float64)
            top = 1.0 if im.mode == "F" and a.max(initial=0) <= 1.0 else 65535.0
            out = Image.fromarray(np.clip(np.rint(a / top * 255), 0, 255).astype(np.uint8), "L")
            notes.append(f"{'floating-point' if im.mode == 'F' else '16-bit'} greyscale scaled to 8 bits")
        else:
            rgba = im.convert("RGBA")
            out = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
            if _is_grey(out):
                out = out.convert("L")
            notes.append("transparent areas shown as white")
    buf = io.BytesIO()
    out.save(buf, format="PNG", compress_level=0, exif=exif)
    return buf.getvalue(), notes


def _is_grey(rgba) -> bool:
    a = np.asarray(rgba)
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def image_input(key: str, fallback: Callable[[], tuple[np.ndarray, str]] | None = None,
                label: str = "image (PNG, JPEG, …)",
                empty_note: str = "Upload an image, or pick another input. Showing the checkerboard meanwhile."):
    """A file uploader whose file is decoded by ``stn_explore`` (float image in [0, 1], large
    images downscaled); a file that is not a whole image gets a message naming it.

    Returns ``(image, "name W×H")`` — the name made safe by :func:`display_name`; without a
    usable file, ``fallback()`` (with a note: why) or None when there is no fallback.
    """
    from stn_explore.explorer.playground import MAX_SIDE, MAX_UPLOAD_PIXELS

    up = st.file_uploader(label, key=key, max_upload_size=UPLOAD_LIMIT_MB,
                          help=f"up to {UPLOAD_LIMIT_MB} MB; larger images are downscaled to {MAX_SIDE} px; "
                               f"over {MAX_UPLOAD_PIXELS // 1_000_000} MP are refused")
    failed = ""
    if up is None:
        st.info(empty_note)
    else:
        name = display_name(up.name)
        if up.size > UPLOAD_LIMIT_MB * 1024 * 1024:   # the widget's own limit, enforced here too
            img, note, error = None, None, f"the file is {up.size / 2**20:.1f} MB; the limit is {UPLOAD_LIMIT_MB} MB"
        else:
            img, note, error = _decode_upload(up.getvalue())
        if error is not None:
            st.error(f"**{escape_markdown(name)}**: {escape_markdown(error)}")
            failed = " (upload failed)"
        else:
            if note:
                st.caption(escape_markdown(note))
            return img, f"{name} {img.shape[1]}×{img.shape[0]}"
    if fallback is None:
        return None
    img, name = fallback()
    return img, name + failed


@st.cache_data(show_spinner=False, max_entries=8)
def _decode_upload(data: bytes) -> tuple[np.ndarray | None, str | None, str | None]:
    """``(image, note, None)``, or ``(None, None, message)``: failures are cached too, so a bad
    file is not decoded again at every rerun while it stays in the uploader."""
    from stn_explore.explorer.playground import ImageInputError

    try:
        return (*decode_upload(data), None)
    except ImageInputError as exc:
        return None, None, str(exc)

"""The image upload that /playground and /compare share: decoded by ``stn_explore``, errors
shown in the page."""

from __future__ import annotations

from typing import Callable

import numpy as np
import streamlit as st


@st.cache_data(show_spinner=False, max_entries=8)
def _decode_upload(data: bytes):
    from stn_explore.explorer.playground import load_image_bytes

    return load_image_bytes(data)


def image_input(key: str, fallback: Callable[[], tuple[np.ndarray, str]] | None = None,
                label: str = "image (PNG, JPEG, …)",
                empty_note: str = "Upload an image, or pick another input. Showing the checkerboard meanwhile."):
    """A file uploader whose file is decoded by ``stn_explore`` (float image in [0, 1], large
    images downscaled); a file that is not a whole image gets a message naming it.

    Returns ``(image, "name W×H")``; without a usable file, ``fallback()`` (with a note: why)
    or None when there is no fallback.
    """
    from stn_explore.explorer.playground import MAX_SIDE, MAX_UPLOAD_PIXELS

    up = st.file_uploader(label, key=key, help=f"larger images are downscaled to {MAX_SIDE} px; "
                                               f"over {MAX_UPLOAD_PIXELS // 1_000_000} MP are refused")
    failed = ""
    if up is None:
        st.info(empty_note)
    else:
        try:
            img, note = _decode_upload(up.getvalue())
        except ValueError as exc:
            st.error(f"**{up.name}**: {exc}")
            failed = " (upload failed)"
        else:
            if note:
                st.caption(note)
            return img, f"{up.name} {img.shape[1]}×{img.shape[0]}"
    if fallback is None:
        return None
    img, name = fallback()
    return img, name + failed

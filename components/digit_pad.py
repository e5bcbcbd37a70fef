"""Draw a digit with the mouse, a finger or a pen (components v2, see digit_pad.js).

The browser draws white strokes on black (as MNIST) and, when a stroke ends, sends the
drawing downscaled to ``OUT``×``OUT`` grayscale pixels; Python turns it into an MNIST-style
digit with :func:`stn_explore.explorer.compare.prepare_digit`, like an uploaded image.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import streamlit as st

SIZE = 224  # drawing surface, CSS pixels
OUT = 56  # side of the grayscale image sent to Python
BRUSH = 24  # stroke width, CSS pixels (MNIST strokes are ~2–3 px of a 20 px digit)

HTML = """
<div class="stn-pad">
  <canvas class="stn-pad-canvas" role="img"
          aria-label="drawing surface: draw one digit with the mouse, a finger or a pen"></canvas>
  <div class="stn-pad-bar">
    <button type="button" class="stn-pad-clear">Clear</button>
    <span class="stn-pad-msg" role="status" aria-live="polite"></span>
  </div>
</div>
"""

CSS = """
.stn-pad-canvas { background: #000; touch-action: none; cursor: crosshair; border-radius: 4px;
  border: 1px solid var(--st-border-color, #ccc); display: block; }
.stn-pad-bar { display: flex; gap: 12px; align-items: center; margin-top: 6px; font-family: var(--st-font); }
.stn-pad-clear { font: inherit; padding: 2px 12px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--st-border-color, #ccc); background: var(--st-secondary-background-color, #f0f2f6);
  color: var(--st-text-color, #000); }
.stn-pad-clear:focus { outline: 3px solid var(--st-primary-color, #ff4b4b); outline-offset: 2px; }
.stn-pad-msg { font-size: 0.9em; color: var(--st-text-color, #000); opacity: 0.7; }
"""

_COMPONENT = st.components.v2.component(
    "stn_digit_pad", html=HTML, css=CSS, js=(Path(__file__).with_suffix(".js")).read_text())


def decode_drawing(payload) -> np.ndarray | None:
    """The pad's state value → ``(H, W)`` floats in [0, 1] (white ink on black), or None when
    nothing is drawn. Raises ValueError for a malformed payload (it comes from the browser)."""
    if not payload or not isinstance(payload, dict) or payload.get("empty"):
        return None
    try:
        w, h = int(payload["w"]), int(payload["h"])
        raw = base64.b64decode(payload["pixels"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the drawing could not be read ({exc})") from exc
    if not (2 <= w <= 4 * OUT and 2 <= h <= 4 * OUT) or len(raw) != w * h:
        raise ValueError(f"the drawing could not be read ({len(raw)} bytes for {w}×{h} pixels)")
    return np.frombuffer(raw, dtype=np.uint8).reshape(h, w).astype(np.float64) / 255.0


def digit_pad(*, key: str, on_change=lambda: None) -> np.ndarray | None:
    """Mount the pad; returns the current drawing as ``(OUT, OUT)`` floats in [0, 1] (see
    :func:`decode_drawing`) or None when it is empty."""
    previous = st.session_state.get(key)  # the component's state from the last run (a mapping)
    try:
        restore = previous["drawing"]
    except (KeyError, TypeError):
        restore = None
    data = {"size": SIZE, "out": OUT, "brush": BRUSH, "restore": restore}
    result = _COMPONENT(key=key, data=data, on_drawing_change=on_change, width="content")
    return decode_drawing(result.drawing if result is not None else None)

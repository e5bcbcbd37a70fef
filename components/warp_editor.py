"""Drag the sampling region and see V change while you drag (components v2, see warp_editor.js).

The browser renders a preview on every pointer move; on release it sends the parameters,
and Python — the source of truth — recomputes V with stn_explore and updates the page.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import streamlit as st

HTML = """
<div class="stn-editor">
  <div class="stn-row">
    <div class="stn-u" aria-label="input U with the sampling region">
      <canvas class="stn-u-img"></canvas>
      <canvas class="stn-overlay"></canvas>
      <div class="stn-handles"></div>
    </div>
    <canvas class="stn-v" aria-label="output V (preview)"></canvas>
  </div>
  <div class="stn-msg" role="status" aria-live="polite"></div>
</div>
"""

CSS = """
.stn-row { display: flex; gap: 16px; align-items: flex-start; }
.stn-u { position: relative; background: #808080; touch-action: none; overflow: hidden; }
.stn-u canvas { position: absolute; left: 0; top: 0; }
.stn-u-img, .stn-v { image-rendering: pixelated; }
.stn-overlay { pointer-events: none; }
.stn-handles { position: absolute; inset: 0; }
.stn-v { background: #000; }
.stn-handle { position: absolute; width: 14px; height: 14px; margin: -9px 0 0 -9px; border-radius: 50%;
  background: #ffd000; border: 2px solid #111; cursor: grab; touch-action: none; }
.stn-handle.stn-centre { background: #ffffff; }
.stn-handle.stn-rot { background: #ff4b4b; }
.stn-handle:focus { outline: 3px solid var(--st-primary-color, #ff4b4b); outline-offset: 2px; }
.stn-handle:active { cursor: grabbing; }
.stn-msg { min-height: 1.4em; font-size: 0.9em; color: var(--st-red-color, #c00); margin-top: 4px; }
"""

_COMPONENT = st.components.v2.component(
    "stn_warp_editor", html=HTML, css=CSS, js=(Path(__file__).with_suffix(".js")).read_text())


def _image_payload(image: np.ndarray) -> dict:
    arr = (np.clip(np.asarray(image, dtype=np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    c = 3 if arr.ndim == 3 else 1
    return {"w": int(arr.shape[1]), "h": int(arr.shape[0]), "c": c,
            "pixels": base64.b64encode(arr.tobytes()).decode("ascii")}


def warp_editor(image: np.ndarray, kind: str, values, out_size: tuple[int, int], *, key: str,
                on_change, px: float, vpx: float, pad: int, server_v: np.ndarray | None = None) -> dict | None:
    """Mount the editor. ``values``: affine θ (2×3), attention (s, tx, ty), projective source
    corners (4×2: TL, TR, BR, BL) or TPS source points (16×2), as nested lists.
    ``server_v``: V as computed by stn_explore for these values; the editor shows it once
    the pointer is released (the server-confirmed output).

    Returns the last released parameters ``{"kind", "values", "nonce"}`` (or None).
    """
    values = np.round(np.asarray(values, dtype=np.float64), 6).tolist()
    image_payload = _image_payload(image)
    # A new version tells the browser that Python changed the parameters (adopt them).
    # (the whole image counts: MNIST digits all start with the same blank rows)
    digest = hashlib.sha1(json.dumps([kind, values, list(out_size), image_payload["w"],
                                      image_payload["h"], image_payload["c"]]).encode())
    digest.update(image_payload["pixels"].encode("ascii"))
    version = digest.hexdigest()[:16]
    data = {"kind": kind, "params": values, "out": [int(out_size[0]), int(out_size[1])],
            "image": image_payload, "px": px, "vpx": vpx, "pad": pad, "version": version,
            "server_v": _image_payload(server_v) if server_v is not None else None}
    result = _COMPONENT(key=key, data=data, on_params_change=on_change, width="content")
    return result.params if result is not None else None

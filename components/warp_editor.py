"""The θ controls of /playground in one browser component (components v2, see warp_editor.js):
sliders, editable θ and presets, the input U with draggable handles on the sampling region,
and the output V.

The browser previews every move itself — each input event of a slider, each pointer move of a
handle — recomputing the grid and V (bilinear, zero padding, as ``stn_explore.sample``) at
display rate. On release (a slider's change event, a pointer up, a key press, a preset click,
an edited θ) it sends its whole state to Python, which — the source of truth — applies it
(``playground_state.apply_editor``), recomputes V with ``stn_explore`` and sends it back; the
editor then draws the server's V.
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
  <div class="stn-panel">
    <div class="stn-presets" role="group" aria-label="presets"></div>
    <div class="stn-sliders"></div>
    <div class="stn-theta"></div>
  </div>
  <div class="stn-views">
    <figure class="stn-ufig">
      <figcaption class="stn-utitle">U with T<sub>θ</sub>(G)</figcaption>
      <div class="stn-u" aria-label="input U with the sampling region">
        <canvas class="stn-u-img"></canvas>
        <canvas class="stn-overlay"></canvas>
        <div class="stn-handles"></div>
      </div>
    </figure>
    <figure class="stn-vfig">
      <figcaption class="stn-vtitle"></figcaption>
      <canvas class="stn-v" aria-label="output V"></canvas>
      <div class="stn-vsrc"></div>
    </figure>
  </div>
  <div class="stn-msg" role="status" aria-live="polite"></div>
</div>
"""

CSS = """
.stn-editor { display: flex; flex-wrap: wrap; gap: 12px 28px; align-items: flex-start;
  font-family: var(--st-font, sans-serif); font-size: 14px; color: var(--st-text-color, #31333f); }
.stn-panel { flex: 1 1 300px; min-width: 260px; max-width: 440px; display: flex; flex-direction: column; gap: 6px; }
.stn-views { flex: 100 1 360px; min-width: 0; display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
.stn-views figure { margin: 0; }
.stn-views figcaption { font-weight: 600; margin: 0 0 4px; white-space: nowrap; }
.stn-ufig, .stn-vfig { flex: none; }
.stn-presets { display: flex; flex-wrap: wrap; gap: 6px; }
.stn-presets button, .stn-panel button { font: inherit; padding: 3px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid rgba(49, 51, 63, 0.25); background: var(--st-background-color, #fff); color: inherit;
  white-space: nowrap; }
.stn-presets button:hover { border-color: var(--st-primary-color, #ff4b4b); color: var(--st-primary-color, #ff4b4b); }
.stn-sliders { display: grid; grid-template-columns: minmax(8.5em, max-content) minmax(90px, 1fr) 4.2em;
  gap: 2px 10px; align-items: center; }
.stn-sliders label { white-space: nowrap; }
.stn-sliders input[type=range] { width: 100%; margin: 0; accent-color: var(--st-primary-color, #ff4b4b); }
.stn-sliders output { font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
.stn-sliders select { font: inherit; }
.stn-note { grid-column: 1 / -1; font-size: 12.5px; opacity: 0.8; margin: -1px 0 4px; }
.stn-theta { display: grid; grid-template-columns: auto repeat(3, minmax(0, 5.6em)); gap: 3px 6px; align-items: center; }
.stn-theta:empty { display: none; }
.stn-theta .stn-theta-title { grid-column: 1 / -1; font-size: 13px; }
.stn-theta input { font: inherit; width: 100%; box-sizing: border-box; padding: 2px 4px;
  font-variant-numeric: tabular-nums; }
.stn-u { position: relative; background: #808080; touch-action: none; overflow: hidden; }
.stn-u canvas { position: absolute; left: 0; top: 0; }
.stn-u-img, .stn-v { image-rendering: pixelated; }
.stn-overlay { pointer-events: none; }
.stn-handles { position: absolute; inset: 0; }
.stn-v { background: #000; display: block; }
.stn-vsrc { font-size: 12px; opacity: 0.75; margin-top: 2px; }
.stn-handle { position: absolute; width: 14px; height: 14px; margin: -9px 0 0 -9px; border-radius: 50%;
  background: #ffd000; border: 2px solid #111; cursor: grab; touch-action: none; }
.stn-handle.stn-centre { background: #ffffff; }
.stn-handle.stn-rot { background: #ff4b4b; }
.stn-handle:focus { outline: 3px solid var(--st-primary-color, #ff4b4b); outline-offset: 2px; }
.stn-handle:active { cursor: grabbing; }
.stn-msg { flex-basis: 100%; min-height: 1.4em; font-size: 0.9em; color: var(--st-red-color, #c00); }
"""

_COMPONENT = st.components.v2.component(
    "stn_warp_editor", html=HTML, css=CSS, js=(Path(__file__).with_suffix(".js")).read_text())


def _image_payload(image: np.ndarray) -> dict:
    arr = (np.clip(np.asarray(image, dtype=np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    c = 3 if arr.ndim == 3 else 1
    return {"w": int(arr.shape[1]), "h": int(arr.shape[0]), "c": c,
            "pixels": base64.b64encode(arr.tobytes()).decode("ascii")}


def _digest(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else json.dumps(p).encode())
    return h.hexdigest()[:16]


def warp_editor(image: np.ndarray, kind: str, values, out_size: tuple[int, int], *, key: str, on_change,
                controls: dict, ack: int = 0, pad: int, server_v: np.ndarray | None = None,
                server_note: str = "", warm_up: bool = False) -> dict | None:
    """Mount the editor.

    Args:
        values: what the handles move — affine θ (2×3), attention (s, tx, ty), projective
            source corners (4×2: TL, TR, BR, BL) or TPS source points (16×2).
        controls: ``playground_state.controls(...)``: the sliders of ``kind`` (key, label,
            range, step, value, note), the affine presets, whether θ is exact, TPS offsets.
        ack: the nonce of the component's last edit that Python has applied; until the
            browser sees its own last nonce acknowledged it keeps its local state.
        server_v: V as computed by stn_explore for these values (drawn once the browser's
            state and the server's agree); None while the server has not computed it.
        server_note: a line under V saying what the server's V is (sampler, padding).
        warm_up: ask the browser to send a ``warm`` trigger once it has painted (the page's
            first view is drawn before torch has loaded; see pages/playground.py).

    Returns the component's result: ``.params`` is the last state the browser sent
    ``{"kind", "values", "sliders", "exact", "tps", "nonce"}`` (or None).
    """
    values = np.round(np.asarray(values, dtype=np.float64), 6).tolist()
    image_payload = _image_payload(image)
    # the image's key counts every pixel: MNIST digits all start with the same blank rows
    image_key = _digest([image_payload["w"], image_payload["h"], image_payload["c"]], image_payload["pixels"])
    # A new version tells the browser that Python's state changed (adopt it, once it has seen
    # its own last edit: see ``ack``).
    version = _digest([kind, values, list(out_size), controls], image_key)
    data = {"kind": kind, "params": values, "out": [int(out_size[0]), int(out_size[1])],
            "image": image_payload, "image_key": image_key, "pad": pad, "version": version, "ack": int(ack),
            "controls": controls, "server_note": server_note, "warm_up": bool(warm_up),
            "server_v": _image_payload(server_v) if server_v is not None else None}
    # (wrapped in a list: Streamlit scans a dict's values for dataframes, and that check
    # imports pandas and pyarrow — ≈ 1.2 s on the first view of a fresh server)
    return _COMPONENT(key=key, data=[data], on_params_change=on_change, on_warm_change=lambda: None,
                      width="stretch")

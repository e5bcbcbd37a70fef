"""/compare's live view in one browser component (components v2, see compare_live.js): the four
extra-distortion sliders, the distorted input with the ST's sampling grid, V, and both
models' class probabilities.

MNIST addition (two digits as two channels, two parallel transformers) has its own cards: both
input channels, and per transformer its grid on the input and its V (in colour) with its ink
from each channel.

While a slider moves, the browser recomputes the distorted digit and runs both models itself
(weights exported by :mod:`stn_explore.explorer.compare_live`, sent once per session); on
release it sends the values to Python, which — the source of truth — recomputes everything
with stn_explore and sends it back; the view then shows the server's result.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import streamlit as st

HTML = """
<div class="cmp-live">
  <div class="cmp-sliders" role="group" aria-label="your extra distortion"></div>
  <div class="cmp-cards">
    <figure class="cmp-card cmp-ufig"><figcaption class="cmp-titlea"></figcaption>
      <div class="cmp-stage"><canvas class="cmp-u" aria-label="the distorted input"></canvas>
        <canvas class="cmp-grid" aria-hidden="true"></canvas></div></figure>
    <figure class="cmp-card cmp-vfig"><figcaption class="cmp-titlev"></figcaption>
      <canvas class="cmp-v" aria-label="the ST's output V"></canvas></figure>
    <figure class="cmp-card cmp-probs cmp-pa"><figcaption class="cmp-title"></figcaption>
      <div class="cmp-bars" aria-hidden="true"></div></figure>
    <figure class="cmp-card cmp-probs cmp-pb"><figcaption class="cmp-title"></figcaption>
      <div class="cmp-bars" aria-hidden="true"></div></figure>
  </div>
  <div class="cmp-src" role="status" aria-live="polite"></div>
</div>
"""

CSS = """
.cmp-live { font-family: var(--st-font, sans-serif); font-size: 14px; color: var(--st-text-color, #31333f); }
.cmp-sliders { display: flex; flex-wrap: wrap; gap: 6px 24px; margin-bottom: 10px; }
.cmp-slider { width: 200px; display: grid; grid-template-columns: 1fr auto; gap: 2px 6px; align-items: center; }
.cmp-slider label { white-space: nowrap; }
.cmp-slider output { font-variant-numeric: tabular-nums; text-align: right; }
.cmp-slider input[type=range] { grid-column: 1 / -1; width: 100%; margin: 0;
  accent-color: var(--st-primary-color, #ff4b4b); }
.cmp-cards { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.cmp-card { margin: 0; width: 208px; }
.cmp-card figcaption { font-weight: 600; margin: 0 0 4px; overflow-wrap: anywhere; }
.cmp-stage { position: relative; background: #000; line-height: 0; }
.cmp-stage canvas { display: block; }
.cmp-grid, .cmp-grid2 { position: absolute; left: 0; top: 0; pointer-events: none; }
.cmp-u, .cmp-v, .cmp-ch, .cmp-rgb, .cmp-v2 { image-rendering: pixelated; background: #000; display: block; }
.cmp-card.cmp-add { width: auto; }
.cmp-pair { display: flex; gap: 8px; }
.cmp-cell { width: 150px; }
.cmp-cell .cmp-stage { width: fit-content; }
.cmp-cap, .cmp-share, .cmp-note { font-size: 12.5px; opacity: 0.8; line-height: 1.4; }
.cmp-cap { margin-bottom: 2px; }
.cmp-share { margin-top: 4px; }
.cmp-note { flex-basis: 100%; }
.cmp-share.cmp-stale { opacity: 0.3; }
.cmp-probs { width: 220px; }
.cmp-bars { display: flex; gap: 2px; height: 170px; align-items: stretch; }
.cmp-col { flex: 1 1 0; display: flex; flex-direction: column; align-items: center; gap: 2px; min-width: 0; }
.cmp-col span { font-size: 11px; line-height: 14px; height: 14px; }
.cmp-track { flex: 1; width: 100%; display: flex; align-items: flex-end; box-sizing: border-box; }
.cmp-bar { width: 100%; background: #9bb8d3; min-height: 1px; }
.cmp-bar.cmp-pred { background: #e4572e; }
.cmp-col.cmp-true .cmp-track { outline: 2px solid #111; outline-offset: -2px; }
.cmp-stale { opacity: 0.45; }
.cmp-src { font-size: 12.5px; opacity: 0.8; margin-top: 4px; min-height: 1.3em; }
"""

_COMPONENT = st.components.v2.component(
    "stn_compare_live", html=HTML, css=CSS, js=(Path(__file__).with_suffix(".js")).read_text())


def _b64(arr: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode("ascii")


def image_payload(image: np.ndarray) -> dict:
    """A uint8 image ``(H, W)`` or ``(C, H, W)`` (channel after channel) for the browser."""
    c = image.shape[0] if image.ndim == 3 else 1
    return {"c": int(c), "w": int(image.shape[-1]), "h": int(image.shape[-2]), "pixels": _b64(image, np.uint8)}


def float_payload(image: np.ndarray) -> dict:
    """A float image ``(H, W)`` or ``(C, H, W)`` as little-endian float32 (V at full precision:
    the browser test compares it with the browser's own)."""
    c = image.shape[0] if image.ndim == 3 else 1
    return {"c": int(c), "w": int(image.shape[-1]), "h": int(image.shape[-2]), "f32": _b64(image, "<f4")}


def points_payload(grid: np.ndarray) -> dict:
    """A sampling grid ``(H', W', 2)`` (normalised source points, x then y) as float32: the
    browser draws its rows and columns (any transform, projective and TPS included)."""
    return {"h": int(grid.shape[0]), "w": int(grid.shape[1]), "f32": _b64(grid, "<f4")}


def digest(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else json.dumps(p).encode())
    return h.hexdigest()[:16]


def compare_live(*, key: str, image: np.ndarray, values: dict, sliders: list, ack: int, label: int | None,
                 names: tuple[str, str], server: dict, models: dict, st_out: tuple[int, int] | None,
                 px: int, on_change, on_need, addition: dict | None = None) -> None:
    """Mount the view.

    Args:
        image: the shown digit before the extra distortion, uint8 ``(H, W)`` (or ``(2, H, W)``:
            MNIST addition's two digits).
        values: the sliders' values by key (``compare_live.SLIDERS``); ``sliders`` their specs
            (``compare_live.controls``).
        ack: the nonce of the component's last edit that Python applied.
        server: what stn_explore computed for ``values``: ``values``, ``u`` (the distorted
            input, :func:`image_payload`), ``v`` (:func:`float_payload` or None), ``theta``
            (the ST's θ as 6 numbers, or None), ``probs`` (both models'), ``titles``.
        models: ``{"key", "a", "b", "why"}``: the exported models (``compare_live.encode``;
            None when already sent to this session), or ``why`` the browser cannot run them.
        st_out: the ST's output size ``(H', W')`` (None: no V card).
        on_change: called after a release (the component's state ``params`` =
            ``{"values", "nonce"}``); on_need: the browser lacks the models (send them again).
        addition: None for the single-ST view; for MNIST addition (two channels, two parallel
            transformers) the texts of its cards: ``input``, ``channels`` (two captions),
            ``transformer`` (with ``{k}``), ``grid``, ``v``, ``note``, ``what`` (before the
            predicted class: "sum "), ``px`` (each small image) and ``bars_w``; ``server``
            then also holds per transformer ``grids`` (:func:`points_payload`), ``vs``,
            ``thetas`` (None for a kind that has none) and ``shares`` (ink from each channel).
    """
    data = {"image": image_payload(image), "image_key": digest(image_payload(image)["pixels"]),
            "values": values, "sliders": sliders, "ack": int(ack), "label": label, "names": list(names),
            "server": server, "models": models, "st_out": list(st_out) if st_out else None, "px": int(px),
            "card_titles": ["input + ST grid", "ST output V"], "addition": addition}
    # (wrapped in a list, as in warp_editor.py: Streamlit scans a dict's values for dataframes)
    _COMPONENT(key=key, data=[data], on_params_change=on_change, on_need_change=on_need, width="stretch")

"""The θ playground's Streamlit widget groups: the input U, the transform kind, the sampler,
the server view.

Widgets only; the state rules are :mod:`stn_explore.explorer.playground_state`. The θ controls
themselves (sliders, editable θ, presets, handles) are one browser component,
``components/warp_editor``. Widget state is bound to the URL (``bind="query-params"``), so a
view can be shared by copying the address. Nothing here imports torch: the page's first view
is drawn before torch has loaded.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from stn_explore.experiments.mnist import load_digits
from stn_explore.explorer import playground as pg
from stn_explore.explorer import playground_state as ps

from .inputs import image_input

S, Q, URL = st.session_state, st.query_params, {"bind": "query-params"}


@st.cache_resource(show_spinner="Loading MNIST digits…")
def digits():
    return load_digits("test")  # shared, read-only


def input_image() -> tuple[np.ndarray, str]:
    source = st.radio("Input U", ["MNIST digit", "test pattern", "upload"], key="pg_source", horizontal=True, **URL)
    if source == "MNIST digit":
        d = digits()
        c1, c2, c3 = st.columns([1, 1, 0.8], vertical_alignment="bottom")
        cls = c1.selectbox("class", ["any"] + [str(i) for i in range(10)], key="pg_class", **URL)
        pool = ps.class_pool(d.labels, cls)
        # (no explicit default: "random" sets pg_index through the session state, and a widget
        # with both logs "created with a default value but also had its value set via the
        # Session State API")
        idx = c2.number_input("index", 0, len(pool) - 1, key="pg_index", **URL)
        c3.button("random", icon=":material/casino:", on_click=ps.random_digit, args=(S, d.labels),
                  help="a random digit of this class", key="pg_random")
        i = int(pool[min(int(idx), len(pool) - 1)])
        return d.images[i].astype(np.float32) / 255.0, f"digit {i} (label {d.labels[i]}) — {d.source}"
    if source == "test pattern":
        c1, c2 = st.columns(2)
        name = c1.selectbox("pattern", pg.PATTERNS, key="pg_pattern", **URL)
        size = c2.selectbox("size", [32, 64, 128], index=1, key="pg_psize", **URL)
        return pg.test_pattern(name, size), f"{name} {size}×{size}"
    return image_input("pg_upload", fallback=lambda: (pg.test_pattern("checkerboard", 64), "checkerboard 64×64"))


def transform_kind() -> str:
    """The kind radio, and the buttons that change the kind's state on the server (the θ
    sliders are in the component)."""
    kind = st.radio("Transform", pg.KINDS, key="pg_kind", horizontal=True, **URL,
                    captions=["6 parameters", "s, tx, ty", "8 parameters", "16 control points"])
    if kind == "projective":
        st.button("reset corners", on_click=ps.corners_reset, args=(S,), key="pg_corners_reset")
    elif kind == "tps":
        b1, b2 = st.columns(2)
        b1.button("randomise", on_click=ps.tps_randomise, args=(S, Q), key="pg_tps_random", width="stretch",
                  help="seeded random offsets of all 16 points (σ = 0.12)")
        b2.button("reset", on_click=ps.tps_reset, args=(S, Q), key="pg_tps_reset", width="stretch")
    return kind


def sampler_controls() -> tuple[tuple[int, int], str, str]:
    c1, c2 = st.columns(2)
    h = c1.number_input("output H′", 4, 256, 28, key="pg_out_h", **URL)
    w = c2.number_input("output W′", 4, 256, 28, key="pg_out_w", **URL)
    c3, c4 = st.columns(2)
    mode = c3.selectbox("sampler", ["bilinear", "nearest", "bicubic"], key="pg_mode", **URL)
    pad = c4.selectbox("padding", ["zeros", "border", "reflection"], key="pg_pad", **URL)
    return (int(h), int(w)), mode, pad


def server_view(image: np.ndarray, result, out_size: tuple[int, int]) -> None:
    """The server's U and V as plotly figures (hover: pixel coordinates and values), each
    sized for itself: its longer side about 300 px, whatever the image and output sizes."""
    from stn_explore.explorer import figures

    cfg = {"displayModeBar": False}
    pad = 0.25 * max(image.shape[:2])
    with st.container(horizontal=True, wrap=True, gap="medium"):
        st.plotly_chart(figures.grid_overlay_figure(image, result.grid, result.outline, title="U with T_θ(G)",
                                                    px=300 / max(image.shape[:2]), pad=pad,
                                                    points=result.control_points),
                        key="pg_fig_u", config=cfg, width="content")
        st.plotly_chart(figures.image_figure(result.v, title=f"V ({out_size[0]}×{out_size[1]})",
                                             px=300 / max(out_size)),
                        key="pg_fig_v", config=cfg, width="content")

"""The θ playground's widget groups: the input U, the transform's controls, the sampler.

Widgets only; the state rules are :mod:`stn_explore.explorer.playground_state`. Widget state is
bound to the URL (``bind="query-params"``), so a view can be shared by copying the address.
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
        c1, c2, c3 = st.columns([1, 1, 0.6], vertical_alignment="bottom")
        cls = c1.selectbox("class", ["any"] + [str(i) for i in range(10)], key="pg_class", **URL)
        pool = ps.class_pool(d.labels, cls)
        idx = c2.number_input("index", 0, len(pool) - 1, 0, key="pg_index", **URL)
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


def transform_controls() -> tuple[str, np.ndarray]:
    kind = st.radio("Transform", pg.KINDS, key="pg_kind", horizontal=True, **URL,
                    captions=["6 parameters", "s, tx, ty", "8 parameters", "16 control points"])
    if kind == "affine":
        for col, name in zip(st.columns(len(pg.PRESETS)), pg.PRESETS):
            col.button(name, on_click=ps.apply_preset, args=(S, name), key=f"pg_preset_{name}", width="stretch")
        cols = st.columns(2)
        for i, (key, (label, lo, hi, step, default)) in enumerate(ps.AFFINE.items()):
            cols[i % 2].slider(label, lo, hi, default, step, key=key, **URL)
        theta, tag = ps.current_theta(S, Q), ps.slider_tag(S)
        st.markdown("θ (editable; maps output → input, eq. (1))")
        for r, keys in enumerate(ps.theta_keys(tag)):
            for c, (col, key) in enumerate(zip(st.columns(3), keys)):
                col.number_input(f"θ[{r},{c}]", value=round(float(theta[r, c]), 4), step=0.05, format="%.4f",
                                 key=key, on_change=ps.theta_to_sliders, args=(S, tag), label_visibility="collapsed")
        if "pg_theta_error" in S:
            st.warning(S["pg_theta_error"])
        return kind, theta
    if kind == "attention":
        vals = [col.slider(label, lo, hi, d, step, key=key, **URL)
                for col, (key, (label, lo, hi, step, d)) in zip(st.columns(3), ps.ATTENTION.items())]
        return kind, pg.attention_params(*vals)
    if kind == "projective":
        st.caption("Where each corner of the output frame samples the input (normalised coordinates).")
        for i, (col, name) in enumerate(zip(st.columns(4), ps.CORNER_NAMES)):
            for j, axis in enumerate("xy"):
                col.slider(f"{name} {axis}", *ps.CORNER_RANGE, ps.CORNER_DEFAULT[i][j], 0.01, key=f"pg_c{i}{axis}", **URL)
        st.button("reset corners", on_click=ps.corners_reset, args=(S,), key="pg_corners_reset")
        try:
            return kind, pg.projective_params(ps.corners(S))
        except ValueError as exc:
            st.error(f"These corners do not define a projective transform: {exc}. Showing identity.")
            return kind, np.eye(3)
    c1, c2, c3 = st.columns([1, 2, 2])
    k = c1.selectbox("control point", list(range(ps.N_TPS)), key="pg_tps_k",
                     help="points are numbered row by row from the top-left")
    if S.get("pg_tps_shown") != k or "pg_tps_dx" not in S:  # a new point: show its offset
        ps.tps_sync_point(S, Q, k)
    dx = c2.slider("dx", -1.0, 1.0, step=0.01, key="pg_tps_dx")
    dy = c3.slider("dy", -1.0, 1.0, step=0.01, key="pg_tps_dy")
    off = ps.tps_move_point(S, Q, k, dx, dy)
    b1, b2 = st.columns(2)
    b1.button("randomise", on_click=ps.tps_randomise, args=(S, Q), key="pg_tps_random", width="stretch")
    b2.button("reset", on_click=ps.tps_reset, args=(S, Q), key="pg_tps_reset", width="stretch")
    return kind, pg.tps_params(off)


def sampler_controls() -> tuple[tuple[int, int], str, str]:
    c1, c2, c3, c4 = st.columns(4)
    h = c1.number_input("output H′", 4, 256, 28, key="pg_out_h", **URL)
    w = c2.number_input("output W′", 4, 256, 28, key="pg_out_w", **URL)
    mode = c3.selectbox("sampler", ["bilinear", "nearest", "bicubic"], key="pg_mode", **URL)
    pad = c4.selectbox("padding", ["zeros", "border", "reflection"], key="pg_pad", **URL)
    return (int(h), int(w)), mode, pad

"""θ playground: move the transform, watch the sampling grid T_θ(G) on U and the output V.

Thin page: widgets → stn_explore.playground.render → stn_explore.figures. Widget state is
bound to the URL (bind="query-params"), so a view can be shared by copying the address.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from app_shell import ensure_router
from components.warp_editor import warp_editor

from stn_explore.explorer import figures, playground as pg
from stn_explore.experiments.mnist import load_digits

ensure_router("playground")

S = st.session_state
AFFINE = {  # key: (label, min, max, step, default)
    "pg_angle": ("rotation (°)", -180.0, 180.0, 1.0, 0.0),
    "pg_sx": ("scale x", -3.0, 3.0, 0.05, 1.0),
    "pg_sy": ("scale y", -3.0, 3.0, 0.05, 1.0),
    "pg_shear": ("shear", -2.0, 2.0, 0.05, 0.0),
    "pg_tx": ("translate x", -2.0, 2.0, 0.05, 0.0),
    "pg_ty": ("translate y", -2.0, 2.0, 0.05, 0.0),
}
SLIDER_OF = {"angle": "pg_angle", "scale_x": "pg_sx", "scale_y": "pg_sy", "shear": "pg_shear",
             "tx": "pg_tx", "ty": "pg_ty"}


def theta_keys(tag: str) -> list[list[str]]:
    # The θ inputs are keyed by the slider state they show: moving a slider creates fresh inputs
    # with value=θ, instead of pushing values into live widgets through session_state (which a
    # browser can miss when fast slider reruns are coalesced).
    return [[f"pg_t{r}{c}_{tag}" for c in range(3)] for r in range(2)]


def slider_tag() -> str:
    return "%08x" % (hash(slider_values()) & 0xFFFFFFFF)
CORNER_NAMES = ("top-left", "top-right", "bottom-right", "bottom-left")
CORNER_DEFAULT = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))


@st.cache_resource(show_spinner="Loading MNIST digits…")
def digits():
    """The MNIST test digits from the first available source (shared, read-only)."""
    return load_digits("test")


@st.cache_data(show_spinner=False)
def pattern(name: str, size: int) -> np.ndarray:
    return pg.test_pattern(name, size)


@st.cache_data(show_spinner=False, max_entries=8)
def decode_upload(data: bytes):
    return pg.load_image_bytes(data)


# ----------------------------------------------------------------------------- sync callbacks
def slider_values() -> tuple:
    return tuple(float(S.get(k, AFFINE[k][4])) for k in AFFINE)


def theta_to_sliders(tag: str) -> None:
    """The θ matrix was edited: keep that exact θ and show its decomposition on the sliders
    (clamped to their ranges)."""
    t = np.array([[S[k] for k in row] for row in theta_keys(tag)], dtype=np.float64)
    try:
        vals = pg.decompose_affine(t)
    except ValueError as exc:
        S["pg_theta_error"] = f"This θ cannot be shown on the sliders: {exc}."
        vals = None
    else:
        S.pop("pg_theta_error", None)
        for name, key in SLIDER_OF.items():
            _, lo, hi, step, _ = AFFINE[key]
            S[key] = float(np.clip(round(vals[name] / step) * step, lo, hi))
    S["pg_theta_exact"] = t
    S["pg_theta_snapshot"] = slider_values()


def theta_from_url() -> None:
    """A shared URL may carry an exact θ (pg_theta=6 numbers) next to its slider values."""
    if "pg_theta_exact" in S or "pg_theta_url_read" in S:
        return
    S["pg_theta_url_read"] = True
    try:
        t = np.array([float(v) for v in st.query_params.get("pg_theta", "").split(",")], dtype=np.float64)
    except ValueError:
        return
    if t.size == 6 and np.isfinite(t).all():
        S["pg_theta_exact"] = t.reshape(2, 3)
        S["pg_theta_snapshot"] = slider_values()


def current_theta() -> np.ndarray:
    """θ in force: the edited matrix if the sliders have not moved since it was edited,
    else θ from the sliders. Derived in the script flow, not in slider callbacks, because
    Streamlit may coalesce fast slider reruns and skip callbacks. An exact θ is kept in the
    URL (pg_theta) so that a shared view reproduces it, not just its rounded sliders."""
    theta_from_url()
    if S.get("pg_theta_exact") is not None and S.get("pg_theta_snapshot") == slider_values():
        st.query_params["pg_theta"] = ",".join(f"{v:.6g}" for v in S["pg_theta_exact"].ravel())
        return S["pg_theta_exact"]
    S.pop("pg_theta_exact", None)
    S.pop("pg_theta_error", None)
    st.query_params.pop("pg_theta", None)
    return pg.affine_params(*slider_values())


def apply_preset(name: str) -> None:
    for pname, key in SLIDER_OF.items():
        S[key] = float(pg.PRESETS[name][pname])


def tps_offsets() -> np.ndarray:
    if "pg_tps_offsets" not in S:
        raw = st.query_params.get("pg_tps")
        off = np.zeros((16, 2))
        if raw:
            try:
                vals = np.array([float(v) for v in raw.split(",")], dtype=np.float64)
                if vals.size == 32 and np.isfinite(vals).all():
                    off = np.clip(vals.reshape(16, 2), -1, 1)
            except ValueError:
                pass
        S["pg_tps_offsets"] = off
    return S["pg_tps_offsets"]


def store_tps_offsets(off: np.ndarray) -> None:
    S["pg_tps_offsets"] = off
    if np.abs(off).max() > 0:
        st.query_params["pg_tps"] = ",".join(f"{v:.3f}" for v in off.ravel())
    else:
        st.query_params.pop("pg_tps", None)


def tps_sync_point(k: int) -> None:
    """Show point k's offset on the dx/dy sliders (before they are drawn)."""
    off = tps_offsets()
    S["pg_tps_dx"], S["pg_tps_dy"] = float(round(off[k, 0], 2)), float(round(off[k, 1], 2))
    S["pg_tps_shown"] = k


def tps_randomise() -> None:
    S["pg_tps_seed"] = S.get("pg_tps_seed", 0) + 1
    store_tps_offsets(np.round(pg.random_tps_offsets(S["pg_tps_seed"]), 3))
    tps_sync_point(S.get("pg_tps_k", 0))


def tps_reset() -> None:
    store_tps_offsets(np.zeros((16, 2)))
    tps_sync_point(S.get("pg_tps_k", 0))


def apply_editor() -> None:
    """The editor released a drag (or a key move): make it the page's state."""
    got = S.get("pg_editor", {}).get("params")
    if not got:
        return
    kind, values = got["kind"], np.asarray(got["values"], dtype=np.float64)
    if not np.isfinite(values).all():
        return
    if kind == "affine":
        theta = values.reshape(2, 3)
        try:
            vals = pg.decompose_affine(theta)
        except ValueError:
            vals = None
        if vals is not None:
            for name, key in SLIDER_OF.items():
                _, lo, hi, step, _ = AFFINE[key]
                S[key] = float(np.clip(round(vals[name] / step) * step, lo, hi))
        S["pg_theta_exact"] = theta
        S["pg_theta_snapshot"] = slider_values()
    elif kind == "attention":
        for key, v, lo, hi in (("pg_s", values[0], 0.05, 2.0), ("pg_atx", values[1], -1.5, 1.5),
                               ("pg_aty", values[2], -1.5, 1.5)):
            S[key] = float(np.clip(round(v, 2), lo, hi))
    elif kind == "projective":
        for i, (x, y) in enumerate(values.reshape(4, 2)):
            S[f"pg_c{i}x"], S[f"pg_c{i}y"] = (float(np.clip(round(v, 2), -2.0, 2.0)) for v in (x, y))
    elif kind == "tps":
        store_tps_offsets(np.clip(values.reshape(-1, 2) - pg.tps_params(np.zeros((16, 2))), -1, 1))
        tps_sync_point(S.get("pg_tps_k", 0))


def editor_values(kind: str, params: np.ndarray) -> np.ndarray:
    """What the editor's handles manipulate, for each kind."""
    if kind == "projective":
        return np.asarray(S.get("pg_corners_now", CORNER_DEFAULT), dtype=np.float64)
    return params


def corners_reset() -> None:
    for i, (x, y) in enumerate(CORNER_DEFAULT):
        S[f"pg_c{i}x"], S[f"pg_c{i}y"] = x, y


def random_digit() -> None:
    d = digits()
    cls = S.get("pg_class", "any")
    n = len(d) if cls == "any" else int((d.labels == int(cls)).sum())
    S["pg_index"] = int(np.random.default_rng().integers(n))


# ----------------------------------------------------------------------------- input U
def input_image() -> tuple[np.ndarray, str]:
    source = st.radio("Input U", ["MNIST digit", "test pattern", "upload"], key="pg_source",
                      horizontal=True, bind="query-params")
    if source == "MNIST digit":
        d = digits()
        c1, c2, c3 = st.columns([1, 1, 0.6], vertical_alignment="bottom")
        cls = c1.selectbox("class", ["any"] + [str(i) for i in range(10)], key="pg_class",
                           bind="query-params")
        pool = np.arange(len(d)) if cls == "any" else np.flatnonzero(d.labels == int(cls))
        idx = c2.number_input("index", 0, len(pool) - 1, 0, key="pg_index", bind="query-params")
        c3.button("random", icon=":material/casino:", on_click=random_digit, help="a random digit of this class",
                  key="pg_random")
        i = int(pool[min(int(idx), len(pool) - 1)])
        note = f"digit {i} (label {d.labels[i]}) — {d.source}"
        return d.images[i].astype(np.float32) / 255.0, note
    if source == "test pattern":
        c1, c2 = st.columns(2)
        name = c1.selectbox("pattern", pg.PATTERNS, key="pg_pattern", bind="query-params")
        size = c2.selectbox("size", [32, 64, 128], index=1, key="pg_psize", bind="query-params")
        return pattern(name, size), f"{name} {size}×{size}"
    up = st.file_uploader("image (PNG, JPEG, …)", type=None, key="pg_upload",
                          help=f"larger images are downscaled to {pg.MAX_SIDE} px; "
                               f"over {pg.MAX_UPLOAD_PIXELS // 1_000_000} MP are refused")
    if up is None:
        st.info("Upload an image, or pick another input. Showing the checkerboard meanwhile.")
        return pattern("checkerboard", 64), "checkerboard 64×64"
    try:
        img, note = decode_upload(up.getvalue())
    except pg.ImageInputError as exc:
        st.error(f"**{up.name}**: {exc}")
        return pattern("checkerboard", 64), "checkerboard 64×64 (upload failed)"
    if note:
        st.caption(note)
    return img, f"{up.name} {img.shape[1]}×{img.shape[0]}"


# ----------------------------------------------------------------------------- transform
def transform_controls() -> tuple[str, np.ndarray]:
    # plain option names keep shared URLs readable (?pg_kind=projective)
    kind = st.radio("Transform", pg.KINDS, key="pg_kind", horizontal=True, bind="query-params",
                    captions=["6 parameters", "s, tx, ty", "8 parameters", "16 control points"])
    if kind == "affine":
        cols = st.columns(len(pg.PRESETS))
        for col, name in zip(cols, pg.PRESETS):
            col.button(name, on_click=apply_preset, args=(name,), key=f"pg_preset_{name}",
                       width="stretch")
        c1, c2 = st.columns(2)
        for i, (key, (label, lo, hi, step, default)) in enumerate(AFFINE.items()):
            (c1 if i % 2 == 0 else c2).slider(label, lo, hi, default, step, key=key, bind="query-params")
        theta = current_theta()
        tag = slider_tag()
        keys = theta_keys(tag)
        st.markdown("θ (editable; maps output → input, eq. (1))")
        for r in range(2):
            cs = st.columns(3)
            for c in range(3):
                cs[c].number_input(f"θ[{r},{c}]", value=round(float(theta[r, c]), 4), step=0.05,
                                   format="%.4f", key=keys[r][c], on_change=theta_to_sliders,
                                   args=(tag,), label_visibility="collapsed")
        if "pg_theta_error" in S:
            st.warning(S["pg_theta_error"])
        return kind, theta
    if kind == "attention":
        c1, c2, c3 = st.columns(3)
        s = c1.slider("s (crop size)", 0.05, 2.0, 1.0, 0.01, key="pg_s", bind="query-params")
        tx = c2.slider("tx", -1.5, 1.5, 0.0, 0.01, key="pg_atx", bind="query-params")
        ty = c3.slider("ty", -1.5, 1.5, 0.0, 0.01, key="pg_aty", bind="query-params")
        return kind, pg.attention_params(s, tx, ty)
    if kind == "projective":
        st.caption("Where each corner of the output frame samples the input (normalised coordinates).")
        corners = []
        cols = st.columns(4)
        for i, name in enumerate(CORNER_NAMES):
            with cols[i]:
                x = st.slider(f"{name} x", -2.0, 2.0, CORNER_DEFAULT[i][0], 0.01, key=f"pg_c{i}x",
                              bind="query-params")
                y = st.slider(f"{name} y", -2.0, 2.0, CORNER_DEFAULT[i][1], 0.01, key=f"pg_c{i}y",
                              bind="query-params")
                corners.append((x, y))
        st.button("reset corners", on_click=corners_reset, key="pg_corners_reset")
        S["pg_corners_now"] = corners
        try:
            return kind, pg.projective_params(np.array(corners))
        except ValueError as exc:
            st.error(f"These corners do not define a projective transform: {exc}. Showing identity.")
            return kind, np.eye(3)
    c1, c2, c3 = st.columns([1, 2, 2])
    k = c1.selectbox("control point", list(range(16)), key="pg_tps_k",
                     help="points are numbered row by row from the top-left")
    if S.get("pg_tps_shown") != k or "pg_tps_dx" not in S:  # a new point: show its offset
        tps_sync_point(k)
    dx = c2.slider("dx", -1.0, 1.0, step=0.01, key="pg_tps_dx")
    dy = c3.slider("dy", -1.0, 1.0, step=0.01, key="pg_tps_dy")
    off = tps_offsets()
    if (off[k] != (dx, dy)).any():  # the sliders moved point k
        off = off.copy()
        off[k] = (dx, dy)
        store_tps_offsets(off)
    b1, b2 = st.columns(2)
    b1.button("randomise", on_click=tps_randomise, key="pg_tps_random", width="stretch")
    b2.button("reset", on_click=tps_reset, key="pg_tps_reset", width="stretch")
    return kind, pg.tps_params(off)


def sampler_controls() -> tuple[tuple[int, int], str, str]:
    c1, c2, c3, c4 = st.columns(4)
    h = c1.number_input("output H′", 4, 256, 28, key="pg_out_h", bind="query-params")
    w = c2.number_input("output W′", 4, 256, 28, key="pg_out_w", bind="query-params")
    mode = c3.selectbox("sampler", ["bilinear", "nearest", "bicubic"], key="pg_mode", bind="query-params")
    pad = c4.selectbox("padding", ["zeros", "border", "reflection"], key="pg_pad", bind="query-params")
    return (int(h), int(w)), mode, pad


# ----------------------------------------------------------------------------- page
st.title("θ playground")
st.caption("Move the transform: the blue grid is T_θ(G), where each output pixel of V samples "
           "the input U (outline in red). Coordinates are normalised to [-1, 1] with "
           "align_corners=False, x right, y down; θ maps output → input.")


@st.fragment
def playground() -> None:
    t0 = time.perf_counter()
    left, right = st.columns([0.42, 0.58], gap="large")
    with left:
        image, image_note = input_image()
        kind, params = transform_controls()
        out_size, mode, pad = sampler_controls()
    try:
        result = pg.render(image, kind, params, out_size, mode, pad)
    except ValueError as exc:
        right.error(f"Cannot render this transform: {exc}")
        return
    with right:
        px = 240 / max(image.shape[:2])  # U drawn ~240 px wide; V at the same scale
        st.markdown("**Drag the handles** (or focus one and use the arrow keys): the preview follows "
                    "every move; on release the server recomputes V with stn_explore, shown here and below.")
        warp_editor(image, kind, editor_values(kind, params), out_size, key="pg_editor",
                    on_change=apply_editor, px=px * 0.8, vpx=min(px * 0.8, 240 / max(out_size)),
                    pad=max(2, round(0.25 * max(image.shape[:2]))), server_v=result.v)
        if mode != "bilinear" or pad != "zeros":
            st.caption(f"The drag preview samples bilinear with zero padding; the server's V uses "
                       f"{mode} sampling with {pad} padding.")
        st.caption("Server view (stn_explore): hover for pixel coordinates and values.")
        cu, cv = st.columns([0.6, 0.4])
        spx = 0.75 * px  # the server view, a little smaller than the editor
        fig_u = figures.grid_overlay_figure(image, result.grid, result.outline, title="U with T_θ(G)",
                                            px=spx, pad=0.25 * max(image.shape[:2]),
                                            points=result.control_points)
        cu.plotly_chart(fig_u, key="pg_fig_u", config={"displayModeBar": False}, width="content")
        cv.plotly_chart(figures.image_figure(result.v, title=f"V ({out_size[0]}×{out_size[1]})",
                                             px=spx),
                        key="pg_fig_v", config={"displayModeBar": False}, width="content")
        st.caption(f"U: {image_note}. {result.outside:.0%} of the sample points fall outside U.")
        for w in result.warnings:
            st.warning(w)
        st.latex(pg.theta_latex(kind, params))
        channels = 3 if image.ndim == 3 else 1
        st.code(pg.torch_snippet(kind, params, image.shape[:2], out_size, mode, pad, channels),
                language="python")
        if st.query_params.get("pg_debug"):  # read by benchmarks/bench_playground_latency.py
            st.caption(f"server rerun {(time.perf_counter() - t0) * 1e3:.1f} ms")


playground()

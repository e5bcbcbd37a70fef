"""θ playground: move the transform, watch the sampling grid T_θ(G) on U and the output V.

Layout only: the widget groups are in app_ui/playground.py (their state rules in
stn_explore.explorer.playground_state), numerics in stn_explore.explorer.playground.render,
figures in stn_explore.explorer.figures. Widget state is bound to the URL, so a view can be
shared by copying the address.
"""

from __future__ import annotations

import time

import streamlit as st

from app_ui.playground import input_image, sampler_controls, transform_controls
from app_ui.shell import ensure_router
from components.warp_editor import warp_editor
from stn_explore.explorer import figures
from stn_explore.explorer import playground as pg
from stn_explore.explorer import playground_state as ps

ensure_router("playground")
S, Q = st.session_state, st.query_params


st.title("θ playground")
st.caption("Move the transform: the blue grid is T_θ(G), where each output pixel of V samples the input U "
           "(outline in red). Coordinates are normalised to [-1, 1] with align_corners=False, x right, y down; "
           "θ maps output → input.")


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
        st.markdown("**Drag the handles** (or focus one and use the arrow keys): the preview follows every "
                    "move; on release the server recomputes V with stn_explore, shown here and below.")
        warp_editor(image, kind, ps.editor_values(S, kind, params), out_size, key="pg_editor",
                    on_change=lambda: ps.apply_editor(S, Q), px=px * 0.8, vpx=min(px * 0.8, 240 / max(out_size)),
                    pad=max(2, round(0.25 * max(image.shape[:2]))), server_v=result.v)
        if mode != "bilinear" or pad != "zeros":
            st.caption(f"The drag preview samples bilinear with zero padding; the server's V uses "
                       f"{mode} sampling with {pad} padding.")
        st.caption("Server view (stn_explore): hover for pixel coordinates and values.")
        cu, cv = st.columns([0.6, 0.4])
        spx, cfg = 0.75 * px, {"displayModeBar": False}  # the server view, a little smaller than the editor
        cu.plotly_chart(figures.grid_overlay_figure(image, result.grid, result.outline, title="U with T_θ(G)", px=spx,
                                                    pad=0.25 * max(image.shape[:2]), points=result.control_points),
                        key="pg_fig_u", config=cfg, width="content")
        cv.plotly_chart(figures.image_figure(result.v, title=f"V ({out_size[0]}×{out_size[1]})", px=spx),
                        key="pg_fig_v", config=cfg, width="content")
        st.caption(f"U: {image_note}. {result.outside:.0%} of the sample points fall outside U.")
        for w in result.warnings:
            st.warning(w)
        st.latex(pg.theta_latex(kind, params))
        st.code(pg.torch_snippet(kind, params, image.shape[:2], out_size, mode, pad, 3 if image.ndim == 3 else 1),
                language="python")
        if Q.get("pg_debug"):  # read by benchmarks/bench_playground_latency.py
            st.caption(f"server rerun {(time.perf_counter() - t0) * 1e3:.1f} ms")


playground()

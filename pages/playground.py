"""θ playground: move the transform, watch the sampling grid T_θ(G) on U and the output V.

Layout only: the widget groups are in app_ui/playground.py, the θ controls (sliders, θ,
presets, handles, U and V) in one browser component (components/warp_editor), their state
rules in stn_explore.explorer.playground_state, numerics in stn_explore.explorer.playground.
Widget state is bound to the URL, so a view can be shared by copying the address.

The first view of a fresh server is drawn before torch has loaded (the browser previews V);
the component then asks for a rerun, which loads torch and sends the server's V.
"""

from __future__ import annotations

import gc
import sys
import time

import streamlit as st

from app_ui.playground import input_image, sampler_controls, server_view, transform_kind
from app_ui.shell import ensure_router
from components.warp_editor import warp_editor
from stn_explore.explorer import playground as pg
from stn_explore.explorer import playground_state as ps

# A full collection walks every live object while holding the GIL — and so the messages of the
# run. Streamlit's own after every script run is off (.streamlit/config.toml, runner.postScriptGC);
# freezing what the imports created (once per process) keeps Python's automatic ones short too.
if gc.get_freeze_count() == 0:
    gc.freeze()

ensure_router("playground")
S, Q = st.session_state, st.query_params


st.title("θ playground")
st.caption("Move the transform: the blue grid is T_θ(G), where each output pixel of V samples the input U "
           "(outline in red). Coordinates are normalised to [-1, 1] with align_corners=False, x right, y down; "
           "θ maps output → input.")


ps.read_url(S, Q)
with st.container(horizontal=True, wrap=True, gap="medium"):  # wraps in narrow windows
    with st.container(width=380):
        image, image_note = input_image()
    with st.container(width=260):
        kind = transform_kind()
    with st.container(width=230):
        out_size, mode, pad = sampler_controls()
st.markdown("**Drag the sliders or the handles** (or focus one and use the arrow keys): the grid and V follow "
            "every move in the browser; on release the server recomputes V with stn_explore.")


@st.cache_resource(show_spinner=False)
def _load_torch() -> bool:
    """Once per process: import torch and the core, then move every object alive now out of the
    cycle collector's sight (``gc.freeze``). With torch, numpy and plotly loaded, Streamlit's
    full ``gc.collect(2)`` after every script run (now switched off in .streamlit/config.toml)
    took ≈ 350 ms on the 2-core machine and held the GIL, delaying each rerun's messages to the
    browser by as much, and Python's automatic full collections walk the same objects;
    automatic collections during the import itself cost ≈ 1.5 s more. Frozen objects are still freed by reference
    counting."""
    gc.disable()
    try:
        import stn_explore.core  # noqa: F401  (torch and the core)
        import stn_explore.explorer.figures  # noqa: F401  (plotly, which render() and other pages use)
    finally:
        gc.enable()
    gc.collect()
    gc.freeze()
    return True


@st.fragment
def theta_view(image, image_note: str, kind: str, out_size: tuple[int, int], mode: str, pad: str) -> None:
    """The θ component and what follows from θ. A fragment: moving θ reruns only this, so the
    browser re-renders a handful of elements per key press, not the whole page."""
    t0 = time.perf_counter()
    # A fresh server has not loaded torch: draw this first view without it (the browser
    # previews V) and compute the server's V in the rerun the component asks for.
    ready = "torch" in sys.modules or S.get("pg_first_view_drawn", False)
    S["pg_first_view_drawn"] = True
    result, error = None, None
    if ready:
        _load_torch()
        try:
            params = ps.params_of(S, Q, kind)
        except ValueError as exc:  # corners that define no homography
            params, error = pg.projective_params(ps.CORNER_DEFAULT), (
                f"These corners do not define a projective transform: {exc}. Showing identity.")
        try:
            result = pg.render(image, kind, params, out_size, mode, pad)
        except ValueError as exc:
            error = f"Cannot render this transform: {exc}"
    note = (f"from stn_explore (server): {mode} sampling, {pad} padding"
            + ("" if (mode, pad) == ("bilinear", "zeros") else "; the preview while moving is bilinear, zeros"))
    warp_editor(image, kind, ps.editor_values(S, Q, kind), out_size, key="pg_editor",
                on_change=lambda: ps.apply_editor(S, Q), controls=ps.controls(S, Q, kind), ack=S.get("pg_ack", 0),
                pad=max(2, round(0.25 * max(image.shape[:2]))), server_v=result.v if result else None,
                server_note=note, warm_up=not ready)
    ps.sync_url(S, Q)
    if error:
        st.error(error)
    if "pg_theta_error" in S and kind == "affine":
        st.warning(S["pg_theta_error"])
    if result is None:
        if not error:
            st.caption("Loading stn_explore (torch): the server's V, θ and the snippet follow in a moment.")
        return
    st.caption(f"U: {image_note}. {result.outside:.0%} of the sample points fall outside U.")
    for w in result.warnings:
        st.warning(w)
    st.latex(pg.theta_latex(kind, params))
    st.code(pg.torch_snippet(kind, params, image.shape[:2], out_size, mode, pad, 3 if image.ndim == 3 else 1),
            language="python")
    if st.toggle("server view (plotly): hover for pixel coordinates and values", key="pg_plotly",
                 bind="query-params"):
        server_view(image, result, out_size)
    if Q.get("pg_debug"):  # read by benchmarks/bench_playground_latency.py
        st.caption(f"server rerun {(time.perf_counter() - t0) * 1e3:.1f} ms")


theta_view(image, image_note, kind, out_size, mode, pad)

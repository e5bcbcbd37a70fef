"""/learning's widget groups: the gradient through the sampler, θ fitted live by gradient
descent, and the failure-mode lab. Computations are :mod:`stn_explore.explorer.learning` and
:mod:`stn_explore.explorer.learning_lab`; figures :mod:`stn_explore.explorer.learning_figures`.

Live parts: the fit steps inside an ``st.fragment`` that reruns every :data:`TICK` seconds
while playing (``run_every`` is None when paused, so nothing ticks); the lab trains on a
background thread (:class:`~stn_explore.explorer.learning_live.LabRun`) owned by a session-scoped
cache whose release stops it, and a fragment polls it once a second while it runs.
"""

from __future__ import annotations

import functools
import time
from dataclasses import replace

import numpy as np
import streamlit as st

from stn_explore.core.sampling import PADDING_MODES
from stn_explore.experiments.diagnostics import COLLAPSE_SPREAD
from stn_explore.experiments.mnist import load_digits
from stn_explore.explorer import learning as Lg
from stn_explore.explorer import learning_figures as LF
from stn_explore.explorer import learning_lab as LL
from stn_explore.explorer import learning_live as LV

S = st.session_state
CFG = {"displayModeBar": False}
TICK = 0.3                      # seconds between frames of the live fit
MAX_STEPS = 1500                # the live fit pauses itself here
LR_OPTIONS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
ANGLES = np.linspace(-180, 180, 73)          # the landscape slice: rotation every 5°…
SCALES = np.round(np.geomspace(0.4, 2.5, 36), 4)  # …× scale
ALARM_AFTER = 200               # iterations before a constant transform counts as collapsed
G_SLIDERS = {"learn_g_angle": ("rotation (°)", -180.0, 180.0, 1.0), "learn_g_scale": ("scale", 0.1, 1.5, 0.01),
             "learn_g_tx": ("tx", -1.5, 1.5, 0.01), "learn_g_ty": ("ty", -1.5, 1.5, 0.01)}
F_SLIDERS = {"learn_f_angle": ("target rotation (°)", -180.0, 180.0, 1.0),
             "learn_f_scale": ("target scale", 0.5, 1.5, 0.01),
             "learn_f_tx": ("target tx", -0.5, 0.5, 0.01), "learn_f_ty": ("target ty", -0.5, 0.5, 0.01)}
TARGETS = ("the same digit", "another digit of its class")
OPT_LABELS = {"sgd": "SGD", "momentum": "momentum", "adam": "Adam"}


@st.cache_resource(show_spinner="Loading MNIST digits…")
def digits():
    return load_digits("test")  # shared, read-only


@st.cache_resource(show_spinner="Preparing the cluttered set…")
def lab_data() -> LL.LabData:
    return LL.lab_data(load_digits("train"), load_digits("test"), LL.RECIPE.n_eval)


@st.cache_resource(scope="session", on_release=lambda slot: slot.stop())
def lab_slot() -> LV.LabSlot:
    return LV.LabSlot()  # this session's one live run; a closed tab stops it


@st.cache_data(max_entries=16, show_spinner=False)
def landscape(u: np.ndarray, target: np.ndarray, tx: float, ty: float) -> np.ndarray:
    return Lg.loss_landscape(u, target, ANGLES, SCALES, (tx, ty))


def _chart(where, fig, key: str) -> None:
    """A figure filling its column: its own width dropped, so that plotly lays it out (title
    centred, nothing clipped) at the column's width from the first frame on."""
    fig.layout.width = None
    where.plotly_chart(fig, key=key, config=CFG, width="stretch")


def _defaults(values: dict) -> None:
    for k, v in values.items():
        S.setdefault(k, v)


def _set(values: dict) -> None:
    for k, v in values.items():
        S[k] = v


def _sliders(spec: dict, cols: int = 2, disabled: bool = False) -> list[float]:
    columns = st.columns(cols)
    return [columns[i % cols].slider(label, lo, hi, step=step, key=key, disabled=disabled)
            for i, (key, (label, lo, hi, step)) in enumerate(spec.items())]


def _g_values(name: str) -> dict:
    return dict(zip(G_SLIDERS, Lg.GRADIENT_PRESETS[name]))


# ----------------------------------------------------------------------------- 1. gradients
def gradient_section() -> None:
    d = digits()
    _defaults({**_g_values("near the digit"), "learn_g_pad": "zeros"})
    left, right = st.columns([0.4, 0.6], gap="large")
    with left:
        idx = int(st.number_input("test digit", 0, len(d) - 1, 0, key="learn_g_digit"))
        which = st.radio("target V*", ["the digit's crop", "another digit of its class"], key="learn_g_target",
                         horizontal=True, help="V* is the 28×28 crop around the digit (green), or a different "
                                               "digit of the same class drawn in the same place")
        row = st.container(horizontal=True)
        for name in Lg.GRADIENT_PRESETS:
            row.button(name, key=f"learn_g_preset_{name}", on_click=_set, args=(_g_values(name),))
        angle, scale, tx, ty = _sliders(G_SLIDERS)
        pad = st.radio("padding mode of the arrows", PADDING_MODES, key="learn_g_pad", horizontal=True)
    u = Lg.place_digit(d.images[idx])
    crop = Lg.crop_theta(Lg.digit_box(), u.shape)
    other = d.images[Lg.same_class_partner(d.labels, idx)] if which != "the digit's crop" else None
    target = Lg.target_image(u if other is None else Lg.place_digit(other), crop)
    grads = Lg.sampler_gradients(u, Lg.target_theta(angle, scale, tx, ty), target)
    g = grads[pad]
    _chart(right, LF.gradient_figure(u, g.grid, g.grad_grid, target_outline=LF.region_outline(crop),
                                     title=f"−∂L/∂x^s, {pad} padding"), "learn_g_fig")
    _chart(right, LF.images_row_figure([g.v, target], ["V (now)", "V* (target)"]), "learn_g_vv")
    st.markdown(f"**∂L/∂θ for each padding mode** (L = mean((V − V*)²) = {g.loss:.4f} with {pad} padding; "
                f"{g.outside:.0%} of the sample points lie outside U)")
    st.dataframe([{"padding": p, "L": round(r.loss, 5), "points with ∂L/∂x^s = 0": f"{r.zero_share:.0%}",
                   **{f"∂L/∂θ{i}{j}": round(float(r.grad_theta[i, j]), 5) for i in range(2) for j in range(3)}}
                  for p, r in grads.items()], hide_index=True, key="learn_g_table")
    st.caption("Arrows: the direction gradient descent moves each sample point (−∂L/∂x^s, the longest drawn "
               "4 pixels long); grey dots: points whose gradient is exactly 0. Eq. (7): a point's gradient is a "
               "difference of its 2×2 neighbouring pixels, so on flat background (no ink within a pixel) it is 0. "
               "∂L/∂θ = Σᵢ ∂L/∂x^s_i (x^t_i, y^t_i, 1): with the grid on empty background every term "
               "is 0 — "
               "an empty crop cannot tell where the digit is. The padding modes differ only where sample points "
               "fall outside U (try “half outside U”: zeros sees 0 there, border repeats U's edge pixels, "
               "reflection mirrors the ink back in). Checked against eqs. (5)–(7) written out in "
               "tests/test_learning.py.")


# ----------------------------------------------------------------------------- 2. fitting θ
def _f_values(name: str) -> dict:
    p = Lg.FIT_PRESETS[name]
    return {"learn_f_angle": p["angle"], "learn_f_scale": p["scale"], "learn_f_tx": p["tx"], "learn_f_ty": p["ty"],
            "learn_f_opt": p["optimiser"], "learn_f_lr": p["lr"]}


def _play(on: bool) -> None:
    S["learn_playing"] = on


def pause() -> None:
    """Stop the live fit (also when its tab is left: a hidden fragment must not keep ticking)."""
    S["learn_playing"] = False


def _reset() -> None:
    S.pop("learn_fit", None)
    pause()


def _fit_preset(name: str) -> None:
    _set(_f_values(name))
    _reset()


def _queue_step() -> None:
    S["learn_f_pending"] = S.get("learn_f_pending", 0) + 1


def fit_section() -> None:
    d = digits()
    _defaults({**_f_values("converges"), "learn_f_steps": 5})
    row = st.container(horizontal=True)
    for name in Lg.FIT_PRESETS:
        row.button(name, key=f"learn_f_preset_{name}", on_click=_fit_preset, args=(name,))
    c1, c2 = st.columns([0.5, 0.5], gap="large")
    with c1:
        idx = int(st.number_input("test digit", 0, len(d) - 1, 0, key="learn_f_digit"))
        which = st.radio("target image V*", TARGETS, key="learn_f_target", horizontal=True,
                         help="the same digit: V* = U warped by θ*, reachable exactly. Another digit: V* is a "
                              "different digit of the class warped by θ*, so no θ matches it exactly")
        angle, scale, tx, ty = _sliders(F_SLIDERS)
    with c2:
        opt = st.radio("optimiser", list(Lg.OPTIMISERS), key="learn_f_opt", horizontal=True,
                       format_func=lambda k: OPT_LABELS[k], help=", ".join(Lg.OPTIMISERS.values()))
        lr = st.select_slider("learning rate", LR_OPTIONS, key="learn_f_lr", format_func=lambda v: f"{v:g}",
                              help="may be changed while it plays")
    b1, b2, b3, b4, _ = st.columns([1, 1, 1, 1.2, 2], vertical_alignment="bottom")
    playing = bool(S.get("learn_playing"))
    b1.button("❚❚ Pause" if playing else "▶ Play", key="learn_f_play", on_click=_play, args=(not playing,),
              type="primary", width="stretch")
    b2.button("Step", key="learn_f_step", on_click=_queue_step, disabled=playing, width="stretch")
    b3.button("Reset", key="learn_f_reset", on_click=_reset, width="stretch")
    b4.selectbox("steps per frame", [1, 2, 5, 10, 20], key="learn_f_steps")
    u = d.images[idx].astype(np.float32) / 255
    theta_star = Lg.target_theta(angle, scale, tx, ty)
    src = u if which == TARGETS[0] else d.images[Lg.same_class_partner(d.labels, idx)].astype(np.float32) / 255
    target = Lg.target_image(src, theta_star)
    key = (idx, which, angle, scale, tx, ty, opt)
    if S.get("learn_fit") is None or S.get("learn_fit_key") != key:
        S["learn_fit"], S["learn_fit_key"] = Lg.ThetaFit(u, target, opt, lr), key
    fit = S["learn_fit"]
    if S.get("learn_f_pending"):
        fit.step(S.pop("learn_f_pending"), lr=lr)
    land = landscape(u, target, tx, ty)
    run_every = TICK if S.get("learn_playing") else None
    st.fragment(run_every=run_every)(_fit_frame)(fit, u, target, theta_star, land, (angle, scale))


def _timed(name: str):
    """Record a frame's server time in ``S[name]`` (the last 50; read by benchmarks/bench_learning.py)."""
    def deco(frame):
        @functools.wraps(frame)   # the fragment's identity is the function's qualified name
        def run(*args):
            t = time.perf_counter()
            frame(*args)
            S[name] = (S.get(name) or [])[-49:] + [(time.perf_counter() - t) * 1e3]
        return run
    return deco


@_timed("learn_f_frame_ms")
def _fit_frame(fit: Lg.ThetaFit, u, target, theta_star, land, star) -> None:
    if S.get("learn_playing"):
        fit.step(S["learn_f_steps"], lr=S["learn_f_lr"])
        if fit.status != "running" or fit.steps >= MAX_STEPS:
            S["learn_playing"] = False
            st.rerun(scope="app")        # stops the timer and relabels the button
    left, right = st.columns([0.45, 0.55])
    theta = fit.thetas[-1]
    _chart(left, LF.fit_view_figure(u, fit.grid(), theta, theta_star, title="θ now (red), θ* (green)"),
           "learn_f_view")
    _chart(left, LF.images_row_figure([fit.output(), target], ["V (now)", "V* (target)"], px=4.0), "learn_f_vv")
    _chart(right, LF.landscape_figure(ANGLES, SCALES, land, Lg.path_coordinates(fit.thetas), star), "learn_f_land")
    _chart(right, LF.loss_curve_figure(fit.losses, title=f"L = {fit.losses[-1]:.5f}", height=200), "learn_f_loss")
    text = Lg.STATUSES[fit.status] if fit.status != "running" else (
        "playing…" if S.get("learn_playing") else "paused: press ▶ Play or Step")
    st.markdown(f"**Step {fit.steps}** · {text} · θ = `{np.round(theta.astype(float), 3).tolist()}` · θ* = "
                f"`{np.round(theta_star, 3).tolist()}` · {fit.outside():.0%} of the grid outside U")


# ----------------------------------------------------------------------------- 3. the lab
LAB_KEYS = {"identity_init": "learn_l_identity", "loc_lr_scale": "learn_l_loclr", "st_out": "learn_l_out",
            "loc_downsample": "learn_l_pool"}


def _lab_values(cfg: LL.LabConfig) -> dict:
    return {LAB_KEYS[k]: v for k, v in cfg.toggles().items()}


def lab_config() -> LL.LabConfig:
    return replace(LL.RECIPE, seed=int(S["learn_l_seed"]), **{k: S[key] for k, key in LAB_KEYS.items()})


def _lab_start() -> None:
    try:
        lab_slot().start(lab_config(), lab_data())
    except RuntimeError as exc:
        S["learn_l_refused"] = str(exc)


def _lab_stop() -> None:
    lab_slot().stop(wait=3.0)   # the thread ends within a step and a probe (≈ 0.1 s here)


def lab_section(outcomes: dict | None) -> None:
    _defaults({**_lab_values(LL.RECIPE), "learn_l_seed": 0})
    run = lab_slot().run
    busy = run is not None and run.running and not run.stop_requested
    st.caption("Presets (the measured outcomes are in the table below):")
    row = st.container(horizontal=True)
    for name in LL.PRESETS:
        row.button(name, key=f"learn_l_preset_{name}", on_click=_set, args=(_lab_values(LL.PRESETS[name]),),
                   disabled=busy, help=LL.PRESET_NOTES[name])
    c = st.columns([1, 1, 1], vertical_alignment="bottom")
    c[0].toggle("identity init", key="learn_l_identity", disabled=busy,
                help="the regression layer starts at θ = identity (zero weights, identity bias)")
    c[1].toggle("pooled input", key="learn_l_pool", disabled=busy,
                help="the localisation net sees the input 2×-max-pooled (20×20) instead of 40×40")
    c[2].selectbox("seed", [0, 1, 2], key="learn_l_seed", disabled=busy)
    c = st.columns(2)
    c[0].select_slider("localisation lr", LL.LOC_LR_SCALES, key="learn_l_loclr", disabled=busy,
                       format_func=lambda v: f"×{v:g}", help="× the classifier's Adam learning rate (0.001)")
    c[1].select_slider("ST output", LL.OUT_SIZES, key="learn_l_out", disabled=busy,
                       format_func=lambda v: f"{v}×{v}", help="40×40 = the input's size: no pressure to zoom in")
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button("Start", key="learn_l_start", type="primary", on_click=_lab_start, disabled=busy, width="stretch")
    b2.button("Stop", key="learn_l_stop", on_click=_lab_stop, disabled=not busy, width="stretch")
    if "learn_l_refused" in S:
        st.warning(S.pop("learn_l_refused"))
    st.fragment(run_every=1.0 if busy else None)(_lab_frame)(outcomes)


@_timed("learn_l_frame_ms")
def _lab_frame(outcomes: dict | None) -> None:
    run = lab_slot().run
    if run is None:
        st.info(f"Press Start: {LL.RECIPE.iterations} Adam steps of {LL.RECIPE.batch_size} fresh cluttered "
                "images (≈ 30 s here); Stop ends it at once.")
        return
    if S.get("learn_l_was_running") and not run.running:
        S["learn_l_was_running"] = False
        st.rerun(scope="app")            # re-enable the controls, stop polling
    S["learn_l_was_running"] = run.running
    if run.error:
        st.error(f"The run failed: {run.error}")
    h = run.latest
    if h is None:
        st.caption("Starting…")
        return
    it, total = h["iteration"][-1], run.cfg.iterations
    if run.running and not run.stop_requested:
        st.progress(it / total, text=f"iteration {it} of {total} · {h['seconds']:.0f} s")
    else:
        early = h["collapsed"][-1] and it < ALARM_AFTER and h["outside"][-1] <= 0.5
        verdict = "too early to judge: the regions have not moved apart yet" if early else h["verdict"]
        st.success(f"{'Stopped' if h['stopped'] or run.stop_requested else 'Finished'} at iteration {it} "
                   f"({h['seconds']:.0f} s): {verdict}.", icon=":material/check:")
    g1, g2, g3 = st.columns(3)
    g1.progress(min(h["outside"][-1], 1.0), text=f"outside U: {h['outside'][-1]:.0%} of the sample points")
    g2.metric("spread of the regions across images", f"{h['spread'][-1]:.3f}",
              help=f"below {COLLAPSE_SPREAD} the transformer does the same to every image: collapsed")
    g3.metric("error on 300 held-out images", f"{h['error'][-1]:.1f}%")
    if h["outside"][-1] > 0.5:
        st.error("Lost: most of the grid samples outside U, where zero padding gives zero output and zero gradient.")
    elif h["collapsed"][-1] and it >= ALARM_AFTER:
        st.error(f"Collapse alarm: one fixed view for every image (spread {h['spread'][-1]:.3f} < {COLLAPSE_SPREAD}).")
    cfg = run.cfg
    left, right = st.columns([0.55, 0.45])
    data = lab_data()
    _chart(left, LF.lab_panel_figure(data.panel[:cfg.n_panel], np.stack(h["panel"]),
                                     title="region (red), centre path (yellow)"), "learn_l_panel")
    _chart(left, LF.images_row_figure(list(h["v_panel"]), ["V"] * cfg.n_panel, px=90 / cfg.st_out), "learn_l_v")
    _chart(right, LF.lab_curves_figure(h["iteration"], h["loss"], h["error"], h["outside"], h["spread"],
                                       collapse_spread=COLLAPSE_SPREAD, total=total), "learn_l_curves")
    m = LL.measured_for(outcomes, cfg)
    if m is not None:
        name, r = m
        st.caption(f"Measured for this setting (preset “{name}”, seed {cfg.seed}) by the command below: "
                   f"{r['verdict']}; error {r['final']['error']:.1f}% after {r['iterations']} iterations.")

"""/colocalisation's widget groups: the recordings it plays, the live run's controls and its
progress panel. The experiment (runs, live training) is
:mod:`stn_explore.experiments.colocalisation`; figures are :mod:`stn_explore.explorer.figures`.
"""

from __future__ import annotations

import streamlit as st

from stn_explore.experiments import colocalisation as C
from stn_explore.experiments.mnist import load_digits
from stn_explore.explorer import figures

S = st.session_state
LIVE = "coloc_live"          # the session's running LiveRun
KEPT = "coloc_kept"          # {(digit, variant): finished live checkpoint} of this session


@st.cache_data(show_spinner="Loading the recording…", max_entries=40)
def shipped_run(path: str, mtime: float) -> dict:
    return C.load_run(path)


@st.cache_data(show_spinner=False, max_entries=4)
def runs_table(mtimes: tuple) -> list[dict]:
    return C.collect_runs()


@st.cache_resource(show_spinner="Loading MNIST digits…")
def digits():
    return load_digits("train"), load_digits("test")


def figure(run: dict, animate: bool, title: str):
    r = run["recording"]
    return figures.coloc_figure(r["panel_images"], r["panel_boxes"], r["panel_quads"], r["iteration"],
                                r["loss"], r["accuracy"], animate=animate, frame=0 if animate else -1,
                                title=title)


def start_live(digit: int, noise: int) -> None:
    train_d, test_d = digits()
    cfg = C.live_config(digit, noise, S["coloc_live_iters"], localiser=S["coloc_live_localiser"])
    S[LIVE] = C.LiveRun(cfg, train_d, test_d).start()


def stop_live() -> None:
    if S.get(LIVE) is not None:
        S[LIVE].stop()


def live_controls(digit: int, noise: int, variant: str) -> None:
    """Localiser, iterations, Start and Stop of a live run (disabled while one runs)."""
    live = S.get(LIVE)
    busy = live is not None and live.running
    l1, l0, l2, l3 = st.columns([2, 1.4, 1, 1])
    l0.radio("Localiser", list(C.LOCALISERS),
             key="coloc_live_localiser", disabled=busy,
             help="heatmap (the shipped runs): a convolutional score map over window positions, the window at its "
                  "softmax-weighted mean. regress: a CNN with a fully connected head regresses the window's "
                  "position — try it to see why we switched: its windows end a few pixels off")
    l1.slider("Iterations", 100, 1500, 400, step=50, key="coloc_live_iters", disabled=busy,
              help="the shipped recipe scaled to this length: the window shrinks over the first third "
                   "(clean) or sixth (noisy, then the clutter rises to full over the next sixth), random "
                   "crops move next to the window later on, with the learning rate ÷10 (clean: four random "
                   "crops per image, noisy: one)")
    l2.button("Start", type="primary", key="coloc_start", disabled=busy, on_click=start_live, args=(digit, noise),
              help=f"train digit {digit} ({variant}) in this session")
    l3.button("Stop", key="coloc_stop", disabled=not busy, on_click=stop_live)


@st.fragment(run_every=1.0)
def live_panel() -> None:
    live = S.get(LIVE)
    if live is None:
        st.caption("No live run in this session yet.")
        return
    cfg = live.cfg
    name = f"digit {cfg.digit}, {'noisy' if cfg.noise else 'clean'}"
    snap = live.latest
    it = int(snap["iteration"]) if snap else 0
    if live.error:
        st.error(f"The live run failed: {live.error}")
    elif live.running:
        st.progress(it / cfg.iterations, text=f"Live run ({name}): iteration {it} of {cfg.iterations}…")
    else:
        status = "stopped" if snap and snap.get("stopped") else "finished"
        st.success(f"Live run ({name}) {status} at iteration {it}.", icon=":material/check:")
        key = (cfg.digit, "noisy" if cfg.noise else "clean")
        if snap is not None and S[KEPT].get(key) is not snap:
            S[KEPT][key] = snap
            st.rerun(scope="app")   # offer it in the recording selector
    if snap is not None:
        st.plotly_chart(figure(C.run_view(snap), False, f"live: {name}"), key="coloc_live_fig",
                        config={"displayModeBar": False})

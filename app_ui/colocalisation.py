"""/colocalisation's widget groups: the recordings it plays, the live run's controls and its
progress panel. The experiment (runs, live training) is
:mod:`stn_explore.experiments.colocalisation`; figures are :mod:`stn_explore.explorer.figures`.
"""

from __future__ import annotations

import time

import streamlit as st

from stn_explore.experiments import colocalisation as C
from stn_explore.experiments.mnist import load_digits
from stn_explore.explorer import figures

S = st.session_state
LIVE = "coloc_live"          # the session's running (or last) LiveRun
LIVE_N = "coloc_live_n"      # its number in this session (1, 2, …)
KEPT = "coloc_kept"          # [{"n", "digit", "variant", "snap"}]: every finished or stopped live run of this session
SHIPPED = "shipped run"
#: seconds per iteration of a live run before this session has measured its own: 400 iterations
#: took 177 s on the project's 2-core CPU (issue 23)
SECONDS_PER_ITERATION = 177 / 400
LEGEND = "green: ground truth (evaluation only) · red: the transformer's crop"


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


def run_label(kept: dict) -> str:
    snap = kept["snap"]
    how = "stopped" if snap.get("stopped") else "finished"
    return f"live run {kept['n']} ({how} at {int(snap['iteration'])} of {snap['config']['iterations']})"


def recording_choice(digit: int, variant: str) -> tuple[str, dict | None]:
    """The recording to play: the shipped run or one of this session's live runs of this digit
    and variant (a choice is offered only when there is more than one). Returns its label and,
    for a live run, its checkpoint dict."""
    runs = {run_label(k): k["snap"] for k in S.get(KEPT, []) if (k["digit"], k["variant"]) == (digit, variant)}
    if not runs:
        return SHIPPED, None
    source = st.radio("Recording", [SHIPPED, *runs], horizontal=True, key="coloc_source",
                      help="every live run of this session is kept until the session ends")
    return source, runs.get(source)


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def seconds_per_iteration() -> float:
    """This session's measured pace (its last live run), else :data:`SECONDS_PER_ITERATION`."""
    return S.get("coloc_pace", SECONDS_PER_ITERATION)


def _abandon_all(runs: list) -> None:
    for run in runs:
        run.abandon()


@st.cache_resource(scope="session", on_release=_abandon_all, show_spinner=False)
def _session_runs() -> list:
    """The live runs this session started. Streamlit releases session-scoped resources when
    the session ends (its browser tab closed), and then every run still training is abandoned:
    its thread ends after the current iteration instead of training on for nobody."""
    return []


def start_live(digit: int, noise: int) -> None:
    train_d, test_d = digits()
    cfg = C.live_config(digit, noise, S["coloc_live_iters"], localiser=S["coloc_live_localiser"])
    S[LIVE_N] = S.get(LIVE_N, 0) + 1
    S[LIVE] = C.LiveRun(cfg, train_d, test_d).start()
    _session_runs().append(S[LIVE])


def stop_live() -> None:
    if S.get(LIVE) is not None:
        S[LIVE].stop()


def _is_kept(n: int) -> bool:
    return any(k["n"] == n for k in S.get(KEPT, []))


def live_controls(digit: int, noise: int, variant: str) -> None:
    """Localiser, iterations (with an estimated time), Start and Stop of a live run (disabled
    while one runs)."""
    live = S.get(LIVE)
    busy = live is not None and live.running
    l1, l0, l2, l3 = st.columns([2, 1.4, 1, 1])
    l0.radio("Localiser", list(C.LOCALISERS),
             key="coloc_live_localiser", disabled=busy,
             help="heatmap (the shipped runs): a convolutional score map over window positions, the window at its "
                  "softmax-weighted mean. regress: a CNN with a fully connected head regresses the window's "
                  "position — try it to see why we switched: its windows end a few pixels off")
    iters = l1.slider("Iterations", 100, 1500, 400, step=50, key="coloc_live_iters", disabled=busy,
                      help="the shipped recipe scaled to this length: the window shrinks over the first third "
                           "(clean) or sixth (noisy, then the clutter rises to full over the next sixth), random "
                           "crops move next to the window later on, with the learning rate ÷10 (clean: four random "
                           "crops per image, noisy: one)")
    l2.button("Start", type="primary", key="coloc_start", disabled=busy, on_click=start_live, args=(digit, noise),
              help=f"train digit {digit} ({variant}) in this session")
    l3.button("Stop", key="coloc_stop", disabled=not busy or live.stopping, on_click=stop_live,
              help="stops at the next recorded iteration, so the run keeps a last frame")
    measured = "coloc_pace" in S
    st.caption(f"Estimated time for {iters} iterations: about {duration(iters * seconds_per_iteration())} "
               + ("(at the pace of your last live run)." if measured else
                  "(400 iterations took 177 s on a 2-core CPU; other work on the server slows it)."))


def live_panel() -> None:
    """The live run's progress, polled every second while it runs (only then: an idle page
    stays idle)."""
    live = S.get(LIVE)
    st.fragment(_live_panel, run_every=1.0 if live is not None and live.running else None)()


def _live_panel() -> None:
    live = S.get(LIVE)
    if live is None:
        st.caption("No live run in this session yet.")
        return
    cfg, n = live.cfg, S[LIVE_N]
    name = f"live run {n}: digit {cfg.digit}, {'noisy' if cfg.noise else 'clean'}"
    snap = live.latest
    it = int(snap["iteration"]) if snap else 0
    elapsed = time.time() - live.started
    if live.error:
        st.error(f"The live run failed: {live.error}")
    elif live.running:
        done = live.iteration
        left = f"about {duration(elapsed / done * (cfg.iterations - done))} left" if done else "starting"
        text = (f"Stopping {name} at its next recorded iteration…" if live.stopping else
                f"{name}: iteration {done} of {cfg.iterations}, {duration(elapsed)} so far, {left}")
        st.progress(done / cfg.iterations, text=text)
    else:
        status = "stopped" if snap and snap.get("stopped") else "finished"
        st.success(f"{name.capitalize()} {status} at iteration {it} after {duration(live.seconds)}.",
                   icon=":material/check:")
        if snap is not None and not _is_kept(n):
            S.setdefault(KEPT, []).append({"n": n, "digit": cfg.digit,
                                           "variant": "noisy" if cfg.noise else "clean", "snap": snap})
            if it:
                S["coloc_pace"] = live.seconds / it
            st.rerun(scope="app")   # offer it in the recording selector
    if snap is not None:
        st.plotly_chart(figure(C.run_view(snap), False, name), key="coloc_live_fig",
                        config={"displayModeBar": False})
        st.caption(("" if live.running else C.run_summary(C.run_view(snap)) + " ") + LEGEND + ".")

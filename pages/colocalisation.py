"""Co-localisation: a spatial transformer learns, without box labels, where the common digit is.

Thin page: widgets → stn_explore.colocalisation → stn_explore.figures.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_shell import ensure_router
from stn_explore.experiments import colocalisation as C
from stn_explore.explorer import figures
from stn_explore.experiments.checkpoint import CheckpointError
from stn_explore.experiments.mnist import load_digits

ensure_router("colocalisation")

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


def summary(run: dict) -> str:
    f, d = run["final"], run["data"]
    sample = " (bundled 5,000-digit sample, not full MNIST)" if d["is_sample"] else ""
    if f is None:
        return (f"Stopped after {run['iteration']} of {run['config']['iterations']} iterations — the last "
                f"recorded accuracy is {run['recording']['accuracy'][-1]:.0f}% of {run['config']['n_eval']} "
                f"held-out boxes.")
    return (f"After {run['iteration']} iterations: **{f['accuracy']:.1f}%** of {f['n']} held-out boxes have "
            f"IoU > 0.5 with the ground truth (mean IoU {f['mean_iou']:.2f}). Trained on the "
            f"{d['n_train_digits']} training digits of class {run['config']['digit']}{sample}."
            + C.attempts_note(run.get("attempts")))


st.title("Co-localisation")
st.markdown(
    "The paper's appendix experiment: every image holds one digit **of the same class** somewhere on an "
    "84×84 canvas. A spatial transformer crops a 28×28 view (its localisation network scores every window "
    "position and puts the window at the score-weighted mean) and an embedding network compares crops; the "
    "only training signal is a hinge loss saying *the crops of two images should look more alike than a "
    "crop and another patch of its own image*. No boxes are used in training — the green ground-truth "
    "boxes below are for scoring only (a box counts as correct when its IoU with the truth exceeds 0.5).")

c1, c2, c3 = st.columns([1, 1, 2])
shipped = [d for d in range(10) if C.run_path(d, 0).is_file()]
digit = c1.selectbox("Digit", list(range(10)), index=3 if 3 in shipped or not shipped else shipped[0],
                     key="coloc_digit")
variant = c2.radio("Images", ["clean", "noisy"], horizontal=True, key="coloc_variant",
                   help=f"noisy: {C.NOISY} 6×6 clutter patches cut from other digits")
noise = C.NOISY if variant == "noisy" else 0
kept = S.setdefault(KEPT, {})
sources = ["shipped run"] + (["your live run"] if (digit, variant) in kept else [])
source = c3.radio("Recording", sources, horizontal=True, key="coloc_source")

path = C.run_path(digit, noise)
run = None
if source == "your live run":
    run = C.run_view(kept[(digit, variant)])
elif path.is_file():
    try:
        run = shipped_run(str(path), path.stat().st_mtime)
    except CheckpointError as exc:
        st.error(f"`{path}` cannot be used ({exc}).")
else:
    st.info(f"No recording for digit {digit} ({variant}) yet: `{path}` is missing. Make it with\n\n"
            f"`STN_DATA_DIR=../shared/data/mnist python -m stn_explore.colocalise --digit {digit} "
            f"--noise {noise} --compact`\n\nor train a short run live below.")

if run is not None:
    st.plotly_chart(figure(run, True, f"digit {digit}, {variant} — {source}"), key="coloc_anim",
                    config={"displayModeBar": False})
    st.caption(summary(run) + " Press ▶ Play or drag the slider: the windows start large (the curriculum "
               "lets every first crop hold the whole digit) and shrink to 28×28 around the digit"
               + (" on clean images; then the clutter rises to full (the held-out images always carry it)."
                  if noise else "."))

st.subheader("Train live")
st.caption("A short run of the same recipe in this browser session (other sessions are not blocked). "
           "The result is kept as “your live run” for this digit and variant until the session ends.")


def start_live() -> None:
    train_d, test_d = digits()
    cfg = C.live_config(digit, noise, S["coloc_live_iters"], localiser=S["coloc_live_localiser"])
    S[LIVE] = C.LiveRun(cfg, train_d, test_d).start()


def stop_live() -> None:
    if S.get(LIVE) is not None:
        S[LIVE].stop()


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
l2.button("Start", type="primary", key="coloc_start", disabled=busy, on_click=start_live,
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


live_panel()

st.subheader("Our accuracy per digit beside the paper's (Table 5)")
mtimes = tuple(sorted((p.name, p.stat().st_mtime) for p in Path(C.runs.RUNS_FOLDER).glob("coloc_*.pt")))
rows = runs_table(mtimes)
by = {(r["digit"], r["variant"]): r for r in rows}
table = []
for d in range(10):
    c, n = by.get((d, "clean")), by.get((d, "noisy"))
    table.append({"digit": d, "clean, ours": c["accuracy"] if c else None, "clean, paper": C.PAPER_CLEAN,
                  "noisy, ours": n["accuracy"] if n else None,
                  "noisy, paper": "{:.0f}–{:.0f} (range over digits)".format(*C.PAPER_NOISY_RANGE)})
st.dataframe(table, hide_index=True, width="stretch")
st.caption("% of held-out images (every test-split digit of the class, placed with a fixed seed) whose box has "
           "IoU > 0.5 with the ground truth, read from each checkpoint in `checkpoints/coloc_*.pt` "
           "(made by `bash checkpoints/train_coloc.sh`; trained on the 10,000-digit training subset). Empty: "
           "not trained. The paper gives 100% without noise and 75–93% with noise depending on the digit.")

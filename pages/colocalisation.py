"""Co-localisation: a spatial transformer learns, without box labels, where the common digit is.

Widgets and layout: the experiment is stn_explore.experiments.colocalisation (runs, live
training, the summary and table), the figures stn_explore.explorer.figures.
"""

from __future__ import annotations

import streamlit as st

from app_ui import colocalisation as ui
from app_ui.shell import ensure_router
from stn_explore.experiments import colocalisation as C
from stn_explore.experiments.checkpoint import CheckpointError

ensure_router("colocalisation")

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
with c3:
    source, live_run = ui.recording_choice(digit, variant)

path = C.run_path(digit, noise)
run = None
if live_run is not None:
    run = C.run_view(live_run)
elif path.is_file():
    try:
        run = ui.shipped_run(str(path), path.stat().st_mtime)
    except CheckpointError as exc:
        st.error(f"`{path}` cannot be used ({exc}).")
else:
    st.info(f"No recording for digit {digit} ({variant}) yet: `{path}` is missing. Make it with\n\n"
            f"`STN_DATA_DIR=../shared/data/mnist python -m stn_explore.colocalise --digit {digit} "
            f"--noise {noise} --compact`\n\nor train a short run live below.")

if run is not None:
    st.plotly_chart(ui.figure(run, True, f"digit {digit}, {variant} — {source}"), key="coloc_anim",
                    config={"displayModeBar": False})
    st.caption(C.run_summary(run) + " Press ▶ Play or drag the slider: the windows start large (the curriculum "
               "lets every first crop hold the whole digit) and shrink to 28×28 around the digit"
               + (" on clean images; then the clutter rises to full (the held-out images always carry it)."
                  if noise else ".") + f" {ui.LEGEND}.")

st.subheader("Train live")
st.caption("A short run of the same recipe in this browser session (other sessions are not blocked). "
           "Every run you finish or stop is kept under “Recording” above, for its digit and variant, until "
           "the session ends.")
ui.live_controls(digit, noise, variant)
ui.live_panel()

st.subheader("Our accuracy per digit beside the paper's (Table 5)")
mtimes = tuple(sorted((p.name, p.stat().st_mtime) for p in C.runs_folder().glob("coloc_*.pt")))
st.dataframe(C.paper_table(ui.runs_table(mtimes)), hide_index=True, width="stretch", placeholder="not trained")
st.caption("% of held-out images (every test-split digit of the class, placed with a fixed seed) whose box has "
           "IoU > 0.5 with the ground truth, read from each checkpoint in `checkpoints/coloc_*.pt` "
           "(made by `bash checkpoints/train_coloc.sh`; trained on the 10,000-digit training subset). "
           "The paper gives 100% without noise and 75–93% with noise depending on the digit.")

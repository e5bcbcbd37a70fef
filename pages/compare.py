"""CNN vs ST-CNN side by side on the same distorted digit, with the transformer's view.

Layout only: the widget groups are in app_ui/compare.py, the computations in
stn_explore.explorer.compare, the figures in stn_explore.explorer.figures.
"""

from __future__ import annotations

import streamlit as st

from app_ui import compare as ui
from app_ui.shell import ensure_router
from stn_explore.experiments import distortions as D
from stn_explore.experiments.results import row_title
from stn_explore.explorer import compare

ensure_router("compare")
TASKS = ("rts", "r", "p", "e", "cluttered", "addition")

st.title("CNN vs ST-CNN")
st.caption("The same distorted test digit through both models; the ST-CNN's spatial transformer "
           "shows where it looks (T_θ(G) on the input) and what it passes on (V).")

available = [t for t in TASKS if all(m is not None for m in ui.models(t)[0])]
# the list shows names (RTS, MNIST addition); the URL keeps the plain ids (?cmp_task=rts)
task = ui.url_selectbox("distortion task", TASKS, "cmp_task", D.TASK_TITLES.get, on_change=ui.reset_distortion,
                        help="RTS, R, P, E: distorted MNIST (Table 1); cluttered 60×60: cluttered MNIST; "
                             "MNIST addition: two RTS digits as two channels, the label is their sum (Table 4)")
st_row = None
if task == "addition":
    st_row = ui.url_selectbox("model with two parallel transformers", compare.ADDITION_ST_ROWS, "cmp_add_model",
                              row_title, help="each transformer sees both channels; their outputs are stacked "
                                              "and classified into the sum 0–18")
else:
    st.query_params.pop("cmp_add_model", None)
st.caption("Trained pairs available for: " + (", ".join(D.TASK_TITLES[t] for t in available) or "none yet"))
(cnn, stcnn), problems = ui.models(task, st_row)
name_b = "ST-CNN" if st_row is None else row_title(st_row)
if problems:
    ui.show_problems(task, problems)

config = stcnn.checkpoint["data"]["config"]
images, labels, source = ui.test_images(task, config)
shown, label = ui.chosen_digit(task, images, labels, source)


@st.fragment
def view() -> None:  # sliders, input + grid(s), V, probabilities: live in the browser (issue 17)
    ui.live_view(task, st_row, shown, label, cnn, stcnn, name_b)


with st.container(key="cmp_view"):
    view()
ui.scroll_to_view()

st.subheader("What did the transformer learn?")
ui.learned_panel(task, config, st_row, name_b)

st.subheader("Where they disagree")
ui.gallery(images, labels, *ui.test_predictions(task, config, st_row), name_b=name_b, source=source, task=task)

st.subheader("Robustness sweep")
ui.sweep(task, config)

"""The paper's tables beside our measured numbers (read from checkpoints/results.json)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app_ui.shell import ensure_router
from stn_explore.experiments import distortions as D
from stn_explore.experiments import results as E
from stn_explore.experiments.checkpoint import default_checkpoint_dir

ensure_router("paper")

RESULTS = default_checkpoint_dir() / "results.json"
NOT_IN_PAPER, NOT_TRAINED = "not in the paper", "not trained"


@st.cache_data(show_spinner=False)
def results(mtime: float) -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"results": [], "in_progress": []}


st.title("The paper's tables, and ours")
st.caption("% test error. Paper: Jaderberg et al., NeurIPS 2015. Ours: the error recorded in each "
           "checkpoint by `python -m stn_explore.train` on 10,000 distorted images from the MNIST test split, "
           "tabled by `python -m stn_explore.evaluate --table`. Our models saw 10,000 MNIST training digits (the "
           "paper's 60,000), about 3,900 iterations of batch 128 per 50 epochs where the paper trained 150,000 of "
           "batch 256 (checkpoints/README.md says how each was trained): the gaps listed under a table as *far from "
           "the paper* were not investigated further.")
res = results(RESULTS.stat().st_mtime if RESULTS.is_file() else 0.0)


def table(tasks: list[str], title: str) -> None:
    """Numbers stay numbers (the data is float); an empty cell says why it is empty. A static
    table: st.dataframe shows its own placeholder for every missing number, whatever the Styler says."""
    st.subheader(title)
    df = pd.DataFrame(E.comparison_rows(res["results"], tasks))
    paper, ours = [c for c in df if c.endswith(" paper")], [c for c in df if c.endswith(" ours")]
    st.table(df.style.format("{:g}", subset=paper, na_rep=NOT_IN_PAPER)
             .format("{:.2f}", subset=ours, na_rep=NOT_TRAINED)
             .map(lambda v: "color: #808495; font-style: italic" if pd.isna(v) else "", subset=paper + ours),
             hide_index=True)
    notes = E.gap_notes(res["results"], tasks)
    if notes:
        st.markdown("**Far from the paper:**\n" + "\n".join(f"- {n}" for n in notes))


table(["r", "rts", "p", "e"], "Table 1 — distorted MNIST")
table(["cluttered"], "Noisy cluttered MNIST (60×60)")
table(["addition"], "Table 4 — MNIST addition")
st.subheader("Table 5 — co-localisation")
coloc = {(r["digit"], r["variant"]): r for r in res.get("colocalisation", [])}
st.dataframe([{"digit": d, "clean, paper": 100.0,
               "clean, ours": coloc[(d, "clean")]["accuracy"] if (d, "clean") in coloc else None,
               "noisy, paper": "75–93 (range over digits)",
               "noisy, ours": coloc[(d, "noisy")]["accuracy"] if (d, "noisy") in coloc else None}
              for d in range(10)], hide_index=True, width="stretch", placeholder=NOT_TRAINED)
st.caption("% of held-out boxes with IoU > 0.5. Paper: 100% without noise, 75–93% with clutter noise depending "
           "on the digit (per-digit values not given). Ours: `checkpoints/coloc_<digit>_<clean|noisy>.pt`, made by "
           "`bash checkpoints/train_coloc.sh` (`python -m stn_explore.colocalise`). "
           "See the Co-localisation page for the recorded training.")
st.subheader("Tables 2–3 — SVHN and CUB-200-2011")
st.caption("Not reproduced offline: neither dataset (nor the ImageNet weights CUB needs) can be had on the "
           "machines this project is built on. Paper, SVHN 64px: CNN 4.0%, ST-CNN Multi 3.6% sequence error; "
           "CUB: CNN 82.3%, 4×ST-CNN 84.1% accuracy.")

st.subheader("Where each number comes from")
if res["results"]:
    st.dataframe([{"task": D.TASK_TITLES[r["task"]], "model": r["model"], "error %": r["test_error"],
                   "epochs": r["epochs"], "checkpoint": r["checkpoint"]} for r in res["results"]],
                 hide_index=True, width="stretch")
    st.caption("The command that made each checkpoint (run with `STN_DATA_DIR` pointing at MNIST):")
    st.code("\n".join(r["command"] for r in res["results"]), language="bash", wrap_lines=True)
else:
    st.info("No trained checkpoints yet: see checkpoints/README.md for the commands.")
for r in res.get("in_progress", []):
    st.caption(f"Still training: {r['checkpoint']} (epoch {r['epoch']}/{r['epochs']}) — `{r['command']}`")

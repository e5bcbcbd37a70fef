"""/paper (AppTest): numbers stay numbers, an empty cell says whether the paper has no such
figure or we trained no such model, large gaps get a comment, every command is shown whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit")

from stn_explore.experiments import results as E

from .test_app import app, ok

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "checkpoints" / "results.json"


def shown_cells(table) -> "pd.DataFrame":  # noqa: F821
    """What a st.table shows in each cell (the Styler's display values)."""
    import pyarrow as pa

    return pa.ipc.open_stream(table.proto.arrow_data.styler.display_values).read_all().to_pandas()


def test_empty_cells_say_why_and_numbers_stay_numbers():
    at = ok(app("pages/paper.py"))
    table1 = at.table[0]
    data, shown = table1.value, shown_cells(table1)
    assert all(data[c].dtype.kind == "f" for c in data if c != "model")   # sortable numbers, not strings
    cnn = data[data["model"] == "CNN"].index[0]
    assert data.loc[cnn, "RTS paper"] == 0.8 and shown.loc[cnn, "RTS paper"] == "0.8"
    for col in data:
        if col == "model":
            continue
        for i in data.index[data[col].isna()]:
            assert shown.loc[i, col] == ("not in the paper" if col.endswith(" paper") else "not trained"), (i, col)
    # the paper gives no 2×ST-CNN for addition; we give no R FCN
    addition, add_shown = at.table[2].value, shown_cells(at.table[2])
    row = addition.index[addition["model"] == "2×ST-CNN Aff"]
    if len(row):
        assert add_shown.loc[row[0], "MNIST addition paper"] == "not in the paper"
    assert at.dataframe[0].proto.placeholder == "not trained"  # Table 5: only our columns can be empty
    fcn = data.index[data["model"] == "FCN"][0]
    if data[data["model"] == "FCN"]["R ours"].isna().all():
        assert shown.loc[fcn, "R ours"] == "not trained"


def test_large_gaps_are_commented():
    rows = [{"task": "addition", "row": "cnn", "test_error": 61.31, "epochs": 50, "n_train_digits": 10_000},
            {"task": "cluttered", "row": "cnn", "test_error": 2.65, "epochs": 50, "n_train_digits": 10_000},
            {"task": "cluttered", "row": "st-cnn_affine", "test_error": 2.76, "epochs": 80, "n_train_digits": 10_000},
            {"task": "rts", "row": "st-cnn_affine", "test_error": 0.9, "epochs": 50, "n_train_digits": 10_000}]
    add = E.gap_notes(rows, ["addition"])
    assert add == ["MNIST addition, CNN: 61.31% vs the paper's 14.7% (4.2×); trained 50 epochs on 10,000 digits"]
    (clut,) = E.gap_notes(rows, ["cluttered"])
    assert "our ST-CNN Aff (2.76%) is above our CNN (2.65%)" in clut and "1.7% vs 3.5%" in clut
    assert E.gap_notes(rows, ["rts"]) == []        # 0.9 vs 0.5: under a point, no comment


@pytest.mark.skipif(not RESULTS.is_file(), reason="needs checkpoints/results.json")
def test_page_comments_gaps_and_shows_every_command_whole():
    recorded = json.loads(RESULTS.read_text())["results"]
    at = ok(app("pages/paper.py"))
    notes = " ".join(m.value for m in at.markdown if m.value.startswith("**Far from the paper:**"))
    for note in E.gap_notes(recorded, ["addition"]) + E.gap_notes(recorded, ["cluttered"]):
        assert note in notes
    (code,) = [c.value for c in at.code if "python -m stn_explore.train" in c.value]
    assert code.splitlines() == [r["command"] for r in recorded]
    assert all("command" not in df.value.columns for df in at.dataframe)  # not squeezed into a table column

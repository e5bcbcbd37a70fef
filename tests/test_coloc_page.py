"""AppTest for /colocalisation: the recording plays as a plotly animation, a missing recording
names its command, the per-digit table reads the checkpoints, live training starts and stops."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("streamlit")

from stn_explore.experiments import colocalisation as C
from stn_explore.experiments.checkpoint import save_checkpoint

from .conftest import synthetic_digits
from .test_app import app


@pytest.fixture
def runs_folder(tmp_path, monkeypatch):
    tr, te = synthetic_digits(60, 1), synthetic_digits(40, 2)
    cfg = C.ColocConfig(digit=3, iterations=6, batch_size=4, record_every=2, n_panel=4, n_eval=6,
                        shrink_iterations=4, lr_drop=5, save_every=100)
    ck = C.train(cfg, train_digits=tr, test_digits=te, progress=False, log=lambda m: None)
    attempts = [{"seed": 0, "final_training_loss": 9.0, "accuracy": 1.9},
                {"seed": 1, "final_training_loss": C.final_training_loss(ck), "accuracy": ck["final"]["accuracy"]}]
    save_checkpoint(tmp_path / C.recording_name(3, 0), {**C.compact(ck, te), "attempts": attempts})
    monkeypatch.setattr(C.runs, "RUNS_FOLDER", str(tmp_path))  # the module that reads it
    return tmp_path


def figures_of(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_recording_plays_and_table_reads_checkpoints(runs_folder, fresh_streamlit_caches):
    at = app("pages/colocalisation.py")
    assert not at.exception, [e.value for e in at.exception]
    (fig,) = figures_of(at)
    assert len(fig["frames"]) == 4                                   # iterations 0, 2, 4, 6
    assert [s["label"] for s in fig["layout"]["sliders"][0]["steps"]] == ["0", "2", "4", "6"]
    assert [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]] == ["▶ Play", "❚❚ Pause"]
    # a run kept from several attempts says so
    assert any("Kept from 2 attempts" in c.value and "seed 0 ended at loss 9.00 (2% correct)" in c.value
               for c in at.caption)
    table = at.dataframe[0].value
    row3 = table[table["digit"] == 3].iloc[0]
    assert row3["clean, paper"] == 100.0 and row3["clean, ours"] is not None
    assert table[table["digit"] == 4]["clean, ours"].isna().all()
    # a digit without a recording names the command that makes it
    at.selectbox(key="coloc_digit").set_value(4).run()
    assert not at.exception
    assert not figures_of(at)
    assert any("python -m stn_explore.colocalise --digit 4 --noise 0" in i.value for i in at.info)
    at.radio(key="coloc_variant").set_value("noisy").run()
    assert any(f"--digit 4 --noise {C.NOISY}" in i.value for i in at.info)


def test_live_training_starts_stops_and_is_kept(runs_folder, fresh_streamlit_caches):
    at = app("pages/colocalisation.py")
    at.button(key="coloc_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    live = at.session_state["coloc_live"]
    assert live.running and at.button(key="coloc_start").disabled
    for _ in range(600):                       # wait for the first record, then stop
        if live.latest is not None:
            break
        time.sleep(0.05)
    at.button(key="coloc_stop").click().run()
    live.join(120)
    assert live.done and live.result["stopped"] and live.result["iteration"] < live.cfg.iterations
    at.run()
    at.run()                                   # the fragment keeps the run, the app offers it
    assert not at.exception, [e.value for e in at.exception]
    assert "your live run" in at.radio(key="coloc_source").options
    at.radio(key="coloc_source").set_value("your live run").run()
    assert not at.exception
    titles = [f["layout"]["title"]["text"] for f in figures_of(at)]
    assert any("your live run" in t for t in titles)
    assert any("Stopped after" in c.value for c in at.caption)


def test_live_run_uses_the_chosen_localiser(runs_folder, fresh_streamlit_caches):
    at = app("pages/colocalisation.py")
    assert at.radio(key="coloc_live_localiser").value == "heatmap"   # the shipped runs' localiser
    at.radio(key="coloc_live_localiser").set_value("regress")
    at.button(key="coloc_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    live = at.session_state["coloc_live"]
    assert live.cfg.localiser == "regress" and at.radio(key="coloc_live_localiser").disabled
    at.button(key="coloc_stop").click().run()
    live.join(120)
    assert live.done and live.result["model_args"]["localiser"] == "regress"

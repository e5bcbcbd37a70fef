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
    (label,) = [o for o in at.radio(key="coloc_source").options if o.startswith("live run 1 (stopped")]
    at.radio(key="coloc_source").set_value(label).run()
    assert not at.exception
    titles = [f["layout"]["title"]["text"] for f in figures_of(at)]
    assert any(label in t for t in titles)
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


# ----------------------------------------------------------------------------- issue 23, items 11–13
@pytest.fixture
def quick_live_runs(monkeypatch):
    """Live runs of a few small iterations on synthetic digits (the page's own code path)."""
    from app_ui import colocalisation as ui

    tr, te = synthetic_digits(60, 1), synthetic_digits(40, 2)
    monkeypatch.setattr(ui, "digits", lambda: (tr, te))

    def small(digit, noise, iterations, localiser="heatmap"):
        return C.ColocConfig(digit=digit, noise=noise, iterations=iterations // 50, batch_size=4, record_every=2,
                             n_panel=4, n_eval=6, shrink_iterations=4, lr_drop=5, save_every=10_000,
                             localiser=localiser)

    monkeypatch.setattr(ui.C, "live_config", small)
    return ui


def finish(at, live) -> None:
    live.join(120)
    assert live.done, live.error
    at.run()
    at.run()


def test_every_live_run_stays_selectable_and_the_counts_agree(quick_live_runs, fresh_streamlit_caches):
    at = app("pages/colocalisation.py")
    assert not at.exception, [e.value for e in at.exception]
    assert "coloc_source" not in [r.key for r in at.radio]
    # a run of 400 // 50 = 8 iterations runs to the end
    at.button(key="coloc_start").click().run()
    finish(at, at.session_state["coloc_live"])
    # a second, long one is stopped: it ends on its next record and replaces nothing
    at.slider(key="coloc_live_iters").set_value(1500).run()       # 30 iterations
    at.button(key="coloc_start").click().run()
    live2 = at.session_state["coloc_live"]
    for _ in range(600):
        if live2.latest is not None:
            break
        time.sleep(0.05)
    at.button(key="coloc_stop").click().run()
    finish(at, live2)
    assert not at.exception, [e.value for e in at.exception]
    options = at.radio(key="coloc_source").options
    assert options[0] == "shipped run" and options[1] == "live run 1 (finished at 8 of 8)"
    assert options[2].startswith("live run 2 (stopped at ") and options[2].endswith(" of 30)")
    n_held = live2.result["data"]["n_held_out"]
    at.radio(key="coloc_source").set_value(options[1]).run()
    assert any(f"of {n_held} held-out boxes" in c.value for c in at.caption)
    at.radio(key="coloc_source").set_value(options[2]).run()
    assert not at.exception
    stopped = [c.value for c in at.caption if "Stopped after" in c.value]  # under the recording and the live panel
    assert stopped and all(f"of the first {min(6, n_held)} of the {n_held} held-out boxes" in c for c in stopped)
    (fig,) = [f for f in figures_of(at) if options[2] in f["layout"]["title"]["text"]]
    assert len(fig["layout"]["sliders"][0]["steps"]) >= 2           # it ended on a recorded frame
    assert len(fig["data"][3]["y"]) >= 2 and fig["data"][3]["mode"] == "lines+markers"  # its accuracy curve


def test_recording_choice_appears_with_a_live_run_and_time_is_estimated(quick_live_runs, fresh_streamlit_caches):
    at = app("pages/colocalisation.py")
    assert "coloc_source" not in [r.key for r in at.radio]   # nothing to choose from yet
    assert any("Estimated time for 400 iterations: about 2 min 57 s" in c.value for c in at.caption)
    at.button(key="coloc_start").click().run()
    live = at.session_state["coloc_live"]
    finish(at, live)
    assert at.radio(key="coloc_source").options == ["shipped run", "live run 1 (finished at 8 of 8)"]
    # the next estimate uses this session's pace
    assert any("at the pace of your last live run" in c.value for c in at.caption)


@pytest.mark.skipif(not C.run_path(3, 0).is_file(), reason="needs the committed co-localisation run of digit 3")
def test_playing_never_redraws_the_panels_and_controls_do_not_overlap():
    at = app("pages/colocalisation.py")         # the committed run
    (fig,) = figures_of(at)
    layout = fig["layout"]
    # the panels are a layout image that frames never touch, and frames play without a redraw
    assert layout["images"][0]["source"].startswith("data:image/png") and layout["images"][0]["layer"] == "below"
    assert not any(d["type"] == "image" for d in fig["data"])
    assert all(f["traces"] == [4, 5, 6] for f in fig["frames"])
    (play, _), steps = layout["updatemenus"][0]["buttons"], layout["sliders"][0]["steps"]
    assert play["args"][1]["frame"]["redraw"] is False and all(s["args"][1]["frame"]["redraw"] is False
                                                                for s in steps)
    # Play/Pause above the panels, the slider alone on its row below them
    assert layout["updatemenus"][0]["y"] == 1 and layout["updatemenus"][0]["yanchor"] == "bottom"
    assert (layout["sliders"][0]["x"], layout["sliders"][0]["len"], layout["sliders"][0]["y"]) == (0, 1, 0)


"""AppTest for /learning: the gradient table follows the presets (zero on an empty crop, the
padding modes apart at U's edge), the live fit steps, plays, pauses and ends in the failure its
preset names, and the lab starts, reports, stops and shows the measured outcomes of every preset.
(AppTest cannot fire ``run_every``: the ticking itself is checked in the browser test.)"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("streamlit")

from stn_explore.explorer import learning_lab as LL

from .test_app import app, ok
from .test_app import plotly_figures as raw_figures
from .test_learning import decoded


def plotly_figures(at) -> list[dict]:
    """The page's figures as sent, with plotly's base64 typed arrays decoded."""
    return [decoded(f) for f in raw_figures(at)]


def open_tab(label: str):
    at = ok(app("pages/learning.py"))
    if label != "Gradients through the sampler":
        at.session_state["learn_tab"] = label
        ok(at.run())
    return at


def theta_grads(row) -> list[float]:
    return [row[f"∂L/∂θ{i}{j}"] for i in range(2) for j in range(3)]


def test_gradient_tab_follows_the_presets():
    at = open_tab("Gradients through the sampler")
    arrows, vv = plotly_figures(at)
    assert [t.get("name") for t in arrows["data"][1:]] == ["grid", "∂L/∂x^s = 0", "−∂L/∂x^s", "target crop"]
    rows = at.dataframe[0].value.set_index("padding")
    assert list(rows.index) == ["zeros", "border", "reflection"]
    assert any(abs(g) > 1e-4 for g in theta_grads(rows.loc["zeros"]))          # near the digit: pulled
    at.button(key="learn_g_preset_empty corner").click().run()
    rows = ok(at).dataframe[0].value.set_index("padding")
    assert all(g == 0 for p in rows.index for g in theta_grads(rows.loc[p]))   # empty crop: nothing at all
    assert set(rows["points with ∂L/∂x^s = 0"]) == {"100%"}
    assert len(plotly_figures(at)[0]["data"][3]["x"]) == 0                      # no arrows drawn
    at.button(key="learn_g_preset_half outside U").click().run()
    rows = ok(at).dataframe[0].value.set_index("padding")
    assert theta_grads(rows.loc["reflection"]) != theta_grads(rows.loc["zeros"])


def test_fit_tab_steps_plays_pauses_and_shows_the_failure():
    at = open_tab("Fitting θ")
    titles = [f["layout"].get("title", {}).get("text") for f in plotly_figures(at)]
    assert titles[2] == "L over rotation × scale" and titles[3].startswith("L = ")
    assert "**Step 0**" in at.markdown[-1].value
    at.button(key="learn_f_step").click().run()
    assert "**Step 1**" in ok(at).markdown[-1].value
    at.button(key="learn_f_play").click().run()
    assert at.session_state["learn_playing"] and at.button(key="learn_f_play").label == "❚❚ Pause"
    assert at.button(key="learn_f_step").disabled
    at.button(key="learn_f_play").click().run()
    assert not at.session_state["learn_playing"] and at.button(key="learn_f_play").label == "▶ Play"
    at.button(key="learn_f_preset_diverges (lr too high)").click().run()
    assert at.select_slider(key="learn_f_lr").value == 10.0 and at.radio(key="learn_f_opt").value == "sgd"
    for _ in range(8):
        at.button(key="learn_f_step").click().run()
    ok(at)
    assert "lost: the step threw the whole grid off U" in at.markdown[-1].value
    path = plotly_figures(at)[2]["data"][1]
    assert len(path["x"]) == 9                                                  # start + 8 steps on the landscape


def test_lab_starts_reports_stops_and_shows_the_measured_outcomes():
    at = open_tab("Failure-mode lab")
    assert [i.value for i in at.info][0].startswith("Press Start")
    at.button(key="learn_l_preset_localisation lr ×10").click().run()
    assert at.select_slider(key="learn_l_loclr").value == 10.0
    at.button(key="learn_l_preset_working recipe").click().run()
    at.button(key="learn_l_start").click().run()
    ok(at)
    assert at.button(key="learn_l_start").disabled and not at.button(key="learn_l_stop").disabled
    deadline = time.time() + 90
    while not [p for p in at.get("progress") if "iteration" in (p.proto.text or "")] and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    ok(at)
    titles = [f["layout"].get("title", {}).get("text") for f in plotly_figures(at)]
    assert "region (red), centre path (yellow)" in titles
    at.button(key="learn_l_stop").click().run()
    deadline = time.time() + 30
    while not any("Stopped at iteration" in s.value for s in at.success) and time.time() < deadline:
        time.sleep(0.2)
        at.run()
    assert any("Stopped at iteration" in s.value for s in ok(at).success)
    assert not at.button(key="learn_l_start").disabled
    outcomes = LL.load_outcomes()
    if outcomes is not None:                       # the measured table, and a summary computed from it
        table = at.dataframe[0].value
        assert list(table["preset"]) == list(LL.PRESETS)
        assert LL.outcomes_summary(outcomes) in [m.value for m in at.markdown]

"""Streamlit AppTest: every page renders, every playground widget can be changed without an
exception, θ and the sliders stay in sync, bad uploads give an error element."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60  # importing torch alone takes seconds on a cold machine


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if page:
        at.switch_page(page)
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def playground_app(query: dict | None = None) -> AppTest:
    """/playground as a browser gets it: in a process that has not loaded torch the first view
    is drawn without the server's V, and the θ component asks for a rerun (here: run again)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.switch_page("pages/playground.py")
    ok(at.run())
    if not at.code:
        ok(at.run())
    return at


def editor(at: AppTest) -> dict:
    """The data the θ component (components/warp_editor) was given."""
    (el,) = at.get("bidi_component")
    (data,) = json.loads(el.proto.json)  # sent as [data]: components/warp_editor.py says why
    return data


def theta(at: AppTest) -> np.ndarray:
    d = editor(at)
    assert d["kind"] == "affine"
    return np.array(d["params"])


def plotly_figures(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_home_renders_without_exception_and_its_example_reacts():
    at = ok(app())
    assert "Spatial Transformer" in at.title[0].value
    assert any("Localisation network" in m.value for m in at.markdown)
    before = plotly_figures(at)[1]["data"][0]["source"]
    at.slider(key="home_s").set_value(0.4).run()
    ok(at)
    assert plotly_figures(at)[1]["data"][0]["source"] != before
    # the example names its digit's source and explains the fixed shift; no stale "coming next"
    captions = " ".join(c.value for c in at.caption)
    assert "digit 0 of the" in captions and "MNIST test split" in captions and "0.1 to the right" in captions
    assert "Coming next" not in captions


@pytest.fixture(scope="module")
def playground():
    return playground_app()


def test_playground_default_view(playground):
    at = playground
    assert at.title[0].value == "θ playground"
    d = editor(at)
    assert d["kind"] == "affine" and d["out"] == [28, 28] and d["server_v"]["w"] == 28
    assert [sp["key"] for sp in d["controls"]["sliders"]] == ["pg_angle", "pg_sx", "pg_sy", "pg_shear", "pg_tx",
                                                              "pg_ty"]
    np.testing.assert_allclose(theta(at), [[1, 0, 0], [0, 1, 0]])
    assert "F.affine_grid" in at.code[0].value
    # the plotly server view is not part of the default view (page settle time, issue 17)
    assert plotly_figures(at) == [] and at.toggle(key="pg_plotly").value is False
    assert not at.error


def test_theta_sliders_drive_theta_the_snippet_and_the_url():
    # the θ sliders live in the component; their values are plain session keys
    at = playground_app()
    at.session_state["pg_angle"] = 90.0
    ok(at.run())
    np.testing.assert_allclose(theta(at), [[0, -1, 0], [1, 0, 0]], atol=1e-12)
    assert at.query_params["pg_angle"] == "90"
    at.session_state["pg_tx"] = 0.5
    ok(at.run())
    assert theta(at)[0, 2] == pytest.approx(0.5)
    assert "[[[ 0. , -1. ,  0.5]," in at.code[0].value


def test_server_view_shows_u_and_v_sized_for_themselves():
    # issue 23 item 1: a 640×480 upload (→ 256×192) with a 28×28 output gave V ≈ 27×55 px;
    # with a 256×256 output V was drawn far below its title
    at = playground_app({"pg_source": "upload"})
    rgb = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    at.file_uploader(key="pg_upload").upload("photo.png", png_bytes(rgb), "image/png").run()
    at.toggle(key="pg_plotly").set_value(True).run()
    for out in (28, 256):
        at.number_input(key="pg_out_h").set_value(out).run()
        at.number_input(key="pg_out_w").set_value(out).run()
        ok(at)
        u, v = plotly_figures(at)
        assert v["layout"]["title"]["text"] == f"V ({out}×{out})"
        for f in (u, v):  # each about 300 px on its longer side, whatever the sizes
            assert 280 <= max(f["layout"]["width"], f["layout"]["height"] - f["layout"]["margin"]["t"]) <= 320
        assert v["layout"]["margin"]["t"] <= 40  # the title sits right above the image


def test_every_widget_of_every_kind_can_change():
    at = playground_app()
    at.number_input(key="pg_out_h").set_value(40).run()
    at.number_input(key="pg_out_w").set_value(20).run()
    for mode in ("nearest", "bicubic", "bilinear"):
        at.selectbox(key="pg_mode").set_value(mode).run()
    for pad in ("border", "reflection", "zeros"):
        at.selectbox(key="pg_pad").set_value(pad).run()
    ok(at)
    assert editor(at)["out"] == [40, 20]

    at.radio(key="pg_kind").set_value("attention").run()
    for key, val in (("pg_s", 0.5), ("pg_atx", 0.3), ("pg_aty", -0.2)):
        at.session_state[key] = val
    ok(at.run())
    assert "'attention'" in at.code[0].value and editor(at)["params"] == [0.5, 0.3, -0.2]

    at.radio(key="pg_kind").set_value("projective").run()
    at.session_state["pg_c0x"] = -0.5
    ok(at.run())
    assert editor(at)["params"][0] == [-0.5, -1.0]
    at.button(key="pg_corners_reset").click().run()
    assert editor(at)["params"][0] == [-1.0, -1.0]
    at.session_state["pg_c0x"] = 2.0  # folded: the browser cannot preview it, the server still renders
    ok(at.run())

    at.radio(key="pg_kind").set_value("tps").run()
    ok(at)
    assert not at.error  # no stale message from the projective corners (issue 23 item 2)
    at.button(key="pg_tps_random").click().run()
    assert np.abs(at.session_state["pg_tps_offsets"]).max() > 0
    assert "pg_tps" in at.query_params
    at.session_state["pg_tps_bend"] = 0.5
    ok(at.run())
    np.testing.assert_allclose(np.array(editor(at)["params"]) - pg_grid(),
                               0.5 * at.session_state["pg_tps_offsets"], atol=1e-6)
    at.button(key="pg_tps_reset").click().run()
    ok(at)
    assert np.abs(at.session_state["pg_tps_offsets"]).max() == 0


def pg_grid() -> np.ndarray:
    from stn_explore.explorer.playground import tps_params

    return tps_params(np.zeros((16, 2)))


def test_input_sources():
    at = playground_app()
    at.selectbox(key="pg_class").set_value("7").run()
    at.number_input(key="pg_index").set_value(3).run()
    ok(at)
    assert "label 7" in " ".join(c.value for c in at.caption)
    at.button(key="pg_random").click().run()
    ok(at)
    at.radio(key="pg_source").set_value("test pattern").run()
    at.selectbox(key="pg_pattern").set_value("text").run()
    at.selectbox(key="pg_psize").set_value(128).run()
    ok(at)
    assert "text 128×128" in " ".join(c.value for c in at.caption)


def test_uploads_good_and_bad():
    at = playground_app()
    at.radio(key="pg_source").set_value("upload").run()
    rgb = (np.random.default_rng(0).random((30, 50, 3)) * 255).astype(np.uint8)
    at.file_uploader(key="pg_upload").upload("photo.png", png_bytes(rgb), "image/png").run()
    ok(at)
    assert not at.error
    assert "photo.png 50×30" in " ".join(c.value for c in at.caption)
    for name, data in (("notes.txt", b"definitely not an image"),
                       ("cut.png", png_bytes(rgb)[:200])):
        at.file_uploader(key="pg_upload").upload(name, data, "image/png").run()
        ok(at)
        assert at.error and name in at.error[0].value.replace("\\", "")
        assert editor(at)["server_v"] is not None  # the page keeps working


def test_paper_page_lists_paper_and_our_numbers():
    at = ok(app("pages/paper.py"))
    assert at.title[0].value.startswith("The paper's tables")
    frames = at.table  # the comparison tables (tests/test_paper_page.py: what their empty cells say)
    assert len(frames) >= 3
    table1 = frames[0].value
    assert "RTS paper" in table1.columns and "RTS ours" in table1.columns
    cnn = table1[table1["model"] == "CNN"].iloc[0]
    assert cnn["RTS paper"] == 0.8
    if (ROOT / "checkpoints" / "rts_cnn.pt").is_file():
        recorded = json.loads((ROOT / "checkpoints" / "results.json").read_text())
        ours = next(r for r in recorded["results"] if r["task"] == "rts" and r["row"] == "cnn")
        assert cnn["RTS ours"] == ours["test_error"]
    assert any("Not reproduced offline" in c.value for c in at.caption)


def test_exact_theta_from_the_url_is_used():
    at = playground_app({"pg_theta": "0.9,0.1,0.123456,-0.05,1.1,0"})
    np.testing.assert_allclose(theta(at), [[0.9, 0.1, 0.123456], [-0.05, 1.1, 0]])
    assert editor(at)["controls"]["exact"] is True
    at.session_state["pg_angle"] = 10.0  # moving a slider replaces the exact θ
    ok(at.run())
    assert theta(at)[0, 0] == pytest.approx(np.cos(np.radians(10)), abs=1e-4)
    assert "pg_theta" not in at.query_params

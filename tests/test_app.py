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


def theta_input(at: AppTest, r: int, c: int):
    return next(n for n in at.number_input if n.label == f"θ[{r},{c}]")


def theta(at: AppTest) -> np.ndarray:
    return np.array([[theta_input(at, r, c).value for c in range(3)] for r in range(2)])


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
    return ok(app("pages/playground.py"))


def test_playground_default_view(playground):
    at = playground
    assert at.title[0].value == "θ playground"
    figs = plotly_figures(at)
    assert len(figs) == 2
    u, v = figs
    assert u["data"][0]["type"] == "image" and u["data"][1]["type"] == "scatter"
    assert v["data"][0]["type"] == "image"
    np.testing.assert_allclose(theta(at), [[1, 0, 0], [0, 1, 0]])
    assert "F.affine_grid" in at.code[0].value
    assert not at.error


def test_sliders_drive_theta_and_theta_drives_sliders():
    at = app("pages/playground.py")
    at.slider(key="pg_angle").set_value(90.0).run()
    ok(at)
    np.testing.assert_allclose(theta(at), [[0, -1, 0], [1, 0, 0]], atol=1e-4)
    at.slider(key="pg_tx").set_value(0.5).run()
    assert theta(at)[0, 2] == pytest.approx(0.5)
    # edit θ directly: a pure scale by 2 and a shift
    for (r, c), val in (((0, 0), 2.0), ((0, 1), 0.0), ((1, 0), 0.0), ((1, 1), 2.0), ((1, 2), -0.25)):
        theta_input(at, r, c).set_value(val).run()
    ok(at)
    assert at.slider(key="pg_angle").value == pytest.approx(0.0)
    assert at.slider(key="pg_sx").value == pytest.approx(2.0)
    assert at.slider(key="pg_sy").value == pytest.approx(2.0)
    assert at.slider(key="pg_ty").value == pytest.approx(-0.25)
    # a singular θ is reported, the page keeps working
    theta_input(at, 0, 0).set_value(0.0).run()
    theta_input(at, 1, 1).set_value(0.0).run()
    ok(at)
    assert any("singular" in w.value for w in at.warning)


def test_presets_set_sliders_and_theta():
    at = app("pages/playground.py")
    at.button(key="pg_preset_zoom ×2 on the centre").click().run()
    ok(at)
    np.testing.assert_allclose(theta(at), [[0.5, 0, 0], [0, 0.5, 0]], atol=1e-4)
    at.button(key="pg_preset_rotate 45°").click().run()
    assert at.slider(key="pg_angle").value == 45.0
    at.button(key="pg_preset_Fig. 3(b)-like warp").click().run()
    at.button(key="pg_preset_identity").click().run()
    np.testing.assert_allclose(theta(at), [[1, 0, 0], [0, 1, 0]], atol=1e-4)


def test_every_widget_of_every_kind_can_change():
    at = app("pages/playground.py")
    for key in ("pg_angle", "pg_sx", "pg_sy", "pg_shear", "pg_tx", "pg_ty"):
        s = at.slider(key=key)
        s.set_value(min(s.max, s.value + 0.5)).run()
        ok(at)
    at.number_input(key="pg_out_h").set_value(40).run()
    at.number_input(key="pg_out_w").set_value(20).run()
    for mode in ("nearest", "bicubic", "bilinear"):
        at.selectbox(key="pg_mode").set_value(mode).run()
    for pad in ("border", "reflection", "zeros"):
        at.selectbox(key="pg_pad").set_value(pad).run()
    ok(at)
    assert plotly_figures(at)[1]["layout"]["title"]["text"] == "V (40×20)"

    at.radio(key="pg_kind").set_value("attention").run()
    for key, val in (("pg_s", 0.5), ("pg_atx", 0.3), ("pg_aty", -0.2)):
        at.slider(key=key).set_value(val).run()
    ok(at)
    assert "'attention'" in at.code[0].value

    at.radio(key="pg_kind").set_value("projective").run()
    for i in range(4):
        at.slider(key=f"pg_c{i}x").set_value(at.slider(key=f"pg_c{i}x").value * 0.8).run()
        at.slider(key=f"pg_c{i}y").set_value(at.slider(key=f"pg_c{i}y").value * 0.7).run()
    ok(at)
    at.button(key="pg_corners_reset").click().run()
    assert at.slider(key="pg_c0x").value == -1.0

    at.radio(key="pg_kind").set_value("tps").run()
    at.selectbox(key="pg_tps_k").set_value(5).run()
    at.slider(key="pg_tps_dx").set_value(0.3).run()
    at.slider(key="pg_tps_dy").set_value(-0.2).run()
    ok(at)
    assert at.session_state["pg_tps_offsets"][5].tolist() == pytest.approx([0.3, -0.2])
    at.selectbox(key="pg_tps_k").set_value(0).run()
    assert at.slider(key="pg_tps_dx").value == 0.0  # sliders follow the selected point
    at.button(key="pg_tps_random").click().run()
    assert np.abs(at.session_state["pg_tps_offsets"]).max() > 0
    at.button(key="pg_tps_reset").click().run()
    ok(at)
    assert np.abs(at.session_state["pg_tps_offsets"]).max() == 0


def test_input_sources():
    at = app("pages/playground.py")
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
    at = app("pages/playground.py")
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
        assert at.error and name in at.error[0].value
        assert len(plotly_figures(at)) == 2  # the page keeps working


def test_paper_page_lists_paper_and_our_numbers():
    at = ok(app("pages/paper.py"))
    assert at.title[0].value.startswith("The paper's tables")
    frames = at.dataframe
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
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["pg_theta"] = "0.9,0.1,0.123456,-0.05,1.1,0"
    at.switch_page("pages/playground.py")
    ok(at.run())
    np.testing.assert_allclose(theta(at), [[0.9, 0.1, 0.1235], [-0.05, 1.1, 0]], atol=1e-4)
    at.slider(key="pg_angle").set_value(10.0).run()  # moving a slider replaces the exact θ
    assert theta(at)[0, 0] == pytest.approx(np.cos(np.radians(10)), abs=1e-4)
    assert "pg_theta" not in at.query_params

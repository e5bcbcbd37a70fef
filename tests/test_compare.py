"""CNN vs ST-CNN: the library side of /compare, and its AppTest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stn_explore.explorer import compare, figures
from stn_explore.experiments import train

ROOT = Path(__file__).resolve().parents[1]


def test_extra_distortion_identity_rotation_scale_shift():
    img = np.zeros((1, 21, 21), np.uint8)
    img[0, 10, 15] = 255  # a dot right of the centre
    np.testing.assert_array_equal(compare.extra_distortion(img), img)
    rot = compare.extra_distortion(img, angle=90)[0]
    r, c = np.unravel_index(rot.argmax(), rot.shape)
    assert (r, c) == (5, 10)  # counter-clockwise on screen: right of centre → above it
    big = compare.extra_distortion(img, scale=1.4)[0]
    assert np.unravel_index(big.argmax(), big.shape)[1] == 17  # 5 px from centre → 7 px
    moved = compare.extra_distortion(img, shift=(0.0, 2 * 3 / 21))[0]
    assert np.unravel_index(moved.argmax(), moved.shape) == (13, 15)  # 3 px down
    with pytest.raises(ValueError, match="scale > 0"):
        compare.extra_distortion(img, scale=0)
    two = np.zeros((2, 2, 9, 9), np.uint8)
    assert compare.extra_distortion(two, angle=30).shape == (2, 2, 9, 9)


def test_disagreements():
    labels = np.array([0, 1, 2, 3])
    d = compare.disagreements(labels, np.array([0, 9, 2, 9]), np.array([9, 1, 2, 9]))
    assert d["a_wrong_b_right"].tolist() == [1]
    assert d["a_right_b_wrong"].tolist() == [0]
    assert d["both_wrong"].tolist() == [3]


def test_probabilities_figure():
    fig = figures.probabilities_figure(np.array([0.1, 0.7, 0.2]), true_label=2, title="CNN")
    bar = fig.data[0]
    assert bar.type == "bar" and list(bar.y) == [0.1, 0.7, 0.2]
    assert bar.marker.color[1] == figures.OUTLINE_COLOR and bar.marker.color[0] != figures.OUTLINE_COLOR
    assert list(bar.marker.line.width) == [0, 0, 3]
    with pytest.raises(ValueError):
        figures.probabilities_figure(np.array([np.nan, 1.0]))


def test_predict_returns_transformer_view(tmp_path, idx_dir):
    cfg = train.TrainConfig(task="rts", model="st-cnn", epochs=1, batch_size=8, n_train=16, n_test=10)
    train.train(cfg, tmp_path / "m.pt", data_dir=idx_dir, progress=False, log=lambda m: None)
    loaded = compare.load_classifier(tmp_path / "m.pt")
    images = np.zeros((3, 42, 42), np.uint8)
    out = compare.predict(loaded.model, images)
    assert out["probs"].shape == (3, 10) and np.allclose(out["probs"].sum(1), 1, atol=1e-5)
    assert out["grid"].shape == (3, 42, 42, 2) and out["v"].shape == (3, 1, 42, 42)
    # the fast path (channels-last weights and inputs, batches of 200) = the plain model
    from stn_explore.experiments.distortions import to_batch
    from stn_explore.experiments.models import load_model
    images = np.random.default_rng(0).integers(0, 256, (450, 42, 42), dtype=np.uint8)
    plain = load_model(loaded.checkpoint).eval()
    with torch.no_grad():
        logits, aux = plain(to_batch(images), return_aux=True)
    fast = compare.predict(loaded.model, images)
    assert np.allclose(fast["probs"], torch.softmax(logits, 1).numpy(), atol=1e-5)
    assert np.allclose(fast["v"], aux["v"][0].numpy(), atol=1e-5)


def test_missing_command_names_the_training_cli():
    cmd = compare.missing_command("p", "st-cnn_affine")
    assert "python -m stn_explore.train --task p --model st-cnn --transform affine" in cmd
    assert "--out checkpoints/p_st-cnn_affine.pt" in cmd


# ----------------------------------------------------------------------------- AppTest
def app(**query):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.switch_page("pages/compare.py")
    return at.run()


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def card_titles(at) -> list[str]:
    """The titles of /compare's cards (bold text above each chart)."""
    return [m.value.strip("*") for m in at.markdown if m.value.startswith("**") and m.value.endswith("**")]


def live(at) -> dict:
    """The data of the single-image view's component (components/compare_live): the sliders'
    values and the server's result for them."""
    (el,) = at.get("bidi_component")
    (data,) = json.loads(el.proto.json)
    return data


def live_titles(at) -> list[str]:
    """Both models' card titles as the live view shows the server's result ("CNN: 7 ✓ (98%)")."""
    d = live(at)
    out = []
    for name, p in zip(d["names"], d["server"]["probs"]):
        k = int(np.argmax(p))
        verdict = "" if d["label"] is None else (" ✓" if k == d["label"] else " ✗")
        out.append(f"{name}: {k}{verdict} ({p[k]:.0%})")
    return out


def set_distortion(at, **values):
    """Move the live view's sliders as a release in the browser does (compare_live.apply_live
    stores them as plain session keys), then rerun."""
    from stn_explore.explorer import compare_live

    for key, v in values.items():
        compare_live.set_value(at.session_state, key, v)
    return at.run()


HAS_RTS = (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file()
needs_rts = pytest.mark.skipif(not HAS_RTS, reason="needs the committed RTS checkpoints")


@pytest.mark.skipif(not (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
                    reason="needs the committed RTS checkpoints")
def test_compare_page_widgets_and_gallery():
    at = app()
    assert not at.exception, [e.value for e in at.exception]
    # the view (input + grid, V, two probability bars) is one component; four charts of what the
    # transformer learned; no sweep until asked
    assert len(charts(at)) == 4 and len(live(at)["server"]["probs"]) == 2
    v_before = live(at)["server"]["v"]
    for key, val in (("cmp_angle", 90), ("cmp_scale", 0.6), ("cmp_sx", 0.2), ("cmp_sy", -0.2)):
        set_distortion(at, **{key: val})
        assert not at.exception
        assert live(at)["server"]["values"][key] == val
    assert [t.split(":")[0] for t in live_titles(at)] == ["CNN", "ST-CNN"]
    assert live(at)["server"]["v"] != v_before  # the transformer saw the new input
    at.number_input(key="cmp_index").set_value(5).run()
    at.button(key="cmp_random").click().run()
    assert not at.exception
    shows = [b for b in at.button if b.key and b.key.startswith("cmp_show_")]
    if shows:
        target = int(shows[0].key.rsplit("_", 1)[1])
        shows[0].click().run()
        assert at.number_input(key="cmp_index").value == target


@pytest.mark.skipif(not (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
                    reason="needs the committed RTS checkpoints")
def test_compare_page_sweep(monkeypatch):
    # a coarse sweep keeps the test fast; the page code path is the same
    monkeypatch.setitem(compare.SWEEPS, "scale", (np.array([0.8, 1.0, 1.2]), "extra scale"))
    at = app()
    at.button_group(key="cmp_sweep").set_value("scale").run()
    assert not at.exception, [e.value for e in at.exception]
    sweep = charts(at)[-1]
    assert [t["name"] for t in sweep["data"]] == ["CNN", "ST-CNN"] and sweep["data"][0]["x"] == [0.8, 1.0, 1.2]
    assert sweep["layout"]["shapes"][0]["x0"] == 0.7  # RTS trains on scales 0.7-1.2


@pytest.mark.skipif(not (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
                    reason="needs the committed RTS checkpoints")
def test_compare_page_says_what_the_transformer_learned():
    at = app()
    assert not at.exception, [e.value for e in at.exception]
    verdicts = [m.value for m in at.markdown if m.value.startswith("**Undoes") or m.value.startswith("**Collapsed")]
    assert len(verdicts) == 1 and "shift" in verdicts[0] and "rotation r = " in verdicts[0]
    learned = charts(at)[0:4]  # one small figure per quantity: they wrap onto rows on a narrow window
    titles = [f["layout"]["xaxis"]["title"]["text"] for f in learned]
    assert titles == ["applied rotation (°)", "digit centre x", "applied scale", "IoU with the digit's box"]
    assert len(learned[0]["data"][0]["x"]) == 1000  # one point per test image shown on the page
    from stn_explore.experiments import evaluate

    # the page's verdict is the CLI's on the same images
    res = evaluate.evaluate_checkpoint(ROOT / "checkpoints" / "rts_st-cnn_affine.pt", grids=True,
                                       log=lambda m: None)
    assert res["diagnostics"][0]["verdict"].split(";")[0] in verdicts[0]


PAIRS = {"rts": "st-cnn_affine", "r": "st-cnn_affine", "p": "st-cnn_affine", "e": "st-cnn_affine",
         "cluttered": "st-cnn_affine", "addition": "2st-fcn_affine"}


@pytest.mark.parametrize("task", list(PAIRS))
def test_compare_page_errors_are_the_clis_on_the_same_images(task, tmp_path):
    # the page's error line names a data export + evaluate pair that gives the same figures,
    # for every task, on whatever MNIST test split the page uses (shipped, or STN_DATA_DIR)
    import re

    from stn_explore.experiments import data as data_mod
    from stn_explore.experiments import evaluate

    files = (f"{task}_cnn.pt", f"{task}_{PAIRS[task]}.pt")
    if not all((ROOT / "checkpoints" / f).is_file() for f in files):
        pytest.skip("needs the committed checkpoints")
    at = app(cmp_task=task)
    assert not at.exception, [e.value for e in at.exception]
    (line,) = [c.value for c in at.caption if "CNN error" in c.value]
    shown = [float(x) for x in re.findall(r"error ([0-9.]+)%", line)]
    assert len(shown) == 2, line
    npz = tmp_path / "t.npz"
    assert data_mod.main(["export", "--task", task, "--n", "1000", "--seed", "0", "--out", str(npz)]) == 0
    for name, pct in zip(files, shown):
        err = evaluate.evaluate_checkpoint(ROOT / "checkpoints" / name, npz=npz, log=lambda m: None)["error"]
        assert round(err, 1) == pct, (name, err, line)


def test_compare_page_missing_and_unfinished_checkpoints_name_the_command(tmp_path, idx_dir, monkeypatch,
                                                                          fresh_streamlit_caches):
    monkeypatch.setattr(compare, "checkpoint_path", lambda folder, task, row: tmp_path / f"{task}_{row}.pt")
    cfg = train.TrainConfig(task="rts", model="cnn", epochs=1, batch_size=8, n_train=16, n_test=10)
    res = train.train(cfg, tmp_path / "rts_cnn.pt", data_dir=idx_dir, progress=False, log=lambda m: None)
    res["train_config"]["epochs"] = 5  # as if killed after epoch 1 of 5
    torch.save(res, tmp_path / "rts_cnn.pt")
    at = app()
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(w.value for w in at.warning)
    assert "still training (epoch 1/5)" in warnings and "Missing checkpoint" in warnings
    codes = [c.value for c in at.code]
    assert any("--model st-cnn --transform affine" in c for c in codes)
    assert any("--model cnn" in c and c.endswith("--resume") for c in codes)
    assert not at.get("plotly_chart")  # no half-trained model is shown
    assert any("none yet" in c.value for c in at.caption)


@pytest.mark.skipif(not (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
                    reason="needs the committed RTS checkpoints")
def test_compare_page_upload_own_digit():
    import io

    from PIL import Image

    at = app()
    at.radio(key="cmp_source").set_value("your own image").run()
    assert not at.exception and any("Upload an image" in i.value for i in at.info)
    paper = np.full((90, 70), 255, np.uint8)
    paper[15:75, 30:40] = 0  # a "1" drawn dark on white
    buf = io.BytesIO()
    Image.fromarray(paper).save(buf, format="PNG")
    at.file_uploader(key="cmp_upload").upload("one.png", buf.getvalue(), "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("inverted" in m.value for m in at.markdown)
    assert len(charts(at)) == 4 and live(at)["server"]["probs"]  # the live view; four of what the transformer learned
    at.file_uploader(key="cmp_upload").upload("notes.txt", b"not an image", "text/plain").run()
    # (the name is markdown-escaped, "notes\\.txt")
    assert not at.exception and at.error and "notes.txt" in at.error[0].value.replace("\\", "")


def test_ink_share_and_pair_for():
    v = np.zeros((2, 2, 4, 4))
    v[0, 0, 1, 1] = 3.0
    v[0, 1, 2, 2] = 1.0
    share = compare.ink_share(v)
    assert share[0] == pytest.approx([0.75, 0.25])
    assert np.isnan(share[1]).all()  # an empty output has no share
    with pytest.raises(ValueError, match="N, C, H, W"):
        compare.ink_share(np.zeros((4, 4)))
    assert compare.pair_for("rts") == compare.PAIR
    assert compare.pair_for("addition") == ("cnn", compare.ADDITION_ST_ROWS[0])
    assert compare.pair_for("addition", "2st-fcn_tps") == ("cnn", "2st-fcn_tps")
    with pytest.raises(ValueError, match="unknown addition model"):
        compare.pair_for("addition", "st-cnn_affine")
    assert "--epochs 200" in compare.missing_command("addition", "2st-fcn_affine")


def test_predict_returns_every_transformer():
    from stn_explore.experiments.models import ModelArgs, build_model

    model = build_model(ModelArgs(name="2st-fcn", in_channels=2, n_classes=19))
    out = compare.predict(model, np.zeros((3, 2, 42, 42), np.uint8))
    assert out["probs"].shape == (3, 19)
    assert len(out["grids"]) == 2 and len(out["vs"]) == 2
    assert out["vs"][1].shape == (3, 2, 42, 42) and out["grids"][0].shape == (3, 42, 42, 2)


def test_compare_page_addition_shows_both_channels_and_both_transformers(tmp_path, idx_dir, monkeypatch,
                                                                           fresh_streamlit_caches):
    monkeypatch.setattr(compare, "checkpoint_path", lambda folder, task, row: tmp_path / f"{task}_{row}.pt")
    for model in ("cnn", "2st-fcn"):
        cfg = train.TrainConfig(task="addition", model=model, transform="affine", epochs=1, batch_size=8,
                                n_train=16, n_test=10)
        name = "cnn" if model == "cnn" else "2st-fcn_affine"
        train.train(cfg, tmp_path / f"addition_{name}.pt", data_dir=idx_dir, progress=False, log=lambda m: None)
    at = app(cmp_task="addition")
    assert not at.exception, [e.value for e in at.exception]
    # the live view (components/compare_live): both channels, one card per transformer, the sums
    d = live(at)
    assert d["addition"]["channels"] == ["channel 1", "channel 2"] and d["addition"]["what"] == "sum "
    assert d["image"]["c"] == 2 and len(d["server"]["vs"]) == len(d["server"]["grids"]) == 2
    assert d["names"] == ["CNN", "2×ST-FCN Aff"] and len(d["server"]["probs"][1]) == 19
    assert len(d["server"]["shares"]) == 2 and "attends to one digit" in d["addition"]["note"]
    before = d["server"]["u"]
    set_distortion(at, cmp_angle=90)
    assert not at.exception and live(at)["server"]["u"] != before
    # the other models are offered; a missing one names its command (200 epochs for FCNs)
    at.selectbox(key="cmp_add_model").set_value("2st-fcn_tps").run()
    assert not at.exception
    assert any("--model 2st-fcn --transform tps --epochs 200" in c.value for c in at.code)
    # no own-image mode and no sweep for two-digit inputs
    at.selectbox(key="cmp_add_model").set_value("2st-fcn_affine").run()
    at.radio(key="cmp_source").set_value("your own image").run()
    assert not at.exception and any("two digits" in i.value for i in at.info)
    assert not at.get("button_group")


def test_digit_pad_payload_round_trip_and_errors():
    import base64

    from components.digit_pad import decode_drawing

    img = np.zeros((56, 56), np.uint8)
    img[8:48, 24:32] = 255  # a "1"
    payload = {"w": 56, "h": 56, "pixels": base64.b64encode(img.tobytes()).decode(), "nonce": 3}
    got = decode_drawing(payload)
    assert got.shape == (56, 56) and got.max() == 1.0 and np.array_equal(got > 0.5, img > 127)
    digit, steps = compare.prepare_digit(got)
    assert digit.shape == (28, 28) and not any("inverted" in s for s in steps)  # already light on dark
    assert decode_drawing(None) is None and decode_drawing({"empty": True, "nonce": 4}) is None
    with pytest.raises(ValueError, match="could not be read"):
        decode_drawing({"w": 56, "h": 56, "pixels": base64.b64encode(b"short").decode()})
    with pytest.raises(ValueError, match="could not be read"):
        decode_drawing({"w": 56, "h": 56, "pixels": "not base64!"})
    with pytest.raises(ValueError, match="could not be read"):
        decode_drawing({"w": "x", "h": 56, "pixels": ""})


@pytest.mark.skipif(not (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
                    reason="needs the committed RTS checkpoints")
def test_compare_page_draw_mode_waits_for_a_drawing():
    at = app(cmp_source="draw a digit")
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="cmp_source").value == "draw a digit"
    assert any("Draw a digit in the black square" in i.value for i in at.info)
    assert not at.get("plotly_chart")  # nothing to classify yet


# ----------------------------------------------------------------------------- issue 23, items 8–10
@needs_rts
def test_gallery_show_turns_the_extra_distortion_off_and_scrolls_to_the_image():
    at = app()
    set_distortion(at, cmp_angle=45)
    set_distortion(at, cmp_scale=0.7)
    assert any("Extra distortion on: rotation 45°, scale 0.70" in w.value for w in at.warning)
    show = next(b for b in at.button if b.key and b.key.startswith("cmp_show_a_wrong_b_right_"))
    target = int(show.key.rsplit("_", 1)[1])
    show.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="cmp_index").value == target
    assert (live(at)["values"]["cmp_angle"], live(at)["values"]["cmp_scale"]) == (0, 1.0)
    assert live(at)["server"]["values"] == live(at)["values"]
    assert not any("Extra distortion on" in w.value for w in at.warning)
    cnn, st_cnn = live_titles(at)  # shown as the gallery said: CNN wrong, ST-CNN right
    assert cnn.startswith("CNN:") and "✗" in cnn and st_cnn.startswith("ST-CNN:") and "✓" in st_cnn
    (html,) = [h for h in at.get("html") if "<script>" in h.proto.body]  # the page scrolls to the view
    # (checked in a browser: test_compare_browser)
    assert "scrollIntoView" in html.proto.body and "st-key-cmp_view" in html.proto.body


@needs_rts
def test_extra_distortion_is_shown_while_on_and_a_task_change_turns_it_off():
    at = app()
    assert not at.warning
    set_distortion(at, cmp_angle=45)
    at.button(key="cmp_random").click().run()  # another image: the distortion stays, and says so
    assert live(at)["values"]["cmp_angle"] == 45 and at.query_params["cmp_angle"] == "45"
    assert any("Extra distortion on: rotation 45°" in w.value for w in at.warning)
    at.button(key="cmp_reset").click().run()
    assert live(at)["values"]["cmp_angle"] == 0 and not at.warning and "cmp_angle" not in at.query_params
    set_distortion(at, cmp_sx=0.2)
    at.selectbox(key="cmp_task").set_value("r").run()
    assert not at.exception, [e.value for e in at.exception]
    assert live(at)["values"]["cmp_sx"] == 0.0 and not at.warning
    # a shared link opens with its distortion (the URL keeps the sliders)
    again = app(cmp_angle="30", cmp_sy="-0.1")
    assert live(again)["server"]["values"] == {"cmp_angle": 30, "cmp_scale": 1.0, "cmp_sx": 0.0, "cmp_sy": -0.1}
    assert any("Extra distortion on: rotation 30°, shift (+0.00, -0.10)" in w.value for w in again.warning)


@needs_rts
def test_dropdowns_show_names_and_the_url_keeps_ids():
    at = app()
    task = at.selectbox(key="cmp_task")
    assert task.options == ["RTS", "R", "P", "E", "cluttered 60×60", "MNIST addition"]
    assert task.value == "rts" and "cmp_task" not in at.query_params  # the default stays out of the URL
    if not (ROOT / "checkpoints" / "addition_2st-fcn_affine.pt").is_file():
        return
    task.set_value("addition").run()
    assert at.query_params["cmp_task"] == "addition"
    model = at.selectbox(key="cmp_add_model")
    assert model.options[:2] == ["2×ST-FCN Aff", "2×ST-FCN Proj"] and model.value == "2st-fcn_affine"
    model.set_value("2st-fcn_tps").run()
    assert at.query_params["cmp_add_model"] == "2st-fcn_tps"
    # a shared link with ids opens the same view
    again = app(cmp_task="addition", cmp_add_model="2st-fcn_tps")
    assert (again.selectbox(key="cmp_task").value, again.selectbox(key="cmp_add_model").value) == (
        "addition", "2st-fcn_tps")


def test_stored_sweeps_are_used_only_for_the_same_checkpoints_and_digits(tmp_path):
    stored = {"sweeps": [{"task": "rts", "kind": "scale", "values": compare.SWEEPS["scale"][0].tolist(),
                          "errors": {"CNN": [1.0], "ST-CNN": [2.0]},
                          "identity": {"checkpoints": {"cnn": "a", "st-cnn_affine": "b"}, "digits_md5": "d",
                                       "n": 500}}]}
    same = {"checkpoints": {"cnn": "a", "st-cnn_affine": "b"}, "digits_md5": "d", "n": 500}
    assert compare.find_sweep(stored, "rts", "scale", same) == {"CNN": [1.0], "ST-CNN": [2.0]}
    assert compare.find_sweep(stored, "rts", "rotation", same) is None
    assert compare.find_sweep(stored, "r", "scale", same) is None
    for changed in ({**same, "checkpoints": {"cnn": "a", "st-cnn_affine": "retrained"}},
                    {**same, "digits_md5": "other digits"}, {**same, "n": 100}):
        assert compare.find_sweep(stored, "rts", "scale", changed) is None
    stored["sweeps"][0]["values"] = [0.5, 1.0]  # other sweep values
    assert compare.find_sweep(stored, "rts", "scale", same) is None


def stored_rts_sweep(kind: str):
    """The stored sweep of the committed RTS pair, if sweeps.json matches the checkpoints."""
    from stn_explore.experiments.mnist import load_digits

    path = ROOT / "checkpoints" / compare.SWEEPS_FILE
    if not HAS_RTS or not path.is_file():
        pytest.skip("needs the committed RTS checkpoints and checkpoints/sweeps.json")
    identity = compare.sweep_identity(ROOT / "checkpoints", "rts", load_digits("test").content_md5()["images"])
    errors = compare.find_sweep(json.loads(path.read_text()), "rts", kind, identity)
    if errors is None:
        pytest.skip("checkpoints/sweeps.json is older than the RTS checkpoints: "
                    "python -m stn_explore.explorer.compare --sweeps")
    return errors


def test_stored_sweep_is_what_the_models_measure_now():
    errors = stored_rts_sweep("rotation")
    (cnn, stcnn), _ = compare.load_pair(ROOT / "checkpoints", "rts")
    images, labels = compare.sweep_base("rts", stcnn.checkpoint["data"]["config"], compare.SWEEP_N)
    values = compare.SWEEPS["rotation"][0]
    for i in (list(values).index(0.0), list(values).index(90.0)):  # two of the 37 points, measured again
        for model, name in ((cnn.model, "CNN"), (stcnn.model, "ST-CNN")):
            assert compare.sweep_point(model, images, labels, "rotation", values[i]) == pytest.approx(
                errors[name][i], abs=1e-3)


def test_first_sweep_comes_from_the_stored_file_at_once(monkeypatch):
    import time

    errors = stored_rts_sweep("rotation")
    at = app()

    def measuring(*a, **k):
        raise AssertionError("the page measured a sweep that checkpoints/sweeps.json holds")

    monkeypatch.setattr(compare, "sweep_point", measuring)
    t = time.perf_counter()
    at.button_group(key="cmp_sweep").set_value("rotation").run()
    took = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]
    sweep = charts(at)[-1]
    assert [d["y"] for d in sweep["data"]] == [errors["CNN"], errors["ST-CNN"]]
    assert any("stored in" in c.value and "--sweeps" in c.value for c in at.caption)
    assert took < 2.0, f"the first rotation sweep took {took:.1f} s"


def test_committed_sweeps_cover_every_committed_pair():
    # /compare shows a stored sweep only while it matches the checkpoints; measuring it again
    # on every visit is slow, so a retrained pair must come with its sweeps regenerated
    from stn_explore.experiments.mnist import load_digits

    folder = ROOT / "checkpoints"
    pairs = [t for t in compare.SWEEP_TASKS if all((folder / compare.checkpoint_path(folder, t, row)).is_file()
                                                   for row in compare.PAIR)]
    if not pairs or not (folder / compare.SWEEPS_FILE).is_file():
        pytest.skip("needs the committed checkpoints and checkpoints/sweeps.json")
    stored = json.loads((folder / compare.SWEEPS_FILE).read_text())
    md5 = load_digits("test").content_md5()["images"]
    stale = [(t, kind) for t in pairs for kind in compare.SWEEPS
             if compare.find_sweep(stored, t, kind, compare.sweep_identity(folder, t, md5)) is None]
    assert not stale, f"run python -m stn_explore.explorer.compare --sweeps --tasks {' '.join({t for t, _ in stale})}"


def test_sweeps_of_some_tasks_keep_the_others(tmp_path):
    # --tasks rts once dropped every other task's curves from sweeps.json
    other = {"task": "cluttered", "kind": "rotation", "values": [0.0], "errors": {"CNN": [1.0]}, "identity": {}}
    (tmp_path / compare.SWEEPS_FILE).write_text(json.dumps({"sweeps": [other]}))
    logged = []
    path = compare.write_sweeps(tmp_path, ("rts",), log=logged.append)  # no rts pair here: skipped
    assert logged and "rts: skipped" in logged[0]
    assert json.loads(path.read_text())["sweeps"] == [other]
    (tmp_path / compare.SWEEPS_FILE).write_text("not json")
    assert json.loads(compare.write_sweeps(tmp_path, ("rts",), log=logged.append).read_text())["sweeps"] == []

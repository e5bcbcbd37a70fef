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


@pytest.mark.skipif(not (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
                    reason="needs the committed RTS checkpoints")
def test_compare_page_widgets_and_gallery():
    at = app()
    assert not at.exception, [e.value for e in at.exception]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 5 and charts[2]["data"][0]["type"] == "bar"  # no sweep until asked
    v_before = charts[1]["data"][0]["source"]
    for key, val in (("cmp_angle", 90), ("cmp_scale", 0.6), ("cmp_sx", 0.2), ("cmp_sy", -0.2)):
        at.slider(key=key).set_value(val).run()
        assert not at.exception
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert all("CNN" in c["layout"]["title"]["text"] for c in charts[2:4])
    assert charts[1]["data"][0]["source"] != v_before  # the transformer saw the new input
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
    sweep = json.loads(at.get("plotly_chart")[5].proto.spec)
    assert [t["name"] for t in sweep["data"]] == ["CNN", "ST-CNN"] and sweep["data"][0]["x"] == [0.8, 1.0, 1.2]
    assert sweep["layout"]["shapes"][0]["x0"] == 0.7  # RTS trains on scales 0.7-1.2


@pytest.mark.skipif(not (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
                    reason="needs the committed RTS checkpoints")
def test_compare_page_says_what_the_transformer_learned():
    at = app()
    assert not at.exception, [e.value for e in at.exception]
    verdicts = [m.value for m in at.markdown if m.value.startswith("**Undoes") or m.value.startswith("**Collapsed")]
    assert len(verdicts) == 1 and "shift" in verdicts[0] and "rotation r = " in verdicts[0]
    fig = json.loads(at.get("plotly_chart")[4].proto.spec)
    titles = [fig["layout"][k]["title"]["text"] for k in ("xaxis", "xaxis2", "xaxis3", "xaxis4")]
    assert titles == ["applied rotation (°)", "digit centre x", "applied scale", "IoU with the digit's box"]
    assert len(fig["data"][0]["x"]) == 1000  # one point per test image shown on the page
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
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 5  # input, V, two probability charts, what the transformer learned
    at.file_uploader(key="cmp_upload").upload("notes.txt", b"not an image", "text/plain").run()
    assert not at.exception and at.error and "notes.txt" in at.error[0].value


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
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles[:2] == ["input channel 1", "input channel 2"]
    assert [t for t in titles if t.startswith("transformer")] == [
        "transformer 1: grid", "transformer 1: V", "transformer 2: grid", "transformer 2: V"]
    assert titles[-2].startswith("CNN: sum") and titles[-1].startswith("2×ST-FCN Aff: sum")
    assert any("ink from channel 1 / 2" in c.value for c in at.caption)
    assert any("attend to one digit" in m.value for m in at.markdown)
    before = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["source"]
    at.slider(key="cmp_angle").set_value(90).run()
    assert not at.exception
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["source"] != before
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

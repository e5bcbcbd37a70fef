"""/compare's live view (issue 17), the Python side: the models exported for the browser and
their NumPy forward pass (what components/compare_live.js computes) against torch, the
extra distortion as the browser computes it, the sliders' state rules, and the page's data.
The browser's own result against the server's: tests/browser/test_compare_live.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stn_explore.experiments.distortions import to_batch
from stn_explore.experiments.models import build_model
from stn_explore.explorer import compare
from tests.test_compare import app  # the page through app.py's router, with query params
from stn_explore.explorer import compare_live as live

ROOT = Path(__file__).resolve().parents[1]
HAS_RTS = (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file()
#: MNIST addition's models the browser runs (two parallel affine transformers)
ADDITION_BROWSER_ROWS = ("2st-fcn_affine", "2st-cnn_affine")


def has_addition(row: str) -> bool:
    return all((ROOT / "checkpoints" / f"addition_{r}.pt").is_file() for r in ("cnn", row))


def random_model(seed: int, **args) -> torch.nn.Module:
    """A model with random weights everywhere (the regressor too: θ far from the identity)."""
    torch.manual_seed(seed)
    model = build_model(args).eval()
    with torch.no_grad():
        for st in model.transformers:
            st.regressor.weight.normal_(0, 0.05)
    return model


MODELS = {
    "cnn 28": dict(name="cnn", input_size=(28, 28)),
    "st-cnn 42, offset 0.5": dict(name="st-cnn", input_size=(42, 42), input_offset=0.5),
    "st-cnn 60 → 36, pooled localisation (cluttered)": dict(name="st-cnn", input_size=(60, 60), st_out_size=(36, 36),
                                                           loc_pool=2, st_init_scale=0.5),
    "st-cnn attention": dict(name="st-cnn", input_size=(28, 28), transform="attention"),
    "2st-fcn, two channels": dict(name="2st-fcn", in_channels=2, input_size=(42, 42), n_classes=19),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_exported_forward_equals_torch(name):
    model = random_model(0, **MODELS[name])
    exported = live.export_model(model)
    payload = live.encode(exported)
    assert payload["bytes"] == 4 * sum(p.numel() for p in model.parameters())  # every weight, float32
    back = live.decode(json.loads(json.dumps(payload)))
    assert back["spec"] == exported["spec"] and np.array_equal(back["weights"], exported["weights"])
    c, h, w = exported["spec"]["in"]
    images = np.random.default_rng(1).integers(0, 256, (3, c, h, w), dtype=np.uint8)
    x = to_batch(images)
    with torch.no_grad():
        logits, aux = model(x, return_aux=True)
    probs = torch.softmax(logits, 1).numpy()
    for i in range(len(images)):
        got = live.forward_numpy(back, x[i].numpy())
        np.testing.assert_allclose(got["probs"], probs[i], atol=1e-5)
        assert len(got["vs"]) == len(aux["v"])
        for k, (v, grid) in enumerate(zip(aux["v"], aux["grid"])):
            np.testing.assert_allclose(got["vs"][k], v[i].numpy(), atol=1e-5)
            np.testing.assert_allclose(got["thetas"][k], live.theta_from_grid(grid[i].numpy()), atol=1e-5)
    assert not np.allclose(live.forward_numpy(back, x[0].numpy())["probs"],
                           live.forward_numpy(back, x[1].numpy())["probs"])  # (the test can fail)


@pytest.mark.skipif(not HAS_RTS, reason="needs the committed RTS checkpoints")
def test_exported_checkpoints_equal_torch_on_distorted_test_digits():
    (cnn, stcnn), _ = compare.load_pair(ROOT / "checkpoints", "rts")
    images, _, _ = compare.test_images("rts", stcnn.checkpoint["data"]["config"], 4)
    img = compare.extra_distortion(images, 35, 1.2, (0.1, -0.05))
    for m in (cnn, stcnn):
        ref = compare.predict(m.model, img)
        exported = live.decode(live.encode(live.export_model(m.model)))
        for i in range(len(img)):
            got = live.forward_numpy(exported, img[i][None] / 255.0)
            np.testing.assert_allclose(got["probs"], ref["probs"][i], atol=1e-5)
            if "v" in ref:
                np.testing.assert_allclose(got["vs"][0], ref["v"][i], atol=1e-5)


@pytest.mark.parametrize("row", ADDITION_BROWSER_ROWS)
def test_exported_addition_checkpoints_equal_torch(row):
    """MNIST addition: two channels, two parallel transformers whose outputs are stacked as
    channels for the head (FCN or CNN), 19 sums; the CNN of the pair on two channels too."""
    if not has_addition(row):
        pytest.skip(f"needs the committed addition_{row} checkpoints")
    (cnn, st), problems = compare.load_pair(ROOT / "checkpoints", "addition", row)
    assert not problems
    images, _, _ = compare.test_images("addition", st.checkpoint["data"]["config"], 4)
    img = compare.extra_distortion(images, 35, 1.2, (0.1, -0.05))
    assert img.shape[1] == 2
    for m in (cnn, st):
        ref = compare.predict(m.model, img)
        exported = live.decode(live.encode(live.export_model(m.model)))
        assert exported["spec"]["in"] == [2, 42, 42] and exported["spec"]["n_classes"] == 19
        assert len(exported["spec"]["transformers"]) == (2 if m is st else 0)
        for i in range(len(img)):
            got = live.forward_numpy(exported, img[i] / 255.0)
            assert got["probs"].shape == (19,)
            np.testing.assert_allclose(got["probs"], ref["probs"][i], atol=1e-5)
            for k in range(len(ref.get("vs", []))):
                np.testing.assert_allclose(got["vs"][k], ref["vs"][k][i], atol=1e-5)
                np.testing.assert_allclose(got["thetas"][k], live.theta_from_grid(ref["grids"][k][i]), atol=1e-5)
    # the two transformers look at different places, so stacking them in the wrong order would show
    got = live.forward_numpy(live.export_model(st.model), img[0] / 255.0)
    assert not np.allclose(got["vs"][0], got["vs"][1], atol=1e-2)


def test_export_refuses_what_the_browser_cannot_run():
    for kind in ("projective", "tps"):
        with pytest.raises(ValueError, match="the browser runs only"):
            live.export_model(random_model(0, name="st-cnn", input_size=(28, 28), transform=kind))
    for kind in ("projective", "tps"):  # MNIST addition's pairs with them stay on the server
        with pytest.raises(ValueError, match=f"the browser runs only.*got '{kind}'"):
            live.export_model(random_model(0, name="2st-fcn", in_channels=2, input_size=(42, 42), n_classes=19,
                                           transform=kind))
    two = random_model(0, name="2st-fcn", in_channels=2, input_size=(42, 42), n_classes=19)
    two.transformers[1].out_size = (21, 21)  # outputs of two sizes cannot be stacked as channels
    with pytest.raises(ValueError, match="one output size"):
        live.export_model(two)
    with pytest.raises(ValueError, match="expected an STClassifier"):
        live.export_model(torch.nn.Linear(2, 2))
    model = random_model(0, name="cnn", input_size=(28, 28))
    model.head.features[0] = torch.nn.Conv2d(1, 32, 9, padding=1)
    with pytest.raises(ValueError, match="unpadded stride-1"):
        live.export_model(model)
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\)"):
        live.forward_numpy(live.export_model(random_model(0, name="cnn", input_size=(28, 28))), np.zeros((28, 28)))


def test_the_browsers_distortion_is_the_servers_within_one_level():
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    images[:, :4] = 0
    off = total = 0
    for angle, scale, shift in ((0, 1.0, (0, 0)), (90, 1.0, (0, 0)), (35, 1.25, (0.1, -0.15)), (-175, 0.55, (0.5, 0.45))):
        server = compare.extra_distortion(images, angle, scale, shift).astype(int)
        for img, srv in zip(images, server):
            got = live.distort_numpy(img, angle, scale, shift).astype(int)
            assert np.abs(got - srv).max() <= 1
            off += int((got != srv).sum())
            total += got.size
    assert off / total < 0.01, off  # rounding boundaries only
    np.testing.assert_array_equal(live.distort_numpy(images[0], 0, 1.0, (0, 0)), images[0])
    # two channels (MNIST addition): each one as alone, the same grid for both
    pair = images[:2]
    got = live.distort_numpy(pair, 35, 1.25, (0.1, -0.15))
    np.testing.assert_array_equal(got[1], live.distort_numpy(pair[1], 35, 1.25, (0.1, -0.15)))
    assert np.abs(got.astype(int) - compare.extra_distortion(pair[None], 35, 1.25, (0.1, -0.15))[0]).max() <= 1
    with pytest.raises(ValueError, match="scale > 0"):
        live.distort_numpy(images[0], 0, 0.0, (0, 0))


def test_theta_from_grid_recovers_theta():
    from stn_explore import affine_grid

    theta = torch.tensor([[[0.8, -0.3, 0.1], [0.25, 1.1, -0.2]]])
    grid = affine_grid(theta, (36, 20))[0].numpy()
    np.testing.assert_allclose(live.theta_from_grid(grid), theta[0].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(H', W', 2\)"):
        live.theta_from_grid(np.zeros((4, 4)))


# ----------------------------------------------------------------------------- slider state
def test_url_is_read_once_clamped_and_put_on_the_sliders_steps():
    state: dict = {}
    live.read_url(state, {"cmp_angle": "47", "cmp_scale": "9", "cmp_sx": "nan", "cmp_sy": "-0.123"})
    assert live.values(state) == (45.0, 1.5, (0.0, -0.1))
    live.read_url(state, {"cmp_angle": "90"})  # once per session
    assert state["cmp_angle"] == 45.0
    state = {}
    live.read_url(state, {"cmp_angle": "1e308", "cmp_scale": "abc"})
    assert live.values(state) == (180.0, 1.0, (0.0, 0.0))


def test_url_mirrors_the_sliders_and_drops_defaults():
    state = {"cmp_angle": 30.0, "cmp_scale": 1.0, "cmp_sx": 0.15, "cmp_sy": 0.0}
    query = {"cmp_scale": "0.7", "cmp_task": "r"}
    live.sync_url(state, query)
    assert query == {"cmp_angle": "30", "cmp_sx": "0.15", "cmp_task": "r"}
    live.reset(state)
    assert live.is_off(state)
    live.sync_url(state, query)
    assert query == {"cmp_task": "r"}


def test_component_edits_and_their_ack():
    state: dict = {}
    live.apply_live(state, {"values": {"cmp_angle": 92, "cmp_scale": 0.71, "cmp_sx": float("inf"), "pg_s": 3},
                            "nonce": 7})
    assert state[live.ACK] == 7 and state["cmp_angle"] == 90.0 and state["cmp_scale"] == 0.7
    assert "cmp_sx" not in state and "pg_s" not in state  # non-finite and unknown keys are ignored
    live.apply_live(state, None)
    live.apply_live(state, {"values": {"cmp_angle": "x"}, "nonce": "y"})
    assert state[live.ACK] == 7 and state["cmp_angle"] == 90.0
    assert not live.is_off(state)
    specs = live.controls(state)
    assert [s["key"] for s in specs] == list(live.SLIDERS) and specs[0]["value"] == 90.0
    assert specs[1]["value"] == 0.7 and specs[2]["value"] == 0.0  # defaults for what was never set


def test_the_urls_ranges_are_the_sliders():
    from app_ui import urls

    for key, (_, lo, hi, step, off) in live.SLIDERS.items():
        assert all(urls.acceptable("compare", key, f"{v:g}") for v in (lo, hi, off, lo + step))
        assert not any(urls.acceptable("compare", key, v) for v in (f"{lo - step:g}", f"{hi + step:g}", "nan", "inf"))


# ----------------------------------------------------------------------------- the page's data


def live_data(at) -> dict:
    (el,) = at.get("bidi_component")
    (data,) = json.loads(el.proto.json)  # sent as [data]: components/compare_live.py says why
    return data


@pytest.mark.skipif(not HAS_RTS, reason="needs the committed RTS checkpoints")
def test_the_page_sends_the_models_once_and_the_servers_result_for_the_sliders():
    at = app(cmp_angle="45", cmp_index="7")
    assert not at.exception, [e.value for e in at.exception]
    d = live_data(at)
    assert d["values"] == {"cmp_angle": 45.0, "cmp_scale": 1.0, "cmp_sx": 0.0, "cmp_sy": 0.0}
    assert d["server"]["values"] == d["values"] and d["ack"] == 0
    assert d["models"]["why"] is None and d["models"]["a"]["bytes"] > 0 and d["models"]["b"]["bytes"] > 0
    assert d["st_out"] == [42, 42] and len(d["server"]["theta"]) == 6
    assert all(abs(sum(p) - 1) < 1e-5 for p in d["server"]["probs"])
    assert any("Extra distortion on: rotation 45°" in w.value for w in at.warning)
    # what the server drew is stn_explore's result for the URL's values
    images, labels, _ = compare.test_images("rts", compare.load_pair(ROOT / "checkpoints", "rts")[0][1]
                                            .checkpoint["data"]["config"], 1000)
    assert d["label"] == int(labels[7])
    ref = compare.extra_distortion(images[7:8], 45.0)
    u = np.frombuffer(base64.b64decode(d["server"]["u"]["pixels"]), np.uint8).reshape(42, 42)
    np.testing.assert_array_equal(u, ref[0])
    key = d["models"]["key"]
    at.session_state["cmp_angle"] = 90.0  # as the component's release sets it (compare_live.apply_live)
    at.run()
    d2 = live_data(at)
    assert d2["models"] == {"key": key, "why": None, "a": None, "b": None}  # sent once per session
    assert d2["server"]["values"]["cmp_angle"] == 90.0 and d2["server"]["probs"] != d["server"]["probs"]
    assert at.query_params["cmp_angle"] == "90"


@pytest.mark.skipif(not HAS_RTS, reason="needs the committed RTS checkpoints")
def test_hostile_slider_values_in_the_url_are_ignored():
    at = app(cmp_angle="1e308", cmp_scale="nan", cmp_sx="<script>window.__pwned=1</script>", cmp_sy="0.25")
    assert not at.exception, [e.value for e in at.exception]
    assert live_data(at)["values"] == {"cmp_angle": 0.0, "cmp_scale": 1.0, "cmp_sx": 0.0, "cmp_sy": 0.25}
    note = " ".join(c.value for c in at.caption if "ignored" in c.value.lower())
    assert "cmp_angle" in note and "cmp_scale" in note and "cmp_sx" in note and "cmp_sy" not in note
    assert "<script>" not in note


@pytest.mark.skipif(not HAS_RTS, reason="needs the committed RTS checkpoints")
def test_models_the_browser_cannot_run_stay_on_the_server(monkeypatch, fresh_streamlit_caches):
    def refuse(model):
        raise ValueError("the browser runs only ('affine', 'attention') transformers")

    monkeypatch.setattr(live, "export_model", refuse)
    at = app(cmp_angle="20")
    assert not at.exception, [e.value for e in at.exception]
    d = live_data(at)
    assert d["models"]["a"] is None and d["models"]["b"] is None and "cannot run" in d["models"]["why"]
    assert d["server"]["values"]["cmp_angle"] == 20 and len(d["server"]["probs"]) == 2  # the server's result


# ----------------------------------------------------------------------------- MNIST addition
def decoded(payload: dict, dtype=np.float32) -> np.ndarray:
    raw = payload.get("f32") or payload.get("pixels")
    return np.frombuffer(base64.b64decode(raw), "<f4" if "f32" in payload else np.uint8)


@pytest.mark.skipif(not has_addition("2st-fcn_affine"), reason="needs the committed addition checkpoints")
def test_the_addition_page_renders_the_live_view_with_the_urls_values():
    at = app(cmp_task="addition", cmp_angle="30", cmp_sx="0.1", cmp_index="5")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("slider")  # the sliders are the component's range inputs, as for the other tasks
    d = live_data(at)
    assert d["values"] == {"cmp_angle": 30.0, "cmp_scale": 1.0, "cmp_sx": 0.1, "cmp_sy": 0.0}
    assert d["server"]["values"] == d["values"] and [s["key"] for s in d["sliders"]] == list(live.SLIDERS)
    assert any("Extra distortion on: rotation 30°, shift (+0.10, +0.00)" in w.value for w in at.warning)
    # everything the addition view showed: both channels, each transformer's grid and V, its ink
    # from each channel, the colours explained, the sums
    add = d["addition"]
    assert add["input"] == "input" and add["channels"] == ["channel 1", "channel 2"] and add["what"] == "sum "
    assert (add["transformer"].format(k=1), add["grid"], add["v"]) == ("transformer 1", "where it samples", "its output V")
    assert "attends to one digit" in add["note"]
    assert d["names"] == ["CNN", "2×ST-FCN Aff"] and d["models"]["why"] is None
    assert d["models"]["a"]["bytes"] > 0 and d["models"]["b"]["bytes"] > 0 and d["st_out"] == [42, 42]
    # the server's result is stn_explore's for the URL's values
    (cnn, st), _ = compare.load_pair(ROOT / "checkpoints", "addition", "2st-fcn_affine")
    images, labels, _ = compare.test_images("addition", st.checkpoint["data"]["config"], 1000)
    assert d["label"] == int(labels[5]) and d["image"]["c"] == 2
    np.testing.assert_array_equal(decoded(d["image"]).reshape(2, 42, 42), images[5])
    img = compare.extra_distortion(images[5:6], 30.0, 1.0, (0.1, 0.0))
    sv = d["server"]
    np.testing.assert_array_equal(decoded(sv["u"]).reshape(2, 42, 42), img[0])
    ref = compare.predict(st.model, img)
    np.testing.assert_allclose(sv["probs"][1], ref["probs"][0], atol=1e-6)
    np.testing.assert_allclose(sv["probs"][0], compare.predict(cnn.model, img)["probs"][0], atol=1e-6)
    assert len(sv["probs"][1]) == 19 and len(sv["vs"]) == len(sv["grids"]) == len(sv["thetas"]) == 2
    for k in range(2):
        np.testing.assert_allclose(decoded(sv["vs"][k]).reshape(2, 42, 42), ref["vs"][k][0], atol=1e-6)
        np.testing.assert_allclose(decoded(sv["grids"][k]).reshape(42, 42, 2), ref["grids"][k][0], atol=1e-6)
        np.testing.assert_allclose(sv["thetas"][k], live.theta_from_grid(ref["grids"][k][0]).ravel(), atol=1e-6)
        np.testing.assert_allclose(sv["shares"][k], compare.ink_share(ref["vs"][k])[0], atol=1e-9)
    # a release: the server's result for the new values; the models were sent once
    key = d["models"]["key"]
    at.session_state["cmp_angle"] = -45.0
    at.run()
    d2 = live_data(at)
    assert d2["models"] == {"key": key, "why": None, "a": None, "b": None}
    assert d2["server"]["values"]["cmp_angle"] == -45.0 and d2["server"]["probs"] != sv["probs"]
    assert at.query_params["cmp_angle"] == "-45"


@pytest.mark.skipif(not has_addition("2st-fcn_projective"), reason="needs the committed addition checkpoints")
def test_a_projective_addition_pair_stays_on_the_server():
    at = app(cmp_task="addition", cmp_add_model="2st-fcn_projective", cmp_scale="0.8")
    assert not at.exception, [e.value for e in at.exception]
    d = live_data(at)
    assert d["models"]["a"] is None and d["models"]["b"] is None and "got 'projective'" in d["models"]["why"]
    sv = d["server"]
    assert sv["values"]["cmp_scale"] == 0.8 and sv["thetas"] == [None, None] and sv["theta"] is None
    (_, st), _ = compare.load_pair(ROOT / "checkpoints", "addition", "2st-fcn_projective")
    images, _, _ = compare.test_images("addition", st.checkpoint["data"]["config"], 1000)
    ref = compare.predict(st.model, compare.extra_distortion(images[:1], 0.0, 0.8))
    for k in range(2):  # the grid's own points (no θ): the browser draws them
        np.testing.assert_allclose(decoded(sv["grids"][k]).reshape(42, 42, 2), ref["grids"][k][0], atol=1e-6)

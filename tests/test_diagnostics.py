"""What a transformer learned, on synthetic cases with known answers: an exact inverse of the
applied distortion scores r = 1, a constant transform is flagged as collapsed, the region's
box IoU and size are right, and the CLI writes the corners."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stn_explore as stn
from stn_explore.experiments import diagnostics as G
from stn_explore.experiments import distortions as D
from stn_explore.experiments import evaluate
from stn_explore.experiments.data import save_npz
from stn_explore.experiments.models import ModelArgs, build_model

from .conftest import synthetic_digits


def rts_params(n=300, seed=0):
    return D.sample_params("rts", n, torch.Generator().manual_seed(seed), pool=10)


def test_identity_region_is_the_whole_input():
    c = G.region_corners("affine", stn.identity_params("affine", 2, dtype=torch.float64))
    np.testing.assert_allclose(c[0], [[-1, -1], [1, -1], [1, 1], [-1, 1]], atol=1e-12)
    s = G.region_stats(c, (10, 20))
    np.testing.assert_allclose(s["size"], 1.0)
    np.testing.assert_allclose(s["rotation"], 0.0, atol=1e-9)
    np.testing.assert_allclose(s["box"][0], [-0.5, -0.5, 19.5, 9.5])  # pixel-centre convention, H ≠ W


def test_exact_inverse_of_the_distortion_scores_one():
    p = rts_params()
    # the transformer that undoes each distortion samples with the inverse of canvas → digit
    corners = G.region_corners("affine", stn.invert(p["theta"]))[:, None]
    truth = {"angles": p["angle"].numpy(), "scales": p["scale"].numpy(), "centres": p["centre"].numpy()}
    (rep,) = G.diagnose(corners, truth, (42, 42))
    assert rep["rotation_r"] == pytest.approx(1.0, abs=1e-9)
    assert rep["rotation_slope"] == pytest.approx(1.0, abs=1e-6)
    assert rep["centre_r"] == pytest.approx(1.0, abs=1e-9)
    assert rep["size_r"] == pytest.approx(1.0, abs=1e-9)  # the region is the scaled frame
    assert not rep["collapsed"]
    assert rep["verdict"].startswith("Undoes shift and scale and rotation")


def test_half_the_rotation_undone_is_named_as_in_part_with_its_slope():
    p = rts_params()
    rng = np.random.default_rng(0)
    # undoes shift and scale exactly, and half of each rotation give or take a noise that makes
    # r = 0.5 / sqrt(0.5² + 0.45²) ≈ 0.74 (a known slope and correlation)
    a = p["angle"].numpy()
    half = 0.5 * a + rng.normal(0, 0.45 * a.std(), len(a))   # (the region turns back by a − half)
    undo = stn.invert(p["theta"])
    c, s_ = np.cos(np.radians(half)), np.sin(np.radians(half))
    rot = torch.tensor(np.stack([np.stack([c, -s_], 1), np.stack([s_, c], 1)], 1))   # (N, 2, 2)
    theta = torch.cat([undo[:, :, :2] @ rot, undo[:, :, 2:]], 2)  # rotate about the region's centre
    corners = G.region_corners("affine", theta)[:, None]
    truth = {"angles": p["angle"].numpy(), "scales": p["scale"].numpy(), "centres": p["centre"].numpy()}
    (rep,) = G.diagnose(corners, truth, (42, 42))
    assert rep["rotation_r"] == pytest.approx(0.74, abs=0.06)
    assert rep["rotation_slope"] == pytest.approx(0.5, abs=0.08)
    assert rep["verdict"].startswith("Undoes shift and scale; rotation only in part (r 0.")
    assert "turning back 5" in rep["verdict"] and ", not" not in rep["verdict"]


def test_rotation_the_wrong_way_scores_minus_one():
    p = rts_params()
    corners = G.region_corners("affine", p["theta"])[:, None]  # the distortion itself, not its inverse
    (rep,) = G.diagnose(corners, {"angles": p["angle"].numpy()}, (42, 42))
    assert rep["rotation_r"] == pytest.approx(-1.0, abs=1e-6)
    assert "rotation" in rep["verdict"] and "Undoes none" in rep["verdict"]


def test_constant_transform_is_collapsed():
    p = rts_params()
    theta = stn.theta_from_params(0.0, 1.4, translate=(0.05, 0.0)).expand(len(p["angle"]), 2, 3)
    corners = G.region_corners("affine", theta.to(torch.float64))[:, None]
    (rep,) = G.diagnose(corners, {"angles": p["angle"].numpy(), "centres": p["centre"].numpy()}, (42, 42))
    assert rep["collapsed"] and rep["spread"] < 1e-9
    assert np.isnan(rep["rotation_r"])  # a constant says nothing
    assert rep["verdict"].startswith("Collapsed") and "zooms out" in rep["verdict"]


def test_iou_of_a_region_on_the_digits_box():
    # a 60×60 canvas with the digit's box at offset o: the attention crop onto it has IoU 1
    off = np.array([[0, 0], [16, 8], [32, 32]])
    boxes = np.concatenate((off - 0.5, off + 27.5), 1)
    centre = (off + 13.5 + 0.5) * 2 / 60 - 1
    params = torch.tensor([[28 / 60, cx, cy] for cx, cy in centre], dtype=torch.float64)
    corners = G.region_corners("attention", params)[:, None]
    (rep,) = G.diagnose(corners, {"boxes": boxes}, (60, 60))
    assert rep["median_iou"] == pytest.approx(1.0)
    full = G.region_corners("affine", stn.identity_params("affine", 3, dtype=torch.float64))[:, None]
    assert G.diagnose(full, {"boxes": boxes}, (60, 60))[0]["median_iou"] == pytest.approx(28 ** 2 / 60 ** 2)


def test_tps_and_projective_regions_follow_their_grids():
    # a TPS whose control points are an affine image of the targets is that affine map
    theta = stn.theta_from_params(20.0, 0.6, translate=(0.2, -0.1))[None].to(torch.float64)
    src = stn.affine_transform_points(theta, stn.control_points(4, dtype=torch.float64)[None])
    np.testing.assert_allclose(G.region_corners("tps", src), G.region_corners("affine", theta), atol=1e-9)
    h = stn.to_homogeneous(theta)
    np.testing.assert_allclose(G.region_corners("projective", h), G.region_corners("affine", theta), atol=1e-9)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(N, K, 4, 2\)"):
        G.diagnose(np.zeros((5, 4, 2)), {}, (28, 28))
    with pytest.raises(ValueError, match=r"\(N, 4, 2\)"):
        G.region_stats(np.zeros((5, 3, 2)))


def test_task_sets_carry_angles_scales_and_boxes():
    d = synthetic_digits(20, 0)
    rts = D.make_fixed_set("rts", d.images, d.labels, 8, 0)
    np.testing.assert_array_equal(rts["angles"], rts["param_angle"])
    np.testing.assert_array_equal(rts["scales"], rts["param_scale"])
    assert rts["boxes"].shape == (8, 4)
    for img, box in zip(rts["images"], rts["boxes"]):  # the box holds the digit's ink
        ys, xs = np.nonzero(img > 40)
        if len(xs):
            assert box[0] <= xs.min() and box[1] <= ys.min() and xs.max() <= box[2] and ys.max() <= box[3]
    assert "angles" in D.make_fixed_set("r", d.images, d.labels, 4, 0)
    assert "boxes" in D.make_fixed_set("cluttered", d.images, d.labels, 4, 0)


def test_cli_writes_corners_and_reports(tmp_path, capsys):
    d = synthetic_digits(30, 1)
    arrays = D.make_fixed_set("rts", d.images, d.labels, 40, 3)
    npz = save_npz(tmp_path / "rts.npz", arrays, {"task": "rts"})
    torch.manual_seed(0)
    model = build_model(ModelArgs(name="st-cnn", input_size=(42, 42)))
    ckpt = tmp_path / "m.pt"
    torch.save({"format": 1, "kind": "classifier", "model_args": model.args.to_dict(),
                "state_dict": model.state_dict(), "epoch": 1, "test_error": None,
                "data": {}, "train_config": {"task": "rts"}}, ckpt)
    out = tmp_path / "grids.npz"
    assert evaluate.main(["--checkpoint", str(ckpt), "--npz", str(npz), "--grids", str(out)]) == 0
    text = capsys.readouterr().out
    assert "transformer 1:" in text and "Collapsed" in text  # identity-initialised: the same for every image
    with np.load(out) as z:
        assert z["corners"].shape == (40, 1, 4, 2)
        np.testing.assert_allclose(z["corners"][:, 0], np.tile([[-1, -1], [1, -1], [1, 1], [-1, 1]], (40, 1, 1)),
                                   atol=1e-6)
        assert json.loads(str(z["meta"]))["diagnostics"][0]["collapsed"] is True


def test_addition_transformer_that_follows_one_digit():
    p = D.sample_params("addition", 200, torch.Generator().manual_seed(1), pool=10)
    c1, c2 = p["centre1"].numpy(), p["centre2"].numpy()
    # a half-size attention window on digit 2, and one that stays put
    follow = torch.tensor([[0.5, x, y] for x, y in c2], dtype=torch.float64)
    still = torch.tensor([[1.0, 0.0, 0.0]] * len(c2), dtype=torch.float64)
    corners = np.stack((G.region_corners("attention", follow), G.region_corners("attention", still)), 1)
    truth = G.truth_from_arrays({"param_centre1": c1, "param_centre2": c2})
    a, b = G.diagnose(corners, truth, (42, 42))
    assert a["digit_centre_r"][1] == pytest.approx(1.0) and abs(a["digit_centre_r"][0]) < 0.3
    assert a["verdict"].startswith("Follows digit 2") and "also samples" not in a["verdict"]
    assert b["collapsed"] and b["verdict"].startswith("Collapsed")


def test_oracle_ink_share_known_cases():
    img = np.zeros((3, 2, 20, 20), np.uint8)
    img[0, 0, 2:6, 2:6] = 255          # apart: each digit's box holds only its own ink
    img[0, 1, 12:18, 12:18] = 255
    img[1, :, 5:15, 5:15] = 255        # the same place: half of each box's ink is the other's
    img[2, 0, 5:15, 5:15] = 255        # digit 2 inside digit 1's box
    img[2, 1, 8:13, 8:13] = 255
    s = G.oracle_ink_share(img)
    np.testing.assert_allclose(s[0], [1.0, 1.0])
    np.testing.assert_allclose(s[1], [0.5, 0.5])
    np.testing.assert_allclose(s[2], [100 / 125, 0.5])  # digit 2's box is all digit 1 too
    assert np.isnan(G.oracle_ink_share(np.zeros((1, 2, 5, 5))))[0].all()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        G.oracle_ink_share(np.zeros((5, 5)))


def test_ink_share_of_a_transformer_on_one_channel():
    torch.manual_seed(0)
    model = build_model(ModelArgs(name="2st-fcn", in_channels=2, input_size=(20, 20), n_classes=19))
    img = np.zeros((2, 2, 20, 20), np.uint8)
    img[:, 0, 2:6, 2:6] = 255
    img[:, 1, 12:18, 12:18] = 255
    shares = G.model_ink_shares(model, img)  # identity transformers see both digits: 16 vs 36 pixels
    assert len(shares) == 2 and shares[0].shape == (2, 2)
    np.testing.assert_allclose(shares[0][0], [16 / 52, 36 / 52], atol=1e-6)


def test_epoch_summary_reports_each_transformer():
    d = synthetic_digits(30, 1)
    arrays = D.make_fixed_set("rts", d.images, d.labels, 40, 3)
    torch.manual_seed(0)
    model = build_model(ModelArgs(name="st-cnn", input_size=(42, 42)))
    model.train()
    (s,) = G.epoch_summary(model, arrays, n=25)
    assert model.training  # left as it was
    assert s["mean_size"] == pytest.approx(1.0) and s["spread"] == pytest.approx(0.0, abs=1e-6)
    assert s["rotation_r"] is None  # undefined for a constant region: NaN becomes None
    assert "ST1 size 1.00 spread 0.00" in G.format_summary([s])
    assert G.epoch_summary(build_model(ModelArgs(name="cnn", input_size=(42, 42))), arrays) == []

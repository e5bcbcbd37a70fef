"""Co-localisation building blocks: the triplet hinge, boxes and IoU, recordings, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stn_explore import colocalisation as C
from stn_explore.checkpoint import load_checkpoint, save_checkpoint

from .conftest import synthetic_digits


def test_triplet_hinge_zero_when_margin_holds_positive_otherwise():
    crops = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.9, 0.0]])
    far = torch.tensor([[-1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])   # random crops far away
    assert C.triplet_hinge(crops, far, margin=0.5).item() == 0.0
    near = crops + 0.01                                             # random crops look like the crops
    loss = C.triplet_hinge(crops, near, margin=0.5)
    assert loss.item() > 0.4
    # closed form for two points: max(0, d² - r² + α) averaged over the two ordered pairs
    c = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    r = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    expect = (max(0, 25 - 1 + 1) + max(0, 25 - 4 + 1)) / 2
    assert C.triplet_hinge(c, r, margin=1.0).item() == pytest.approx(expect)
    with pytest.raises(ValueError, match="B ≥ 2"):
        C.triplet_hinge(torch.zeros(1, 2), torch.zeros(1, 2), 0.1)
    with pytest.raises(ValueError, match="margin"):
        C.triplet_hinge(c, r, margin=-1.0)


def box_quad(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def test_quad_box_iou_known_cases():
    box = np.array([[0.0, 0.0, 28.0, 28.0]])
    assert C.quad_box_iou(box_quad(0, 0, 28, 28)[None], box)[0] == pytest.approx(1.0)
    assert C.quad_box_iou(box_quad(14, 0, 42, 28)[None], box)[0] == pytest.approx(1 / 3)
    assert C.quad_box_iou(box_quad(30, 30, 50, 50)[None], box)[0] == 0.0
    # a diamond through the box's edge midpoints covers half of it
    diamond = np.array([[[14, 0], [28, 14], [14, 28], [0, 14]]], dtype=np.float64)
    assert C.quad_box_iou(diamond, box)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="N, 4, 2"):
        C.quad_box_iou(np.zeros((1, 3, 2)), box)
    with pytest.raises(ValueError, match="finite"):
        C.quad_box_iou(np.full((1, 4, 2), np.nan), box)


def test_initial_crop_is_the_centred_28_window_in_the_box_convention():
    torch.manual_seed(0)
    for kind in C.COLOC_TRANSFORMS:
        model = C.ColocNet(C.ColocArgs(transform=kind)).eval()
        x = torch.rand(2, 1, 84, 84)
        quads = C.crop_quads(model.theta(x))
        if kind == "attention":   # starts zoomed out, centred
            assert torch.allclose(quads.mean(1), torch.full((2, 2), 41.5), atol=1e-4)
            continue
        want = torch.tensor([[27.5, 27.5], [55.5, 27.5], [55.5, 55.5], [27.5, 55.5]])
        assert torch.allclose(quads, want.expand(2, 4, 2), atol=1e-4)
        # the crop V is exactly those pixels
        v, _ = model.crop(x)
        assert torch.allclose(v, x[:, :, 28:56, 28:56], atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, 1, 84, 84\)"):
        model.theta(torch.zeros(2, 1, 60, 60))


def test_random_crops_stay_inside_and_match_the_crop_shape():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 84, 84)
    theta = C.params_to_theta("translate", torch.zeros(16, 2))
    for near in (False, True):
        r = C.random_crops_like(x, theta, g, near=near)
        assert r.shape == (16, 1, 28, 28)
        assert (r > 0).float().mean() > 0.9  # no zero padding: the crop lies inside the image


def small_cfg(**kw) -> C.ColocConfig:
    base = dict(digit=3, noise=0, iterations=4, batch_size=4, record_every=2, n_panel=3, n_eval=6,
                save_every=2, seed=1)
    base.update(kw)
    return C.ColocConfig(**base)


def test_training_records_round_trips_and_resumes_exactly(tmp_path):
    tr, te = synthetic_digits(60, 1), synthetic_digits(40, 2)
    out = tmp_path / "c.pt"
    full = C.train(small_cfg(), train_digits=tr, test_digits=te, out=out, progress=False, log=lambda m: None)
    rec = C.load_recording(load_checkpoint(out))
    assert rec["iteration"].tolist() == [0, 2, 4]
    assert rec["panel_quads"].shape == (3, 3, 4, 2) and rec["panel_images"].shape == (3, 84, 84)
    assert math.isnan(rec["loss"][0]) and np.isfinite(rec["loss"][1:]).all()
    assert full["final"]["n"] == 4  # every held-out digit of the class (synthetic: 40 digits, 4 threes)
    # stop after 2 iterations, then resume: identical to the uninterrupted run
    half = C.train(small_cfg(iterations=2), train_digits=tr, test_digits=te, out=tmp_path / "h.pt",
                   progress=False, log=lambda m: None)
    resumed = C.train(small_cfg(), train_digits=tr, test_digits=te, resume_from=half,
                      progress=False, log=lambda m: None)
    for k, v in full["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
    np.testing.assert_array_equal(C.load_recording(resumed)["panel_quads"], rec["panel_quads"])


def test_stop_request_ends_the_run_and_keeps_a_checkpoint(tmp_path):
    tr, te = synthetic_digits(60, 1), synthetic_digits(40, 2)
    calls = []
    ck = C.train(small_cfg(iterations=50), train_digits=tr, test_digits=te, out=tmp_path / "s.pt",
                 progress=False, log=lambda m: None, on_record=calls.append,
                 should_stop=lambda: len(calls) >= 1)
    assert ck["stopped"] and ck["iteration"] == 2 and ck["final"] is None
    assert load_checkpoint(tmp_path / "s.pt")["iteration"] == 2
    save_checkpoint(tmp_path / "again.pt", ck)


def test_config_checks():
    with pytest.raises(ValueError, match="digit"):
        C.ColocConfig(digit=11).check()
    with pytest.raises(ValueError, match="batch_size"):
        C.ColocConfig(batch_size=1).check()
    with pytest.raises(ValueError, match="transform"):
        C.ColocConfig(transform="tps").check()

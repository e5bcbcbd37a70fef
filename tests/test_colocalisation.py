"""Co-localisation building blocks: the triplet hinge, boxes and IoU, recordings, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stn_explore.experiments import colocalisation as C
from stn_explore.experiments.mnist import Digits
from stn_explore.experiments.checkpoint import load_checkpoint, save_checkpoint

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


def test_triplet_hinge_with_several_random_crops_is_their_mean():
    g = torch.Generator().manual_seed(0)
    crops = torch.randn(5, 8, generator=g)
    rand = torch.randn(3, 5, 8, generator=g)
    singles = [C.triplet_hinge(crops, r, margin=0.7) for r in rand]
    assert C.triplet_hinge(crops, rand, margin=0.7).item() == pytest.approx(float(sum(singles) / 3))
    assert C.triplet_hinge(crops, rand[:1], margin=0.7).item() == pytest.approx(singles[0].item())
    with pytest.raises(ValueError, match="same B"):
        C.triplet_hinge(crops, torch.zeros(3, 4, 8), 0.1)
    with pytest.raises(ValueError, match="negatives"):
        C.ColocConfig(negatives=0).check()


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


def test_heatmap_localiser_starts_centred_and_goes_where_the_map_peaks():
    torch.manual_seed(0)
    model = C.ColocNet(C.ColocArgs(localiser="heatmap")).eval()
    x = torch.rand(2, 1, 84, 84)
    want = torch.tensor([[27.5, 27.5], [55.5, 27.5], [55.5, 55.5], [27.5, 55.5]])
    assert torch.allclose(C.crop_quads(model.theta(x)), want.expand(2, 4, 2), atol=1e-4)  # flat map
    heat = model.heat
    # cells are 4×4 pixels; only those where a 28×28 window fits take part (centres ±2/3)
    assert heat.centres.tolist() == pytest.approx([((i + 0.5) / 21) * 2 - 1 for i in range(3, 18)])
    # a score map that peaks at one cell puts the window's centre on that cell's centre
    class Peak(torch.nn.Module):
        def __init__(self, cell):
            super().__init__()
            self.cell = cell

        def forward(self, im):
            m = torch.nn.functional.one_hot(torch.tensor(self.cell), 21 * 21).float() * 50.0
            return m.view(1, 1, 21, 21).expand(len(im), 1, 21, 21)

    row, col = 5, 12   # map cell (row, col) of the 21×21 map: pixels 4·col … 4·col + 3
    heat.net = Peak(row * 21 + col)
    quads = C.crop_quads(model.theta(x))
    assert torch.allclose(quads.mean(1), torch.tensor([[4 * col + 1.5, 4 * row + 1.5]] * 2), atol=1e-3)
    # a peak outside the allowed cells cannot push the window out of the image
    heat.net = Peak(0)
    q = C.crop_quads(model.theta(x))
    assert float(q.min()) >= -0.5 - 1e-4 and float(q.max()) <= 83.5 + 1e-4
    with pytest.raises(ValueError, match="translate"):
        C.ColocNet(C.ColocArgs(localiser="heatmap", transform="affine"))
    with pytest.raises(ValueError, match="localiser"):
        C.ColocNet(C.ColocArgs(localiser="grid"))
    with pytest.raises(ValueError, match="regress"):
        C.ColocConfig(transform="attention").check()
    assert C.recipe(3, 0).localiser == "heatmap" and C.recipe(3, 0, transform="affine").localiser == "regress"
    assert not C.recipe(3, 0).heatmap_norm and C.recipe(3, 16).heatmap_norm   # batch norm: noisy only
    for norm in (False, True):
        bns = [m for m in C.HeatmapLocaliser(batch_norm=norm).net if isinstance(m, torch.nn.BatchNorm2d)]
        assert len(bns) == (3 if norm else 0)
    # checkpoints made before the heatmap localiser existed rebuild their regressing localiser
    old = C.ColocArgs().to_dict()
    del old["localiser"]
    assert C.ColocArgs.from_dict(old).localiser == "regress"


def test_heatmap_localiser_is_differentiable_in_float64():
    torch.manual_seed(0)
    heat = C.HeatmapLocaliser().double()
    for p in heat.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.rand(2, 1, 84, 84, dtype=torch.float64)
    scale = torch.tensor(1 / 3, dtype=torch.float64)
    w = heat.net[-1].weight.detach().clone().requires_grad_()
    name = f"net.{len(heat.net) - 1}.weight"
    assert torch.autograd.gradcheck(lambda w_: torch.func.functional_call(heat, {name: w_}, (x, scale)),
                                    (w,))


def test_random_crops_stay_inside_and_match_the_crop_shape():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 84, 84)
    theta = C.params_to_theta("translate", torch.zeros(16, 2))
    for offset in (None, 2.0):
        r = C.random_crops_like(x, theta, g, offset=offset)
        assert r.shape == (16, 1, 28, 28)
        assert (r > 0).float().mean() > 0.9  # no zero padding: the crop lies inside the image


def small_cfg(**kw) -> C.ColocConfig:
    base = dict(digit=3, noise=0, iterations=4, batch_size=4, record_every=2, n_panel=3, n_eval=6,
                save_every=2, seed=1, shrink_iterations=2, lr_drop=3)
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
    with pytest.raises(ValueError, match="shrink_iterations"):
        C.ColocConfig(iterations=100, shrink_iterations=200).check()
    with pytest.raises(ValueError, match="start_scale"):
        C.ColocConfig(start_scale=0.2).check()
    with pytest.raises(ValueError, match="fine_from"):
        C.ColocConfig(iterations=100, shrink_iterations=10, fine_from=101).check()
    with pytest.raises(ValueError, match="full clutter must be reached"):
        C.ColocConfig(iterations=100, shrink_iterations=10, clutter_from=60, clutter_ramp=50).check()


def test_precision_stage_moves_the_random_crops_closer():
    cfg = C.ColocConfig(iterations=100, shrink_iterations=10, negative_offset=2.0, fine_from=60, fine_offset=1.0)
    assert [C.negative_offset_at(cfg, i) for i in (0, 59, 60, 99)] == [2.0, 2.0, 1.0, 1.0]
    assert C.negative_offset_at(C.ColocConfig(), 10_000) == 2.0      # fine_from = 0: never
    # the share of the random crop that overlaps the (centred) window: large at 1, small at 2
    x = torch.zeros(512, 1, 84, 84)
    x[..., 28:56, 28:56] = 1
    theta = C.params_to_theta("translate", torch.zeros(512, 2))
    gen = torch.Generator().manual_seed(0)
    near = float(C.random_crops_like(x, theta, gen, 28, offset=1.0).mean())
    far = float(C.random_crops_like(x, theta, gen, 28, offset=2.0).mean())
    assert near > 0.15 and far < 0.05, (near, far)


def test_clutter_curriculum_ramps_to_the_full_noise():
    cfg = C.ColocConfig(noise=16, iterations=100, shrink_iterations=10, clutter_from=20, clutter_ramp=40)
    assert [C.clutter_at(cfg, i) for i in (0, 19, 20, 30, 40, 60, 99)] == [0, 0, 0, 4, 8, 16, 16]
    assert C.clutter_at(C.ColocConfig(noise=16), 0) == 16          # default: full clutter throughout
    assert C.clutter_at(C.ColocConfig(noise=0, clutter_from=5), 50) == 0
    noisy = C.recipe(3, 16)                                        # the shipped noisy recipe
    assert (noisy.iterations, noisy.shrink_iterations, noisy.clutter_from, noisy.clutter_ramp,
            noisy.fine_from, noisy.lr_drop, noisy.negatives) == (4800, 800, 800, 800, 1600, 1600, 1)
    clean = C.recipe(3, 0, 1200)                                   # scaled to the run length
    assert (clean.shrink_iterations, clean.lr_drop, clean.clutter_from, clean.fine_from,
            clean.negatives) == (400, 600, 0, 800, 4)
    assert C.recipe(3, 0, negatives=1).negatives == 1 and C.ColocConfig().negatives == 1  # the paper's


def test_cli_defaults_follow_the_recipe_of_the_variant(tmp_path):
    from stn_explore.experiments import colocalise
    out = tmp_path / "noisy.pt"
    assert colocalise.main(["--digit", "1", "--noise", "4", "--iterations", "12", "--record-every", "6",
                            "--batch-size", "4", "--no-progress", "--out", str(out)]) == 0
    cfg = load_checkpoint(out)["config"]
    assert (cfg["shrink_iterations"], cfg["clutter_from"], cfg["clutter_ramp"], cfg["fine_from"],
            cfg["lr_drop"], cfg["negatives"]) == (2, 2, 2, 4, 4, 1)
    assert colocalise.main(["--digit", "1", "--iterations", "4", "--record-every", "2", "--batch-size", "4",
                            "--negatives", "2", "--no-progress", "--out", str(tmp_path / "c.pt")]) == 0
    assert load_checkpoint(tmp_path / "c.pt")["config"]["negatives"] == 2  # clean default: 4


def test_curriculum_window_shrinks_to_a_native_crop():
    cfg = C.ColocConfig(iterations=100, shrink_iterations=40, start_scale=0.9)
    assert C.crop_scale_at(cfg, 0) == pytest.approx(0.9)
    assert C.crop_scale_at(cfg, 20) == pytest.approx((0.9 + 1 / 3) / 2)
    assert C.crop_scale_at(cfg, 40) == C.crop_scale_at(cfg, 100) == pytest.approx(1 / 3)
    model = C.ColocNet().eval()
    model.crop_scale.fill_(0.9)
    with torch.no_grad():
        quads = C.crop_quads(model.theta(torch.rand(1, 1, 84, 84)))[0]
    # a centred window 0.9 of the image wide: 75.6 pixels
    assert float(quads[1, 0] - quads[0, 0]) == pytest.approx(0.9 * 84, abs=1e-3)


def box_iou_of_centred_window(boxes: np.ndarray) -> float:
    centred = np.repeat(box_quad(27.5, 27.5, 55.5, 55.5)[None], len(boxes), 0)
    return float(C.quad_box_iou(centred, boxes).mean())


def plus_digits(n: int, seed: int) -> Digits:
    """28×28 "digits" that are all a thick plus sign, jittered by ±2 pixels (one class)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        dy, dx = rng.integers(-2, 3, 2)
        images[i, 4 + dy:24 + dy, 12 + dx:16 + dx] = 255
        images[i, 12 + dy:16 + dy, 4 + dx:24 + dx] = 255
    return Digits(images, np.full(n, 3, np.int64), "synthetic plus signs")


@pytest.mark.parametrize("localiser, least", [("heatmap", 0.6), ("regress", 0.3)])
def test_short_training_moves_the_boxes_onto_the_digit(localiser, least):
    """Without box labels, a short run with a fixed seed puts the windows on the objects far
    better than the untrained (centred) window, on held-out images."""
    tr, te = plus_digits(300, 1), plus_digits(200, 2)
    cfg = C.ColocConfig(digit=3, iterations=120, shrink_iterations=60, lr_drop=100, record_every=40,
                        n_panel=4, n_eval=20, save_every=1000, seed=0, localiser=localiser)
    ck = C.train(cfg, train_digits=tr, test_digits=te, progress=False, log=lambda m: None)
    held = C.held_out_set(te, 3, 0, cfg.eval_seed)
    before = box_iou_of_centred_window(held["boxes"])
    after = ck["final"]["mean_iou"]
    # measured (1 thread): mean IoU 0.17 for the centred window; after training 0.85 with the
    # heatmap localiser (every box correct), 0.38 with the regressing one (a window that
    # drifted off the objects would score near 0)
    assert before < 0.2 and after > least, (before, after)
    iou = C.load_recording(ck)["mean_iou"]
    assert iou[-1] > iou[0]


def test_compact_keeps_the_window_and_re_measures(tmp_path):
    tr, te = synthetic_digits(60, 1), synthetic_digits(40, 2)
    ck = C.train(small_cfg(), train_digits=tr, test_digits=te, progress=False, log=lambda m: None)
    small = C.compact(ck, te)
    assert "optimizer" not in small and small["state_dict"]["crop_scale"].dtype == torch.float32
    assert small["state_dict"]["embed.net.0.weight"].dtype == torch.float16
    held = C.held_out_set(te, 3, 0, 0)
    assert small["final"]["accuracy"] == C.evaluate_checkpoint(small, held["images"], held["boxes"])["accuracy"]
    with pytest.raises(ValueError, match="finished"):
        C.compact({**ck, "final": None}, te)
    # a compacted run resumes (Adam restarts)
    more = C.train(small_cfg(iterations=6), train_digits=tr, test_digits=te, resume_from=small,
                   progress=False, log=lambda m: None)
    assert more["iteration"] == 6


def test_cli_trains_resumes_compacts_and_evaluate_reads_npz(tmp_path, capsys):
    from stn_explore.experiments import colocalise, evaluate
    out = tmp_path / "run.pt"
    args = ["--digit", "1", "--iterations", "6", "--shrink-iterations", "3", "--lr-drop", "5",
            "--record-every", "3", "--batch-size", "4", "--no-progress", "--out", str(out), "--retries", "0"]
    assert colocalise.main(args) == 0
    assert load_checkpoint(out)["iteration"] == 6
    assert colocalise.main(args) == 2                       # exists, no --resume
    assert "pass --resume" in capsys.readouterr().err
    longer = args[:3] + ["9"] + args[4:] + ["--resume", "--compact"]
    assert colocalise.main(longer) == 0
    ck = load_checkpoint(out)
    assert ck["iteration"] == 9 and ck["compact"] and C.load_recording(ck)["iteration"].tolist() == [0, 3, 6, 9]
    capsys.readouterr()
    # evaluate on an exported one-class coloc set (the npz contract: images + boxes in pixels);
    # `data export --digit` writes exactly the held-out images of a run with that eval seed
    from stn_explore.experiments import data as data_mod
    from stn_explore.experiments.mnist import load_digits
    held = C.held_out_set(load_digits("test"), 1, 0, seed=5, n=30)
    npz = tmp_path / "coloc.npz"
    assert data_mod.main(["export", "--task", "coloc", "--digit", "1", "--seed", "5", "--n", "30",
                          "--out", str(npz)]) == 0
    arrays, meta = data_mod.load_npz(npz)
    assert meta["digit"] == 1 and (arrays["labels"] == 1).all()
    assert all(np.array_equal(arrays[k], held[k]) for k in ("images", "boxes", "labels"))
    assert evaluate.main(["--checkpoint", str(out), "--npz", str(npz)]) == 0
    want = C.evaluate_checkpoint(ck, held["images"], held["boxes"])["accuracy"]
    assert f"{want:.1f}% of boxes with IoU > 0.5" in capsys.readouterr().out
    np.savez(tmp_path / "nobox.npz", images=held["images"], labels=held["labels"])
    assert evaluate.main(["--checkpoint", str(out), "--npz", str(tmp_path / "nobox.npz")]) == 2
    assert "boxes" in capsys.readouterr().err


def test_cli_retries_failed_runs_with_the_next_seed_and_keeps_the_lowest_loss(tmp_path, capsys):
    from stn_explore.experiments import colocalise
    out = tmp_path / "run.pt"
    base = ["--digit", "1", "--iterations", "4", "--shrink-iterations", "2", "--lr-drop", "3",
            "--record-every", "2", "--batch-size", "4", "--no-progress", "--out", str(out)]
    # every attempt "fails" (a loss is never below −1): three attempts, the lowest final loss kept
    assert colocalise.main(base + ["--retries", "2", "--retry-above", "-1"]) == 0
    text = capsys.readouterr().out
    assert "retrying with seed 1" in text and "retrying with seed 2" in text
    ck = load_checkpoint(out)
    attempts = ck["attempts"]
    assert [a["seed"] for a in attempts] == [0, 1, 2]
    losses = [a["final_training_loss"] for a in attempts]
    assert ck["config"]["seed"] == attempts[int(np.argmin(losses))]["seed"]
    assert C.final_training_loss(ck) == pytest.approx(min(losses))
    assert list(tmp_path.glob("run.pt.seed*")) == []          # the set-aside attempts are gone
    # a run that settled (loss under the bar) is not retried
    out2 = tmp_path / "ok.pt"
    assert colocalise.main(base[:-1] + [str(out2), "--retries", "2", "--retry-above", "100"]) == 0
    assert "retrying" not in capsys.readouterr().out and "attempts" not in load_checkpoint(out2)
    # interrupted after the last attempt finished but before the comparison: --resume completes it
    ck0 = load_checkpoint(out2)
    save_checkpoint(tmp_path / "ok.pt.seed7", {**ck0, "config": {**ck0["config"], "seed": 7}})
    assert colocalise.main(base[:-1] + [str(out2), "--resume", "--retry-above", "100"]) == 0
    assert [a["seed"] for a in load_checkpoint(out2)["attempts"]] == [0, 7]
    assert list(tmp_path.glob("ok.pt.seed*")) == []
    # killed after the comparison was saved, while the set-aside files were being removed: --resume
    # only removes them (each attempt listed once, no new attempt even though all "failed")
    compared = load_checkpoint(out)
    for seed in (0, 2):
        save_checkpoint(tmp_path / f"run.pt.seed{seed}", {**ck0, "config": {**ck0["config"], "seed": seed}})
    assert colocalise.main(base + ["--resume", "--retries", "2", "--retry-above", "-1"]) == 0
    assert "retrying" not in capsys.readouterr().out
    assert load_checkpoint(out)["attempts"] == compared["attempts"]
    assert load_checkpoint(out)["config"]["seed"] == compared["config"]["seed"]
    assert list(tmp_path.glob("run.pt.seed*")) == []
    capsys.readouterr()
    assert colocalise.main(base[:-1] + [str(tmp_path / "new.pt"), "--retries", "-1"]) == 2
    assert "--retries must be ≥ 0" in capsys.readouterr().err


def test_live_run_trains_on_a_thread_and_stops():
    tr, te = synthetic_digits(60, 1), synthetic_digits(40, 2)
    live = C.LiveRun(small_cfg(iterations=6), tr, te).start()
    live.join(60)
    assert live.done and live.error is None and live.result["final"] is not None
    assert live.latest is live.result
    slow = C.LiveRun(small_cfg(iterations=10_000, shrink_iterations=10, record_every=1), tr, te).start()
    for _ in range(600):
        if slow.latest is not None:
            break
        import time
        time.sleep(0.05)
    slow.stop()
    slow.join(60)
    assert slow.done and slow.result["stopped"] and slow.result["iteration"] < 10_000


def test_abandoned_live_run_ends_after_the_current_iteration():
    # stop() waits for the next recorded iteration; abandon() (the session ended) does not
    import time

    tr, te = synthetic_digits(60, 1), synthetic_digits(40, 2)
    run = C.LiveRun(small_cfg(iterations=10_000, shrink_iterations=10, record_every=1000), tr, te).start()
    for _ in range(600):
        if run.iteration >= 2:
            break
        time.sleep(0.05)
    run.abandon()
    run.join(60)
    assert not run.running and run.error is None
    assert run.iteration < 1000  # it did not go on to the next record


def test_coloc_figure_has_one_frame_per_record():
    from stn_explore.explorer import figures

    t, p = 5, 6
    quads = np.tile(box_quad(10, 10, 38, 38)[None, None], (t, p, 1, 1))
    fig = figures.coloc_figure(np.zeros((p, 84, 84), np.uint8), np.tile([[10, 10, 38, 38]], (p, 1)), quads,
                               np.arange(t) * 10, np.linspace(1, 0, t), np.linspace(0, 100, t))
    assert len(fig.frames) == t and len(fig.layout.sliders[0].steps) == t
    assert fig.frames[2].traces == (4, 5, 6) and fig.frames[2].data[1].x == (20,)
    still = figures.coloc_figure(np.zeros((p, 84, 84), np.uint8), np.tile([[10, 10, 38, 38]], (p, 1)), quads,
                                 np.arange(t) * 10, np.linspace(1, 0, t), np.linspace(0, 100, t), animate=False)
    assert not still.frames and still.data[5].x == (40,)
    with pytest.raises(ValueError, match="panel_quads"):
        figures.coloc_figure(np.zeros((p, 84, 84)), np.zeros((p, 4)), quads[:, :2], np.arange(t),
                             np.zeros(t), np.zeros(t))

"""The paper's distortion recipes: parameter ranges, geometry, determinism, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stn_explore as stn
from stn_explore.experiments import data as data_mod
from stn_explore.experiments import distortions as D

from .conftest import synthetic_digits

N_STAT = 4000


@pytest.fixture(scope="module")
def pool():
    return synthetic_digits(300, seed=3)


def draw(task, n=N_STAT, cfg=None, seed=0):
    return D.sample_params(task, n, torch.Generator().manual_seed(seed), cfg, pool=300)


def assert_uniform(x, lo, hi):
    x = np.asarray(x, dtype=np.float64)
    assert x.min() >= lo and x.max() <= hi
    # mean and std of U(lo, hi), within ~5 standard errors for N_STAT draws
    mean, std = (lo + hi) / 2, (hi - lo) / np.sqrt(12)
    assert abs(x.mean() - mean) < 5 * std / np.sqrt(len(x))
    assert abs(x.std() - std) < 0.05 * std
    assert x.min() < lo + 0.01 * (hi - lo) and x.max() > hi - 0.01 * (hi - lo)


def test_r_parameters():
    p = draw("r")
    assert_uniform(p["angle"], -90, 90)
    torch.testing.assert_close(stn.params_from_theta(p["theta"]).angle_deg, p["angle"])


def test_rts_parameters_and_centre_bounds():
    p = draw("rts")
    assert_uniform(p["angle"], -45, 45)
    assert_uniform(p["scale"], 0.7, 1.2)
    half = p["scale"] * 28 / 42
    assert (p["centre"].abs() <= (1 - half)[:, None] + 1e-9).all()
    # θ maps the canvas point at the digit centre to the digit's centre (0, 0)
    c = stn.affine_transform_points(p["theta"], p["centre"][:, None])[:, 0]
    torch.testing.assert_close(c, torch.zeros_like(c), atol=1e-9, rtol=0)
    # and a canvas step of `half` along the rotated x axis to the digit's edge
    dec = stn.params_from_theta(p["theta"])
    torch.testing.assert_close(dec.scale_x, 1 / half)


def test_p_and_e_noise_statistics():
    p = draw("p")
    noise = p["corners"] - stn.frame_corners(torch.float64) / 0.75
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.1) < 0.005
    e = draw("e")
    noise = e["source_points"] - stn.control_points(4, dtype=torch.float64) / 0.75
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.15) < 0.005
    cfg = D.ElasticConfig(sigma=0.05)
    noise = draw("e", cfg=cfg)["source_points"] - stn.control_points(4, dtype=torch.float64) / 0.75
    assert abs(noise.std() - 0.05) < 0.003


@pytest.mark.parametrize("task,canvas", [("cluttered", 60), ("coloc", 84)])
def test_placement_and_clutter_parameters(task, canvas):
    cfg = D.default_config(task) if task == "cluttered" else D.NOISY_COLOC
    p = draw(task, cfg=cfg)
    off = p["offset"].numpy()
    assert off.min() == 0 and off.max() == canvas - 28
    assert_uniform(off + np.random.default_rng(0).random(off.shape), 0, canvas - 28 + 1)
    assert (p["clutter_index"] != p["index"][:, None]).all()  # clutter from *other* digits
    assert p["clutter_pos"].max() <= canvas - cfg.patch and p["clutter_crop"].max() <= 28 - cfg.patch


def test_rts_digit_stays_inside_canvas(pool):
    out = D.generate("rts", pool.images, pool.labels, 2000, torch.Generator().manual_seed(1))
    ink0 = pool.images[out["param_index"]].astype(float).sum((1, 2))
    ink1 = out["images"].astype(float).sum((1, 2))
    ratio = ink1 / (ink0 * out["param_scale"].astype(float) ** 2)  # area scales with s²
    assert 0.99 < np.median(ratio) < 1.01
    assert np.percentile(ratio, 1) > 0.95 and ratio.min() > 0.85


def test_pasted_digit_is_whole_and_boxes_match(pool):
    for task, cfg in (("cluttered", D.ClutterConfig()), ("coloc", D.ColocConfig()),
                      ("coloc", D.NOISY_COLOC)):
        out = D.generate(task, pool.images, pool.labels, 200, torch.Generator().manual_seed(2), cfg)
        for img, (x0, y0, x1, y1), idx in zip(out["images"], out["boxes"], out["param_index"]):
            r0, c0 = int(y0 + 0.5), int(x0 + 0.5)
            assert x1 - x0 == 28 and y1 - y0 == 28
            crop = img[r0:r0 + 28, c0:c0 + 28]
            assert (crop >= pool.images[idx]).all()  # the digit is there in full (clutter only adds)
            if cfg.n_clutter == 0:
                outside = img.copy()
                outside[r0:r0 + 28, c0:c0 + 28] = 0
                assert outside.max() == 0  # clean: every ink pixel is inside the box


def test_addition_two_channels_and_sum_labels(pool):
    out = D.generate("addition", pool.images, pool.labels, 100, torch.Generator().manual_seed(3))
    assert out["images"].shape == (100, 2, 42, 42)
    np.testing.assert_array_equal(out["labels"], pool.labels[out["param_index"]] + pool.labels[out["param_index2"]])
    assert out["labels"].max() <= 18


@pytest.mark.parametrize("task", D.TASKS)
def test_same_seed_byte_identical_and_other_seed_differs(task, pool):
    a = D.make_fixed_set(task, pool.images, pool.labels, 64, seed=5)
    b = D.make_fixed_set(task, pool.images, pool.labels, 64, seed=5)
    c = D.make_fixed_set(task, pool.images, pool.labels, 64, seed=6)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    assert a["images"].tobytes() != c["images"].tobytes()
    c_, h, w = D.image_shape(task)
    assert a["images"].shape == ((64, c_, h, w) if c_ > 1 else (64, h, w)) and a["images"].dtype == np.uint8


def test_fixed_set_uses_every_digit_once_when_n_equals_pool(pool):
    out = D.make_fixed_set("rts", pool.images, pool.labels, 300, seed=0)
    assert sorted(out["param_index"]) == list(range(300))


def test_apply_is_deterministic_given_params(pool):
    p = D.sample_params("e", 16, torch.Generator().manual_seed(0), pool=300)
    a, b = D.apply("e", pool.images, p), D.apply("e", pool.images, p)
    np.testing.assert_array_equal(a, b)


def test_epoch_stream_fresh_per_epoch_and_reproducible(pool):
    def first(epoch):
        return next(D.epoch_batches("rts", pool.images, pool.labels, 32, seed=1, epoch=epoch))

    x0, y0 = first(0)
    x0b, y0b = first(0)
    x1, _ = first(1)
    assert x0.shape == (32, 1, 42, 42) and x0.dtype == torch.float32 and 0 <= x0.min() and x0.max() <= 1
    assert torch.equal(x0, x0b) and torch.equal(y0, y0b)
    assert not torch.equal(x0, x1)
    n = sum(len(y) for _, y in D.epoch_batches("r", pool.images, pool.labels, 64, seed=1, epoch=0))
    assert n == 300  # every digit once per epoch


def test_unknown_task_raises():
    with pytest.raises(ValueError, match="unknown task"):
        D.sample_params("shear", 4, torch.Generator())


# ----------------------------------------------------------------------------- export
def test_export_cli_writes_the_npz_contract(tmp_path, idx_dir, capsys):
    out = tmp_path / "coloc.npz"
    rc = data_mod.main(["export", "--task", "coloc", "--noise", "16", "--n", "40", "--seed", "3",
                        "--data-dir", str(idx_dir), "--out", str(out)])
    assert rc == 0
    arrays, meta = data_mod.load_npz(out)
    assert arrays["images"].shape == (40, 84, 84) and arrays["images"].dtype == np.uint8
    assert arrays["labels"].dtype == np.int64 and arrays["boxes"].dtype == np.float32
    assert arrays["boxes"].shape == (40, 4)
    assert meta["task"] == "coloc" and meta["config"]["n_clutter"] == 16 and meta["split"] == "test"
    assert "param_offset" in arrays
    # same command → byte-identical arrays
    out2 = tmp_path / "again.npz"
    data_mod.main(["export", "--task", "coloc", "--noise", "16", "--n", "40", "--seed", "3",
                   "--data-dir", str(idx_dir), "--out", str(out2)])
    again, _ = data_mod.load_npz(out2)
    assert all(arrays[k].tobytes() == again[k].tobytes() for k in arrays)
    assert not list(tmp_path.glob("*.part"))


def test_export_every_task_and_multichannel(tmp_path, idx_dir):
    for task in D.TASKS:
        out = tmp_path / f"{task}.npz"
        assert data_mod.main(["export", "--task", task, "--n", "8", "--data-dir", str(idx_dir),
                              "--out", str(out)]) == 0
        arrays, meta = data_mod.load_npz(out)
        assert arrays["images"].shape[0] == 8 and json.dumps(meta)
    assert data_mod.load_npz(tmp_path / "addition.npz")[0]["images"].shape == (8, 2, 42, 42)


def test_export_cli_errors_are_clear(tmp_path, capsys):
    rc = data_mod.main(["export", "--task", "rts", "--n", "5", "--data-dir", str(tmp_path / "none"),
                        "--out", str(tmp_path / "x.npz")])
    assert rc == 2 and "no mnist test files" in capsys.readouterr().err
    rc = data_mod.main(["export", "--task", "rts", "--noise", "3", "--n", "5", "--out", str(tmp_path / "x.npz")])
    assert rc == 2 and "--noise" in capsys.readouterr().err
    rc = data_mod.main(["export", "--task", "rts", "--digit", "3", "--n", "5", "--out", str(tmp_path / "x.npz")])
    assert rc == 2 and "--digit applies to the coloc task only" in capsys.readouterr().err


def test_export_offline_names_the_shipped_digits(tmp_path, capsys):
    out = tmp_path / "r.npz"
    assert data_mod.main(["export", "--task", "r", "--n", "10", "--out", str(out)]) == 0
    _, meta = data_mod.load_npz(out)
    assert meta["source"] == "MNIST test split, 10,000 held-out digits (shipped with stn_explore)"
    assert not meta["is_sample"] and meta["split"] == "test"
    assert "made from the MNIST test split, 10,000 held-out digits" in capsys.readouterr().out
    assert data_mod.main(["export", "--task", "r", "--split", "train", "--n", "10", "--out", str(out)]) == 0
    _, meta = data_mod.load_npz(out)
    assert meta["is_sample"] and "training sample (5,000 digits shipped with stn_explore)" in meta["source"]


def test_real_test_set_is_drawn_from_test_split_only(mnist_dir):
    arrays, meta = data_mod.make_task_set("rts", "test", 10000, 0, root=mnist_dir)
    test = data_mod.load_digits("test", root=mnist_dir)
    assert sorted(arrays["param_index"]) == list(range(10000))  # every test digit once
    np.testing.assert_array_equal(arrays["labels"], test.labels[arrays["param_index"]])
    assert meta["split"] == "test"


def test_examples_page_has_parameters(pool):
    ex = D.examples("p", pool.images, pool.labels, n=16, seed=0)
    assert ex["images"].shape == (16, 28, 28)
    assert ex["param_homography"].shape == (16, 3, 3) and ex["param_corners"].shape == (16, 4, 2)


def test_stream_seeded_per_worker_covers_every_digit_once(pool):
    stream = D.DistortedStream("rts", pool.images, pool.labels, seed=4, chunk=64)

    def epoch(e, workers):
        stream.set_epoch(e)
        loader = torch.utils.data.DataLoader(stream, batch_size=50, num_workers=workers)
        xs, ys = zip(*loader)
        return torch.cat(xs), torch.cat(ys)

    x2, y2 = epoch(0, 2)
    assert x2.shape == (300, 1, 42, 42) and y2.shape == (300,)
    assert sorted(y2.tolist()) == sorted(pool.labels.tolist())  # each digit exactly once
    x2b, _ = epoch(0, 2)
    assert torch.equal(x2, x2b)  # reproducible for a given number of workers
    x3, _ = epoch(1, 2)
    assert not torch.equal(x2, x3)  # fresh distortions every epoch
    x_single, y_single = epoch(0, 0)
    assert sorted(y_single.tolist()) == sorted(y2.tolist())


def test_at_strength_scales_each_recipe_and_is_the_recipe_at_one():
    rts = D.default_config("rts")
    assert D.at_strength(rts, 1.0) == rts
    half = D.at_strength(rts, 0.5)
    assert (half.max_angle, half.scale_min, half.scale_max, half.shift) == pytest.approx((22.5, 0.85, 1.1, 0.5))
    zero = D.at_strength(rts, 0.0)
    d = synthetic_digits(20, 0)
    s = D.make_fixed_set("rts", d.images, d.labels, 50, 0, zero)
    assert np.abs(s["param_angle"]).max() == 0 and np.allclose(s["param_scale"], 1)
    assert np.abs(s["param_centre"]).max() == 0  # centred
    assert D.at_strength(D.default_config("cluttered"), 0.5).n_clutter == 4
    assert D.at_strength(D.default_config("addition"), 0.5).rts.max_angle == 22.5
    assert D.at_strength(D.default_config("r"), 0.25).max_angle == 22.5
    with pytest.raises(ValueError, match="strength"):
        D.at_strength(rts, 1.5)
    # the full-strength RTS stream is unchanged by the new placement field (shift = 1)
    a = D.make_fixed_set("rts", d.images, d.labels, 20, 3)
    b = D.make_fixed_set("rts", d.images, d.labels, 20, 3, D.with_overrides(rts, shift=1.0))
    np.testing.assert_array_equal(a["images"], b["images"])

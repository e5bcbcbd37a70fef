"""/learning's library, with known answers: the gradient through the sampler equals the paper's
eqs. (5)–(7) written out in plain NumPy, a grid on empty background gets exactly zero gradient,
gradient descent recovers a known θ from a nearby start (and the presets fail the way the page
says), the collapse detector flags a constant transform and not a working one, the live lab
trains, records and stops, and the measured outcomes the page shows match the presets."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

import stn_explore as stn
from stn_explore.experiments import diagnostics as G
from stn_explore.explorer import learning as Lg
from stn_explore.explorer import learning_figures as LF
from stn_explore.explorer import learning_lab as LL
from stn_explore.explorer import learning_live as LV

from .conftest import synthetic_digits


def decoded(v):
    """A figure (``Figure.to_dict())`` or the JSON a page sent) with plotly's base64 typed arrays
    decoded to NumPy arrays (NaN where a line breaks)."""
    if isinstance(v, dict) and {"dtype", "bdata"} <= set(v):
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]).newbyteorder("<"))
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    if isinstance(v, dict):
        return {k: decoded(x) for k, x in v.items()}
    return [decoded(x) for x in v] if isinstance(v, list) else v


def digit_image(seed: int = 0) -> np.ndarray:
    """A 28×28 digit-like stroke pattern with blurred edges (no data files needed)."""
    yy, xx = np.mgrid[0:28, 0:28]
    img = np.exp(-(((xx - 14) ** 2 + (yy - 14) ** 2) ** 0.5 - 7) ** 2 / 3.0)   # a ring, like a 0
    img[6:22, 12 + seed:15 + seed] = 1.0                                      # and a bar through it
    img[:4], img[-4:], img[:, :4], img[:, -4:] = 0, 0, 0, 0                   # MNIST's empty margin
    return img.clip(0, 1)


# ----------------------------------------------------------------------------- eqs. (5)–(7)
def eq567_reference(u: np.ndarray, grid: np.ndarray, target: np.ndarray):
    """V by eq. (5), and ∂L/∂x^s for L = mean((V − V*)²) by eq. (7), in plain NumPy loops with
    zero padding; then ∂L/∂θ by the chain rule through eq. (1). Pixel coordinates
    x = ((x_norm + 1) W − 1) / 2 (align_corners=False), so ∂x/∂x_norm = W / 2."""
    h, w = u.shape
    hp, wp = grid.shape[:2]
    v, dvdx, dvdy = np.zeros((hp, wp)), np.zeros((hp, wp)), np.zeros((hp, wp))
    for i in range(hp):
        for j in range(wp):
            x = ((grid[i, j, 0] + 1) * w - 1) / 2
            y = ((grid[i, j, 1] + 1) * h - 1) / 2
            m0, n0 = int(np.floor(x)), int(np.floor(y))
            for n in (n0, n0 + 1):
                for m in (m0, m0 + 1):
                    unm = u[n, m] if 0 <= n < h and 0 <= m < w else 0.0
                    kx, ky = max(0.0, 1 - abs(x - m)), max(0.0, 1 - abs(y - n))
                    v[i, j] += unm * kx * ky                                    # eq. (5)
                    # eq. (7): ∂V/∂x = Σ U_nm max(0, 1 − |y − n|) · (+1 if m ≥ x else −1), |m − x| < 1
                    dvdx[i, j] += unm * ky * (1.0 if m > x else -1.0)
                    dvdy[i, j] += unm * kx * (1.0 if n > y else -1.0)
    dldv = 2 * (v - target) / v.size
    g = np.stack((dldv * dvdx * w / 2, dldv * dvdy * h / 2), -1)               # ∂L/∂x^s, normalised
    base = stn.base_grid((hp, wp), dtype=torch.float64).numpy()                  # target points (x^t, y^t)
    xt = np.concatenate((base, np.ones((hp, wp, 1))), -1)                       # (H', W', 3)
    dtheta = np.einsum("hwk,hwc->kc", g, xt)                                     # eq. (1): Σ ∂L/∂x^s (x^t, y^t, 1)
    return v, g, dtheta


@pytest.mark.parametrize("theta_args", [(17.0, 0.7, -0.2, 0.1), (-40.0, 1.3, 0.5, -0.45)])
def test_gradient_through_the_sampler_matches_eqs_5_to_7(theta_args):
    # H ≠ W so a swapped x/y fails; the second θ puts part of the grid outside U (zero padding)
    rng = np.random.default_rng(0)
    u = rng.random((9, 13)) * (rng.random((9, 13)) > 0.4)
    target = rng.random((6, 7))
    theta = Lg.target_theta(*theta_args)
    got = Lg.sampler_gradient(u, theta, target, "zeros")
    v, g, dtheta = eq567_reference(u, got.grid, target)
    np.testing.assert_allclose(got.v, v, atol=1e-12)
    np.testing.assert_allclose(got.grad_grid, g, atol=1e-12)
    np.testing.assert_allclose(got.grad_theta, dtheta, atol=1e-12)
    assert got.loss == pytest.approx(((v - target) ** 2).mean(), abs=1e-12)
    assert (got.outside > 0) == (theta_args[1] > 1)


def test_padding_modes_agree_while_the_grid_is_inside_u_and_differ_outside():
    u = Lg.place_digit(digit_image())
    target = Lg.target_image(u, Lg.crop_theta(Lg.digit_box(), u.shape))
    inside = Lg.sampler_gradients(u, Lg.target_theta(*Lg.GRADIENT_PRESETS["near the digit"]), target)
    assert inside["zeros"].outside == 0
    for p in ("border", "reflection"):
        np.testing.assert_allclose(inside[p].grad_theta, inside["zeros"].grad_theta, atol=1e-12)
    edge = Lg.sampler_gradients(u, Lg.target_theta(*Lg.GRADIENT_PRESETS["half outside U"]), target)
    assert edge["zeros"].outside > 0.3 and u[:, 0].max() > 0       # ink on U's edge column
    for p in ("border", "reflection"):                             # border repeats it, reflection mirrors it
        assert np.abs(edge[p].grad_theta - edge["zeros"].grad_theta).max() > 1e-3, p


def test_zero_gradient_on_an_empty_region():
    u = Lg.place_digit(digit_image())                 # ink on the left, empty on the right
    target = Lg.target_image(u, Lg.crop_theta(Lg.digit_box(), u.shape))
    theta = Lg.target_theta(*Lg.GRADIENT_PRESETS["empty corner"])
    assert Lg.target_image(u, theta).max() == 0       # the crop sees no ink at all
    for p, r in Lg.sampler_gradients(u, theta, target).items():
        assert r.loss > 0.01, p                       # far from the target…
        assert r.zero_share == 1.0, p                 # …and yet no sample point is pulled anywhere
        assert np.all(r.grad_theta == 0), p


def test_only_the_2x2_neighbourhood_matters():
    # a point whose four neighbouring pixels are all 0 has zero gradient (zeros padding)
    u = Lg.place_digit(digit_image())
    target = np.ones((20, 20)) * 0.5
    r = Lg.sampler_gradient(u, Lg.target_theta(23.0, 0.9, 0.1, 0.05), target)
    h, w = u.shape
    x = ((r.grid[..., 0] + 1) * w - 1) / 2
    y = ((r.grid[..., 1] + 1) * h - 1) / 2
    m0, n0 = np.floor(x).astype(int), np.floor(y).astype(int)
    padded = np.pad(u, 2)
    ink = sum(padded[np.clip(n0 + dn + 2, 0, h + 3), np.clip(m0 + dm + 2, 0, w + 3)] for dn in (0, 1) for dm in (0, 1))
    no_ink = ink == 0
    assert no_ink.any() and (~no_ink).any()
    assert np.all(r.grad_grid[no_ink] == 0)
    assert (np.abs(r.grad_grid[~no_ink]).sum(-1) > 0).mean() > 0.5   # (a point on flat ink may still get 0)


# ----------------------------------------------------------------------------- fitting θ
def test_fit_recovers_a_known_theta_from_a_nearby_start():
    u = digit_image()
    theta_star = Lg.target_theta(8.0, 0.92, 0.06, -0.04)
    fit = Lg.ThetaFit(u, Lg.target_image(u, theta_star), "adam", 0.01)
    for _ in range(60):
        fit.step(10)
        if fit.status != "running":
            break
    assert fit.status == "converged", (fit.status, fit.losses[-1])
    np.testing.assert_allclose(fit.thetas[-1], theta_star, atol=0.02)   # ≈ 0.3 px at the frame's edge
    assert fit.losses[-1] < fit.losses[0] / 100
    assert fit.thetas.shape == (fit.steps + 1, 2, 3) and fit.losses.shape == (fit.steps + 1,)


@pytest.mark.parametrize("kind", list(Lg.OPTIMISERS))
def test_written_out_optimisers_follow_torch_optim(kind):
    g = torch.Generator().manual_seed(1)
    c, w = torch.randn(1, 2, 3, generator=g), torch.rand(1, 2, 3, generator=g) + 0.5
    p_ref = torch.zeros(1, 2, 3, requires_grad=True)
    opt = {"sgd": lambda: torch.optim.SGD([p_ref], lr=0.1), "adam": lambda: torch.optim.Adam([p_ref], lr=0.1),
           "momentum": lambda: torch.optim.SGD([p_ref], lr=0.1, momentum=0.9)}[kind]()
    p, state = torch.zeros(1, 2, 3), {}
    for _ in range(25):
        opt.zero_grad()
        (w * (p_ref - c) ** 2).sum().backward()
        opt.step()
        p = p - Lg.optimiser_update(kind, 2 * w * (p - c), state, 0.1)
        torch.testing.assert_close(p, p_ref.detach(), rtol=1e-5, atol=1e-6)


def _run_preset(name: str, u: np.ndarray, steps: int = 400) -> Lg.ThetaFit:
    p = Lg.FIT_PRESETS[name]
    target = Lg.target_image(u, Lg.target_theta(p["angle"], p["scale"], p["tx"], p["ty"]))
    fit = Lg.ThetaFit(u, target, p["optimiser"], p["lr"])
    for _ in range(steps // 5):
        fit.step(5)
        if fit.status != "running":
            break
    return fit


def test_fit_presets_end_as_the_page_says():
    u = digit_image()
    assert _run_preset("converges", u).status == "converged"
    lost = _run_preset("diverges (lr too high)", u)
    assert lost.status == "lost" and lost.outside() == 1.0 and lost.steps <= 10
    stuck = _run_preset("local minimum (150°)", u)
    assert stuck.status == "stuck" and stuck.losses[-1] > 100 * Lg.ThetaFit.TOL


def test_fit_rejects_bad_arguments_and_stops_when_diverged():
    u = digit_image()
    with pytest.raises(ValueError, match="optimiser"):
        Lg.ThetaFit(u, u, "rmsprop")
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        Lg.ThetaFit(u, u, theta0=np.eye(3))
    fit = Lg.ThetaFit(u, u, "sgd", 1e9, theta0=Lg.target_theta(5.0, 1.0, 0.02, 0.0))
    fit.step(5)
    assert fit.status == "diverged" and fit.steps == 0
    fit.step(5)                                   # a diverged fit takes no more steps
    assert fit.steps == 0


def test_landscape_is_lowest_at_the_target_and_the_path_reads_back():
    u = digit_image()
    theta_star = Lg.target_theta(30.0, 0.9, 0.05, 0.0)
    angles, scales = np.linspace(-180, 180, 37), np.array([0.6, 0.9, 1.2])
    land = Lg.loss_landscape(u, Lg.target_image(u, theta_star), angles, scales, (0.05, 0.0))
    assert land.shape == (3, 37)
    assert np.unravel_index(land.argmin(), land.shape) == (1, list(angles).index(30.0))
    assert land.min() < 1e-10
    sheared = stn.theta_from_params(-120.0, (0.7, 1.3), shear=0.4, translate=(0.2, 0.1)).numpy()
    path = Lg.path_coordinates(np.stack([theta_star, np.eye(2, 3), np.zeros((2, 3)), sheared]))
    np.testing.assert_allclose(path[:2], [[30.0, 0.9], [0.0, 1.0]], atol=1e-9)
    assert np.isnan(path[2]).all()
    assert path[3, 0] == pytest.approx(float(stn.params_from_theta(torch.from_numpy(sheared)).angle_deg))
    assert path[3, 1] == pytest.approx((0.7 * 1.3) ** 0.5)


def test_crop_theta_crops_the_box_and_place_digit_cuts_at_the_edge():
    d = (digit_image() * 255).astype(np.uint8)
    u = Lg.place_digit(d, 48, (-7, 10))
    assert u.shape == (48, 48) and np.array_equal(u[10:38, 0:21], d[:, 7:] / np.float32(255))
    u2 = Lg.place_digit(d, 48, (10, 6))
    np.testing.assert_allclose(Lg.target_image(u2, Lg.crop_theta(Lg.digit_box((10, 6)), u2.shape)), d / 255, atol=1e-6)
    with pytest.raises(ValueError, match="misses"):
        Lg.place_digit(d, 48, (60, 0))
    labels = np.array([3, 1, 3, 3, 1])
    assert [Lg.same_class_partner(labels, i) for i in range(5)] == [2, 4, 3, 0, 1]


# ----------------------------------------------------------------------------- collapse
def test_collapse_detector_flags_a_constant_transform_and_not_a_working_one():
    g = torch.Generator().manual_seed(0)
    n = 50
    constant = Lg.target_theta(0.0, 1.3, 0.0, 0.0)[None].repeat(n, 0) + 1e-4 * torch.randn(n, 2, 3, generator=g).numpy()
    rep = LL.collapse_report(G.region_corners("affine", torch.from_numpy(constant)))
    assert rep["collapsed"] and rep["spread"] < 1e-3 and rep["mean_size"] == pytest.approx(1.3, abs=1e-3)
    # a working transformer: a crop that follows each digit's position
    centres = torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5
    following = torch.stack([stn.theta_from_params(0.0, 0.6, translate=(cx, cy)) for cx, cy in centres.tolist()])
    rep = LL.collapse_report(G.region_corners("affine", following))
    assert not rep["collapsed"] and rep["spread"] > 0.1
    with pytest.raises(ValueError, match=r"\(N ≥ 2, 4, 2\)"):
        LL.collapse_report(np.zeros((1, 4, 2)))


# ----------------------------------------------------------------------------- the lab
TINY = replace(LL.RECIPE, iterations=6, batch_size=8, record_every=3, n_eval=20, n_panel=3)


@pytest.fixture(scope="module")
def tiny_data():
    return LL.lab_data(synthetic_digits(100, 1), synthetic_digits(40, 2), TINY.n_eval)


def test_lab_trains_records_and_reports(tiny_data):
    seen = []
    h = LL.train_lab(TINY, tiny_data, on_record=lambda hist: seen.append(hist["iteration"][-1]))
    assert h["iteration"] == [0, 3, 6] and seen == [0, 3, 6]
    assert h["panel"].shape == (3, 3, 4, 2) and h["v_panel"].shape == (3, TINY.st_out, TINY.st_out)
    np.testing.assert_allclose(h["panel"][0], [[[-1, -1], [1, -1], [1, 1], [-1, 1]]] * 3, atol=1e-6)  # identity init
    assert h["collapsed"][0] and h["spread"][0] == pytest.approx(0, abs=1e-6)
    assert all(0 <= e <= 100 for e in h["error"]) and not h["stopped"]
    assert isinstance(h["verdict"], str)
    # without identity initialisation the region starts small and differs between images
    h2 = LL.train_lab(replace(TINY, identity_init=False, iterations=1, record_every=1), tiny_data)
    assert h2["mean_size"][0] < 0.5


def test_lab_options_build_the_model_they_name():
    args = LL.lab_model_args(replace(TINY, st_out=20, loc_downsample=False))
    assert args.st_out_size == (20, 20) and args.loc_pool == 1
    model = LL.lab_model(replace(TINY, identity_init=False))
    assert model.transformers[0].regressor.weight.abs().sum() > 0
    with pytest.raises(ValueError, match="st_out"):
        replace(TINY, st_out=80).check()


def test_lab_adam_follows_torch_adam_with_two_learning_rates():
    cfg = replace(TINY, loc_lr_scale=0.1)
    a, b = LL.lab_model(cfg), LL.lab_model(cfg)
    ours = LL.lab_optimizer(a, cfg)
    ref = torch.optim.Adam([{"params": b.head_parameters()},
                            {"params": b.localisation_parameters(), "lr": cfg.lr * cfg.loc_lr_scale}], lr=cfg.lr)
    x = torch.rand(4, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])
    for model, opt in ((a, ours), (b, ref)):
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-6)
    assert not torch.equal(a.transformers[0].regressor.bias, LL.lab_model(cfg).transformers[0].regressor.bias)


def test_live_lab_run_stops_within_moments(tiny_data):
    run = LV.LabSlot().start(replace(TINY, iterations=10 ** 6, record_every=2), tiny_data)
    slot_run = run
    deadline = time.time() + 60
    while (run.latest is None or run.latest["iteration"][-1] < 2) and time.time() < deadline:
        time.sleep(0.02)
    t = time.perf_counter()
    slot_run.stop()
    run.join(10)
    assert not run.running and time.perf_counter() - t < 10
    assert run.latest["stopped"] and run.latest["iteration"][-1] < 10 ** 6 and run.error is None


def test_at_most_max_live_runs_train_at_once(tiny_data, monkeypatch):
    monkeypatch.setattr(LV, "MAX_LIVE_RUNS", 1)
    long = replace(TINY, iterations=10 ** 6)
    a, b = LV.LabSlot(), LV.LabSlot()
    run = a.start(long, tiny_data)
    try:
        with pytest.raises(RuntimeError, match="already training"):
            b.start(long, tiny_data)
        run = a.start(long, tiny_data)             # a slot may replace its own run
    finally:
        a.stop(wait=10)
    assert not run.running
    b.start(replace(TINY, iterations=1), tiny_data).join(30)   # free again


def test_measured_outcomes_round_trip(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(LL, "lab_data", lambda tr, te, n: tiny_data)
    res = LL.measure_presets(None, None, seeds=(0, 1), presets={"tiny": TINY}, log=lambda m: None)
    path = tmp_path / "o.json"
    path.write_text(json.dumps(res))
    back = LL.load_outcomes(path)
    entry = back["presets"]["tiny"]
    assert entry["stale"]                                  # "tiny" is not one of the page's presets
    assert [r["seed"] for r in entry["runs"]] == [0, 1] and entry["config"] == asdict(TINY)
    (row,) = LL.outcomes_table(back)
    assert row["preset"].startswith("tiny (stale") and "seed" in row["how the seeds ended"]
    kinds = [r["outcome"] for r in entry["runs"]]
    summary = LL.outcomes_summary(back)
    assert ("Followed the digit in every seed: tiny." in summary) == (set(kinds) == {"follows the digit"})
    assert LL.measured_for(back, replace(TINY, seed=1))[1]["seed"] == 1
    assert LL.measured_for(back, replace(TINY, seed=5)) is None
    assert LL.load_outcomes(tmp_path / "missing.json") is None


def test_the_shipped_outcomes_are_the_presets_measured():
    # what the page shows was measured by the command, with today's presets (not typed in)
    out = LL.load_outcomes()
    if out is None:
        pytest.skip("no measured outcomes yet: python -m stn_explore.explorer.learning_lab")
    assert set(out["presets"]) == set(LL.PRESETS)
    for name, entry in out["presets"].items():
        assert not entry["stale"], f"{name} was measured with other settings: run {out['command']}"
        assert {r["seed"] for r in entry["runs"]} == {0, 1, 2}
        assert all(r["iterations"] == LL.PRESETS[name].iterations for r in entry["runs"])
        for r in entry["runs"]:
            assert r["outcome"] == LL.outcome(r["final"])
    assert all(r["outcome"] == "follows the digit" for r in out["presets"]["working recipe"]["runs"])


# ----------------------------------------------------------------------------- figures
def test_gradient_figure_draws_one_arrow_per_moving_point_pointing_downhill():
    img = np.zeros((10, 10))
    grid = np.zeros((2, 2, 2))
    grid[0, 0], grid[0, 1], grid[1, 0], grid[1, 1] = (-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)
    grad = np.zeros((2, 2, 2))
    grad[0, 0] = (1.0, 0.0)                       # L grows to the right: the point should move left
    fig = decoded(LF.gradient_figure(img, grid, grad, every=1, arrow_px=3.0).to_dict())
    img_t, _, zero, arrows = fig["data"][:4]
    assert len(zero["x"]) == 3                    # three points do not move
    assert len(arrows["x"]) == 7                  # one arrow: shaft, break, head, break
    start = ((np.array([-0.5, -0.5]) + 1) * 10 - 1) / 2            # pixel coordinates of the point
    assert arrows["x"][:2] == pytest.approx([start[0], start[0] - 3.0])  # shaft: 3 px to the left
    assert arrows["y"][:2] == pytest.approx([start[1]] * 2)


def test_figures_reject_mismatched_shapes_and_build():
    with pytest.raises(ValueError):
        LF.gradient_figure(np.zeros((5, 5)), np.zeros((3, 3, 2)), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError):
        LF.landscape_figure(np.arange(3), np.arange(2), np.zeros((3, 2)), np.zeros((1, 2)), (0, 1))
    fig = decoded(LF.landscape_figure(np.array([-10.0, 0, 10]), np.array([0.5, 1.0]), np.ones((2, 3)),
                              np.array([[0, 1.0], [50, 9.0], [np.nan, np.nan]]), (5.0, 0.8)).to_dict())
    np.testing.assert_array_equal(fig["data"][1]["x"], [0.0, 10.0, np.nan])   # off the slice: at its edge
    corners = np.zeros((30, 2, 4, 2)) + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * 0.5
    panel = decoded(LF.lab_panel_figure(np.zeros((2, 40, 40)), corners, past=8, title="t").to_dict())
    names = [t.get("name") for t in panel["data"][1:]]
    assert names == ["earlier regions", "centre path", "sampling region"]
    assert 2 * 4 <= np.isnan(panel["data"][1]["x"]).sum() <= 2 * 9      # ≤ 9 earlier regions per image
    assert np.isnan(panel["data"][3]["x"]).sum() == 2                     # one current region per image
    curves = decoded(LF.lab_curves_figure([0, 5], [float("nan"), 1.0], [90, 50], [0, 0.1], [0, 0.2],
                                  collapse_spread=0.02, total=10).to_dict())
    np.testing.assert_array_equal(curves["data"][0]["y"], [np.nan, 1.0])
    row = decoded(LF.images_row_figure([np.zeros((4, 4)), np.ones((4, 4))], ["a", "b"]).to_dict())
    assert [a["text"] for a in row["layout"]["annotations"]] == ["a", "b"]

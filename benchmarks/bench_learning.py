"""Server time of /learning's live parts (goal: one live step ≤ 100 ms on this 2-core machine).

    python -m benchmarks.bench_learning [--ticks 40]        (from the repo root)

Measures, each as median and 95th percentile:

* the live fit's frame as the page runs it (inside Streamlit, via AppTest, the page's own
  timer around the fragment): optimiser steps + the four figures, at the default 5 steps per
  frame and at the most, 20 (while the fit still moves: at most 280 steps in all);
* the same frame computed outside Streamlit (steps, figures, plotly JSON), and one step alone;
* the gradient view after a slider move (three padding modes, figures, JSON);
* the failure-mode lab: one training iteration (batch 64, one thread, as the live run) and the
  poll frame that redraws its gauges and figures from a 41-record history;

and, as references measured in the same run: a bare ``F.affine_grid + F.grid_sample`` forward
and backward of one 28×28 image (the sampler's own cost), and the θ playground's two figures
(grid overlay + V, as JSON) for a 28×28 digit, the page whose server rerun we measured at
12–15 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import plotly.io as pio
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stn_explore.experiments.diagnostics import COLLAPSE_SPREAD  # noqa: E402
from stn_explore.experiments.mnist import load_digits  # noqa: E402
from stn_explore.explorer import figures  # noqa: E402
from stn_explore.explorer import learning as Lg  # noqa: E402
from stn_explore.explorer import learning_figures as LF  # noqa: E402
from stn_explore.explorer import learning_lab as LL  # noqa: E402


ANGLES, SCALES = np.linspace(-180, 180, 73), np.round(np.geomspace(0.4, 2.5, 36), 4)   # as app_ui/learning.py


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def stats(ms: list[float]) -> str:
    q = sorted(ms)
    return f"median {statistics.median(q):7.2f} ms   p95 {q[min(len(q) - 1, int(0.95 * len(q)))]:7.2f} ms"


def fit_frame(fit: Lg.ThetaFit, u, target, theta_star, land, steps: int) -> None:
    """What app_ui/learning.py's fit frame computes, then serialised as Streamlit does."""
    fit.step(steps)
    figs = [LF.fit_view_figure(u, fit.grid(), fit.thetas[-1], theta_star),
            LF.images_row_figure([fit.output(), target], ["V", "V*"], px=4.0),
            LF.landscape_figure(ANGLES, SCALES, land, Lg.path_coordinates(fit.thetas), (150.0, 0.9)),
            LF.loss_curve_figure(fit.losses)]
    for f in figs:
        pio.to_json(f, validate=False)


def page_frames(ticks: int, steps: int) -> list[float]:
    """The fit frame's server time as the page measures it (AppTest; one frame per full run)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/learning.py")
    at.run()
    at.session_state["learn_tab"] = "Fitting θ"
    at.run()
    at.button(key="learn_f_preset_local minimum (150°)").click().run()
    at.session_state["learn_f_steps"] = steps
    at.run()
    at.button(key="learn_f_play").click().run()
    at.session_state["learn_f_frame_ms"] = []
    for _ in range(ticks):
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return list(at.session_state["learn_f_frame_ms"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=40)
    args = ap.parse_args()
    n = args.ticks
    d = load_digits("test")
    u = d.images[0].astype(np.float32) / 255
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; digit 0 of the {d.source}\n")

    # references
    x = torch.from_numpy(u)[None, None]
    theta = torch.tensor(Lg.target_theta(20, 0.9, 0.1, 0.0), dtype=torch.float32)[None].requires_grad_(True)

    def bare():
        g = F.affine_grid(theta, (1, 1, 28, 28), align_corners=False)
        F.grid_sample(x, g, align_corners=False).square().mean().backward()

    grid = F.affine_grid(theta.detach(), (1, 1, 28, 28), align_corners=False)[0].numpy()

    def playground_figures():
        pio.to_json(figures.grid_overlay_figure(u, grid, LF.region_outline(theta.detach()[0].numpy())), validate=False)
        pio.to_json(figures.image_figure(u), validate=False)

    ref_sampler, ref_page = timed(bare, 200), timed(playground_figures, n)
    print("references (same run)")
    print(f"  bare affine_grid + grid_sample, forward + backward, 28×28   {stats(ref_sampler)}")
    print(f"  θ playground's figures (grid overlay + V, JSON)            {stats(ref_page)}\n")

    # live fit
    p = Lg.FIT_PRESETS["local minimum (150°)"]
    theta_star = Lg.target_theta(p["angle"], p["scale"], p["tx"], p["ty"])
    target = Lg.target_image(u, theta_star)
    t = time.perf_counter()
    land = Lg.loss_landscape(u, target, ANGLES, SCALES, (p["tx"], p["ty"]))
    land_ms = (time.perf_counter() - t) * 1e3
    one = Lg.ThetaFit(u, target, p["optimiser"], p["lr"])
    step_ms = timed(lambda: one.step(1), 100)
    print("live fit (“local minimum” preset: it keeps moving for 300 steps)")
    print(f"  one optimiser step                                         {stats(step_ms)}")
    print(f"  loss landscape, {len(ANGLES)}×{len(SCALES)} warps (once per target, cached)   {land_ms:7.1f} ms")
    for steps in (5, 20):
        fit = Lg.ThetaFit(u, target, p["optimiser"], p["lr"])
        lib = timed(lambda: fit_frame(fit, u, target, theta_star, land, steps), min(n, 280 // steps))
        print(f"  frame, {steps:2d} steps, outside Streamlit (steps, figures, JSON)  {stats(lib)}")
    for steps in (5, 20):
        page = page_frames(min(n, 280 // steps), steps)   # the preset keeps moving for ~300 steps
        ok = "≤ 100 ms goal met" if statistics.median(page) <= 100 else "OVER the 100 ms goal"
        print(f"  frame, {steps:2d} steps, in the page (AppTest, page's timer)    {stats(page)}   ({ok})")

    # gradient view
    canvas = Lg.place_digit(d.images[0])
    crop = Lg.crop_theta(Lg.digit_box(), canvas.shape)
    tgt = Lg.target_image(canvas, crop)
    angles = iter(np.linspace(-30, 30, n))

    def gradient_view():
        gs = Lg.sampler_gradients(canvas, Lg.target_theta(next(angles), 0.55, -0.3, 0.1), tgt)
        g = gs["zeros"]
        pio.to_json(LF.gradient_figure(canvas, g.grid, g.grad_grid, target_outline=LF.region_outline(crop)),
                    validate=False)
        pio.to_json(LF.images_row_figure([g.v, tgt], ["V", "V*"]), validate=False)

    print("\ngradient view after a slider move (3 padding modes, figures, JSON)")
    print(f"  {'':57s}{stats(timed(gradient_view, n))}")

    # lab
    data = LL.lab_data(load_digits("train"), d, LL.RECIPE.n_eval)
    h = LL.train_lab(replace(LL.RECIPE, iterations=120, record_every=40), data)   # warm-up and history shape
    it_ms = []
    for _ in range(3):
        h = LL.train_lab(replace(LL.RECIPE, iterations=80, record_every=80), data)
        it_ms.append(h["seconds"] * 1e3 / 80)
    hist = {k: (v * 11)[:41] if isinstance(v, list) else v for k, v in h.items()}   # a 41-record history
    hist["panel"] = np.concatenate([h["panel"]] * 21)[:41]

    def lab_frame():
        pio.to_json(LF.lab_panel_figure(data.panel[:4], hist["panel"]), validate=False)
        pio.to_json(LF.images_row_figure(list(hist["v_panel"]), ["V"] * 4, px=60 / 16), validate=False)
        pio.to_json(LF.lab_curves_figure(list(range(0, 1025, 25)), hist["loss"], hist["error"], hist["outside"],
                                         hist["spread"], collapse_spread=COLLAPSE_SPREAD, total=1000), validate=False)

    print("\nfailure-mode lab (working recipe)")
    print(f"  one training iteration (batch 64, one thread, incl. its share of the probes)  "
          f"{statistics.median(it_ms):6.1f} ms  → {LL.RECIPE.iterations} iterations ≈ "
          f"{statistics.median(it_ms) * LL.RECIPE.iterations / 1e3:.0f} s")
    print(f"  poll frame (gauges' figures from 41 records, JSON)         {stats(timed(lab_frame, n))}")


if __name__ == "__main__":
    main()

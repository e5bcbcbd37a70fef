"""Speed of the core warps, each against a reference measured in the same run.

    python -m benchmarks.bench_core [--repeats 7] [--sizes 28 256 1024]   (from the repo root)

Prints, per image size (batch 1, 3 channels, float32, CPU):
  * our affine path (stn_explore.warp: validation + affine_grid + grid_sample) vs the native
    F.affine_grid + F.grid_sample: the ratio should be ≤ 1.05;
  * our 16-point TPS grid generation alone, and TPS grid + sample, vs one affine warp of the
    same size (goal: TPS grid ≤ 2× an affine warp);
  * our TPS warp vs kornia's warp_image_tps (if kornia is installed; weights fitted outside
    the timed loop for both, as a localisation net would hand them over).
Timings are the median of `--repeats` blocks, each block the mean of enough calls to take
≥ 50 ms, with the candidates interleaved so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import stn_explore as stn


def calls_per_block(fn, min_block_s: float = 0.05) -> int:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_block_s:
        fn()
        n += 1
    return n


def block_time(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def compare(fns: dict, repeats: int) -> dict:
    n = {k: calls_per_block(fn) for k, fn in fns.items()}  # also warms up (TPS weight cache)
    samples = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            samples[k].append(block_time(fn, n[k]))
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sizes", type=int, nargs="+", default=[28, 256, 1024])
    args = ap.parse_args()
    torch.manual_seed(0)
    try:
        from kornia.geometry.transform import get_tps_transform, warp_image_tps
    except ImportError:  # optional dev dependency
        warp_image_tps = None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1 × 3 channels, float32")
    print(f"{'size':>6} {'native ms':>10} {'ours ms':>9} {'ratio':>6} | {'tps grid ms':>11} "
          f"{'grid/affine':>11} {'tps warp ms':>11} {'kornia ms':>9} {'ours/kornia':>11}")
    for s in args.sizes:
        x = torch.rand(1, 3, s, s)
        theta = stn.theta_from_params(20.0, 0.9, 0.05, (0.1, 0.0))[None]
        src = stn.control_points(4)[None] + 0.05 * torch.randn(1, 16, 2)
        fns = {
            "native": lambda: F.grid_sample(x, F.affine_grid(theta, [1, 3, s, s], align_corners=False),
                                            align_corners=False),
            "ours": lambda: stn.warp(x, theta),
            "tps_grid": lambda: stn.tps_grid(src, (s, s)),
            "tps_warp": lambda: stn.warp(x, src, "tps"),
        }
        if warp_image_tps is not None:
            tgt = stn.control_points(4)[None]
            # kornia: weights from get_tps_transform(dst, src), kernels centred at dst (target)
            kw, aw = get_tps_transform(tgt, src)
            fns["kornia"] = lambda: warp_image_tps(x, tgt, kw, aw, align_corners=False)
        t = compare(fns, args.repeats)
        kornia = f"{t['kornia'] * 1e3:9.3f} {t['tps_warp'] / t['kornia']:11.2f}" if "kornia" in t else \
            f"{'n/a':>9} {'n/a':>11}"
        print(f"{s:>4}² {t['native'] * 1e3:10.3f} {t['ours'] * 1e3:9.3f} {t['ours'] / t['native']:6.3f} | "
              f"{t['tps_grid'] * 1e3:11.3f} {t['tps_grid'] / t['native']:11.2f} "
              f"{t['tps_warp'] * 1e3:11.3f} {kornia}")


if __name__ == "__main__":
    main()

"""Time to generate fixed distorted test sets (goal: 10,000 RTS images < 5 s on 2 cores).

    python -m benchmarks.bench_data [--n 10000] [--repeats 3]      (from the repo root)

Uses $STN_DATA_DIR's MNIST test split when set, else the MNIST test split shipped with
stn_explore (the same 10,000 digits).
Reference measured in the same run: one bare affine warp of the same number of digits to
42×42 (the floor under RTS generation: sampling parameters, building the batch of θ,
quantising to uint8 and chunking come on top).
"""

from __future__ import annotations

import argparse
import time

import torch

import stn_explore as stn
from stn_explore.experiments import distortions as D
from stn_explore.experiments.mnist import load_digits


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    digits = load_digits("test")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; digits: {len(digits)}, {digits.source}")
    idx = D.fixed_set_indices(len(digits), args.n, 0)
    x = torch.from_numpy(digits.images[idx]).float().div(255).unsqueeze(1)
    theta = stn.theta_from_params(torch.rand(args.n) * 90 - 45, 1.3)
    ref = best_of(lambda: stn.warp(x, theta, out_size=(42, 42)), args.repeats)
    print(f"reference: bare affine warp of {args.n} digits to 42×42: {ref:.3f} s")
    for task in D.TASKS:
        t = best_of(lambda: D.make_fixed_set(task, digits.images, digits.labels, args.n, 0), args.repeats)
        print(f"{task:10s} {args.n} images: {t:6.3f} s  ({t / ref:5.1f}× the bare warp)")


if __name__ == "__main__":
    main()

"""Time of one robustness-sweep curve on /compare (goal: < 10 s for 500 digits).

    STN_DATA_DIR=../shared/data/mnist python -m benchmarks.bench_sweep [--task rts] [--n 500]

For each model of the task's CNN / ST-CNN pair: one rotation curve (37 angles) over the
first n MNIST test digits, and, as a reference measured in the same run, plain inference on
the same number of images (37 × n) without the extra distortion.
"""

from __future__ import annotations

import argparse
import time

from stn_explore import compare
from stn_explore.mnist import load_digits
from stn_explore.train import evaluate_arrays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="rts")
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    d = load_digits("test")
    canvas = {"rts": 42, "cluttered": 60}.get(args.task, 28)
    base, labels = compare.base_images(args.task, d.images[:args.n], canvas), d.labels[:args.n]
    values = compare.SWEEPS["rotation"][0]
    print(f"{args.n} digits from {d.source}; {len(values)} angles")
    for row in compare.PAIR:
        model = compare.load_classifier(compare.checkpoint_path("checkpoints", args.task, row)).model
        t = time.perf_counter()
        for v in values:
            compare.sweep_point(model, base, labels, "rotation", float(v))
        curve = time.perf_counter() - t
        t = time.perf_counter()
        for _ in values:
            evaluate_arrays(model, base, labels)
        plain = time.perf_counter() - t
        print(f"{row:14s} one rotation curve: {curve:5.1f} s   (plain inference on as many images: {plain:5.1f} s)")


if __name__ == "__main__":
    main()

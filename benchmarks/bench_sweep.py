"""Time of one robustness-sweep curve on /compare (goal: < 10 s for 500 digits).

    STN_DATA_DIR=../shared/data/mnist python -m benchmarks.bench_sweep [--task rts] [--n 500]

For each model of the task's CNN / ST-CNN pair: one rotation curve (37 angles) over the
first n MNIST test digits as /compare computes it (channels-last batches of 200), and, as a
reference measured in the same run, plain inference on the same number of images (37 × n)
with the model as the training CLI evaluates it (contiguous batches of 500).
"""

from __future__ import annotations

import argparse
import time

from stn_explore.explorer import compare
from stn_explore.experiments.models import load_model
from stn_explore.experiments.mnist import load_digits
from stn_explore.experiments.models import evaluate_arrays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="rts")
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    d = load_digits("test")
    canvas = {"rts": 42, "cluttered": 60}.get(args.task, 28)
    base, labels = compare.base_images(args.task, d.images[:args.n], canvas), d.labels[:args.n]
    values = compare.SWEEPS["rotation"][0]
    print(f"the first {args.n} digits of the {d.source}; {len(values)} angles")
    for row in compare.PAIR:
        loaded = compare.load_classifier(compare.checkpoint_path("checkpoints", args.task, row))
        t = time.perf_counter()
        for v in values:
            compare.sweep_point(loaded.model, base, labels, "rotation", float(v))
        curve = time.perf_counter() - t
        reference = load_model(loaded.checkpoint)  # contiguous weights, as training evaluates
        t = time.perf_counter()
        for _ in values:
            evaluate_arrays(reference, base, labels, batch_size=500)
        plain = time.perf_counter() - t
        print(f"{row:14s} one rotation curve: {curve:5.1f} s {'(goal < 10 s)' if curve < 10 else '(OVER the 10 s goal)'}"
              f"   reference, plain contiguous inference on as many images: {plain:5.1f} s "
              f"(curve / reference = {curve / plain:.2f})")


if __name__ == "__main__":
    main()

"""Training throughput (images/s) of the paper's models on this machine, ST vs plain.

    python -m benchmarks.bench_train [--task rts] [--steps 30] [--batch-size 128]

Times SGD steps (forward + backward + update, batch 128, distorted images generated as in
training) for CNN and ST-CNN (affine, projective, TPS), and FCN and ST-FCN, on one task; the
plain CNN / FCN is the reference measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from stn_explore.experiments import distortions as D
from stn_explore.experiments.mnist import load_digits
from stn_explore.experiments.models import build_model
from stn_explore.experiments.train import TrainConfig, make_optimizer, model_args_for


def throughput(cfg: TrainConfig, batches, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model(model_args_for(cfg))
    opt = make_optimizer(model, cfg)
    model.train()

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for x, y in batches[:3]:  # warm-up
        step(x, y)
    t = time.perf_counter()
    n = 0
    for i in range(steps):
        x, y = batches[i % len(batches)]
        step(x, y)
        n += len(y)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="rts")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    d = load_digits("train")
    batches = list(D.epoch_batches(args.task, d.images[:args.batch_size * 8], d.labels[:args.batch_size * 8],
                                   args.batch_size, seed=0, epoch=0))
    print(f"task {args.task}, batch {args.batch_size}, {torch.get_num_threads()} threads, {args.steps} steps each")
    for base, variants in (("cnn", ("affine", "projective", "tps")), ("fcn", ("affine",))):
        ref = throughput(TrainConfig(task=args.task, model=base, batch_size=args.batch_size), batches, args.steps)
        print(f"{base.upper():12s} {ref:7.0f} img/s")
        for t in variants:
            v = throughput(TrainConfig(task=args.task, model="st-" + base, transform=t, batch_size=args.batch_size),
                           batches, args.steps)
            print(f"ST-{base.upper()} {t:10s}{v:5.0f} img/s  ({v / ref:.2f}× the {base.upper()})")


if __name__ == "__main__":
    main()

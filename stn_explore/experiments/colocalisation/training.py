"""The training loop of one run, compaction for shipping, and evaluation of a checkpoint.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Callable

import numpy as np
import torch
from torch import nn

from ... import __version__
from .. import distortions as D
from ..distributed import Context
from .curriculum import ColocConfig, clutter_at, crop_scale_at, negative_offset_at
from .data import class_pool, held_out_set, localisation_accuracy, make_images, predict_quads
from .loss import random_crops_like, triplet_hinge
from .model import ColocArgs, ColocNet
from .recording import _rec_from_tensors, _rec_to_tensors, empty_recording


def build_coloc_model(model_args: dict) -> ColocNet:
    return ColocNet(ColocArgs.from_dict(model_args))


def step_loss(model: ColocNet, x: torch.Tensor, gen: torch.Generator, offset: float | None, negatives: int,
              margin: float) -> torch.Tensor:
    """The loss of one training batch ``x (B, 1, 84, 84)`` of one class: the transformer's
    crops against ``negatives`` random crops per image (drawn from ``gen``)."""
    v, theta = model.crop(x)
    rand = [random_crops_like(x, theta, gen, model.args.crop, offset=offset) for _ in range(negatives)]
    emb, *rand = model.embed(torch.cat((v, *rand))).split(len(x))
    return triplet_hinge(emb, torch.stack(rand), margin)


class _StepLoss(nn.Module):
    """:func:`step_loss` as a module's forward, for DistributedDataParallel (which averages the
    gradients of what goes through a forward)."""

    def __init__(self, model: ColocNet):
        super().__init__()
        self.model = model

    def forward(self, x, gen, offset, negatives, margin):
        return step_loss(self.model, x, gen, offset, negatives, margin)


#: rank r > 0 of a torchrun job draws its images from seed + 7 + RANK_SEED_STRIDE × r (rank 0
#: from seed + 7, the single-process stream)
RANK_SEED_STRIDE = 1_000_003


def train(cfg: ColocConfig, *, train_digits, test_digits, out=None, resume_from: dict | None = None,
          progress: bool = True, on_record: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None, log=print, ctx: Context | None = None) -> dict:
    """Train (or continue) one co-localisation run; returns the checkpoint dict.

    Every ``record_every`` iterations the boxes of the fixed panel (the first ``n_panel``
    held-out images), the mean loss since the last record and the held-out accuracy on the
    first ``n_eval`` held-out images are appended to the recording and ``on_record(ckpt)``
    is called. With ``out`` the checkpoint is saved atomically every ``save_every``
    iterations and at the end; ``should_stop()`` returning True ends the run after the
    current iteration (the checkpoint is saved, ``ckpt["stopped"]`` is True).
    The run is deterministic for a given seed, and ``resume_from`` continues it exactly.

    With a torchrun ``ctx`` of N processes, each trains on its own batch of ``batch_size``
    images from its own seeded stream and the gradients are averaged (N× the images per step;
    the loss compares pairs within a batch and the batch norms use batch statistics, so a
    batch is not split across processes); rank 0 records, logs and saves, with every rank's
    stream state, so ``resume_from`` continues exactly on as many processes.
    """
    from tqdm.auto import tqdm

    from ..checkpoint import cpu_state, save_checkpoint

    ctx = ctx or Context()
    main = ctx.is_main
    if not main:
        log, progress = (lambda *a: None), False
    cuda = ctx.device.type == "cuda"
    cfg.check()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    pool = class_pool(train_digits, cfg.digit)
    held = held_out_set(test_digits, cfg.digit, cfg.noise, cfg.eval_seed)
    panel = {k: v[:cfg.n_panel] for k, v in held.items()}
    ev = {k: v[:cfg.n_eval] for k, v in held.items()}

    torch.manual_seed(cfg.seed)
    margs = ColocArgs(transform=cfg.transform, embed_dim=cfg.embed_dim, localiser=cfg.localiser,
                      heatmap_norm=cfg.heatmap_norm)
    if resume_from is not None:
        margs = ColocArgs.from_dict(resume_from["model_args"])
    model = ColocNet(margs)
    if cuda:
        model = model.to(ctx.device)
    opt = torch.optim.Adam([
        {"params": [p for n, p in model.named_parameters() if not n.startswith("embed.")],
         "lr": cfg.lr * cfg.loc_lr_scale},
        {"params": model.embed.parameters(), "lr": cfg.lr}])
    gen = torch.Generator().manual_seed(cfg.seed + 7 + RANK_SEED_STRIDE * ctx.rank)
    rec = empty_recording(panel)
    it, seconds = 0, 0.0
    if resume_from is not None:
        model.load_state_dict(resume_from["state_dict"])
        if "optimizer" in resume_from:   # a compacted run restarts Adam's moments
            opt.load_state_dict(resume_from["optimizer"])
        streams = resume_from.get("rng_ranks") or [resume_from["rng"]]
        if ctx.rank < len(streams):
            gen.set_state(resume_from["rng"] if main else streams[ctx.rank])
        else:  # more processes than the run had: a new stream for this one
            gen.manual_seed(cfg.seed + 7 + RANK_SEED_STRIDE * ctx.rank + int(resume_from["iteration"]))
        rec = _rec_from_tensors(resume_from["recording"])
        it, seconds = int(resume_from["iteration"]), float(resume_from.get("seconds", 0.0))
        pending = resume_from.get("pending_losses") or []
        resumed_losses = [float(x) for x in pending[ctx.rank]] if ctx.rank < len(pending) else []
    net = ctx.wrap(_StepLoss(model)) if ctx.distributed else None

    data_info = {"task": "coloc", "digit": cfg.digit, "noise": cfg.noise,
                 "train_source": train_digits.source, "test_source": test_digits.source,
                 "is_sample": bool(train_digits.is_sample or test_digits.is_sample),
                 "n_train_digits": int(len(pool)), "n_held_out": int(len(held["images"])),
                 # the digits by content, so evaluate can tell the same digits read from elsewhere
                 "train_md5": train_digits.content_md5(), "test_md5": test_digits.content_md5()}

    if ctx.distributed:
        ctx.require_same((data_info["train_md5"], data_info["test_md5"]),
                         "the processes read different MNIST files (compared by content): give every machine "
                         "the same --data-dir / STN_DATA_DIR")
        log(f"data-parallel over {ctx.world_size} processes ({ctx.device.type}): each trains on its own batch "
            f"of {cfg.batch_size} images, {ctx.world_size * cfg.batch_size} per step")

    def snapshot(final: dict | None = None, stopped: bool = False) -> dict:
        ckpt = {"format": 1, "kind": "colocalisation", "version": __version__,
                "model_args": margs.to_dict(), "state_dict": model.state_dict(),
                "optimizer": opt.state_dict(), "rng": gen.get_state(), "config": asdict(cfg),
                "data": data_info, "iteration": it, "seconds": seconds,
                "recording": _rec_to_tensors(rec), "final": final, "stopped": stopped}
        if cuda or ctx.distributed:  # how it ran; tensors to the CPU, so the checkpoint loads anywhere
            ckpt = {**cpu_state(ckpt), "launch": {"device": ctx.device.type, "processes": ctx.world_size}}
        return ckpt

    def save(ckpt: dict | None = None) -> None:
        """Rank 0 writes ``ckpt`` (default: a snapshot) with every rank's stream state; a
        collective under torchrun, as is the agreement on a failed write."""
        streams = ctx.gather(gen.get_state()) if ctx.distributed else None
        # the losses since the last record: a save between records would otherwise lose them
        # on --resume, and the next recorded mean loss would differ from an uninterrupted run's
        pending = ctx.gather(list(losses))  # every rank's, on rank 0

        def write():
            c = snapshot() if ckpt is None else ckpt
            if streams is not None:
                c["rng_ranks"] = streams
            c = {**c, "pending_losses": pending}
            save_checkpoint(out, c)

        ctx.on_main(write)

    def record(loss_mean: float) -> None:
        m = localisation_accuracy(model, ev["images"], ev["boxes"])
        rec["iteration"].append(it)
        rec["loss"].append(loss_mean)
        rec["accuracy"].append(m["accuracy"])
        rec["mean_iou"].append(m["mean_iou"])
        rec["panel_quads"].append(predict_quads(model, panel["images"]))
        model.train()

    model.crop_scale.fill_(crop_scale_at(cfg, it, margs))
    if not rec["iteration"] and main:
        record(float("nan"))  # iteration 0: the initial boxes
    bar = tqdm(total=cfg.iterations, initial=it, disable=not progress, unit="it",
               desc=f"digit {cfg.digit} {'noisy' if cfg.noise else 'clean'}")
    losses: list[float] = resumed_losses if resume_from is not None else []
    stopped = False
    model.train()
    t0 = time.perf_counter()
    while it < cfg.iterations:
        model.crop_scale.fill_(crop_scale_at(cfg, it, margs))
        factor = 0.1 if cfg.lr_drop and it >= cfg.lr_drop else 1.0
        for group, scale in zip(opt.param_groups, (cfg.loc_lr_scale, 1.0)):
            group["lr"] = cfg.lr * scale * factor
        idx = pool[torch.randint(0, len(pool), (cfg.batch_size,), generator=gen).numpy()]
        x = D.to_batch(make_images(train_digits, idx, clutter_at(cfg, it), gen)["images"]).to(ctx.device)
        step = (x, gen, negative_offset_at(cfg, it), cfg.negatives, cfg.margin)
        loss = step_loss(model, *step) if net is None else net(*step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        it += 1
        model.crop_scale.fill_(crop_scale_at(cfg, it, margs))
        losses.append(float(loss.detach()))
        bar.update(1)
        if it % cfg.record_every == 0 or it == cfg.iterations:
            seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            if ctx.distributed:  # the mean loss over every rank's batches
                total, count = ctx.sum([sum(losses), len(losses)])
                mean_loss = total / count if count else float("nan")
            else:
                mean_loss = float(np.mean(losses)) if losses else float("nan")
            if main:
                record(mean_loss)
                bar.set_postfix(loss=f"{rec['loss'][-1]:.3f}", acc=f"{rec['accuracy'][-1]:.0f}%")
            losses = []
            if on_record is not None:
                on_record(snapshot())
        if should_stop is not None and should_stop():
            stopped = True
            break
        if out is not None and it % cfg.save_every == 0 and it < cfg.iterations:
            save()
    bar.close()
    seconds += time.perf_counter() - t0
    final = None
    if it >= cfg.iterations and main:
        m = localisation_accuracy(model, held["images"], held["boxes"])
        final = {"accuracy": m["accuracy"], "mean_iou": m["mean_iou"], "n": m["n"]}
        log(f"digit {cfg.digit} ({'noisy' if cfg.noise else 'clean'}): {final['accuracy']:.1f}% of "
            f"{final['n']} held-out boxes with IoU > 0.5 (mean IoU {final['mean_iou']:.3f}) after "
            f"{it} iterations, {seconds:.0f} s")
    ckpt = snapshot(ctx.broadcast(final), stopped)
    if out is not None:
        save(ckpt)
    return ckpt


def final_training_loss(ckpt: dict) -> float:
    """Mean training loss over the last tenth of a run's records — label-free evidence of
    whether the windows settled on a common object (our finished runs: ≤ 0.01 when they did,
    ≈ 0.2 and 0.38 in the two where they did not)."""
    loss = np.asarray(ckpt["recording"]["loss"], dtype=np.float64)
    loss = loss[np.isfinite(loss)]
    if not len(loss):
        return float("nan")
    return float(loss[-max(1, len(loss) // 10):].mean())


def recording_name(digit: int, noise: int) -> str:
    """File name of the shipped run for a digit and variant: ``coloc_3_clean.pt``."""
    return f"coloc_{int(digit)}_{'noisy' if noise else 'clean'}.pt"


def compact(ckpt: dict, test_digits) -> dict:
    """A finished run made small for shipping: no optimiser state, float16 weights (the
    ``crop_scale`` buffer stays float32), and the held-out accuracy re-measured on the rounded
    weights (the float32 figure is kept in ``compact["final_float32"]``)."""
    if ckpt.get("final") is None:
        raise ValueError("only a finished co-localisation run can be compacted")
    out = dict(ckpt)
    out.pop("optimizer", None)
    out["state_dict"] = {k: (v.half() if v.is_floating_point() and k != "crop_scale" else v)
                         for k, v in ckpt["state_dict"].items()}
    cfg = ColocConfig(**ckpt["config"])
    held = held_out_set(test_digits, cfg.digit, cfg.noise, cfg.eval_seed)
    m = evaluate_checkpoint(out, held["images"], held["boxes"])
    out["final"] = {"accuracy": m["accuracy"], "mean_iou": m["mean_iou"], "n": m["n"]}
    out["compact"] = {"dtype": "float16", "final_float32": ckpt["final"]}
    return out


def evaluate_checkpoint(ckpt: dict, images: np.ndarray, boxes: np.ndarray) -> dict:
    """IoU > 0.5 accuracy of a co-localisation checkpoint on ``images uint8 (N, 84, 84)``
    with ground-truth ``boxes (N, 4)``."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    model = build_coloc_model(ckpt["model_args"])
    want = (model.args.canvas, model.args.canvas)
    if images.ndim != 3 or images.shape[1:] != want:
        raise ValueError(f"co-localisation images must have shape (N, {want[0]}, {want[1]}), "
                         f"got {tuple(images.shape)}")
    if boxes is None or np.asarray(boxes).shape != (len(images), 4):
        raise ValueError("co-localisation evaluation needs ground-truth boxes (N, 4) = x0, y0, x1, y1")
    model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return localisation_accuracy(model, images, np.asarray(boxes))

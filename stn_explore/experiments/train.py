"""Train a classifier of the paper on a distorted-MNIST task.

Example (the headline experiment, ST-CNN on RTS)::

    STN_DATA_DIR=../shared/data/mnist python -m stn_explore.train \\
        --task rts --model st-cnn --transform affine --epochs 40 --out checkpoints/rts_st-cnn_affine.pt

Every epoch sees *fresh* random distortions of the training digits and ends with the error
on a fixed test set (10,000 distorted images from the MNIST *test* split, seed 0) and an
atomic checkpoint save; ``--resume`` continues a killed run exactly where it stopped (and
can raise ``--epochs`` to train longer).

On several devices, with PyTorch's DistributedDataParallel (one process per device; gloo on
CPUs, nccl on GPUs)::

    torchrun --standalone --nproc_per_node 8 -m stn_explore.train --task rts --model st-cnn \\
        --device cuda --amp --out checkpoints/rts_st-cnn_affine.pt

``--batch-size`` is the batch of one step over all processes together: each renders and
trains on its share (a batch of B on N processes is B/N images each) of the very batch a
single process would draw, and the gradients are averaged, so N processes follow the
single-process run to float rounding. Only rank 0 writes the checkpoint and the log.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import __version__
from . import distortions as D
from .checkpoint import (
    FORMAT,
    CheckpointError,
    cpu_state,
    default_checkpoint_dir,
    load_checkpoint,
    save_checkpoint,
    training_lock,
)
from .data import make_task_set
from .diagnostics import epoch_summary, format_summary
from .distributed import Context, add_device_args, run_cli, session
from .mnist import DataSourceError, Digits, load_digits
from .models import MODELS, ModelArgs, build_model, evaluate_arrays, parameter_counts


@dataclass
class TrainConfig:
    task: str = "rts"
    model: str = "st-cnn"
    transform: str = "affine"
    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.05
    loc_lr_scale: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_drops: list = field(default_factory=list)  # epochs after which lr is divided by 10
    seed: int = 0
    test_seed: int = 0
    n_test: int = 10000
    n_train: int = 0  # 0 = all training digits
    noise: int | None = None  # clutter patches (cluttered/coloc), None = recipe default
    threads: int = 0
    #: "sgd" (with momentum, the paper's) or "adam" (the cluttered recipe: with SGD the
    #: localisation net's ReLUs died and the transformer collapsed to one fixed view)
    optimizer: str = "sgd"
    #: output side of the spatial transformer(s), 0 = the input's; smaller makes it zoom in
    st_out_size: int = 0
    #: the localisation net sees the input max-pooled by this factor
    loc_pool: int = 1
    #: curriculum: over the first N epochs the distortions grow linearly to the recipe's
    #: (distortions.at_strength: rotation, RTS scale and placement, clutter); 0 = none
    ramp_epochs: int = 0
    #: the transformers start as a centred zoom onto this share of the input's side (1 = identity)
    st_init_scale: float = 1.0
    #: while the curriculum grows (epochs 2 .. ramp_epochs), the classifier (not the localisation
    #: net) learns at this multiple of its rate, so the transformer rather than the classifier
    #: takes up each new degree of distortion; 1 = no change
    ramp_head_lr_scale: float = 1.0
    #: units of the localisation net's hidden fully connected layer(s); 0 = the paper's (ST-CNN: the
    #: one after the convolutions, 50; ST-FCN: both, 32)
    loc_hidden: int = 0


#: TrainConfig fields that change what is trained; --resume refuses a run that differs in any
RECIPE_KEYS = ("task", "model", "transform", "seed", "test_seed", "n_test", "n_train", "noise", "optimizer",
               "st_out_size", "loc_pool", "ramp_epochs", "st_init_scale", "ramp_head_lr_scale", "loc_hidden")


#: the error when the processes of a torchrun job read different digits
SAME_DATA = ("the processes read different MNIST files (compared by content): give every machine the same "
             "--data-dir / STN_DATA_DIR")


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate for (0-based) ``epoch``: divided by 10 after each epoch in lr_drops."""
    return cfg.lr * 0.1 ** sum(epoch >= d for d in cfg.lr_drops)


def head_lr_scale_at(cfg: TrainConfig, epoch: int) -> float:
    """Multiple of the classifier's learning rate in (0-based) ``epoch``: ``ramp_head_lr_scale``
    while the curriculum grows, except its first epoch (the classifier first learns the nearly
    undistorted digits at its full rate), else 1."""
    return cfg.ramp_head_lr_scale if 1 <= epoch < cfg.ramp_epochs else 1.0


def task_config(cfg: TrainConfig):
    dcfg = D.default_config(cfg.task)
    if cfg.noise is not None:
        dcfg = D.with_overrides(dcfg, n_clutter=cfg.noise)
    return dcfg


def model_args_for(cfg: TrainConfig) -> ModelArgs:
    c, h, w = D.image_shape(cfg.task, task_config(cfg))
    out = (cfg.st_out_size, cfg.st_out_size) if cfg.st_out_size else None
    hidden = {}
    if cfg.loc_hidden:
        hidden = {"loc_conv_hidden": cfg.loc_hidden, "loc_fc_hidden": (cfg.loc_hidden,) * len(ModelArgs.loc_fc_hidden)}
    return ModelArgs(name=cfg.model, in_channels=c, input_size=(h, w), n_classes=D.n_classes(cfg.task),
                     transform=cfg.transform, st_out_size=out, loc_pool=cfg.loc_pool,
                     st_init_scale=cfg.st_init_scale, **hidden)


def epoch_task_config(cfg: TrainConfig, dcfg, epoch: int):
    """The distortion recipe of (0-based) ``epoch``: under the curriculum (``ramp_epochs``) the
    recipe at strength ``(epoch + 1) / (ramp_epochs + 1)`` (:func:`distortions.at_strength`:
    rotation range, RTS scale and placement ranges, clutter count) until epoch
    ``ramp_epochs``, then the recipe itself (test sets always use the full recipe)."""
    if not cfg.ramp_epochs or epoch >= cfg.ramp_epochs:
        return dcfg
    return D.at_strength(dcfg, (epoch + 1) / (cfg.ramp_epochs + 1))


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = [{"params": model.head_parameters(), "lr_scale": 1.0}]
    loc = model.localisation_parameters()
    if loc:
        groups.append({"params": loc, "lr_scale": cfg.loc_lr_scale})
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer != "sgd":
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected 'sgd' or 'adam'")
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def set_lr(opt, lr: float, head_scale: float = 1.0) -> None:
    """Set every group's rate: ``lr`` × its ``lr_scale`` (× ``head_scale`` for the classifier,
    the group made first by :func:`make_optimizer`)."""
    for i, g in enumerate(opt.param_groups):
        g["lr"] = lr * g["lr_scale"] * (head_scale if i == 0 else 1.0)


def train(cfg: TrainConfig, out: str | Path, *, device: str = "cpu", amp: bool = False, **kw) -> dict:
    """Train (or resume) and return the final checkpoint dict. Saves after every epoch; holds
    ``<out>.lock`` meanwhile, so a second process training the same file is refused.

    ``device``: ``cpu`` (default), ``cuda`` or ``auto`` (CUDA when torch sees it); ``amp``:
    mixed precision (float16 autocast with gradient scaling; CUDA only, ignored with a note on
    the CPU). Started by ``torchrun`` with several processes, the run is data-parallel (see
    :mod:`stn_explore.experiments.distributed`): rank 0 alone holds the lock and writes.

    Keyword arguments: ``resume``, ``data_dir``, ``download``, ``train_digits``,
    ``test_digits``, ``progress``, ``log`` (see :func:`_train`)."""
    with session(device) as ctx, contextlib.ExitStack() as held:
        ctx.on_main(lambda: held.enter_context(training_lock(out)))
        return _train(cfg, Path(out), ctx=ctx, amp=amp, **kw)


def _resume_checkpoint(cfg: TrainConfig, out: Path) -> dict | None:
    """The checkpoint in ``out`` if there is one, refused if its recipe differs from ``cfg``."""
    if not out.is_file():
        return None
    ckpt = load_checkpoint(out, kind="classifier")
    saved = ckpt["train_config"]
    defaults = TrainConfig()
    for key in RECIPE_KEYS:  # runs saved before a key existed used its default
        if saved.get(key, getattr(defaults, key)) != getattr(cfg, key):
            raise CheckpointError(f"--resume: {out} was trained with {key}={saved.get(key)!r}, "
                                  f"not {getattr(cfg, key)!r}")
    return ckpt


def batch_loss(logits: torch.Tensor, y: torch.Tensor, n: int, world_size: int) -> tuple[torch.Tensor, float]:
    """``(loss to back-propagate, sum of the images' losses)`` of one rank's part ``y`` of a
    batch of ``n`` images over ``world_size`` ranks. DistributedDataParallel *averages* the
    ranks' gradients, so each rank back-propagates its summed loss × world_size / n: the
    average is then the gradient of the whole batch's mean loss, however unevenly the batch
    was split. ``n == 0`` marks a rank with no part (a stand-in image that counts for nothing)."""
    if world_size == 1:
        loss = F.cross_entropy(logits, y)
        return loss, loss.item() * len(y)
    if n == 0:
        return logits.sum() * 0.0, 0.0
    total = F.cross_entropy(logits.float(), y, reduction="sum")
    return total * (world_size / n), total.item()


def fixed_set_error(ctx: Context, model, test_set: dict, batch_size: int = 500) -> float:
    """% error on the fixed test set; under torchrun each rank predicts every world_size-th
    block of ``batch_size`` images (the blocks a single process would predict, so the error is
    the same) and the counts are summed."""
    if not ctx.distributed:
        return evaluate_arrays(model, test_set["images"], test_set["labels"], batch_size, device=ctx.device)[0]
    wrong = 0
    for s in range(0, len(test_set["labels"]), batch_size)[ctx.rank::ctx.world_size]:
        labels = test_set["labels"][s:s + batch_size]
        _, pred = evaluate_arrays(model, test_set["images"][s:s + batch_size], labels, batch_size, ctx.device)
        wrong += int((pred != labels).sum())
    return float(ctx.sum([wrong])[0] / len(test_set["labels"]) * 100)


def _train(cfg: TrainConfig, out: Path, *, ctx: Context | None = None, amp: bool = False, resume: bool = False,
           data_dir=None, download: bool = False, train_digits: Digits | None = None,
           test_digits: Digits | None = None, progress: bool = True, log=print) -> dict:
    from tqdm.auto import tqdm

    ctx = ctx or Context()
    if not ctx.is_main:  # rank 0 alone logs
        log, progress = (lambda m: None), False
    cuda = ctx.device.type == "cuda"
    if amp and not cuda:
        log("note: --amp (mixed precision) is for CUDA devices; training on the CPU in float32")
        amp = False
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = ctx.from_main(lambda: _resume_checkpoint(cfg, out)) if resume else None
    if ckpt is not None:
        saved = ckpt["train_config"]
        if not cfg.lr_drops:
            cfg.lr_drops = list(saved.get("lr_drops", []))
        log(f"resuming {out} after epoch {ckpt['epoch']} (of {cfg.epochs})")
    if not cfg.lr_drops:
        cfg.lr_drops = [math.ceil(cfg.epochs * 0.6), math.ceil(cfg.epochs * 0.85)]

    dcfg = task_config(cfg)
    # local rank 0 of each machine reads (or downloads) first, the others after it
    train_digits = train_digits or ctx.local_first(lambda: load_digits("train", root=data_dir, download=download))
    test_digits = test_digits or ctx.local_first(lambda: load_digits("test", root=data_dir, download=download))
    if cfg.n_train and cfg.n_train < len(train_digits):
        train_digits = Digits(train_digits.images[:cfg.n_train], train_digits.labels[:cfg.n_train],
                              f"first {cfg.n_train:,} of the {train_digits.source}", is_sample=True)
    test_set, _ = make_task_set(cfg.task, "test", cfg.n_test, cfg.test_seed, dcfg, test_digits)
    log(f"train digits: {len(train_digits)}, {train_digits.source}")
    log(f"test set: {cfg.n_test} {cfg.task} images made from the {test_digits.source}")

    torch.manual_seed(cfg.seed)
    # a resumed run keeps the architecture it was saved with
    margs = ModelArgs.from_dict(ckpt["model_args"]) if ckpt is not None else model_args_for(cfg)
    model = build_model(margs)
    if cuda:
        model = model.to(ctx.device, memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    history: list = []
    start_epoch = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        if "optimizer" in ckpt:
            opt.load_state_dict(ckpt["optimizer"])
        else:
            log("note: a compacted checkpoint (float16 weights, no optimiser state): training goes on "
                "from its weights with the SGD momentum restarting from zero")
        if scaler is not None and "amp_scaler" in ckpt:
            scaler.load_state_dict(ckpt["amp_scaler"])
        history = list(ckpt["history"])
        start_epoch = int(ckpt["epoch"])
    net = ctx.wrap(model)  # DistributedDataParallel under torchrun, else the model itself
    counts = parameter_counts(model)
    log(f"model {cfg.model}" + (f" ({cfg.transform})" if model.transformers else "")
        + f": {counts['total']:,} parameters ({counts['localisation']:,} localisation, "
          f"{counts['classifier']:,} classifier)")
    data_info = {"task": cfg.task, "config": D.config_to_dict(dcfg), "train_source": train_digits.source,
                 "test_source": test_digits.source, "is_sample": bool(train_digits.is_sample
                                                                      or test_digits.is_sample),
                 "n_train_digits": len(train_digits), "n_test_digits": len(test_digits),
                 "test_seed": cfg.test_seed, "n_test": cfg.n_test,
                 # the digits by content, so evaluate can tell the same digits read from elsewhere
                 "train_md5": train_digits.content_md5(), "test_md5": test_digits.content_md5()}
    if ctx.distributed:
        ctx.require_same((data_info["train_md5"], data_info["test_md5"]), SAME_DATA)
        log(f"data-parallel over {ctx.world_size} processes ({ctx.device.type}): each renders and trains on "
            f"its share of every batch of {cfg.batch_size}")
    result = ckpt
    for epoch in range(start_epoch, cfg.epochs):
        lr = lr_at(cfg, epoch)
        set_lr(opt, lr, head_lr_scale_at(cfg, epoch))
        net.train()
        t0 = time.perf_counter()
        n_batches = math.ceil(len(train_digits) / cfg.batch_size)
        ecfg = epoch_task_config(cfg, dcfg, epoch)
        if ctx.distributed:  # this rank's part of each batch: (x, y, images in the whole batch)
            batches = D.epoch_batch_shards(cfg.task, train_digits.images, train_digits.labels, cfg.batch_size,
                                           cfg.seed, epoch, ecfg, shard=ctx.shard)
        else:
            batches = ((x, y, len(y)) for x, y in D.epoch_batches(
                cfg.task, train_digits.images, train_digits.labels, cfg.batch_size, cfg.seed, epoch, ecfg))
        bar = tqdm(batches, total=n_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False, file=sys.stderr)
        tot_loss = tot_err = seen = 0
        for x, y, n in bar:
            if cuda:
                x = x.to(ctx.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                y = y.to(ctx.device, non_blocking=True)
            with torch.autocast(ctx.device.type, dtype=torch.float16, enabled=amp):
                logits = net(x)
            loss, loss_sum = batch_loss(logits, y, n, ctx.world_size)
            if ctx.any(not math.isfinite(loss_sum)):
                raise ctx.agreed(FloatingPointError(
                    f"loss became {loss_sum / max(len(y), 1)} at epoch {epoch + 1}; try a lower --lr or "
                    "--loc-lr-scale"))
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            if n:
                tot_loss += loss_sum
                tot_err += (logits.argmax(1) != y).sum().item()
                seen += len(y)
            bar.set_postfix(loss=f"{tot_loss / max(seen, 1):.3f}", err=f"{100 * tot_err / max(seen, 1):.2f}%")
        bar.close()
        if ctx.distributed:  # the epoch's totals over every rank
            tot_loss, tot_err, seen = ctx.sum([tot_loss, tot_err, seen])
        train_s = time.perf_counter() - t0
        test_err = fixed_set_error(ctx, model, test_set)
        st_summary = epoch_summary(model, test_set) if model.transformers and ctx.rank == 0 else []
        history.append({"epoch": epoch + 1, "lr": lr, "loss": tot_loss / seen,
                        "train_error": 100 * tot_err / seen, "test_error": test_err,
                        "seconds": train_s, "images_per_s": seen / train_s,
                        **({"transformers": st_summary} if st_summary else {})})
        head_scale = head_lr_scale_at(cfg, epoch)
        log(f"epoch {epoch + 1:3d}/{cfg.epochs}  lr {lr:.4g}"
            + (f" (classifier ×{head_scale:g})" if head_scale != 1 else "") + f"  loss {tot_loss / seen:.4f}  "
            f"train err {100 * tot_err / seen:5.2f}%  test err {test_err:5.2f}%  "
            f"({train_s:.0f} s, {seen / train_s:.0f} img/s)" + ("  " + format_summary(st_summary) if st_summary else ""))
        result = {
            "format": FORMAT, "kind": "classifier", "version": __version__,
            "model_args": margs.to_dict(), "state_dict": model.state_dict(),
            "optimizer": opt.state_dict(), "train_config": asdict(cfg), "data": data_info,
            "history": history, "epoch": epoch + 1, "test_error": test_err,
            "parameters": counts,
            "train_seconds": float(sum(h["seconds"] for h in history)),
        }
        if cuda or ctx.distributed:  # how it ran; tensors to the CPU, so the checkpoint loads anywhere
            result = {**cpu_state(result), "launch": {"device": ctx.device.type, "processes": ctx.world_size,
                                                      "amp": amp}}
            if scaler is not None:
                result["amp_scaler"] = scaler.state_dict()
        ctx.on_main(lambda: save_checkpoint(out, result))  # rank 0 writes; a failure stops every rank
    if result is None:
        raise CheckpointError(f"nothing to do: {out} already has {start_epoch} epochs (--epochs {cfg.epochs})")
    return result


def _positive_float(text: str) -> float:
    v = float(text)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 0, got {text}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 0, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m stn_explore.train", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_argument_group("what to train")
    g.add_argument("--task", default="rts", type=str.lower, choices=[t for t in D.TASKS if t != "coloc"],
                   help="distortion task: r, rts, p, e, cluttered, addition (default rts)")
    g.add_argument("--model", default="st-cnn", choices=MODELS,
                   help="fcn | cnn (no transformer) | st-fcn | st-cnn | 2st-fcn | 2st-cnn (default st-cnn)")
    g.add_argument("--transform", default="affine", choices=("affine", "attention", "projective", "tps"),
                   help="transform of the spatial transformer(s) (default affine; ignored for fcn/cnn)")
    g.add_argument("--noise", type=int, default=None, metavar="K",
                   help="clutter patches per image for the cluttered task (recipe default 8)")
    g.add_argument("--st-out-size", type=int, default=0, metavar="N",
                   help="output size N×N of the spatial transformer(s) (default: the input's); smaller than "
                        "the input makes the transformer zoom in to keep detail (cluttered recipe: 30)")
    g.add_argument("--loc-pool", type=int, default=1, metavar="K",
                   help="the localisation net sees the input max-pooled K× (default 1; cluttered recipe: 2)")
    g.add_argument("--loc-hidden", type=_non_negative_int, default=0, metavar="N",
                   help="units of the localisation net's hidden fully connected layer(s) (default 0: the "
                        "paper's — ST-CNN 50 after the convolutions, ST-FCN 32 in each of its two)")
    g.add_argument("--st-init-scale", type=_positive_float, default=1.0, metavar="S",
                   help="start the transformer(s) as a centred zoom onto the middle S of the input's side "
                        "instead of the identity (default 1: the identity, the paper's initialisation)")
    g = ap.add_argument_group("schedule (SGD with momentum, as in the paper)")
    g.add_argument("--epochs", type=int, default=40, help="passes over the training digits (default 40)")
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--lr", type=float, default=0.05, help="base learning rate (default 0.05)")
    g.add_argument("--loc-lr-scale", type=float, default=0.1,
                   help="learning rate of the localisation net relative to --lr (default 0.1)")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (with momentum, the paper's; default) or adam (the cluttered recipe, with --lr 0.001)")
    g.add_argument("--ramp-epochs", type=int, default=0, metavar="N",
                   help="curriculum: grow the distortions linearly to the recipe's over the first N epochs — "
                        "rotation range (r, rts, addition), RTS scale and placement ranges, clutter count "
                        "(cluttered) — (default 0: none); test sets always use the full recipe")
    g.add_argument("--ramp-head-lr-scale", type=_positive_float, default=1.0, metavar="F",
                   help="while the curriculum grows (its 2nd to last epoch), the classifier learns at F× its "
                        "rate, so that the transformer rather than the classifier takes up the growing "
                        "distortions (default 1: no change)")
    g.add_argument("--lr-drops", type=int, nargs="*", default=[],
                   help="epochs after which lr is divided by 10 (default: at 60%% and 85%% of --epochs)")
    g = ap.add_argument_group("data and reproducibility")
    g.add_argument("--seed", type=int, default=0, help="model init and training-data stream seed")
    g.add_argument("--test-seed", type=int, default=0, help="seed of the fixed test set")
    g.add_argument("--n-test", type=int, default=10000, help="size of the fixed test set (default 10000)")
    g.add_argument("--n-train", type=int, default=0, help="use only the first N training digits (0 = all)")
    g.add_argument("--data-dir", default=None, help="MNIST IDX folder (default $STN_DATA_DIR, else the "
                                                     "data shipped with stn_explore: a 5,000-digit training "
                                                     "sample and the MNIST test split; see python -m "
                                                     "stn_explore.data sources)")
    g.add_argument("--download", action="store_true", help="download MNIST if not found locally")
    g = ap.add_argument_group("output")
    g.add_argument("--out", default=None,
                   help="checkpoint path (default <checkpoints>/<task>_<model>[_<transform>].pt, where "
                        "<checkpoints> is $STN_CHECKPOINT_DIR, else the checkpoints/ folder of a source "
                        "checkout, else ./checkpoints)")
    g.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    add_device_args(ap, "stn_explore.train", "--batch-size counts the images of one step over all the "
                                             "processes: each trains on its share, and the run follows the "
                                             "single-process one.")
    return ap


def default_out(cfg: TrainConfig) -> Path:
    """``<default_checkpoint_dir()>/<task>_<model>[_<transform>].pt``."""
    name = f"{cfg.task}_{cfg.model}" + (f"_{cfg.transform}" if "st" in cfg.model else "")
    return default_checkpoint_dir() / f"{name}.pt"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    cfg = TrainConfig(task=args.task, model=args.model, transform=args.transform, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, loc_lr_scale=args.loc_lr_scale,
                      momentum=args.momentum, weight_decay=args.weight_decay, lr_drops=list(args.lr_drops),
                      seed=args.seed, test_seed=args.test_seed, n_test=args.n_test, n_train=args.n_train,
                      noise=args.noise, threads=args.threads, optimizer=args.optimizer,
                      st_out_size=args.st_out_size, loc_pool=args.loc_pool, ramp_epochs=args.ramp_epochs,
                      st_init_scale=args.st_init_scale, ramp_head_lr_scale=args.ramp_head_lr_scale,
                      loc_hidden=args.loc_hidden)
    out = Path(args.out) if args.out else default_out(cfg)

    def run(ctx) -> int:
        res = train(cfg, out, device=args.device, amp=args.amp, resume=args.resume, data_dir=args.data_dir,
                    download=args.download, progress=not args.no_progress, log=lambda m: print(m, flush=True))
        if ctx.is_main:
            print(f"done: {out}  test error {res['test_error']:.2f}% after {res['epoch']} epochs, on "
                  f"{res['data']['n_test']} {res['data']['task']} images made from the "
                  f"{res['data']['test_source']} (trained on {res['data']['n_train_digits']} digits: "
                  f"{res['data']['train_source']})")
        return 0

    return run_cli(args.device, run, errors=(DataSourceError, CheckpointError, FloatingPointError, ValueError),
                   interrupted=f"interrupted: {out} holds the last completed epoch; continue with --resume")


if __name__ == "__main__":
    sys.exit(main())

"""Train a classifier of the paper on a distorted-MNIST task.

Example (the headline experiment, ST-CNN on RTS)::

    STN_DATA_DIR=../shared/data/mnist python -m stn_explore.train \\
        --task rts --model st-cnn --transform affine --epochs 40 --out checkpoints/rts_st-cnn_affine.pt

Every epoch sees *fresh* random distortions of the training digits and ends with the error
on a fixed test set (10,000 distorted images from the MNIST *test* split, seed 0) and an
atomic checkpoint save; ``--resume`` continues a killed run exactly where it stopped (and
can raise ``--epochs`` to train longer).
"""

from __future__ import annotations

import argparse
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
    default_checkpoint_dir,
    load_checkpoint,
    save_checkpoint,
    training_lock,
)
from .data import make_task_set
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
    #: curriculum: over the first N epochs the distortion grows linearly to the recipe's —
    #: the rotation range (r, rts, addition) and the clutter count (cluttered); 0 = none
    ramp_epochs: int = 0


#: TrainConfig fields that change what is trained; --resume refuses a run that differs in any
RECIPE_KEYS = ("task", "model", "transform", "seed", "test_seed", "n_test", "n_train", "noise", "optimizer",
               "st_out_size", "loc_pool", "ramp_epochs")


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate for (0-based) ``epoch``: divided by 10 after each epoch in lr_drops."""
    return cfg.lr * 0.1 ** sum(epoch >= d for d in cfg.lr_drops)


def task_config(cfg: TrainConfig):
    dcfg = D.default_config(cfg.task)
    if cfg.noise is not None:
        dcfg = D.with_overrides(dcfg, n_clutter=cfg.noise)
    return dcfg


def model_args_for(cfg: TrainConfig) -> ModelArgs:
    c, h, w = D.image_shape(cfg.task, task_config(cfg))
    out = (cfg.st_out_size, cfg.st_out_size) if cfg.st_out_size else None
    return ModelArgs(name=cfg.model, in_channels=c, input_size=(h, w), n_classes=D.n_classes(cfg.task),
                     transform=cfg.transform, st_out_size=out, loc_pool=cfg.loc_pool)


def epoch_task_config(cfg: TrainConfig, dcfg, epoch: int):
    """The distortion recipe of (0-based) ``epoch``: under the curriculum (``ramp_epochs``)
    the rotation range and the clutter count are the recipe's times ``(epoch + 1) /
    (ramp_epochs + 1)`` until epoch ``ramp_epochs``, then the recipe's own (test sets always
    use the full recipe)."""
    if not cfg.ramp_epochs or epoch >= cfg.ramp_epochs:
        return dcfg
    f = (epoch + 1) / (cfg.ramp_epochs + 1)
    if hasattr(dcfg, "max_angle"):
        dcfg = D.with_overrides(dcfg, max_angle=dcfg.max_angle * f)
    if hasattr(dcfg, "rts"):  # addition: both digits' rotation
        dcfg = D.with_overrides(dcfg, rts=D.with_overrides(dcfg.rts, max_angle=dcfg.rts.max_angle * f))
    if hasattr(dcfg, "n_clutter"):
        dcfg = D.with_overrides(dcfg, n_clutter=int(dcfg.n_clutter * f))
    return dcfg


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


def set_lr(opt, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr * g["lr_scale"]


def train(cfg: TrainConfig, out: str | Path, **kw) -> dict:
    """Train (or resume) and return the final checkpoint dict. Saves after every epoch; holds
    ``<out>.lock`` meanwhile, so a second process training the same file is refused.

    Keyword arguments: ``resume``, ``data_dir``, ``download``, ``train_digits``,
    ``test_digits``, ``progress``, ``log`` (see :func:`_train`)."""
    with training_lock(out):
        return _train(cfg, Path(out), **kw)


def _train(cfg: TrainConfig, out: Path, *, resume: bool = False, data_dir=None,
           download: bool = False, train_digits: Digits | None = None,
           test_digits: Digits | None = None, progress: bool = True, log=print) -> dict:
    from tqdm.auto import tqdm

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = None
    if resume and out.is_file():
        ckpt = load_checkpoint(out)
        saved = ckpt["train_config"]
        defaults = TrainConfig()
        for key in RECIPE_KEYS:  # runs saved before a key existed used its default
            if saved.get(key, getattr(defaults, key)) != getattr(cfg, key):
                raise CheckpointError(f"--resume: {out} was trained with {key}={saved.get(key)!r}, "
                                      f"not {getattr(cfg, key)!r}")
        if not cfg.lr_drops:
            cfg.lr_drops = list(saved.get("lr_drops", []))
        log(f"resuming {out} after epoch {ckpt['epoch']} (of {cfg.epochs})")
    if not cfg.lr_drops:
        cfg.lr_drops = [math.ceil(cfg.epochs * 0.6), math.ceil(cfg.epochs * 0.85)]

    dcfg = task_config(cfg)
    train_digits = train_digits or load_digits("train", root=data_dir, download=download)
    test_digits = test_digits or load_digits("test", root=data_dir, download=download)
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
    opt = make_optimizer(model, cfg)
    history: list = []
    start_epoch = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        if "optimizer" in ckpt:
            opt.load_state_dict(ckpt["optimizer"])
        else:
            log("note: a compacted checkpoint (float16 weights, no optimiser state): training goes on "
                "from its weights with the SGD momentum restarting from zero")
        history = list(ckpt["history"])
        start_epoch = int(ckpt["epoch"])
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
    result = ckpt
    for epoch in range(start_epoch, cfg.epochs):
        lr = lr_at(cfg, epoch)
        set_lr(opt, lr)
        model.train()
        t0 = time.perf_counter()
        n_batches = math.ceil(len(train_digits) / cfg.batch_size)
        bar = tqdm(D.epoch_batches(cfg.task, train_digits.images, train_digits.labels, cfg.batch_size,
                                   cfg.seed, epoch, epoch_task_config(cfg, dcfg, epoch)),
                   total=n_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False, file=sys.stderr)
        tot_loss = tot_err = seen = 0
        for x, y in bar:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; "
                                         "try a lower --lr or --loc-lr-scale")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += loss.item() * len(y)
            tot_err += (logits.argmax(1) != y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{tot_loss / seen:.3f}", err=f"{100 * tot_err / seen:.2f}%")
        bar.close()
        train_s = time.perf_counter() - t0
        test_err, _ = evaluate_arrays(model, test_set["images"], test_set["labels"])
        history.append({"epoch": epoch + 1, "lr": lr, "loss": tot_loss / seen,
                        "train_error": 100 * tot_err / seen, "test_error": test_err,
                        "seconds": train_s, "images_per_s": seen / train_s})
        log(f"epoch {epoch + 1:3d}/{cfg.epochs}  lr {lr:.4g}  loss {tot_loss / seen:.4f}  "
            f"train err {100 * tot_err / seen:5.2f}%  test err {test_err:5.2f}%  "
            f"({train_s:.0f} s, {seen / train_s:.0f} img/s)")
        result = {
            "format": FORMAT, "kind": "classifier", "version": __version__,
            "model_args": margs.to_dict(), "state_dict": model.state_dict(),
            "optimizer": opt.state_dict(), "train_config": asdict(cfg), "data": data_info,
            "history": history, "epoch": epoch + 1, "test_error": test_err,
            "parameters": counts,
            "train_seconds": float(sum(h["seconds"] for h in history)),
        }
        save_checkpoint(out, result)
    if result is None:
        raise CheckpointError(f"nothing to do: {out} already has {start_epoch} epochs (--epochs {cfg.epochs})")
    return result


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
                   help="curriculum: grow the rotation range (r, rts, addition) and the clutter (cluttered) "
                        "linearly to the recipe's over the first N epochs (default 0: none); test sets always "
                        "use the full recipe")
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
                      st_out_size=args.st_out_size, loc_pool=args.loc_pool, ramp_epochs=args.ramp_epochs)
    out = Path(args.out) if args.out else default_out(cfg)
    try:
        res = train(cfg, out, resume=args.resume, data_dir=args.data_dir, download=args.download,
                    progress=not args.no_progress, log=lambda m: print(m, flush=True))
    except (DataSourceError, CheckpointError, FloatingPointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {out} holds the last completed epoch; continue with --resume",
              file=sys.stderr)
        return 130
    print(f"done: {out}  test error {res['test_error']:.2f}% after {res['epoch']} epochs, on "
          f"{res['data']['n_test']} {res['data']['task']} images made from the {res['data']['test_source']} "
          f"(trained on {res['data']['n_train_digits']} digits: {res['data']['train_source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

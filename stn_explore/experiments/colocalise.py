"""Co-localisation (paper appendix, Table 5): train a spatial transformer to find one MNIST
digit class in 84×84 images without box labels, and record how its boxes move.

Example (digit 3 on clean canvases; ``--noise 16`` adds the noisy variant's clutter)::

    STN_DATA_DIR=../shared/data/mnist python -m stn_explore.colocalise --digit 3 \\
        --out checkpoints/coloc_3_clean.pt

The run trains on the training-split digits of that class (fresh random placements every
iteration) and, every ``--record-every`` iterations, records the boxes of a fixed panel of 16
held-out images, the mean loss and the share of held-out boxes with IoU > 0.5 (the ground
truth is used for this evaluation only). Defaults are the recipe of
:func:`stn_explore.experiments.colocalisation.recipe`: the heatmap localiser (a convolutional score
map over window positions), 2,400 iterations clean, 4,800 noisy (clean images
first, clutter rising to full over the second sixth), random crops moved next to the window
later on (precision stage), four random crops per image clean, one noisy; ``--iterations``
scales the schedule. A run whose windows found no common object — judged without labels, by
its final training loss (``--retry-above``, default margin/4) — is trained again with the next
seed (``--retries``, default 2) and the attempt with the lowest loss is kept. Everything lives in one
checkpoint, saved atomically every ``--save-every`` iterations; ``--resume`` continues a killed run exactly. ``--compact``
makes a finished run small for shipping (float16 weights, no optimiser state). The page
``/colocalisation`` plays the recording.

Under ``torchrun`` (``torchrun --standalone --nproc_per_node N -m stn_explore.colocalise ...``)
N processes train the run together: each on its own batch of ``--batch-size`` images from its
own seeded stream, the gradients averaged (the loss compares the images of a batch pairwise,
so a batch is not split). Rank 0 records, decides on retries, and writes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

from . import colocalisation as C
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, training_lock
from .distributed import add_device_args, run_cli
from .mnist import DataSourceError, load_digits


def default_out(digit: int, noise: int) -> Path:
    return C.run_path(digit, noise)


def build_parser() -> argparse.ArgumentParser:
    d = C.ColocConfig()
    ap = argparse.ArgumentParser(prog="python -m stn_explore.colocalise", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digit", type=int, required=True, help="the digit class to co-localise (0–9)")
    ap.add_argument("--noise", type=int, default=0,
                    help=f"clutter patches per image: 0 = clean (default), {C.NOISY} = the noisy variant")
    ap.add_argument("--transform", choices=C.COLOC_TRANSFORMS, default=d.transform,
                    help="translate = a moving 28×28 window (default); attention adds a scale; affine = 6 params")
    ap.add_argument("--localiser", choices=C.LOCALISERS, default=None,
                    help="how the window is found: regress = CNN + fully connected layers regress the "
                         "parameters; heatmap = a convolutional score map, the window at its softmax-weighted "
                         "mean position (translate only); default: the recipe's")
    ap.add_argument("--heatmap-norm", action=argparse.BooleanOptionalAction, default=None,
                    help="heatmap localiser: batch norm before each ReLU (default: on noisy, off clean)")
    ap.add_argument("--retries", type=int, default=2,
                    help="if the windows did not settle on a common object — judged without labels, by the "
                         "final training loss — train again with the next seed, up to this many times, and "
                         "keep the attempt with the lowest final loss (default 2; 0 = never)")
    ap.add_argument("--retry-above", type=float, default=None,
                    help="final training loss (mean over the last tenth of the records) above which an attempt "
                         "counts as failed (default: margin / 4; settled runs end ≤ 0.01)")
    ap.add_argument("--iterations", type=int, default=None,
                    help=f"training steps (default {C.RECIPES['clean']['iterations']} clean, "
                         f"{C.RECIPES['noisy']['iterations']} noisy); the schedule below scales with it")
    ap.add_argument("--batch-size", type=int, default=d.batch_size, help=f"images per step (default {d.batch_size})")
    ap.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    ap.add_argument("--lr-drop", type=int, default=None,
                    help="divide the learning rate by 10 from this iteration on; 0 = never (default: after "
                         "1/2 of the run clean, 1/3 noisy)")
    ap.add_argument("--margin", type=float, default=d.margin, help=f"hinge margin α (default {d.margin})")
    ap.add_argument("--negatives", type=int, default=None,
                    help=f"random crops I^rand per image, the hinge averaged over them (default "
                         f"{C.RECIPES['clean']['negatives']} clean, {C.RECIPES['noisy']['negatives']} noisy; "
                         f"the paper: 1)")
    ap.add_argument("--start-scale", type=float, default=d.start_scale,
                    help=f"curriculum: the window starts at this share of the image side (default {d.start_scale})")
    ap.add_argument("--shrink-iterations", type=int, default=None,
                    help="…and shrinks to 28×28 over this many iterations (default: the first third of the "
                         "run clean, the first sixth noisy)")
    ap.add_argument("--clutter-from", type=int, default=None,
                    help="noisy variant: train on clean images until this iteration… (default: a sixth "
                         "of the run)")
    ap.add_argument("--clutter-ramp", type=int, default=None,
                    help="…then raise the clutter to --noise pieces over this many iterations (default: "
                         "a sixth of the run; 0 with --clutter-from 0 = full clutter from the start)")
    ap.add_argument("--fine-from", type=int, default=None,
                    help="precision stage: from this iteration the random crops lie ½–1 window widths "
                         "from the window instead of 1–1½ (default: after 2/3 of the run clean, 1/3 "
                         "noisy; 0 = never)")
    ap.add_argument("--record-every", type=int, default=d.record_every,
                    help=f"record boxes, loss and accuracy every k iterations (default {d.record_every})")
    ap.add_argument("--save-every", type=int, default=d.save_every,
                    help=f"save the checkpoint every k iterations (default {d.save_every})")
    ap.add_argument("--seed", type=int, default=d.seed, help="training seed (default 0)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--out", help="checkpoint file (default checkpoints/coloc_<digit>_<clean|noisy>.pt)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out if it exists")
    ap.add_argument("--compact", action="store_true",
                    help="when finished, store float16 weights without optimiser state (re-measured)")
    ap.add_argument("--data-dir", help="MNIST IDX folder (default $STN_DATA_DIR, else the data shipped with "
                                       "stn_explore: a 5,000-digit training sample and the MNIST test split)")
    ap.add_argument("--download", action="store_true", help="download full MNIST if no local copy exists")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    add_device_args(ap, "stn_explore.colocalise", "Each process trains on its own batch of --batch-size "
                                                  "images (the loss compares the images of a batch), so a step "
                                                  "sees N times as many.", amp=False)
    return ap


def _threshold(args, cfg) -> float:
    return cfg.margin / 4 if args.retry_above is None else args.retry_above


def _failed(ckpt: dict, args, cfg) -> bool:
    return not C.final_training_loss(ckpt) <= _threshold(args, cfg)


def _parked(out: Path) -> list[Path]:
    """Earlier attempts of this run whose windows did not settle: ``<out>.seed<k>``."""
    return sorted(out.parent.glob(out.name + ".seed*"))


def _park(out: Path, ckpt: dict, cfg: C.ColocConfig, args) -> C.ColocConfig:
    """Set a finished attempt aside and return the config of the next one (next seed)."""
    loss = C.final_training_loss(ckpt)
    os.replace(out, out.with_name(f"{out.name}.seed{cfg.seed}"))
    nxt = replace(cfg, seed=cfg.seed + 1)
    print(f"final training loss {loss:.3f} > {_threshold(args, cfg):.3f}: the windows did not settle on a "
          f"common object (no labels used to judge); retrying with seed {nxt.seed} "
          f"(retry {len(_parked(out))} of {args.retries})", flush=True)
    return nxt


def _keep_best(out: Path, ckpt: dict) -> dict:
    """Of this attempt and the parked ones, keep the lowest final training loss in ``out``
    (the attempts are listed in ``ckpt["attempts"]``); remove the parked files. If ``ckpt``
    already holds the comparison (a kill came after it was saved, while the parked files were
    being removed), only the removal is finished: its attempts are not counted twice."""
    if "attempts" in ckpt:
        for p in _parked(out):
            p.unlink()
        return ckpt
    runs = [(p, load_checkpoint(p)) for p in _parked(out)] + [(out, ckpt)]
    losses = [C.final_training_loss(c) for _, c in runs]
    attempts = sorted(({"seed": int(c["config"]["seed"]), "final_training_loss": float(loss),
                        "accuracy": float(c["final"]["accuracy"])} for (_, c), loss in zip(runs, losses)),
                      key=lambda a: a["seed"])
    best = min(range(len(runs)), key=lambda i: (losses[i] != losses[i], losses[i]))   # NaN losses last
    ckpt = {**runs[best][1], "attempts": attempts}
    save_checkpoint(out, ckpt)
    for p, _ in runs[:-1]:
        p.unlink()
    print(f"kept seed {ckpt['config']['seed']} of {len(runs)} attempts (lowest final training loss)", flush=True)
    return ckpt


def _plan(args, out: Path, cfg: C.ColocConfig):
    """What to do about ``out``: ``None`` if it holds a finished run (nothing to do), else
    ``(cfg, resume_from, done)`` — the config to train, the checkpoint to continue (or None)
    and, if the last attempt finished but the attempts were not yet compared, that attempt."""
    resume_from, done = None, None
    if args.resume and out.exists():
        resume_from = load_checkpoint(out)
        if resume_from.get("kind") != "colocalisation":
            raise CheckpointError(f"{out} is not a co-localisation checkpoint")
        saved = C.ColocConfig(**resume_from["config"])
        if (saved.digit, saved.noise) != (cfg.digit, cfg.noise):
            raise CheckpointError(f"{out} holds digit {saved.digit} noise {saved.noise}, not digit "
                                  f"{cfg.digit} noise {cfg.noise}")
        # the saved recipe wins, except for a longer run
        cfg = C.ColocConfig(**{**asdict(saved), "iterations": max(cfg.iterations, saved.iterations),
                               "threads": cfg.threads})
        if resume_from["iteration"] >= cfg.iterations and resume_from.get("final"):
            if "attempts" in resume_from:   # the attempts were compared: no more retries
                if _parked(out):            # (killed while removing the set-aside files)
                    done = resume_from
                else:
                    print(f"{out} is finished ({resume_from['iteration']} iterations): "
                          f"{resume_from['final']['accuracy']:.1f}% of boxes correct")
                    return None
            elif not _failed(resume_from, args, cfg) or len(_parked(out)) >= args.retries:
                if not _parked(out):
                    print(f"{out} is finished ({resume_from['iteration']} iterations): "
                          f"{resume_from['final']['accuracy']:.1f}% of boxes correct")
                    return None
                done = resume_from   # interrupted before the attempts were compared
            else:
                cfg = _park(out, resume_from, cfg, args)
                resume_from = None
        else:
            print(f"resuming {out} after iteration {resume_from['iteration']} (of {cfg.iterations})")
    elif out.exists() and not args.resume:
        raise CheckpointError(f"{out} exists; pass --resume to continue it or choose another --out")
    return cfg, resume_from, done


def _finish(args, out: Path, ckpt: dict, test_digits) -> dict:
    """After the last attempt: keep the best of the attempts, compact if asked."""
    if ckpt["final"] is not None and _parked(out):
        ckpt = _keep_best(out, ckpt)
    if args.compact and ckpt["final"] is not None:
        small = C.compact(ckpt, test_digits)
        save_checkpoint(out, small)
        print(f"compacted {out}: {small['final']['accuracy']:.1f}% with float16 weights "
              f"({out.stat().st_size / 1e6:.2f} MB)")
    return ckpt


def _run(args, out: Path, cfg: C.ColocConfig, ctx, held: contextlib.ExitStack) -> int:
    """The run, on every process of a torchrun job (or the only one): rank 0 reads and writes
    ``out`` and takes the decisions, which the others follow."""
    plan = ctx.from_main(lambda: _plan(args, out, cfg))
    if plan is None:
        return 0
    cfg, resume_from, done = plan
    train_digits = ctx.local_first(lambda: load_digits("train", root=args.data_dir, download=args.download))
    test_digits = ctx.local_first(lambda: load_digits("test", root=args.data_dir, download=args.download))

    def lock():
        out.parent.mkdir(parents=True, exist_ok=True)
        held.enter_context(training_lock(out))

    ctx.on_main(lock)
    ckpt = done
    while ckpt is None:
        ckpt = C.train(cfg, train_digits=train_digits, test_digits=test_digits, out=out,
                       resume_from=resume_from, progress=not args.no_progress,
                       log=lambda m: print(m, flush=True), ctx=ctx)
        last = ckpt
        if not ctx.from_main(lambda: last["final"] is not None and _failed(last, args, cfg)
                             and len(_parked(out)) < args.retries):
            break
        cfg, resume_from, ckpt = ctx.from_main(lambda: _park(out, last, cfg, args)), None, None
    ckpt = ctx.on_main(lambda: _finish(args, out, ckpt, test_digits))
    if ctx.is_main:
        print(f"done: {out} ({ckpt['data']['n_train_digits']} training digits of class {cfg.digit} from the "
              f"{ckpt['data']['train_source']}; held-out images from the {ckpt['data']['test_source']})")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out) if args.out else default_out(args.digit, args.noise)
    try:
        given = {k: v for k, v in (("lr_drop", args.lr_drop), ("shrink_iterations", args.shrink_iterations),
                                   ("clutter_from", args.clutter_from), ("clutter_ramp", args.clutter_ramp),
                                   ("fine_from", args.fine_from), ("negatives", args.negatives),
                                   ("localiser", args.localiser), ("heatmap_norm", args.heatmap_norm))
                 if v is not None}
        cfg = C.recipe(args.digit, args.noise, args.iterations, transform=args.transform,
                       batch_size=args.batch_size, lr=args.lr, margin=args.margin, start_scale=args.start_scale,
                       record_every=args.record_every, save_every=args.save_every, seed=args.seed,
                       threads=args.threads, **given)
        if args.retries < 0:
            raise ValueError(f"--retries must be ≥ 0, got {args.retries}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def run(ctx) -> int:
        with contextlib.ExitStack() as held:   # holds the lock of --out (rank 0)
            return _run(args, out, cfg, ctx, held)

    return run_cli(args.device, run, errors=(DataSourceError, CheckpointError, ValueError),
                   interrupted=f"interrupted: {out} holds the last save; continue with --resume")


if __name__ == "__main__":
    sys.exit(main())

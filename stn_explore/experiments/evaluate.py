"""Evaluate checkpoints and write the results table.

    python -m stn_explore.evaluate --checkpoint checkpoints/rts_st-cnn_affine.pt
    python -m stn_explore.evaluate --checkpoint checkpoints/rts_st-cnn_affine.pt --npz rts_test.npz
    python -m stn_explore.evaluate --table            # checkpoints/results.{json,md}
    python -m stn_explore.evaluate --compact checkpoints/rts_cnn.pt   # shrink a finished run

Without ``--npz`` the checkpoint's own fixed test set is rebuilt from the recipe, seed and
size stored inside it (from the MNIST test split of the current data source; if that source
differs from the one recorded, the command says so, since the error will differ too).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import distortions as D
from .checkpoint import CheckpointError, compact, is_compact, load_checkpoint, save_checkpoint
from .data import load_npz, make_task_set
from .mnist import DataSourceError, load_digits
from .models import evaluate_arrays, load_model
from .results import update_readme, write_table


def evaluate_checkpoint(path, npz=None, data_dir=None, log=print) -> dict:
    """Error (%) of a checkpoint on its own fixed test set, or on an exported ``.npz``."""
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") == "colocalisation":
        return evaluate_coloc(path, ckpt, npz, data_dir)
    if ckpt.get("kind", "classifier") != "classifier":
        raise CheckpointError(f"{path} is a {ckpt.get('kind')} checkpoint, not a classifier")
    model = load_model(ckpt)
    info = ckpt["data"]
    if npz is not None:
        arrays, meta = load_npz(npz)
        images, labels = arrays["images"], arrays["labels"]
        want = tuple(ckpt["model_args"]["input_size"])
        shape = images.shape[-2:]
        channels = images.shape[1] if images.ndim == 4 else 1
        if tuple(shape) != want or channels != ckpt["model_args"]["in_channels"]:
            raise ValueError(f"{npz}: images are {channels}×{shape[0]}×{shape[1]}, the model expects "
                             f"{ckpt['model_args']['in_channels']}×{want[0]}×{want[1]}")
        what = f"{len(labels)} images from {npz}" + (" (sample data)" if meta.get("is_sample") else "")
    else:
        test = load_digits("test", root=data_dir)
        if test.source != info["test_source"] or len(test) != info["n_test_digits"]:
            log(f"note: the checkpoint was evaluated on the test split from {info['test_source']} "
                f"({info['n_test_digits']} digits); this run uses {test.source} ({len(test)} digits)")
        cfg = D.config_from_dict(info["task"], info["config"])
        arrays, _ = make_task_set(info["task"], "test", info["n_test"], info["test_seed"], cfg, test)
        images, labels = arrays["images"], arrays["labels"]
        what = f"its fixed test set ({info['n_test']} {info['task']} images, seed {info['test_seed']})"
    err, pred = evaluate_arrays(model, images, labels)
    return {"error": err, "n": int(len(labels)), "what": what, "recorded": ckpt.get("test_error"),
            "epoch": ckpt.get("epoch"), "predictions": pred}


def evaluate_coloc(path, ckpt: dict, npz=None, data_dir=None) -> dict:
    """IoU > 0.5 accuracy (%) of a co-localisation checkpoint on an exported ``coloc`` set
    (``images`` (N, 84, 84), ``boxes`` (N, 4) = x0, y0, x1, y1 in pixels), or on its own
    held-out images."""
    from . import colocalisation as C

    if npz is not None:
        arrays, meta = load_npz(npz)
        if "boxes" not in arrays:
            raise ValueError(f"{npz}: no 'boxes' array — co-localisation needs an exported coloc set "
                             f"(python -m stn_explore.data export --task coloc ...)")
        images, boxes = arrays["images"], arrays["boxes"]
        what = f"{len(images)} images from {npz}" + (" (sample data)" if meta.get("is_sample") else "")
    else:
        cfg = C.ColocConfig(**ckpt["config"])
        held = C.held_out_set(load_digits("test", root=data_dir), cfg.digit, cfg.noise, cfg.eval_seed)
        images, boxes = held["images"], held["boxes"]
        what = f"its held-out images ({len(images)} test-split {cfg.digit}s, seed {cfg.eval_seed})"
    m = C.evaluate_checkpoint(ckpt, images, boxes)
    final = ckpt.get("final") or {}
    return {"kind": "colocalisation", "accuracy": m["accuracy"], "mean_iou": m["mean_iou"], "n": m["n"],
            "what": what, "recorded": final.get("accuracy"), "iteration": ckpt.get("iteration")}


def compact_checkpoint(path, data_dir=None, log=print) -> dict | None:
    """Shrink a finished classifier checkpoint in place (see :func:`checkpoint.compact`) and
    record the test error of the float16 weights, measured on the same fixed test set.
    Returns ``{"before", "after", "bytes_before", "bytes_after"}``, or None when there is
    nothing to do (already compact). Refuses runs still training and a different data source."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    if ckpt.get("kind", "classifier") != "classifier":
        raise CheckpointError(f"{path} is a {ckpt.get('kind')} checkpoint, not a classifier")
    if is_compact(ckpt):
        log(f"{path}: already compact")
        return None
    if ckpt["epoch"] < ckpt["train_config"]["epochs"]:
        raise CheckpointError(f"{path} is still training (epoch {ckpt['epoch']}/"
                              f"{ckpt['train_config']['epochs']}); compact finished runs only")
    info = ckpt["data"]
    test = load_digits("test", root=data_dir)
    if test.source != info["test_source"] or len(test) != info["n_test_digits"]:
        raise DataSourceError(f"{path} was evaluated on {info['test_source']} ({info['n_test_digits']} "
                              f"digits); this run sees {test.source} — re-measuring on other data would "
                              f"change the recorded error. Point --data-dir/STN_DATA_DIR at the same data.")
    small = compact(ckpt)
    cfg = D.config_from_dict(info["task"], info["config"])
    arrays, _ = make_task_set(info["task"], "test", info["n_test"], info["test_seed"], cfg, test)
    err, _ = evaluate_arrays(load_model(small), arrays["images"], arrays["labels"])
    small["test_error"] = err
    before = path.stat().st_size
    save_checkpoint(path, small)
    out = {"before": float(ckpt["test_error"]), "after": err, "bytes_before": before,
           "bytes_after": path.stat().st_size}
    log(f"{path}: {before / 1e6:.2f} → {out['bytes_after'] / 1e6:.2f} MB; test error "
        f"{out['before']:.2f}% (float32) → {err:.2f}% (float16 weights, now recorded)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stn_explore.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="a checkpoint written by python -m stn_explore.train")
    ap.add_argument("--npz", help="evaluate on an exported set (python -m stn_explore.data export ...)")
    ap.add_argument("--data-dir", help="MNIST IDX folder for the fixed test set (default $STN_DATA_DIR)")
    ap.add_argument("--table", action="store_true",
                    help="write results.json and results.md for every checkpoint in --folder")
    ap.add_argument("--compact", nargs="+", metavar="PATH",
                    help="shrink finished checkpoints in place: drop the optimiser state, store weights "
                         "as float16, re-measure and record the test error")
    ap.add_argument("--folder", default="checkpoints", help="folder scanned by --table (default checkpoints)")
    ap.add_argument("--readme", default="README.md",
                    help="with --table: also refresh the results block of this file if it has the "
                         "<!-- results:start/end --> markers (default README.md; '' to skip)")
    args = ap.parse_args(argv)
    if not args.checkpoint and not args.table and not args.compact:
        ap.error("give --checkpoint PATH, --compact PATH... and/or --table")
    try:
        for path in args.compact or ():
            compact_checkpoint(path, args.data_dir)
        if args.checkpoint:
            r = evaluate_checkpoint(args.checkpoint, args.npz, args.data_dir)
            if r.get("kind") == "colocalisation":
                rec = (f" (recorded after iteration {r['iteration']}: {r['recorded']:.1f}%)"
                       if r["recorded"] is not None else "")
                print(f"{args.checkpoint}: {r['accuracy']:.1f}% of boxes with IoU > 0.5 (mean IoU "
                      f"{r['mean_iou']:.3f}) on {r['what']}{rec}")
            else:
                rec = (f" (recorded after epoch {r['epoch']}: {r['recorded']:.2f}%)"
                       if r["recorded"] is not None else "")
                print(f"{args.checkpoint}: {r['error']:.2f}% error on {r['what']}{rec}")
        if args.table:
            j, m = write_table(args.folder)
            print(f"wrote {j} and {m}")
            if args.readme and Path(args.readme).is_file() and update_readme(
                    args.readme, json.loads(j.read_text())):
                print(f"updated the results block of {args.readme}")
            print(m.read_text())
    except (CheckpointError, DataSourceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate checkpoints and write the results table.

    python -m stn_explore.evaluate --checkpoint checkpoints/rts_st-cnn_affine.pt
    python -m stn_explore.evaluate --checkpoint checkpoints/rts_st-cnn_affine.pt --npz rts_test.npz
    python -m stn_explore.evaluate --table            # checkpoints/results.{json,md}
    python -m stn_explore.evaluate --compact checkpoints/rts_cnn.pt   # shrink a finished run

Without ``--npz`` the checkpoint's own fixed test set is rebuilt from the recipe, seed and
size stored inside it, from the MNIST test split of the current data source (without
``STN_DATA_DIR``: the test split shipped with stn_explore). The digits are compared with the
ones recorded in the checkpoint by content (md5), not by path: the command says when they are
the same digits read from elsewhere, and warns when they differ, since the error will differ too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import diagnostics as G
from . import distortions as D
from .checkpoint import (
    RUN_DATA,
    CheckpointError,
    check_checkpoint,
    compact,
    is_compact,
    load_checkpoint,
    save_checkpoint,
)
from .data import load_npz, make_task_set, save_npz
from .mnist import MNIST_TEST_CONTENT_MD5, DataSourceError, Digits, folder_of, load_digits
from .models import evaluate_arrays, load_model
from .results import update_readme, write_table

#: The repository root: relative folders recorded in checkpoints were relative to it.
REPO_ROOT = Path(__file__).resolve().parents[2]


def recorded_test_digits(info: dict) -> tuple[dict | None, str]:
    """The content md5 (:meth:`Digits.content_md5`) of the test digits a checkpoint was
    evaluated on (``info`` = ``ckpt["data"]``), and how it is known: recorded in the checkpoint
    (``test_md5``), or — for checkpoints made before that was recorded — computed from the
    files in the recorded folder, when that folder is on this machine. ``(None, why)`` otherwise."""
    if info.get("test_md5"):
        return dict(info["test_md5"]), "the md5 recorded in the checkpoint"
    folder = folder_of(info.get("test_source", ""))
    if folder is None:
        return None, "the checkpoint records no md5 of its test digits"
    candidates = [folder] + ([REPO_ROOT / folder] if not folder.is_absolute() else [])
    for cand in candidates:
        try:
            return load_digits("test", root=cand).content_md5(), f"the files in {cand}"
        except DataSourceError:
            continue
    return None, f"the checkpoint records no md5 of its test digits and {folder} is not on this machine"


def compare_test_digits(info: dict, test: Digits) -> tuple[bool | None, str]:
    """Whether ``test`` holds the same digits (same images, labels and order) as the test split
    a checkpoint was evaluated on, judged by content (md5), never by path; and a note for the
    user, empty when both the digits and the recorded source string are the same.
    ``None`` when it cannot be told (an old checkpoint whose recorded folder is not here)."""
    recorded, how = recorded_test_digits(info)
    was = info.get("test_source")
    if recorded is None:
        if was == test.source:
            return True, ""
        known = (" This run's digits are the original MNIST test split (their md5 is that of the "
                 "standard t10k files)." if test.content_md5() == MNIST_TEST_CONTENT_MD5 else "")
        return None, (f"note: the checkpoint was evaluated on the test split from {was} "
                      f"({info.get('n_test_digits', '?')} digits); this run uses the {test.source}. "
                      f"Whether they are the same digits cannot be checked here ({how}).{known}")
    current = test.content_md5()
    if recorded == current:
        if was == test.source:
            return True, ""
        return True, (f"note: same test digits as recorded. The checkpoint names its test split "
                      f"'{was}'; this run reads the {test.source}: images and labels are identical "
                      f"(md5 {current['images'][:8]}… / {current['labels'][:8]}…, checked against {how}).")
    return False, (f"note: different test digits. The checkpoint was evaluated on the test split from "
                   f"{was} ({info.get('n_test_digits', '?')} digits, images md5 {recorded['images'][:8]}…); "
                   f"this run uses the {test.source} ({len(test)} digits, images md5 "
                   f"{current['images'][:8]}…), so the error will differ from the recorded one.")


def evaluate_checkpoint(path, npz=None, data_dir=None, log=print, grids: bool = False) -> dict:
    """Error (%) of a checkpoint on its own fixed test set, or on an exported ``.npz``.

    With ``grids``, a classifier with spatial transformers also gets ``corners`` ``(N, K, 4, 2)``
    (each transformer's sampling region per image) and ``diagnostics`` (one report per
    transformer: see :func:`stn_explore.experiments.diagnostics.diagnose`)."""
    ckpt = load_checkpoint(path)
    if "kind" not in ckpt:  # the first checkpoints recorded no kind: classifiers
        check_checkpoint(ckpt, path)
    if ckpt.get("kind") == "colocalisation":
        return evaluate_coloc(path, ckpt, npz, data_dir, log)
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
        n_classes = model.args.n_classes
        if labels.max() >= n_classes:
            raise ValueError(f"{npz}: labels go up to {labels.max()}, the model knows {n_classes} classes "
                             f"(0–{n_classes - 1})")
        what = f"{len(labels)} images from {npz}" + _made_from(meta)
    else:
        missing = [k for k in RUN_DATA if k not in info]
        if missing:
            raise CheckpointError(f"{path}: its 'data' lacks {missing}, the recipe of its own test set; "
                                  f"evaluate it on an exported set with --npz")
        test = load_digits("test", root=data_dir)
        _, note = compare_test_digits(info, test)
        if note:
            log(note)
        cfg = D.config_from_dict(info["task"], info["config"])
        arrays, _ = make_task_set(info["task"], "test", info["n_test"], info["test_seed"], cfg, test)
        images, labels = arrays["images"], arrays["labels"]
        what = (f"its fixed test set ({info['n_test']} {info['task']} images, seed {info['test_seed']}) "
                f"made from the {test.source}")
    err, pred = evaluate_arrays(model, images, labels)
    out = {"error": err, "n": int(len(labels)), "what": what, "recorded": ckpt.get("test_error"),
           "epoch": ckpt.get("epoch"), "predictions": pred}
    if grids and model.transformers:
        corners = G.model_corners(model, images)
        out["corners"] = corners
        out["diagnostics"] = G.diagnose(corners, G.truth_from_arrays(arrays), images.shape[-2:])
        for rep, dead in zip(out["diagnostics"], G.dead_units(model, images)):
            rep["dead_units"] = dead
        if images.ndim == 4 and images.shape[1] > 1:  # one digit per channel (MNIST addition)
            oracle = G.oracle_ink_share(images)
            for rep, share in zip(out["diagnostics"], G.model_ink_shares(model, images)):
                rep["one_channel"] = float(np.mean(np.nanmax(share, 1) >= 0.8))
                rep["one_channel_oracle"] = float(np.mean(oracle >= 0.8))
    return out


def _made_from(meta: dict) -> str:
    """ " (made from <digits>)" for an exported set's meta, or "" when it does not say."""
    return f" (made from the {meta['source']})" if meta.get("source") else ""


def write_grids(path, result: dict) -> None:
    """Write the sampling regions of :func:`evaluate_checkpoint` (``grids=True``) to ``path``
    and print one line per transformer."""
    if "corners" not in result:
        raise ValueError("--grids needs a classifier with at least one spatial transformer")
    save_npz(path, {"corners": result["corners"], "predictions": result["predictions"]},
             {"what": result["what"], "diagnostics": result["diagnostics"], "format": 1})
    for rep in result["diagnostics"]:
        figs = "  ".join(f"{name} {rep[key]:.2f}" for name, key in (
            ("rotation r", "rotation_r"), ("slope", "rotation_slope"), ("centre r", "centre_r"),
            ("size r", "size_r"), ("median IoU", "median_iou")) if rep[key] is not None)
        dead = rep.get("dead_units")
        print(f"transformer {rep['transformer'] + 1}: spread {rep['spread']:.3f}  size {rep['mean_size']:.2f}  "
              f"{figs}" + (f"  dead localisation units {dead:.0%}" if dead is not None else "")
              + f"\n  {rep['verdict']}")
        if "one_channel" in rep:
            print(f"  takes >= 80% of its output ink from one channel on {rep['one_channel']:.0%} of images "
                  f"(a region exactly on one digit's ink box: on {rep['one_channel_oracle']:.0%})")


def evaluate_coloc(path, ckpt: dict, npz=None, data_dir=None, log=print) -> dict:
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
        canvas = int(ckpt["model_args"].get("canvas", C.CANVAS))
        if images.shape[-2:] != (canvas, canvas) or images.ndim == 4 and images.shape[1] != 1:
            raise ValueError(f"{npz}: images have shape {images.shape}; the co-localisation model expects "
                             f"(N, {canvas}, {canvas})")
        what = f"{len(images)} images from {npz}" + _made_from(meta)
    else:
        cfg = C.ColocConfig(**ckpt["config"])
        test = load_digits("test", root=data_dir)
        _, note = compare_test_digits(ckpt["data"], test)
        if note:
            log(note)
        held = C.held_out_set(test, cfg.digit, cfg.noise, cfg.eval_seed)
        images, boxes = held["images"], held["boxes"]
        what = (f"its held-out images ({len(images)} test-split {cfg.digit}s, seed {cfg.eval_seed}) "
                f"from the {test.source}")
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
    ckpt = load_checkpoint(path, kind="classifier")
    if is_compact(ckpt):
        log(f"{path}: already compact")
        return None
    if ckpt["epoch"] < ckpt["train_config"]["epochs"]:
        raise CheckpointError(f"{path} is still training (epoch {ckpt['epoch']}/"
                              f"{ckpt['train_config']['epochs']}); compact finished runs only")
    info = ckpt["data"]
    test = load_digits("test", root=data_dir)
    same, note = compare_test_digits(info, test)
    if not same:
        raise DataSourceError(f"{path}: refusing to re-measure — {note.removeprefix('note: ')} "
                              "Re-measuring on other data would change the recorded error; point "
                              "--data-dir/STN_DATA_DIR at the same data.")
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
    ap.add_argument("--data-dir", help="MNIST IDX folder for the fixed test set (default $STN_DATA_DIR, else "
                                           "the MNIST test split shipped with stn_explore)")
    ap.add_argument("--grids", metavar="OUT.npz",
                    help="with --checkpoint: write each transformer's sampling region per image (array "
                         "'corners' (N, K, 4, 2): TL, TR, BR, BL of the output in normalised input "
                         "coordinates) and print what the transformers learned: rotation, shift and scale "
                         "undone (correlations with the applied distortion), IoU with the digit's box, "
                         "collapse")
    ap.add_argument("--table", action="store_true",
                    help="write results.json and results.md for every checkpoint in --folder")
    ap.add_argument("--compact", nargs="+", metavar="PATH",
                    help="shrink finished checkpoints in place: drop the optimiser state, store weights "
                         "as float16, re-measure and record the test error")
    ap.add_argument("--folder", default=None,
                    help="folder scanned by --table (default $STN_CHECKPOINT_DIR, else the checkpoints/ "
                         "folder of a source checkout, else ./checkpoints)")
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
            r = evaluate_checkpoint(args.checkpoint, args.npz, args.data_dir, grids=bool(args.grids))
            if r.get("kind") == "colocalisation":
                rec = (f" (recorded after iteration {r['iteration']}: {r['recorded']:.1f}%)"
                       if r["recorded"] is not None else "")
                print(f"{args.checkpoint}: {r['accuracy']:.1f}% of boxes with IoU > 0.5 (mean IoU "
                      f"{r['mean_iou']:.3f}) on {r['what']}{rec}")
            else:
                rec = (f" (recorded after epoch {r['epoch']}: {r['recorded']:.2f}%)"
                       if r["recorded"] is not None else "")
                print(f"{args.checkpoint}: {r['error']:.2f}% error on {r['what']}{rec}")
                if args.grids:
                    write_grids(args.grids, r)
                    print(f"wrote {args.grids}")
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

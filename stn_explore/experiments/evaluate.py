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
import os
import sys
from pathlib import Path


from . import distortions as D
from ._io import atomic_write_text
from .checkpoint import CheckpointError, compact, is_compact, load_checkpoint, save_checkpoint
from .data import load_npz, make_task_set
from .mnist import DataSourceError, load_digits
from .models import build_model
from .train import evaluate_arrays

#: The paper's test errors (%) — Table 1 (distorted MNIST), cluttered MNIST, Table 4.
PAPER = {
    "r": {"fcn": 2.1, "cnn": 1.2, "st-fcn_affine": 1.2, "st-fcn_projective": 1.3, "st-fcn_tps": 1.1,
          "st-cnn_affine": 0.7, "st-cnn_projective": 0.8, "st-cnn_tps": 0.7},
    "rts": {"fcn": 5.2, "cnn": 0.8, "st-fcn_affine": 0.8, "st-fcn_projective": 0.9, "st-fcn_tps": 0.8,
            "st-cnn_affine": 0.5, "st-cnn_projective": 0.6, "st-cnn_tps": 0.5},
    "p": {"fcn": 3.1, "cnn": 1.5, "st-fcn_affine": 1.5, "st-fcn_projective": 1.4, "st-fcn_tps": 1.4,
          "st-cnn_affine": 0.8, "st-cnn_projective": 0.8, "st-cnn_tps": 0.8},
    "e": {"fcn": 3.2, "cnn": 1.4, "st-fcn_affine": 2.7, "st-fcn_projective": 2.6, "st-fcn_tps": 2.4,
          "st-cnn_affine": 1.2, "st-cnn_projective": 1.3, "st-cnn_tps": 1.1},
    "cluttered": {"fcn": 13.2, "cnn": 3.5, "st-fcn_affine": 2.0, "st-cnn_affine": 1.7},
    "addition": {"fcn": 47.7, "cnn": 14.7, "st-fcn_affine": 22.6, "2st-fcn_affine": 9.0,
                 "2st-fcn_projective": 5.9, "2st-fcn_tps": 5.8},
}
TABLE_TASKS = ("r", "rts", "p", "e", "cluttered", "addition")
ROW_ORDER = ("fcn", "cnn", "st-fcn_affine", "st-fcn_projective", "st-fcn_tps", "st-cnn_affine",
             "st-cnn_projective", "st-cnn_tps", "2st-fcn_affine", "2st-fcn_projective", "2st-fcn_tps",
             "2st-cnn_affine", "2st-cnn_projective", "2st-cnn_tps")
ROW_TITLES = {"fcn": "FCN", "cnn": "CNN"}


def row_key(model: str, transform: str) -> str:
    return model if model in ("fcn", "cnn") else f"{model}_{transform}"


def row_title(key: str) -> str:
    if key in ROW_TITLES:
        return ROW_TITLES[key]
    model, transform = key.split("_")
    name = model.upper().replace("2ST", "2×ST")
    return f"{name} {dict(affine='Aff', projective='Proj', tps='TPS', attention='Att')[transform]}"


def load_model(ckpt: dict):
    model = build_model(ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model


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


def collect_results(folder: str | os.PathLike = "checkpoints") -> dict:
    """Read every classifier checkpoint in ``folder`` into a results dict (recorded errors)."""
    rows, in_progress = [], []
    for path in sorted(Path(folder).glob("*.pt")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError:
            continue
        if ckpt.get("kind", "classifier") != "classifier":
            continue
        tc, info = ckpt["train_config"], ckpt["data"]
        key = row_key(tc["model"], tc["transform"])
        if ckpt["epoch"] < tc["epochs"]:  # a run still training (resumable): not a result yet
            in_progress.append({"checkpoint": path.as_posix(), "epoch": ckpt["epoch"],
                                "epochs": tc["epochs"], "test_error": round(float(ckpt["test_error"]), 2),
                                "command": command_for(tc, path) + " --resume"})
            continue
        rows.append({
            "task": tc["task"], "row": key, "model": row_title(key), "checkpoint": path.as_posix(),
            "test_error": round(float(ckpt["test_error"]), 2),
            "paper_error": PAPER.get(tc["task"], {}).get(key),
            "epochs": ckpt["epoch"], "train_minutes": round(ckpt.get("train_seconds", 0) / 60, 1),
            "n_train_digits": info["n_train_digits"], "n_test": info["n_test"],
            "is_sample": info["is_sample"], "parameters": ckpt.get("parameters", {}).get("total"),
            "command": command_for(tc, path),
        })
    from .colocalisation import collect_runs

    coloc = [{**r, "path": Path(r["path"]).as_posix()} for r in collect_runs(folder)]
    return {"note": "Our errors are on 10,000 distorted images from the full MNIST test split; "
                    "models were trained on 10,000 MNIST training digits (the paper used 60,000).",
            "paper": PAPER, "results": rows, "in_progress": in_progress, "colocalisation": coloc}


def command_for(tc: dict, path: str | os.PathLike | None = None) -> str:
    """The training command for a train_config (run with STN_DATA_DIR pointing at MNIST)."""
    parts = [f"python -m stn_explore.train --task {tc['task']} --model {tc['model']}"]
    if "st" in tc["model"]:
        parts.append(f"--transform {tc['transform']}")
    parts.append(f"--epochs {tc['epochs']}")
    if tc.get("noise") is not None:
        parts.append(f"--noise {tc['noise']}")
    if path is not None:
        parts.append(f"--out {Path(path).as_posix()}")
    return " ".join(parts)


def results_markdown(results: dict) -> str:
    """Markdown tables: ours beside the paper's, one table per task family."""
    by = {(r["task"], r["row"]): r for r in results["results"]}
    out = []
    distorted = [t for t in ("r", "rts", "p", "e") if any(k[0] == t for k in by)]

    def cell(task, key):
        r = by.get((task, key))
        paper = PAPER.get(task, {}).get(key)
        ours = f"**{r['test_error']:.2f}**" if r else "–"
        return f"{ours} ({paper})" if paper is not None else ours

    if distorted or any(k[0] == "cluttered" for k in by):
        tasks = distorted + (["cluttered"] if any(k[0] == "cluttered" for k in by) else [])
        out.append("| model | " + " | ".join(D.TASK_TITLES[t] for t in tasks) + " |")
        out.append("|---|" + "---|" * len(tasks))
        for key in ROW_ORDER:
            if any((t, key) in by for t in tasks):
                out.append(f"| {row_title(key)} | " + " | ".join(cell(t, key) for t in tasks) + " |")
        out.append("")
        out.append("% test error: **ours** (paper). " + results["note"])
    if any(k[0] == "addition" for k in by):
        out += ["", "| model | MNIST addition |", "|---|---|"]
        for key in ROW_ORDER:
            if ("addition", key) in by:
                out.append(f"| {row_title(key)} | {cell('addition', key)} |")
    if results.get("colocalisation"):
        out += ["", coloc_markdown(results["colocalisation"])]
    return "\n".join(out) + "\n"


def coloc_markdown(runs: list[dict]) -> str:
    """Co-localisation accuracy per digit, clean and noisy, beside the paper's Table 5."""
    from .colocalisation import PAPER_CLEAN, PAPER_NOISY_RANGE

    by = {(r["digit"], r["variant"]): r for r in runs}
    lo, hi = PAPER_NOISY_RANGE
    out = ["| co-localisation, digit | " + " | ".join(str(d) for d in range(10)) + " |",
           "|---|" + "---|" * 10]
    for variant, paper in (("clean", f"{PAPER_CLEAN:.0f}"), ("noisy", f"{lo:.0f}–{hi:.0f}")):
        cells = [f"**{by[(d, variant)]['accuracy']:.1f}**" if (d, variant) in by else "–" for d in range(10)]
        out.append(f"| {variant} (paper {paper}) | " + " | ".join(cells) + " |")
    out += ["", "% of held-out boxes with IoU > 0.5 (every test-split image of the digit, fixed placement); "
                "`bash checkpoints/train_coloc.sh`, trained on the 10,000-digit training subset; – = not "
                "trained yet. The paper gives 100% clean and 75–93% noisy depending on the digit."]
    return "\n".join(out)


def checkpoints_markdown(results: dict) -> str:
    """One row per checkpoint: file, the command that made it, schedule, time, error."""
    out = ["| file | task | model | test error % (paper) | epochs | training time | command |",
           "|---|---|---|---|---|---|---|"]
    for r in results["results"]:
        paper = f" ({r['paper_error']})" if r["paper_error"] is not None else ""
        out.append(f"| `{Path(r['checkpoint']).name}` | {D.TASK_TITLES[r['task']]} | {r['model']} | "
                   f"{r['test_error']:.2f}{paper} | {r['epochs']} | {r['train_minutes']:.0f} min | "
                   f"`{r['command']}` |")
    if results.get("in_progress"):
        out += ["", "Still training (resume with the command shown):", ""]
        for r in results["in_progress"]:
            out.append(f"- `{Path(r['checkpoint']).name}`: epoch {r['epoch']}/{r['epochs']}, "
                       f"test error so far {r['test_error']:.2f}% — `{r['command']}`")
    return "\n".join(out) + "\n"


def write_table(folder: str | os.PathLike = "checkpoints") -> tuple[Path, Path]:
    results = collect_results(folder)
    jpath, mpath = Path(folder) / "results.json", Path(folder) / "results.md"
    atomic_write_text(jpath, json.dumps(results, indent=1) + "\n")
    atomic_write_text(mpath, results_markdown(results) + "\n## Checkpoints\n\n" + checkpoints_markdown(results))
    return jpath, mpath


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(readme: str | os.PathLike, results: dict) -> bool:
    """Replace the block between the results markers in ``readme`` with the results table.
    Returns False (and changes nothing) if the markers are missing."""
    path = Path(readme)
    text = path.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    block = f"{README_START}\n<!-- generated by: python -m stn_explore.evaluate --table -->\n" \
            f"{results_markdown(results)}{README_END}"
    atomic_write_text(path, head + block + tail)
    return True


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

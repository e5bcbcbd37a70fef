"""The results table: the paper's errors beside ours, one row per trained checkpoint in a
folder (``checkpoints/results.{json,md}`` and the README's results block).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import distortions as D
from .checkpoint import CheckpointError, default_checkpoint_dir, load_checkpoint
from .data import make_task_set
from .io import atomic_write_text
from .mnist import load_digits

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


def comparison_rows(results: list[dict], tasks) -> list[dict]:
    """The paper's errors beside ours for ``tasks``, one row per model that either has:
    ``{"model": title, "<TASK> paper": float | None, "<TASK> ours": float | None, …}`` (None:
    the paper gives no figure / we trained no such model). ``results``: the ``results`` rows
    of :func:`collect_results`."""
    ours = {(r["task"], r["row"]): r for r in results}
    out = []
    for key in ROW_ORDER:
        if not any(key in PAPER.get(t, {}) or (t, key) in ours for t in tasks):
            continue
        row = {"model": row_title(key)}
        for t in tasks:
            r = ours.get((t, key))
            row[f"{D.TASK_TITLES[t]} paper"] = PAPER.get(t, {}).get(key)
            row[f"{D.TASK_TITLES[t]} ours"] = r["test_error"] if r else None
        out.append(row)
    return out


#: a gap worth a comment: ours at least this many points above the paper's error, and
#: GAP_RATIO times it or GAP_POINTS above it
GAP_MIN_POINTS, GAP_RATIO, GAP_POINTS = 1.0, 2.0, 5.0


def gap_notes(results: list[dict], tasks) -> list[str]:
    """Markdown sentences on what in ``tasks`` differs most from the paper: errors far above
    the paper's (see :data:`GAP_RATIO`), and transformer models that lose to our CNN where the
    paper's beat its CNN. Each names the numbers and how our model was trained."""
    ours = {(r["task"], r["row"]): r for r in results}
    notes = []
    for (task, key), r in sorted(ours.items(), key=lambda kv: (TABLE_TASKS.index(kv[0][0]), ROW_ORDER.index(kv[0][1]))):
        paper = PAPER.get(task, {}).get(key)
        if task not in tasks or paper is None:
            continue
        diff = r["test_error"] - paper
        if diff >= GAP_MIN_POINTS and (r["test_error"] >= GAP_RATIO * paper or diff >= GAP_POINTS):
            notes.append(f"{D.TASK_TITLES[task]}, {row_title(key)}: {r['test_error']:.2f}% vs the paper's "
                         f"{paper:g}% ({r['test_error'] / paper:.1f}×); trained {r['epochs']} epochs on "
                         f"{r['n_train_digits']:,} digits")
    for task in tasks:
        cnn, p_cnn = ours.get((task, "cnn")), PAPER.get(task, {}).get("cnn")
        for key in ROW_ORDER:
            r, paper = ours.get((task, key)), PAPER.get(task, {}).get(key)
            if "st" not in key or r is None or cnn is None or paper is None or p_cnn is None:
                continue
            if r["test_error"] > cnn["test_error"] and paper < p_cnn:
                notes.append(f"{D.TASK_TITLES[task]}: our {row_title(key)} ({r['test_error']:.2f}%) is above our CNN "
                             f"({cnn['test_error']:.2f}%), where the paper's is below its CNN ({paper:g}% vs "
                             f"{p_cnn:g}%)")
    return notes


#: test images per checkpoint on which the results table measures what the transformers learned
N_DIAGNOSED = 1000


def transformer_report(ckpt: dict, test_digits) -> list[dict]:
    """What a finished classifier's transformers learned (see
    :func:`stn_explore.experiments.diagnostics.diagnose`), on a fixed test set of
    :data:`N_DIAGNOSED` images made with its own recipe and test seed from ``test_digits``."""
    from . import diagnostics as G
    from .models import load_model

    info = ckpt["data"]
    arrays, _ = make_task_set(info["task"], "test", N_DIAGNOSED, info["test_seed"],
                              D.config_from_dict(info["task"], info["config"]), test_digits)
    corners = G.model_corners(load_model(ckpt), arrays["images"])
    return G.diagnose(corners, G.truth_from_arrays(arrays), arrays["images"].shape[-2:])


def collect_results(folder: str | os.PathLike | None = None, diagnose: bool = True) -> dict:
    """Read every classifier checkpoint in ``folder`` (default
    :func:`~stn_explore.experiments.checkpoint.default_checkpoint_dir`) into a results dict
    (recorded errors); with ``diagnose``, also what each finished model's transformers learned
    (``transformers``: one row per transformer, measured now on the MNIST test split of the
    current data source)."""
    folder = _folder(folder)
    rows, in_progress, transformers = [], [], []
    test_digits = None
    for path in sorted(_shown(p) for p in folder.glob("*.pt")):
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
        if diagnose and "st" in tc["model"]:
            test_digits = test_digits or load_digits("test")
            for rep in transformer_report(ckpt, test_digits):
                transformers.append({"checkpoint": path.as_posix(), "task": tc["task"], "model": row_title(key),
                                     **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in rep.items()},
                                     "digits": test_digits.source})
    from .colocalisation import collect_runs

    coloc = [{**r, "path": _shown(Path(r["path"])).as_posix()} for r in collect_runs(folder)]
    return {"note": "Our errors are on 10,000 distorted images from the full MNIST test split; "
                    "models were trained on 10,000 MNIST training digits (the paper used 60,000).",
            "paper": PAPER, "results": rows, "in_progress": in_progress, "colocalisation": coloc,
            "transformers": transformers}


def command_for(tc: dict, path: str | os.PathLike | None = None) -> str:
    """The training command for a train_config (run with STN_DATA_DIR pointing at MNIST)."""
    parts = [f"python -m stn_explore.train --task {tc['task']} --model {tc['model']}"]
    if "st" in tc["model"]:
        parts.append(f"--transform {tc['transform']}")
    parts.append(f"--epochs {tc['epochs']}")
    if tc.get("noise") is not None:
        parts.append(f"--noise {tc['noise']}")
    # recipe options that differ from the CLI's defaults (older runs lack the keys: defaults)
    for key, flag, default in (("optimizer", "--optimizer", "sgd"), ("lr", "--lr", 0.05),
                               ("loc_lr_scale", "--loc-lr-scale", 0.1), ("st_out_size", "--st-out-size", 0),
                               ("loc_pool", "--loc-pool", 1), ("ramp_epochs", "--ramp-epochs", 0),
                               ("st_init_scale", "--st-init-scale", 1.0),
                               ("ramp_head_lr_scale", "--ramp-head-lr-scale", 1.0),
                               ("loc_hidden", "--loc-hidden", 0),
                               ("weight_decay", "--weight-decay", 0.0), ("seed", "--seed", 0),
                               ("n_train", "--n-train", 0), ("test_seed", "--test-seed", 0),
                               ("n_test", "--n-test", 10000)):
        if tc.get(key, default) != default:
            parts.append(f"{flag} {tc[key]:g}" if isinstance(tc[key], float) else f"{flag} {tc[key]}")
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


def transformers_markdown(results: dict) -> str:
    """What each transformer learned: one row per transformer of every finished ST model."""
    rows = results.get("transformers") or []
    if not rows:
        return ""

    def f(v):
        return "" if v is None else f"{v:.2f}"

    out = [f"What each transformer learned, on a fixed test set of {N_DIAGNOSED} images per model (its recipe "
           f"and test seed, made from the {rows[0]['digits']}), measured by `python -m stn_explore.evaluate --table` "
           "(`--checkpoint … --grids out.npz` gives the same for any test set): correlation of the rotation it "
           "undoes with the applied one, of its region's centre with the digit's, of its size with the applied "
           "scale; the median IoU of its region's box with the digit's box; the spread of its region across "
           "images (collapsed below 0.02).", "",
           "| file | task | model | transformer | rotation r | centre r | size r | median IoU | spread | verdict |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| `{Path(r['checkpoint']).name}` | {D.TASK_TITLES[r['task']]} | {r['model']} | "
                   f"{r['transformer'] + 1} | {f(r['rotation_r'])} | {f(r['centre_r'])} | {f(r['size_r'])} | "
                   f"{f(r['median_iou'])} | {r['spread']:.3f} | {r['verdict']} |")
    return "\n".join(out) + "\n"


def write_table(folder: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` for the checkpoints in ``folder`` (default
    :func:`~stn_explore.experiments.checkpoint.default_checkpoint_dir`) into that folder."""
    folder = _folder(folder)
    results = collect_results(folder)
    jpath, mpath = folder / "results.json", folder / "results.md"
    atomic_write_text(jpath, json.dumps(results, indent=1) + "\n")
    learned = transformers_markdown(results)
    atomic_write_text(mpath, results_markdown(results) + "\n## Checkpoints\n\n" + checkpoints_markdown(results)
                      + ("\n## What the transformers learned\n\n" + learned if learned else ""))
    return jpath, mpath


def _shown(path: Path) -> Path:
    """``path`` as the table shows it: relative to the working directory when below it (the
    checkout's ``checkpoints/…``), else as it is."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)


def _folder(folder: str | os.PathLike | None) -> Path:
    return default_checkpoint_dir() if folder is None else Path(folder)


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

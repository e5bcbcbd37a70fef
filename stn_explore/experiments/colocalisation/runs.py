"""The shipped runs in checkpoints/: paths, loading for display, the results table rows.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

from ..checkpoint import default_checkpoint_dir
from .recording import load_recording
from .training import recording_name

# ----------------------------------------------------------------------------- shipped runs
#: The paper's Table 5 gives 100% without noise and a per-digit range with noise.
PAPER_CLEAN = 100.0
PAPER_NOISY_RANGE = (75.0, 93.0)


#: Where the shipped runs live: a folder, or None for :func:`default_checkpoint_dir` read at
#: every call. Set at import to that function's answer, so that code reading the attribute
#: directly gets a folder; new code calls :func:`runs_folder`. Tests assign a folder here.
RUNS_FOLDER = default_checkpoint_dir()


def runs_folder(folder=None):
    """``folder`` if given, else :data:`RUNS_FOLDER`, else :func:`default_checkpoint_dir`."""
    from pathlib import Path

    if folder is not None:
        return Path(folder)
    return Path(RUNS_FOLDER) if RUNS_FOLDER is not None else default_checkpoint_dir()


def run_path(digit: int, noise: int, folder=None):
    """``<folder>/coloc_<digit>_<clean|noisy>.pt`` (default folder :func:`runs_folder`)."""
    return runs_folder(folder) / recording_name(digit, noise)


def load_run(path) -> dict:
    """A co-localisation checkpoint for display: ``{"recording": arrays (see
    :func:`recording_arrays`), "final", "config", "data", "iteration", "seconds"}``."""
    from ..checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, kind="colocalisation")
    return run_view(ckpt)


def run_view(ckpt: dict) -> dict:
    return {"recording": load_recording(ckpt), "final": ckpt.get("final"), "config": ckpt["config"],
            "data": ckpt["data"], "iteration": int(ckpt["iteration"]),
            "seconds": float(ckpt.get("seconds", 0.0)), "stopped": bool(ckpt.get("stopped")),
            "attempts": ckpt.get("attempts")}


def attempts_note(attempts: list[dict] | None) -> str:
    """One sentence on a run kept from several attempts (see the CLI's ``--retries``), or ""."""
    if not attempts or len(attempts) < 2:
        return ""
    kept = min(attempts, key=lambda a: a["final_training_loss"])
    others = ", ".join(f"seed {a['seed']} ended at loss {a['final_training_loss']:.2f} "
                       f"({a['accuracy']:.0f}% correct)" for a in attempts if a is not kept)
    return (f" Kept from {len(attempts)} attempts by the lowest final training loss (no labels used): "
            f"seed {kept['seed']}, loss {kept['final_training_loss']:.3f}; {others}.")


def collect_runs(folder=None) -> list[dict]:
    """One row per finished co-localisation checkpoint ``coloc_*.pt`` in ``folder``: digit,
    variant, accuracy (% IoU > 0.5 on the held-out images), mean IoU, n, iterations, file."""
    from ..checkpoint import CheckpointError, load_checkpoint

    rows = []
    for path in sorted(runs_folder(folder).glob("coloc_*.pt")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError:
            continue
        if ckpt.get("kind") != "colocalisation" or not ckpt.get("final"):
            continue
        cfg, f = ckpt["config"], ckpt["final"]
        rows.append({"digit": int(cfg["digit"]), "variant": "noisy" if cfg["noise"] else "clean",
                     "noise": int(cfg["noise"]), "accuracy": round(float(f["accuracy"]), 1),
                     "mean_iou": round(float(f["mean_iou"]), 3), "n": int(f["n"]),
                     "iterations": int(ckpt["iteration"]), "path": str(path),
                     "n_train_digits": int(ckpt["data"]["n_train_digits"]),
                     "is_sample": bool(ckpt["data"]["is_sample"])})
    return sorted(rows, key=lambda r: (r["digit"], r["noise"]))

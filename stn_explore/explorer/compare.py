"""CNN vs ST-CNN on the same digits: predictions, the transformer's view, extra distortions.

Convention: images are uint8 ``(N, H, W)`` (or ``(N, C, H, W)``) as in the ``.npz`` contract;
models take ``(B, C, H, W)`` floats in [0, 1]; see CONVENTIONS.md for coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.geometry import theta_from_params
from ..core.transformer import warp
from ..experiments import diagnostics as G
from ..experiments.checkpoint import CheckpointError, load_checkpoint
from ..experiments.data import make_task_set
from ..experiments.distortions import config_from_dict, image_shape, to_batch
from ..experiments.mnist import load_digits
from ..experiments.models import load_model
from ..experiments.results import command_for

PAIR = ("cnn", "st-cnn_affine")  # checkpoint name suffixes compared on /compare
#: MNIST addition: the CNN against one of the parallel-transformer models (user's choice)
ADDITION_ST_ROWS = ("2st-fcn_affine", "2st-fcn_projective", "2st-fcn_tps", "2st-cnn_affine")


def pair_for(task: str, st_row: str | None = None) -> tuple[str, str]:
    """The two checkpoint rows /compare shows for a task."""
    if task == "addition":
        row = st_row or ADDITION_ST_ROWS[0]
        if row not in ADDITION_ST_ROWS:
            raise ValueError(f"unknown addition model {row!r}; expected one of {ADDITION_ST_ROWS}")
        return ("cnn", row)
    return PAIR


def checkpoint_path(folder: str | Path, task: str, row: str) -> Path:
    return Path(folder) / f"{task}_{row}.pt"


def missing_command(task: str, row: str, folder: str | Path = "checkpoints") -> str:
    """The command that makes a missing checkpoint."""
    model, _, transform = row.partition("_")
    # the schedules of checkpoints/train_all.sh and train_addition.sh
    epochs = 200 if task == "addition" and model.endswith("fcn") else 50
    tc = {"task": task, "model": model, "transform": transform or "affine", "epochs": epochs, "noise": None}
    return "STN_DATA_DIR=/path/to/mnist " + command_for(tc, checkpoint_path(folder, task, row))


@dataclass
class Loaded:
    model: torch.nn.Module
    checkpoint: dict
    path: Path


def is_finished(ckpt: dict) -> bool:
    """True once a run reached the epochs it was planned for (earlier it is still training)."""
    return int(ckpt["epoch"]) >= int(ckpt["train_config"]["epochs"])


def load_pair(folder: str | Path, task: str, st_row: str | None = None
              ) -> tuple[tuple[Loaded | None, Loaded | None], dict[str, str]]:
    """The (CNN, transformer model) pair of a task, and why any of them is missing: a model is
    None when its checkpoint is missing, unreadable or still training; ``problems[row]`` then
    says so (followed on the page by :func:`missing_command`)."""
    out, problems = [], {}
    for row in pair_for(task, st_row):
        path = checkpoint_path(folder, task, row)
        loaded = None
        if not path.is_file():
            problems[row] = f"Missing checkpoint `{path}`. Make it with:"
        else:
            try:
                loaded = load_classifier(path)
            except CheckpointError as exc:
                problems[row] = f"`{path}` cannot be used ({exc}). Remake it with:"
            else:
                if not is_finished(loaded.checkpoint):
                    problems[row] = (f"`{path}` is still training (epoch {loaded.checkpoint['epoch']}/"
                                     f"{loaded.checkpoint['train_config']['epochs']}). Continue it with:")
                    loaded = None
        out.append(loaded)
    return (out[0], out[1]), problems


def test_images(task: str, config: dict, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """A task's fixed test set of ``n`` images (recipe ``config`` as stored in a checkpoint,
    seed 0 like the checkpoints' own test sets; ``data export --n n --seed 0`` writes the same) from the MNIST test split of the
    current data source: ``images``, ``labels``, and the source's description."""
    cfg = config_from_dict(task, config)
    arrays, meta = make_task_set(task, "test", n, seed, cfg, load_digits("test"))
    return arrays["images"], arrays["labels"], meta["source"]


def learned(model: torch.nn.Module, task: str, config: dict, n: int, seed: int = 0) -> dict:
    """What the model's transformers learned, on the task's fixed test set of ``n`` images
    (seed ``seed``): ``reports`` (one per transformer, :func:`stn_explore.experiments.diagnostics.diagnose`),
    ``stats`` (per transformer: ``rotation``, ``centre``, ``size``, ``box`` per image, see
    :func:`~stn_explore.experiments.diagnostics.region_stats`), ``iou`` (per transformer, or
    None without boxes) and ``truth`` (the applied distortions)."""
    cfg = config_from_dict(task, config)
    arrays, _ = make_task_set(task, "test", n, seed, cfg, load_digits("test"))
    corners = G.model_corners(model, arrays["images"])
    truth = G.truth_from_arrays(arrays)
    size = arrays["images"].shape[-2:]
    stats = [G.region_stats(corners[:, k], size) for k in range(corners.shape[1])]
    return {"reports": G.diagnose(corners, truth, size), "stats": stats, "truth": truth,
            "iou": [G.box_iou(s["box"], truth["boxes"]) if "boxes" in truth else None for s in stats]}


def attention_summary(shares: list[np.ndarray]) -> list[str]:
    """One line per parallel transformer: how often it takes its output ink from one channel
    (``shares`` from :func:`ink_share` over a test set)."""
    return [f"transformer {k + 1}: median {np.nanmedian(sh[:, 0]):.0%}; "
            f"> 80% from channel 1 on {np.mean(sh[:, 0] > 0.8):.0%} of images, "
            f"> 80% from channel 2 on {np.mean(sh[:, 1] > 0.8):.0%}" for k, sh in enumerate(shares)]


def load_classifier(path: str | Path) -> Loaded:
    """A trained classifier in eval mode, its weights in channels-last memory format for fast
    CPU inference (raises CheckpointError with a clear message)."""
    ckpt = load_checkpoint(path)
    if ckpt.get("kind", "classifier") != "classifier":
        raise CheckpointError(f"{path} is not a classifier checkpoint")
    return Loaded(load_model(ckpt).to(memory_format=torch.channels_last), ckpt, Path(path))


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, batch_size: int = 200) -> dict:
    """Class probabilities ``(N, K)`` and, for models with transformers, each transformer's
    grid (``grids``: list of ``(N, H', W', 2)``) and output (``vs``: list of ``(N, C, H', W')``);
    ``grid`` / ``v`` are the first transformer's.

    Inputs go in channels-last batches of ``batch_size``: on a 2-core CPU that is about 2×
    faster than contiguous batches of 500 (``python -m benchmarks.bench_sweep``)."""
    model.eval()
    probs, grids, vs = [], [], []
    for s in range(0, len(images), batch_size):
        x = to_batch(images[s:s + batch_size]).contiguous(memory_format=torch.channels_last)
        logits, aux = model(x, return_aux=True)
        probs.append(torch.softmax(logits, 1))
        grids.append(aux["grid"])
        vs.append(aux["v"])
    out = {"probs": torch.cat(probs).numpy()}
    n_st = len(grids[0]) if grids else 0
    if n_st:
        out["grids"] = [torch.cat([g[k] for g in grids]).numpy() for k in range(n_st)]
        out["vs"] = [torch.cat([v[k] for v in vs]).numpy() for k in range(n_st)]
        out["grid"], out["v"] = out["grids"][0], out["vs"][0]
    return out


#: each channel's share of a transformer output's ink (MNIST addition); see diagnostics.ink_share
ink_share = G.ink_share


def extra_distortion(images: np.ndarray, angle: float = 0.0, scale: float = 1.0,
                     shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Apply a user's extra rotation (degrees, counter-clockwise on screen), scale (> 1 makes
    the digit larger) and shift (normalised units, x right, y down) to uint8 images, about the
    image centre. Returns uint8 images of the same shape."""
    if not np.isfinite([angle, scale, *shift]).all() or scale <= 0:
        raise ValueError(f"extra distortion needs finite values and scale > 0, got angle={angle}, "
                         f"scale={scale}, shift={shift}")
    x = to_batch(images)
    # θ maps output → input: the inverse of "rotate by angle, scale, then shift"
    theta = theta_from_params(float(angle), 1.0 / float(scale))[None]
    t = torch.tensor(shift, dtype=theta.dtype)
    theta[0, :, 2] = -(theta[0, :, :2] @ t)
    v = warp(x, theta.expand(len(x), -1, -1).contiguous(), "affine")
    v = (v.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return v[:, 0] if images.ndim == 3 else v


def disagreements(labels: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """Indices where model A is wrong and B right (``a_wrong_b_right``) and the reverse."""
    a_ok, b_ok = pred_a == labels, pred_b == labels
    return {"a_wrong_b_right": np.flatnonzero(~a_ok & b_ok), "a_right_b_wrong": np.flatnonzero(a_ok & ~b_ok),
            "both_wrong": np.flatnonzero(~a_ok & ~b_ok)}


# ----------------------------------------------------------------------------- robustness sweep
#: MNIST test digits per sweep point (the first ones of the test split)
SWEEP_N = 500
#: the stored sweeps, beside the checkpoints: written by ``python -m stn_explore.explorer.compare --sweeps``
SWEEPS_FILE = "sweeps.json"
#: tasks whose pair is swept (MNIST addition has no single digit to place at the centre)
SWEEP_TASKS = ("rts", "r", "p", "e", "cluttered")
SWEEPS = {
    "rotation": (np.arange(-180, 181, 10, dtype=np.float64), "extra rotation (°)"),
    "scale": (np.round(np.linspace(0.5, 1.5, 21), 3), "extra scale"),
    "shift": (np.round(np.linspace(-0.6, 0.6, 25), 3), "extra horizontal shift (normalised units)"),
}


def base_images(task: str, digits: np.ndarray, canvas: int) -> np.ndarray:
    """Undistorted digits ``uint8 (N, 28, 28)`` centred at scale 1 on a task's canvas
    (``canvas`` pixels): the starting point of a sweep."""
    if canvas == digits.shape[-1]:
        return np.ascontiguousarray(digits)
    off = (canvas - digits.shape[-1]) // 2
    out = np.zeros((len(digits), canvas, canvas), np.uint8)
    out[:, off:off + digits.shape[-2], off:off + digits.shape[-1]] = digits
    return out


def sweep_base(task: str, config: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` MNIST test digits, undistorted and centred on the task's canvas, and
    their labels: what a robustness sweep distorts."""
    d = load_digits("test")
    canvas = image_shape(task, config_from_dict(task, config))[-1]
    return base_images(task, d.images[:n], canvas), d.labels[:n]


def distorted_for(kind: str, value: float, images: np.ndarray) -> np.ndarray:
    if kind not in SWEEPS:
        raise ValueError(f"unknown sweep {kind!r}; expected one of {tuple(SWEEPS)}")
    if kind == "rotation":
        return extra_distortion(images, angle=value)
    if kind == "scale":
        return extra_distortion(images, scale=value)
    return extra_distortion(images, shift=(value, 0.0))


def sweep_point(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, kind: str,
                value: float) -> float:
    """% error of ``model`` on ``images`` after one extra distortion ``kind = value``."""
    x = distorted_for(kind, float(value), images)
    pred = predict(model, x)["probs"].argmax(1)
    return float((pred != labels).mean() * 100)


def sweep_curves(models: dict[str, torch.nn.Module], images: np.ndarray, labels: np.ndarray,
                 kind: str, values=None, on_point=None) -> dict[str, list[float]]:
    """Every model's % error over one sweep (``values`` default :data:`SWEEPS`'s):
    ``{name: [error at each value]}``; ``on_point(i, n)`` after each value."""
    values = SWEEPS[kind][0] if values is None else values
    out: dict[str, list[float]] = {name: [] for name in models}
    for i, v in enumerate(values):
        for name, model in models.items():
            out[name].append(sweep_point(model, images, labels, kind, float(v)))
        if on_point is not None:
            on_point(i + 1, len(values))
    return out


def file_sha256(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sweep_identity(folder: str | Path, task: str, digits_md5: str, n: int = SWEEP_N) -> dict:
    """What a stored sweep of ``task`` must match to be shown: the sha256 of both checkpoint
    files, the md5 of the test digits it distorted (``Digits.content_md5()["images"]``) and n."""
    return {"checkpoints": {row: file_sha256(checkpoint_path(folder, task, row)) for row in PAIR},
            "digits_md5": digits_md5, "n": int(n)}


def find_sweep(stored: dict, task: str, kind: str, identity: dict) -> dict | None:
    """The stored curves ``{name: errors}`` of one sweep if they were measured on exactly these
    checkpoints, digits and sweep values; else None (the caller measures them)."""
    want = np.asarray(SWEEPS[kind][0], dtype=np.float64)
    for s in stored.get("sweeps", []):
        if s["task"] == task and s["kind"] == kind and s["identity"] == identity \
                and len(s["values"]) == len(want) and np.allclose(s["values"], want):
            return s["errors"]
    return None


def write_sweeps(folder: str | Path, tasks=SWEEP_TASKS, n: int = SWEEP_N, log=print) -> Path:
    """Measure every sweep of every task in ``tasks`` whose CNN / ST-CNN pair is in ``folder`` and
    store them in ``folder/sweeps.json``, with what they were measured on (see
    :func:`sweep_identity`) so the page shows them only while they still hold. The file's sweeps
    of other tasks are kept."""
    import json
    import time

    from ..experiments.io import atomic_write_text

    digits = load_digits("test")
    md5 = digits.content_md5()["images"]
    out = {"note": "% error of each task's CNN and ST-CNN on the first n MNIST test digits, undistorted at the "
                   "centre of the task's canvas, after one extra rotation, scale or horizontal shift. Made by "
                   "`python -m stn_explore.explorer.compare --sweeps`; /compare shows a curve only while the "
                   "sha256 of both checkpoints and the md5 of the digits match.",
           "digits": digits.source, "sweeps": []}
    for task in tasks:
        (cnn, stcnn), problems = load_pair(folder, task)
        if problems:
            log(f"{task}: skipped ({'; '.join(problems.values())})")
            continue
        images, labels = sweep_base(task, stcnn.checkpoint["data"]["config"], n)
        identity = sweep_identity(folder, task, md5, n)
        for kind, (values, _) in SWEEPS.items():
            t = time.perf_counter()
            errors = sweep_curves({"CNN": cnn.model, "ST-CNN": stcnn.model}, images, labels, kind)
            out["sweeps"].append({"task": task, "kind": kind, "values": np.asarray(values).tolist(),
                                  "errors": {k: [round(e, 4) for e in v] for k, v in errors.items()},
                                  "identity": identity})
            log(f"{task} {kind}: {time.perf_counter() - t:.0f} s")
    path = Path(folder) / SWEEPS_FILE
    out["sweeps"] = sorted(_kept_sweeps(path, tasks) + out["sweeps"], key=lambda s: (
        SWEEP_TASKS.index(s["task"]) if s.get("task") in SWEEP_TASKS else len(SWEEP_TASKS), list(SWEEPS).index(
            s["kind"]) if s.get("kind") in SWEEPS else len(SWEEPS)))
    atomic_write_text(path, json.dumps(out, indent=1) + "\n")
    return path


def _kept_sweeps(path: Path, tasks) -> list[dict]:
    """The sweeps stored in ``path`` for tasks other than ``tasks``: measuring some tasks again
    keeps the others' curves (each carries the identity it was measured on, checked when shown)."""
    import json

    try:
        stored = json.loads(path.read_text())
        return [s for s in stored.get("sweeps", []) if isinstance(s, dict) and s.get("task") not in tasks]
    except (OSError, ValueError, AttributeError):  # no file yet, or not one of ours: nothing to keep
        return []


def training_range(task: str, kind: str, cfg: dict) -> tuple[float, float] | None:
    """The range of the sweep's quantity that the task's training distortions cover (for
    shading), or None when training never varies it."""
    if kind == "rotation" and "max_angle" in cfg:
        return (-cfg["max_angle"], cfg["max_angle"])
    if kind == "scale" and "scale_min" in cfg:
        return (cfg["scale_min"], cfg["scale_max"])
    if kind == "shift" and task == "rts":
        return (-(1 - 28 / cfg["canvas"]), 1 - 28 / cfg["canvas"])  # at scale 1
    if kind == "shift" and task in ("cluttered", "coloc"):
        half = (cfg["canvas"] - 28) / cfg["canvas"]
        return (-half, half)
    return None


# ----------------------------------------------------------------------------- your own digit
def prepare_digit(image: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Turn any image ``(H, W)`` / ``(H, W, 3)`` (floats in [0, 1]) into an MNIST-style digit:
    grayscale, inverted if it is dark-on-light, cropped to its ink, fitted into 20×20 keeping
    its aspect ratio and centred by its centre of mass in 28×28 (as MNIST was made).
    Returns ``uint8 (28, 28)`` and the list of steps applied (to show the user)."""
    from PIL import Image

    img = np.asarray(image, dtype=np.float64)
    steps = []
    if img.ndim == 3:
        img = img[..., :3].mean(-1)
        steps.append("converted to grayscale")
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"expected an image (H, W) or (H, W, 3), got shape {np.shape(image)}")
    # the border tells the background: light background → dark ink → invert
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    if np.median(border) > 0.5:
        img, border = 1.0 - img, 1.0 - border
        steps.append("inverted (it was dark on light; MNIST is light on dark)")
    background = np.median(border)
    img = np.clip((img - background) / max(img.max() - background, 1e-6), 0, 1)  # background 0, ink 1
    ink = np.argwhere(img > 0.2)
    if len(ink) == 0:
        raise ValueError("the image has no visible strokes to classify")
    (r0, c0), (r1, c1) = ink.min(0), ink.max(0) + 1
    crop = img[r0:r1, c0:c1]
    h, w = crop.shape
    s = 20.0 / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    fitted = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS),
                        dtype=np.float64) / 255
    steps.append(f"cropped to its strokes ({w}×{h} px) and fitted into 20×20")
    out = np.zeros((28, 28))
    rows, cols = np.indices(fitted.shape)
    mass = max(fitted.sum(), 1e-9)
    cy, cx = (rows * fitted).sum() / mass, (cols * fitted).sum() / mass
    top = int(np.clip(round(13.5 - cy), 0, 28 - fitted.shape[0]))
    left = int(np.clip(round(13.5 - cx), 0, 28 - fitted.shape[1]))
    out[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
    steps.append("centred by its centre of mass in 28×28")
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), steps


def main(argv: list[str] | None = None) -> int:
    """``python -m stn_explore.explorer.compare --sweeps``: store /compare's robustness sweeps."""
    import argparse

    from ..experiments.checkpoint import default_checkpoint_dir

    ap = argparse.ArgumentParser(prog="python -m stn_explore.explorer.compare", description=main.__doc__)
    ap.add_argument("--sweeps", action="store_true", required=True,
                    help=f"measure every sweep of every task pair and write <folder>/{SWEEPS_FILE}")
    ap.add_argument("--folder", default=None, help="checkpoint folder (default: the app's)")
    ap.add_argument("--tasks", nargs="+", default=list(SWEEP_TASKS), choices=SWEEP_TASKS,
                    help="measure only these tasks' sweeps (default: all); the file keeps the others'")
    args = ap.parse_args(argv)
    path = write_sweeps(args.folder or default_checkpoint_dir(), tuple(args.tasks))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""CNN vs ST-CNN on the same digits: predictions, the transformer's view, extra distortions.

Convention: images are uint8 ``(N, H, W)`` (or ``(N, C, H, W)``) as in the ``.npz`` contract;
models take ``(B, C, H, W)`` floats in [0, 1]; see CONVENTIONS.md for coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, load_checkpoint
from .evaluate import command_for, load_model
from .geometry import theta_from_params
from .transformer import warp

PAIR = ("cnn", "st-cnn_affine")  # checkpoint name suffixes compared on /compare


def checkpoint_path(folder: str | Path, task: str, row: str) -> Path:
    return Path(folder) / f"{task}_{row}.pt"


def missing_command(task: str, row: str, folder: str | Path = "checkpoints") -> str:
    """The command that makes a missing checkpoint."""
    model, _, transform = row.partition("_")
    tc = {"task": task, "model": model, "transform": transform or "affine", "epochs": 50, "noise": None}
    return "STN_DATA_DIR=/path/to/mnist " + command_for(tc, checkpoint_path(folder, task, row))


@dataclass
class Loaded:
    model: torch.nn.Module
    checkpoint: dict
    path: Path


def load_classifier(path: str | Path) -> Loaded:
    """A trained classifier in eval mode (raises CheckpointError with a clear message)."""
    ckpt = load_checkpoint(path)
    if ckpt.get("kind", "classifier") != "classifier":
        raise CheckpointError(f"{path} is not a classifier checkpoint")
    return Loaded(load_model(ckpt), ckpt, Path(path))


def to_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W)`` / ``(N, C, H, W)`` → float ``(N, C, H, W)`` in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255)
    return x.unsqueeze(1) if x.dim() == 3 else x


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, batch_size: int = 500) -> dict:
    """Class probabilities ``(N, K)`` and, for models with a transformer, the first
    transformer's grid ``(N, H', W', 2)`` and output V ``(N, C, H', W')``."""
    model.eval()
    probs, grids, vs = [], [], []
    for s in range(0, len(images), batch_size):
        logits, aux = model(to_batch(images[s:s + batch_size]), return_aux=True)
        probs.append(torch.softmax(logits, 1))
        if aux["grid"]:
            grids.append(aux["grid"][0])
            vs.append(aux["v"][0])
    out = {"probs": torch.cat(probs).numpy()}
    if grids:
        out["grid"] = torch.cat(grids).numpy()
        out["v"] = torch.cat(vs).numpy()
    return out


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

"""Images of one digit class on the 84×84 canvas, the held-out set, and localisation accuracy.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import distortions as D
from .boxes import crop_quads, quad_box_iou
from .model import ColocNet


# ----------------------------------------------------------------------------- data
def class_pool(digits, digit: int) -> np.ndarray:
    """Indices of the digits of one class in a :class:`~stn_explore.experiments.mnist.Digits` pool."""
    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    idx = np.flatnonzero(np.asarray(digits.labels) == int(digit))
    if len(idx) == 0:
        raise ValueError(f"no digits of class {digit} in {digits.source}")
    return idx


def coloc_config(noise: int) -> D.ColocConfig:
    if noise < 0:
        raise ValueError(f"noise must be ≥ 0 clutter patches, got {noise}")
    return D.ColocConfig(n_clutter=int(noise))


def make_images(digits, indices: np.ndarray, noise: int, gen: torch.Generator) -> dict:
    """Co-localisation images of the given digits (clutter from any class of the pool):
    ``images uint8 (N, 84, 84)``, ``boxes float32 (N, 4)``."""
    out = D.generate("coloc", digits.images, digits.labels, len(indices), gen, coloc_config(noise),
                     indices=indices)
    return {"images": out["images"], "boxes": out["boxes"], "labels": out["labels"]}


def held_out_set(test_digits, digit: int, noise: int, seed: int, n: int = 0) -> dict:
    """The fixed held-out images of a run: every test-split digit of the class once (or the
    first ``n``), placed with a fixed seed."""
    idx = class_pool(test_digits, digit)
    g = torch.Generator().manual_seed(seed)
    idx = idx[torch.randperm(len(idx), generator=g).numpy()]
    if n:
        idx = idx[:n]
    return make_images(test_digits, idx, noise, torch.Generator().manual_seed(seed + 1))


@torch.no_grad()
def predict_quads(model: ColocNet, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted crop quadrilaterals ``float32 (N, 4, 2)`` (pixels) for uint8 ``(N, 84, 84)``."""
    model.eval()
    dev = model.crop_scale.device
    out = []
    for s in range(0, len(images), batch_size):
        x = D.to_batch(images[s:s + batch_size]).to(dev)
        out.append(crop_quads(model.theta(x).cpu(), model.args.canvas).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 4, 2), np.float32)


def localisation_accuracy(model: ColocNet, images: np.ndarray, boxes: np.ndarray,
                          threshold: float = 0.5) -> dict:
    """Share (%) of images whose predicted box has IoU > ``threshold`` with the ground truth."""
    quads = predict_quads(model, images)
    iou = quad_box_iou(quads, boxes)
    return {"accuracy": float((iou > threshold).mean() * 100) if len(iou) else float("nan"),
            "mean_iou": float(iou.mean()) if len(iou) else float("nan"), "n": int(len(iou)),
            "quads": quads, "iou": iou}

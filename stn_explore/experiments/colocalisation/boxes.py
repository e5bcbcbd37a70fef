"""The window's geometry: raw parameters → θ, the crop's quadrilateral in the image, its IoU with a box.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ...core._checks import shape_str
from ...core.geometry import normalized_to_pixel
from .. import distortions as D

CANVAS = 84
CROP = 28
#: What the transformer may do: ``translate`` — a fixed 28×28 crop that moves (the paper's
#: "crop a 28×28 view"); ``attention`` — scale and translation (eq. 2); ``affine`` — 6 params.
COLOC_TRANSFORMS = ("translate", "attention", "affine")
NOISY = D.NOISY_COLOC.n_clutter  # clutter patches of the "noisy" variant
#: ``attention`` starts at the base window size (sigmoid(−4) ≈ 2% larger) and may grow.
ATTENTION_START = 4.0


# ----------------------------------------------------------------------------- geometry
def params_to_theta(kind: str, raw: torch.Tensor, scale: float | torch.Tensor = CROP / CANVAS) -> torch.Tensor:
    """Regressed values ``(B, P)`` → θ ``(B, 2, 3)`` of a crop window of the image.

    ``scale`` is the window's base size as a share of the image (28/84 = a native 28×28
    crop of 84×84; larger early in training, see :class:`ColocConfig`); at zero parameters
    the window is centred. Translations are squashed with ``tanh`` so the window stays inside
    the image. ``translate``: P = 2 (tx, ty); ``attention``: P = 3 (log-scale, tx, ty; the
    window may grow from ``scale`` up to the whole image); ``affine``: P = 6 (a perturbation
    of the base window's θ).
    """
    s0 = torch.as_tensor(scale, dtype=raw.dtype)
    b = raw.shape[0]
    if kind == "translate":
        t = (1 - s0) * torch.tanh(raw)
        s = s0.expand(b)
        z = torch.zeros_like(s)
        return torch.stack((torch.stack((s, z, t[:, 0]), -1), torch.stack((z, s, t[:, 1]), -1)), -2)
    if kind == "attention":
        s = s0 + (1 - s0) * torch.sigmoid(raw[:, 0] - ATTENTION_START)
        t = (1 - s)[:, None] * torch.tanh(raw[:, 1:])
        z = torch.zeros_like(s)
        return torch.stack((torch.stack((s, z, t[:, 0]), -1), torch.stack((z, s, t[:, 1]), -1)), -2)
    if kind == "affine":
        one, z = torch.ones_like(s0), torch.zeros_like(s0)
        base = torch.stack((torch.stack((s0, z, z)), torch.stack((z, s0, z))))
        return base + raw.view(b, 2, 3) * torch.stack((torch.stack((s0, s0, one)), torch.stack((s0, s0, one))))
    raise ValueError(f"unknown co-localisation transform {kind!r}; expected one of {COLOC_TRANSFORMS}")


def n_raw_params(kind: str) -> int:
    return {"translate": 2, "attention": 3, "affine": 6}[kind]


def crop_quads(theta: torch.Tensor, canvas: int = CANVAS) -> torch.Tensor:
    """Where the crop's output frame lies in the input: ``(B, 4, 2)`` pixel ``(x, y)`` corners
    (top-left, top-right, bottom-right, bottom-left of the output) for θ ``(B, 2, 3)``.

    The output frame's edges are normalised ±1 (pixel edges, ``align_corners=False``), so an
    identity-sized 28×28 window at pixel offset ``o`` gives ``[o − 0.5, o + 27.5]``, the same
    convention as the ground-truth boxes.
    """
    if theta.dim() != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta must have shape (B, 2, 3), got {shape_str(theta)}")
    corners = theta.new_tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    pts = corners @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]
    return normalized_to_pixel(pts, (canvas, canvas))


def _polygon_area(p: np.ndarray) -> float:
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _clip(poly: list, inside: Callable, cross: Callable) -> list:
    out = []
    for i, cur in enumerate(poly):
        prev = poly[i - 1]
        if inside(cur):
            if not inside(prev):
                out.append(cross(prev, cur))
            out.append(cur)
        elif inside(prev):
            out.append(cross(prev, cur))
    return out


def _clip_to_box(quad: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman: the part of a polygon inside an axis-aligned box."""
    poly = [tuple(p) for p in quad]
    for axis, bound, keep_above in ((0, box[0], True), (0, box[2], False),
                                    (1, box[1], True), (1, box[3], False)):
        if not poly:
            break

        def inside(p, a=axis, b=bound, up=keep_above):
            return p[a] >= b if up else p[a] <= b

        def cross(p, q, a=axis, b=bound):
            t = (b - p[a]) / (q[a] - p[a])
            return (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))

        poly = _clip(poly, inside, cross)
    return np.asarray(poly, dtype=np.float64).reshape(-1, 2)


def quad_box_iou(quads, boxes) -> np.ndarray:
    """IoU of convex quadrilaterals ``(N, 4, 2)`` with axis-aligned boxes ``(N, 4)`` =
    ``x0, y0, x1, y1`` (both in pixels) → ``(N,)``."""
    quads = np.asarray(quads, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    if quads.ndim != 3 or quads.shape[1:] != (4, 2):
        raise ValueError(f"quads must have shape (N, 4, 2), got {tuple(quads.shape)}")
    if boxes.shape != (len(quads), 4):
        raise ValueError(f"boxes must have shape ({len(quads)}, 4), got {tuple(boxes.shape)}")
    if not (np.isfinite(quads).all() and np.isfinite(boxes).all()):
        raise ValueError("quads and boxes must be finite")
    out = np.zeros(len(quads))
    for i, (q, b) in enumerate(zip(quads, boxes)):
        inter = _polygon_area(_clip_to_box(q, b))
        union = _polygon_area(q) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        out[i] = inter / union if union > 0 else 0.0
    return out

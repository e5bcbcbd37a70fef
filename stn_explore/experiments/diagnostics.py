"""What did a trained transformer learn? Its sampling region on each test image, compared
with the distortion that made the image.

The *sampling region* of a transformer on an image is where its output frame lands in the
input: the four corners ``(±1, ±1)`` of V (outer edges, CONVENTIONS.md) mapped through the
transform — through its best affine fit for projective and TPS transforms, see
:func:`region_corners` — in the order TL, TR, BR, BL of the output, normalised input
coordinates. From it:

* **centre** — the mean of the four corners;
* **size** — ``sqrt(area) / 2``: 1 for the whole input, 0.5 for a region a quarter its area;
* **rotation undone** — the angle (degrees) that the region's top edge makes with the x axis,
  negated. A transformer that exactly inverts a distortion rotating the digit by ``a`` (the
  recipes' ``angle``: canvas → digit is ``R(a)``) samples with ``R(-a)``: its top edge points at
  ``-a``, so it scores ``a`` here and the correlation with the applied angles is 1;
* **box** — the region's axis-aligned bounding box in pixels, for the IoU with the digit's
  ground-truth box (pixel-centre convention, as the ``.npz`` contract's ``boxes``).

A *collapsed* transformer does the same thing to every image: the corners' spread across
images (their standard deviation, averaged over corners and axes) falls below
:data:`COLLAPSE_SPREAD`. Working transformers here spread by ≥ 0.1 normalised units; the
collapsed cluttered model of the first release spread by 0.004.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.geometry import base_grid, frame_corners, make_grid
from ..core.transformer import unflatten_params

#: below this corner spread (normalised units) a transformer is called collapsed
COLLAPSE_SPREAD = 0.02
#: a correlation at least this strong counts as "undoes" in the verdict. Scale gets a lower bar:
#: handwritten digits differ in size before the recipe scales them, so even a transformer that
#: normalises every digit's size tracks the applied scale only in part.
FOLLOWS_R = {"shift": 0.8, "rotation": 0.8, "scale": 0.6}
#: below FOLLOWS_R but at least this: the verdict says "only in part" (with the slope for rotation)
PARTLY_R = 0.5


def region_corners(kind: str, params: torch.Tensor, samples: int = 15) -> np.ndarray:
    """Corners ``(N, 4, 2)`` (TL, TR, BR, BL) of the sampling region of a batch of transform
    parameters (``kind`` and shapes as in :func:`stn_explore.core.geometry.make_grid`).

    The region is the *best affine fit* of the sampling map (least squares over a
    ``samples × samples`` grid of output points), evaluated at the output frame's corners:
    exact for affine and attention transforms; for projective and TPS ones it summarises where
    the grid as a whole goes (a TPS's frame corners are free to wander over empty background
    without changing V, so mapping them alone would say little)."""
    params = params.detach().cpu().to(torch.float64)
    g = make_grid(kind, params, (samples, samples)).reshape(len(params), -1, 2)  # (N, S², 2)
    base = base_grid((samples, samples), dtype=torch.float64).reshape(-1, 2)
    x = torch.cat((base, torch.ones(len(base), 1, dtype=torch.float64)), 1)      # (S², 3)
    a = torch.linalg.pinv(x) @ g                                                    # (N, 3, 2)
    corners = torch.cat((frame_corners(torch.float64), torch.ones(4, 1, dtype=torch.float64)), 1)
    return (corners @ a).numpy()


def model_corners(model, images: np.ndarray, batch_size: int = 250) -> np.ndarray:
    """Sampling-region corners ``float32 (N, K, 4, 2)`` of each of the ``K`` transformers of a
    classifier (:class:`~stn_explore.experiments.models.STClassifier`) on uint8 images
    ``(N, H, W)`` / ``(N, C, H, W)``."""
    from .distortions import to_batch

    if not len(model.transformers):
        raise ValueError("the model has no spatial transformer")
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = to_batch(images[s:s + batch_size]).to(next(model.parameters()).device)
            per = [region_corners(st.kind, unflatten_params(st.kind, st.predict_params(x)))
                   for st in model.transformers]
            out.append(np.stack(per, 1))
    return np.concatenate(out).astype(np.float32)


def dead_units(model, images: np.ndarray, batch_size: int = 250) -> list[float]:
    """For each transformer, the share of its localisation net's last hidden units (the input
    of the regression layer) that are zero on every one of ``images``: 1.0 means the net
    outputs one constant transform whatever the image — how the first cluttered model
    collapsed (its ReLUs died early in training, and a dead ReLU gets no gradient back)."""
    from .distortions import to_batch

    alive = [None] * len(model.transformers)
    model.eval()
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = to_batch(images[s:s + batch_size])
            for k, st in enumerate(model.transformers):
                f = (st.localisation(x).flatten(1) != 0).any(0)
                alive[k] = f if alive[k] is None else alive[k] | f
    return [float(1 - a.float().mean()) for a in alive]


def region_stats(corners: np.ndarray, size_hw: tuple[int, int] | None = None) -> dict:
    """Centre ``(N, 2)``, size ``(N,)``, rotation undone (degrees) ``(N,)`` and, with the input
    size ``(H, W)``, the pixel bounding box ``(N, 4)`` of regions ``(N, 4, 2)``."""
    c = np.asarray(corners, dtype=np.float64)
    if c.ndim != 3 or c.shape[1:] != (4, 2):
        raise ValueError(f"corners must have shape (N, 4, 2), got {c.shape}")
    x, y = c[..., 0], c[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y).sum(1))  # shoelace
    top = c[:, 1] - c[:, 0]
    out = {"centre": c.mean(1), "size": np.sqrt(area) / 2,
           "rotation": -np.degrees(np.arctan2(top[:, 1], top[:, 0]))}
    if size_hw is not None:
        h, w = size_hw
        px = ((x + 1) * w - 1) / 2
        py = ((y + 1) * h - 1) / 2
        out["box"] = np.stack((px.min(1), py.min(1), px.max(1), py.max(1)), 1)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of axis-aligned boxes ``(N, 4)`` = x0, y0, x1, y1 (same units)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(union, 1e-12)


def _r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, NaN when either side is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _centre_r(region: np.ndarray, digit: np.ndarray) -> float:
    """Mean of the x and y correlations of region centres with digit centres ``(N, 2)``
    (NaN when both are undefined)."""
    rs = [r for r in (_r(region[:, i], digit[:, i]) for i in range(2)) if not math.isnan(r)]
    return float(np.mean(rs)) if rs else float("nan")


def truth_from_arrays(arrays: dict) -> dict:
    """The known distortion of each image, from a task set or an exported ``.npz``: ``angles``
    (degrees), ``scales``, ``centres`` (normalised ``(N, 2)``) and ``boxes`` (pixels), each
    where the task has it (``angles``/``scales`` also read from the ``param_*`` arrays)."""
    t = {}
    for key, param in (("angles", "param_angle"), ("scales", "param_scale"), ("boxes", None)):
        v = arrays.get(key, arrays.get(param) if param else None)
        if v is not None:
            t[key] = np.asarray(v, np.float64)
    if "param_centre1" in arrays:  # MNIST addition: one digit per channel
        t["digit_centres"] = [np.asarray(arrays[f"param_centre{c}"], np.float64) for c in (1, 2)]
    if "param_centre" in arrays:
        t["centres"] = np.asarray(arrays["param_centre"], np.float64)
    elif "boxes" in t:
        h, w = np.asarray(arrays["images"]).shape[-2:]
        b = t["boxes"]
        t["centres"] = np.stack((((b[:, 0] + b[:, 2]) / 2 * 2 + 1) / w - 1,
                                 ((b[:, 1] + b[:, 3]) / 2 * 2 + 1) / h - 1), 1)
    return t


def diagnose(corners: np.ndarray, truth: dict, size_hw: tuple[int, int]) -> list[dict]:
    """One report per transformer for corners ``(N, K, 4, 2)`` against the known distortions
    (:func:`truth_from_arrays`): ``spread``, ``collapsed``, ``rotation_r``, ``rotation_slope``
    (recovered per applied degree), ``centre_r`` (mean of the x and y correlations),
    ``size_r`` (with the scales), ``median_iou`` (region box vs digit box), ``mean_size``,
    and a plain-language ``verdict``. Entries without a ground truth are None."""
    corners = np.asarray(corners, np.float64)
    if corners.ndim != 4 or corners.shape[2:] != (4, 2):
        raise ValueError(f"corners must have shape (N, K, 4, 2), got {corners.shape}")
    reports = []
    for k in range(corners.shape[1]):
        s = region_stats(corners[:, k], size_hw)
        spread = float(corners[:, k].std(0).mean())
        rep = {"transformer": k, "n": int(len(corners)), "spread": spread, "collapsed": spread < COLLAPSE_SPREAD,
               "mean_size": float(s["size"].mean()), "rotation_r": None, "rotation_slope": None,
               "centre_r": None, "size_r": None, "median_iou": None}
        if "angles" in truth:
            a = truth["angles"]
            rep["rotation_r"] = _r(s["rotation"], a)
            rep["rotation_slope"] = float(np.polyfit(a, s["rotation"], 1)[0]) if a.std() > 0 else None
        if "centres" in truth:
            rep["centre_r"] = _centre_r(s["centre"], truth["centres"])
        if "scales" in truth:
            rep["size_r"] = _r(s["size"], truth["scales"])
        if "boxes" in truth:
            rep["median_iou"] = float(np.median(box_iou(s["box"], truth["boxes"])))
        if "digit_centres" in truth:  # which of several digits the region follows (addition)
            rep["digit_centre_r"] = [_centre_r(s["centre"], c) for c in truth["digit_centres"]]
        rep["verdict"] = verdict(rep)
        reports.append(rep)
    return reports


def _follows(what: str, r) -> bool:
    return r is not None and not math.isnan(r) and r >= FOLLOWS_R[what]


def verdict(rep: dict) -> str:
    """A sentence from a report: what the transformer undoes and what it does not."""
    if rep["collapsed"]:
        how = "zooms out" if rep["mean_size"] > 1.02 else ("zooms in" if rep["mean_size"] < 0.98 else "keeps the view")
        return (f"Collapsed: the same sampling region for every image (spread {rep['spread']:.3f}); it {how} "
                f"(region size {rep['mean_size']:.2f} of the input) whatever the digit.")
    if rep.get("digit_centre_r"):
        rs = rep["digit_centre_r"]
        best = int(np.nanargmax(rs)) if not all(math.isnan(r) for r in rs) else None
        figs = " / ".join(f"{r:.2f}" for r in rs)
        if best is not None and rs[best] >= FOLLOWS_R["shift"]:
            wide = (f", but its region is {rep['mean_size']:.2f} of the input's side, so it also samples where the "
                    "other digit may be") if rep["mean_size"] > 0.8 else ""
            return f"Follows digit {best + 1}: its region moves with that digit (centre r {figs} with digits 1 / 2){wide}."
        return f"Follows neither digit's position (centre r {figs} with digits 1 / 2)."
    parts = {"shift": rep["centre_r"], "scale": rep["size_r"], "rotation": rep["rotation_r"]}
    known = {k: v for k, v in parts.items() if v is not None and not math.isnan(v)}
    done = [k for k, v in known.items() if _follows(k, v)]
    partly = [k for k, v in known.items() if k not in done and v >= PARTLY_R]
    not_done = [k for k in known if k not in done and k not in partly]

    def in_part(k: str) -> str:
        slope = rep.get("rotation_slope") if k == "rotation" else None
        turned = f", turning back {slope:.0%} of the applied angle on average" if slope is not None else ""
        return f"{k} only in part (r {known[k]:.2f}{turned})"

    if done or partly:
        text = "Undoes " + "; ".join(p for p in (" and ".join(done), " and ".join(in_part(k) for k in partly)) if p)
        if not_done:
            text += ", not " + " or ".join(not_done)
    else:
        text = "Undoes none of " + ", ".join(known) if known else "Varies from image to image"
    if rep["median_iou"] is not None:
        text += f"; its region covers the digit's box with median IoU {rep['median_iou']:.2f}"
    return text + "."


def epoch_summary(model, test_set: dict, n: int = 500) -> list[dict]:
    """A compact :func:`diagnose` of a classifier's transformers on the first ``n`` images of a
    task set (the arrays of :func:`stn_explore.experiments.data.make_task_set`), for the
    training log: per transformer ``size``, ``spread`` and, where the set knows them,
    ``rotation_r``, ``centre_r``, ``median_iou`` (rounded; None where undefined). Training
    records it every epoch, so a probe shows *when* a transformer zooms, turns or collapses."""
    if not len(model.transformers):
        return []
    images = np.asarray(test_set["images"])[:n]
    sub = {k: np.asarray(v)[:n] for k, v in test_set.items()
           if isinstance(v, np.ndarray) and len(v) == len(test_set["images"])}
    truth = truth_from_arrays(sub)
    was_training = model.training
    reps = diagnose(model_corners(model, images), truth, images.shape[-2:])
    model.train(was_training)

    def rnd(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 3)

    return [{k: rnd(r[k]) for k in ("mean_size", "spread", "rotation_r", "centre_r", "median_iou")}
            for r in reps]


def format_summary(summary: list[dict]) -> str:
    """One log fragment for :func:`epoch_summary`'s result, e.g. ``ST1 size 0.74 spread 0.31 IoU 0.40``."""
    names = {"mean_size": "size", "spread": "spread", "rotation_r": "rot r", "centre_r": "centre r",
             "median_iou": "IoU"}
    return "  ".join(f"ST{k + 1} " + " ".join(f"{names[key]} {v:.2f}" for key, v in s.items() if v is not None)
                     for k, s in enumerate(summary))


def ink_share(v: np.ndarray) -> np.ndarray:
    """For transformer outputs ``(N, C, H, W)``: each channel's share of the total ink
    ``(N, C)`` (rows sum to 1; NaN where V is empty). In MNIST addition channel c holds
    digit c, so a transformer that takes its view from one digit alone has a share near 1 for it."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 4:
        raise ValueError(f"v must have shape (N, C, H, W), got {v.shape}")
    ink = v.clip(0, None).sum((2, 3))
    tot = ink.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, ink / np.where(tot > 0, tot, 1), np.nan)


def model_ink_shares(model, images: np.ndarray, batch_size: int = 250) -> list[np.ndarray]:
    """:func:`ink_share` of each transformer's output V on uint8 images ``(N, C, H, W)``:
    a list (one per transformer) of ``(N, C)``."""
    from .distortions import to_batch

    model.eval()
    out = [[] for _ in model.transformers]
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = to_batch(images[s:s + batch_size]).to(next(model.parameters()).device)
            for k, st in enumerate(model.transformers):
                out[k].append(ink_share(st(x).cpu().numpy()))
    return [np.concatenate(o) for o in out]


def oracle_ink_share(images: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """The best a transformer that samples every channel through one grid can do while it still
    sees the *whole* of one digit: for each image ``(N, C, H, W)`` (channel c holds digit c, as in
    MNIST addition) and each channel c, channel c's share of the ink inside the bounding box of
    channel c's own ink (pixels above ``threshold`` of full scale). Returns ``(N, C)``.

    Where the digits overlap on the canvas, a region that takes in all of digit c takes in part
    of the other digit too, so this share is below 1 whatever the transformer learns."""
    x = np.asarray(images, np.float64)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {x.shape}")
    x = x / 255.0 if x.max() > 1 else x
    out = np.full(x.shape[:2], np.nan)
    for i in range(len(x)):
        for c in range(x.shape[1]):
            ys, xs = np.nonzero(x[i, c] > threshold)
            if not len(ys):
                continue
            box = x[i, :, ys.min():ys.max() + 1, xs.min():xs.max() + 1].sum((1, 2))
            out[i, c] = box[c] / max(box.sum(), 1e-12)
    return out

"""What a run records for the page: boxes of a fixed panel, loss and accuracy over iterations.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

import numpy as np
import torch


def empty_recording(panel: dict) -> dict:
    return {"iteration": [], "loss": [], "accuracy": [], "mean_iou": [], "panel_quads": [],
            "panel_images": panel["images"], "panel_boxes": panel["boxes"]}


def recording_arrays(rec: dict) -> dict:
    """A recording as arrays: ``iteration (T,)``, ``loss``/``accuracy``/``mean_iou`` ``(T,)``,
    ``panel_quads float32 (T, P, 4, 2)``, ``panel_images uint8 (P, 84, 84)``,
    ``panel_boxes float32 (P, 4)``."""
    p = len(rec["panel_images"])
    return {"iteration": np.asarray(rec["iteration"], dtype=np.int64),
            "loss": np.asarray(rec["loss"], dtype=np.float64),
            "accuracy": np.asarray(rec["accuracy"], dtype=np.float64),
            "mean_iou": np.asarray(rec["mean_iou"], dtype=np.float64),
            "panel_quads": np.asarray(rec["panel_quads"], dtype=np.float32).reshape(-1, p, 4, 2),
            "panel_images": np.asarray(rec["panel_images"], dtype=np.uint8),
            "panel_boxes": np.asarray(rec["panel_boxes"], dtype=np.float32)}


def _rec_to_tensors(rec: dict) -> dict:
    a = recording_arrays(rec)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in a.items()}


def _rec_from_tensors(t: dict) -> dict:
    a = {k: v.numpy() for k, v in t.items()}
    return {"iteration": a["iteration"].tolist(), "loss": a["loss"].tolist(),
            "accuracy": a["accuracy"].tolist(), "mean_iou": a["mean_iou"].tolist(),
            "panel_quads": list(a["panel_quads"]), "panel_images": a["panel_images"],
            "panel_boxes": a["panel_boxes"]}


def load_recording(ckpt: dict) -> dict:
    """The recording of a co-localisation checkpoint as numpy arrays (see
    :func:`recording_arrays`)."""
    return {k: v.numpy() for k, v in ckpt["recording"].items()}

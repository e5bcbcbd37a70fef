"""The paper's distorted-MNIST recipes, each as two steps: *sample* parameters with a
``torch.Generator``, then *apply* them deterministically — so a page can show the exact
ground-truth transform next to what a network predicts. The recipes themselves (config
dataclasses, defaults, the curriculum's :func:`at_strength`) are in
:mod:`stn_explore.experiments.recipes` and re-exported here.

Convention: see CONVENTIONS.md. Geometric parameters map *distorted-image* (target)
coordinates to *original-digit* (source) coordinates, like every transform here; the
transform that undoes a distortion (what an ideal transformer would regress) is
``geometry.invert(theta)``. Images are ``uint8``; pixel boxes use the pixel-centre
convention of ``geometry.normalized_to_pixel`` (pixel j spans [j - 0.5, j + 0.5]).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from ..core.geometry import (
    affine_transform_points,
    control_points,
    frame_corners,
    homography_from_corners,
    invert,
    theta_from_params,
)
from ..core.transformer import warp
from .recipes import (  # noqa: F401  (re-exported: D.RTSConfig, D.default_config, …)
    DIGIT,
    RotationConfig,
    RTSConfig,
    ProjectiveConfig,
    ElasticConfig,
    ClutterConfig,
    ColocConfig,
    AdditionConfig,
    CONFIGS,
    TASKS,
    TASK_TITLES,
    NOISY_COLOC,
    at_strength,
    check_task,
    config_from_dict,
    config_to_dict,
    default_config,
    image_shape,
    n_classes,
    with_overrides,
)


# ----------------------------------------------------------------------------- sampling
def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, *shape) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand((n,) + shape, generator=gen, dtype=torch.float64)


def _randint(n: int, lo: int, hi: int, gen: torch.Generator, *shape) -> torch.Tensor:
    """Integers uniform in [lo, hi] inclusive."""
    return torch.randint(lo, hi + 1, (n,) + shape, generator=gen)


def _sample_rts(n: int, cfg: RTSConfig, gen: torch.Generator) -> dict:
    angle = _uniform(n, -cfg.max_angle, cfg.max_angle, gen)
    scale = _uniform(n, cfg.scale_min, cfg.scale_max, gen)
    half = scale * DIGIT / cfg.canvas  # half-size of the scaled 28×28 frame, canvas units
    centre = (torch.rand(n, 2, generator=gen, dtype=torch.float64) * 2 - 1) * (cfg.shift * (1 - half))[:, None]
    # canvas point p → digit point q = R(angle) (p - c) / half
    a = theta_from_params(angle, 1 / half)[:, :, :2]
    theta = torch.cat((a, -(a @ centre[:, :, None])), dim=2)
    return {"angle": angle, "scale": scale, "centre": centre, "theta": theta}


def _sample_clutter(n: int, k: int, canvas: int, patch: int, pool: int,
                    gen: torch.Generator, own: torch.Tensor) -> dict:
    # indices of *other* digits: shift by 1..pool-1 so the digit itself is never used
    other = (own[:, None] + _randint(n, 1, max(pool - 1, 1), gen, k)) % pool
    return {"clutter_index": other,
            "clutter_crop": _randint(n, 0, DIGIT - patch, gen, k, 2),
            "clutter_pos": _randint(n, 0, canvas - patch, gen, k, 2)}


def sample_params(task: str, n: int, gen: torch.Generator, cfg=None, *,
                  pool: int = 1) -> dict:
    """Draw the parameters of ``n`` distortions (all tensors, first dim ``n``).

    ``pool`` is the number of available digits (used by tasks that pick digits: the digit
    ``index`` itself, clutter sources, the second addend).
    """
    task = check_task(task)
    cfg = cfg or default_config(task)
    p: dict = {"index": torch.randint(0, pool, (n,), generator=gen)}
    if task == "r":
        p["angle"] = _uniform(n, -cfg.max_angle, cfg.max_angle, gen)
        p["theta"] = theta_from_params(p["angle"])
    elif task == "rts":
        p.update(_sample_rts(n, cfg, gen))
    elif task == "p":
        src = frame_corners(torch.float64) / cfg.scale + cfg.sigma * torch.randn(
            n, 4, 2, generator=gen, dtype=torch.float64)
        p["corners"] = src
        p["homography"] = homography_from_corners(src)
    elif task == "e":
        src = control_points(cfg.n_control, dtype=torch.float64) / cfg.scale + cfg.sigma * torch.randn(
            n, cfg.n_control ** 2, 2, generator=gen, dtype=torch.float64)
        p["source_points"] = src
    elif task == "cluttered":
        p["offset"] = _randint(n, 0, cfg.canvas - DIGIT, gen, 2)
        p.update(_sample_clutter(n, cfg.n_clutter, cfg.canvas, cfg.patch, pool, gen, p["index"]))
    elif task == "coloc":
        p["offset"] = _randint(n, 0, cfg.canvas - DIGIT, gen, 2)
        p.update(_sample_clutter(n, cfg.n_clutter, cfg.canvas, cfg.patch, pool, gen, p["index"]))
    elif task == "addition":
        p["index2"] = torch.randint(0, pool, (n,), generator=gen)
        for ch in ("1", "2"):
            for key, val in _sample_rts(n, cfg.rts, gen).items():
                p[key + ch] = val
    return p


# ----------------------------------------------------------------------------- applying
def to_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 images ``(N, H, W)`` or ``(N, C, H, W)`` → float ``(N, C, H, W)`` in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255)
    return x.unsqueeze(1) if x.dim() == 3 else x


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _paste(canvas: np.ndarray, patches: np.ndarray, pos: np.ndarray) -> None:
    """canvas (N, H, W) ← max(canvas, patch) at integer (x, y) positions pos (N, 2)."""
    n, ph, pw = patches.shape
    rows = pos[:, 1, None] + np.arange(ph)  # (N, ph)
    cols = pos[:, 0, None] + np.arange(pw)
    ni = np.arange(n)[:, None, None]
    r, c = rows[:, :, None], cols[:, None, :]
    canvas[ni, r, c] = np.maximum(canvas[ni, r, c], patches)


def _add_clutter(canvas: np.ndarray, pool_images: np.ndarray, p: dict, patch: int) -> None:
    idx = p["clutter_index"].numpy()
    crop = p["clutter_crop"].numpy()
    pos = p["clutter_pos"].numpy()
    n = canvas.shape[0]
    rr = np.arange(patch)
    for k in range(idx.shape[1]):
        src = pool_images[idx[:, k]]  # (N, 28, 28)
        rows = (crop[:, k, 1, None] + rr)[:, :, None]
        cols = (crop[:, k, 0, None] + rr)[:, None, :]
        patches = src[np.arange(n)[:, None, None], rows, cols]
        _paste(canvas, patches, pos[:, k])


def _warp_digits(digits: torch.Tensor, kind: str, params: torch.Tensor, size: int) -> torch.Tensor:
    return warp(digits, params.to(torch.float32), kind, out_size=(size, size))


def apply(task: str, pool_images: np.ndarray, params: dict, cfg=None) -> np.ndarray:
    """Render distorted images from sampled ``params`` (deterministic).

    Args:
        pool_images: ``uint8 (N_pool, 28, 28)`` digits that ``params["index"]`` (and clutter
            / second-addend indices) refer to.
    Returns:
        ``uint8 (n, H, W)``, or ``(n, 2, H, W)`` for ``addition``.
    """
    task = check_task(task)
    cfg = cfg or default_config(task)
    pool_images = np.asarray(pool_images, dtype=np.uint8)
    idx = params["index"].numpy()
    if task in ("cluttered", "coloc"):
        n, size = len(idx), cfg.canvas
        canvas = np.zeros((n, size, size), dtype=np.uint8)
        _paste(canvas, pool_images[idx], params["offset"].numpy())
        if cfg.n_clutter:
            _add_clutter(canvas, pool_images, params, cfg.patch)
        return canvas
    if task == "addition":
        size = cfg.rts.canvas
        chans = [_warp_digits(to_batch(pool_images[params[key].numpy()]), "affine",
                              params["theta" + ch], size)
                 for key, ch in (("index", "1"), ("index2", "2"))]
        return _to_uint8(torch.cat(chans, dim=1))
    digits = to_batch(pool_images[idx])
    if task in ("r", "rts"):
        out = _warp_digits(digits, "affine", params["theta"], cfg.canvas)
    elif task == "p":
        out = _warp_digits(digits, "projective", params["homography"], cfg.canvas)
    else:  # e
        out = _warp_digits(digits, "tps", params["source_points"], cfg.canvas)
    return _to_uint8(out[:, 0])


def labels_for(task: str, pool_labels: np.ndarray, params: dict) -> np.ndarray:
    task = check_task(task)
    pool_labels = np.asarray(pool_labels, dtype=np.int64)
    y = pool_labels[params["index"].numpy()]
    if task == "addition":
        y = y + pool_labels[params["index2"].numpy()]
    return y


def boxes_for(task: str, params: dict, cfg=None) -> np.ndarray | None:
    """Ground-truth boxes ``float32 (n, 4)`` = ``x0, y0, x1, y1`` in pixels (pixel-centre
    convention: the pasted 28×28 frame at offset ``o`` spans ``[o - 0.5, o + 27.5]``); for
    ``rts`` the axis-aligned box of the rotated, scaled digit frame."""
    task = check_task(task)
    if task == "rts":  # the axis-aligned box of the rotated, scaled 28×28 frame in the canvas
        canvas = (cfg or default_config(task)).canvas
        theta = params["theta"].to(torch.float64)
        corners = affine_transform_points(invert(theta), frame_corners(torch.float64).expand(len(theta), 4, 2))
        px = (corners.numpy() + 1) * canvas / 2 - 0.5  # normalised → pixels (align_corners=False)
        return np.concatenate((px.min(1), px.max(1)), axis=1).astype(np.float32)
    if task not in ("coloc", "cluttered"):
        return None
    off = params["offset"].numpy().astype(np.float32)
    return np.concatenate((off - 0.5, off + DIGIT - 0.5), axis=1)


# ----------------------------------------------------------------------------- datasets
GENERATE_CHUNK = 4096  # images per draw of parameters in generate (bounds memory)


def _sampled_chunks(task: str, pool: int, n: int, gen: torch.Generator, cfg, indices: np.ndarray | None,
                    chunk: int) -> Iterator[dict]:
    """The parameters :func:`generate` draws, chunk by chunk (the draws of a stream)."""
    if pool == 0:
        raise ValueError("no digits to distort (empty pool)")
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        p = sample_params(task, m, gen, cfg, pool=pool)
        if indices is not None:
            p["index"] = torch.as_tensor(np.asarray(indices[start:start + m], dtype=np.int64))
        yield p


def generate(task: str, pool_images: np.ndarray, pool_labels: np.ndarray, n: int,
             gen: torch.Generator, cfg=None, *, indices: np.ndarray | None = None,
             chunk: int = GENERATE_CHUNK) -> dict:
    """Sample and apply ``n`` distortions; returns numpy arrays ``images``, ``labels``,
    ``boxes`` (where the task has them) and every sampled parameter (prefixed ``param_``).

    ``indices`` fixes which digits are used (else they are drawn with replacement).
    Generation runs in chunks to bound memory.
    """
    task = check_task(task)
    cfg = cfg or default_config(task)
    parts = []
    for p in _sampled_chunks(task, len(pool_images), n, gen, cfg, indices, chunk):
        out = {"images": apply(task, pool_images, p, cfg), "labels": labels_for(task, pool_labels, p)}
        boxes = boxes_for(task, p, cfg)
        if boxes is not None:
            out["boxes"] = boxes
        for k, v in p.items():
            v = v.numpy()
            out["param_" + k] = v.astype(np.float32) if v.dtype == np.float64 else v
        for name, k in (("angles", "angle"), ("scales", "scale")):  # the .npz contract's names
            if k in p:
                out[name] = out["param_" + k]
        parts.append(out)
    return {k: np.concatenate([pt[k] for pt in parts]) for k in parts[0]}


def fixed_set_indices(n_pool: int, n: int, seed: int) -> np.ndarray:
    """Which digits a fixed set of size ``n`` uses: a seeded permutation of the pool (every
    digit once when ``n == n_pool``), repeated with fresh permutations if ``n > n_pool``."""
    g = torch.Generator().manual_seed(seed)
    reps = -(-n // n_pool)
    return torch.cat([torch.randperm(n_pool, generator=g) for _ in range(reps)])[:n].numpy()


def make_fixed_set(task: str, pool_images: np.ndarray, pool_labels: np.ndarray, n: int,
                   seed: int, cfg=None) -> dict:
    """A reproducible set (same seed → byte-identical arrays)."""
    idx = fixed_set_indices(len(pool_images), n, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    return generate(task, pool_images, pool_labels, n, gen, cfg, indices=idx)


def examples(task: str, pool_images: np.ndarray, pool_labels: np.ndarray, n: int = 16,
             seed: int = 0, cfg=None) -> dict:
    """A small page of distorted samples with their parameters (for the app)."""
    return make_fixed_set(task, pool_images, pool_labels, n, seed, cfg)


def epoch_seed(seed: int, epoch: int, worker: int = 0) -> int:
    # distinct, reproducible streams per (run seed, epoch, worker)
    return (seed * 1_000_003 + epoch * 9_176 + worker * 7_919 + 12_345) % (2 ** 63)


def epoch_batches(task: str, pool_images: np.ndarray, pool_labels: np.ndarray,
                  batch_size: int, seed: int, epoch: int, cfg=None,
                  chunk: int = 2048) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One training epoch with *fresh* distortions: every digit once, in a seeded order,
    yielding ``(x float (B, C, H, W) in [0, 1], y int64 (B,))``. Generation is vectorised
    in chunks in the calling process (fast enough that no DataLoader workers are needed);
    the stream depends only on ``(seed, epoch)``."""
    gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    order = torch.randperm(len(pool_images), generator=gen).numpy()
    chunk = max(batch_size, chunk - chunk % batch_size)
    for start in range(0, len(order), chunk):
        data = generate(task, pool_images, pool_labels, len(order[start:start + chunk]), gen, cfg,
                        indices=order[start:start + chunk])
        x = to_batch(data["images"])
        y = torch.from_numpy(data["labels"])
        for b in range(0, len(y), batch_size):
            yield x[b:b + batch_size], y[b:b + batch_size]


def epoch_batch_shards(task: str, pool_images: np.ndarray, pool_labels: np.ndarray,
                       batch_size: int, seed: int, epoch: int, cfg=None, *, shard,
                       chunk: int = 2048) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """The batches of :func:`epoch_batches` split across data-parallel ranks: yields
    ``(x, y, n)``, this rank's part of each batch of ``n`` images, where ``shard(n)`` is the
    rank's ``slice`` of the batch (:meth:`~stn_explore.experiments.distributed.Context.shard`).

    Every rank draws the whole stream's random parameters — the same draws as
    :func:`epoch_batches`, which are cheap — and renders only its own rows, the expensive
    part; so the ranks' parts of a batch are exactly the single-process batch, whatever the
    number of ranks. A rank whose part is empty (a last batch smaller than the number of
    ranks) gets the batch's first image with ``n = 0``: it must count for nothing."""
    cfg = cfg or default_config(task)
    gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    order = torch.randperm(len(pool_images), generator=gen).numpy()
    chunk = max(batch_size, chunk - chunk % batch_size)
    for start in range(0, len(order), chunk):
        idx = order[start:start + chunk]
        parts = list(_sampled_chunks(task, len(pool_images), len(idx), gen, cfg, idx, GENERATE_CHUNK))
        params = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}  # generate's draws
        for b in range(0, len(idx), batch_size):
            n = min(batch_size, len(idx) - b)
            rows = shard(n)
            if rows.start == rows.stop:
                rows, n = slice(0, 1), 0
            p = {k: v[b + rows.start:b + rows.stop] for k, v in params.items()}
            yield to_batch(apply(task, pool_images, p, cfg)), torch.from_numpy(labels_for(task, pool_labels, p)), n


class DistortedStream(torch.utils.data.IterableDataset):
    """A ``DataLoader``-ready stream of freshly distorted digits, one epoch per iteration.

    Each DataLoader worker takes its share of a seeded permutation of the digits and draws
    its distortions from a generator seeded by ``(seed, epoch, worker)``: the stream is
    reproducible for a given number of workers, and differs between epochs. Call
    :meth:`set_epoch` before each epoch. Yields ``(x float (C, H, W) in [0, 1], y int64)``.
    """

    def __init__(self, task: str, pool_images: np.ndarray, pool_labels: np.ndarray, seed: int = 0,
                 cfg=None, chunk: int = 1024):
        super().__init__()
        self.task, self.cfg = check_task(task), cfg
        self.images, self.labels = pool_images, pool_labels
        self.seed, self.epoch, self.chunk = seed, 0, chunk

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        order_gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(len(self.images), generator=order_gen).numpy()[worker::n_workers]
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, worker + 1))
        for start in range(0, len(order), self.chunk):
            idx = order[start:start + self.chunk]
            data = generate(self.task, self.images, self.labels, len(idx), gen, self.cfg, indices=idx)
            x = to_batch(data["images"])
            yield from zip(x, torch.from_numpy(data["labels"]))

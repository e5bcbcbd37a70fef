"""A run's options and schedules: the shrinking window, the clutter ramp, nearby random crops, the recipes.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .boxes import CANVAS, COLOC_TRANSFORMS, CROP
from .model import LOCALISERS, ColocArgs


# ----------------------------------------------------------------------------- training
@dataclass
class ColocConfig:
    """Options of one co-localisation run (stored in the checkpoint)."""

    digit: int = 3
    noise: int = 0
    transform: str = "translate"
    iterations: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    margin: float = 0.2
    #: curriculum: the window starts at this share of the image side (so every first crop
    #: holds the whole digit and crops can only agree by centring it) and shrinks linearly
    #: to crop/canvas over ``shrink_iterations``; 0 iterations = native 28×28 from the start
    start_scale: float = 0.9
    shrink_iterations: int = 800
    #: I^rand lies this many to this + 1 half-widths from the crop (None: uniform anywhere)
    negative_offset: float | None = 2.0
    #: random crops I^rand per image (the paper: 1); the hinge is averaged over them, which
    #: steadies the pull toward a common window
    negatives: int = 1
    #: precision stage: from iteration ``fine_from`` on (0 = never) I^rand lies ``fine_offset``
    #: to ``fine_offset`` + 1 half-widths away — it overlaps the crop, so a window that sits a
    #: few pixels off the common position no longer satisfies the margin
    fine_from: int = 0
    fine_offset: float = 1.0
    #: the localisation network's learning rate as a multiple of ``lr``
    loc_lr_scale: float = 1.0
    #: clutter curriculum (noisy variant): clutter pieces per training image rise linearly
    #: from 0 at iteration ``clutter_from`` to ``noise`` over ``clutter_ramp`` iterations;
    #: both 0 = full clutter from the start. Held-out images always carry full clutter.
    clutter_from: int = 0
    clutter_ramp: int = 0
    #: the localisation network: ``heatmap`` or ``regress`` (see :class:`ColocArgs`); the
    #: heatmap localiser only moves the window, so other transforms need ``regress``
    localiser: str = "heatmap"
    #: heatmap localiser: batch norm before each ReLU (the noisy recipe; the clean one: off)
    heatmap_norm: bool = True
    #: all learning rates ÷10 from this iteration on (0: never) — steadies the final boxes
    lr_drop: int = 1800
    embed_dim: int = 32
    record_every: int = 40
    n_panel: int = 16
    n_eval: int = 256
    seed: int = 0
    eval_seed: int = 0
    save_every: int = 100
    threads: int = 0

    def check(self) -> "ColocConfig":
        if not 0 <= self.digit <= 9:
            raise ValueError(f"digit must be 0..9, got {self.digit}")
        if self.transform not in COLOC_TRANSFORMS:
            raise ValueError(f"transform must be one of {COLOC_TRANSFORMS}, got {self.transform!r}")
        if self.localiser not in LOCALISERS:
            raise ValueError(f"localiser must be one of {LOCALISERS}, got {self.localiser!r}")
        if self.localiser == "heatmap" and self.transform != "translate":
            raise ValueError(f"the heatmap localiser only moves the window; transform {self.transform!r} "
                             f"needs localiser='regress'")
        for name in ("iterations", "record_every", "n_panel", "n_eval", "save_every", "negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be ≥ 2 (the loss compares pairs), got {self.batch_size}")
        if self.noise < 0:
            raise ValueError(f"noise must be ≥ 0, got {self.noise}")
        if not CROP / CANVAS <= self.start_scale <= 1:
            raise ValueError(f"start_scale must be in [{CROP}/{CANVAS}, 1], got {self.start_scale}")
        if not 0 <= self.shrink_iterations <= self.iterations:
            raise ValueError(f"shrink_iterations must be in [0, iterations = {self.iterations}] (the window "
                             f"must reach its final 28×28 size before the end), got {self.shrink_iterations}")
        if self.negative_offset is not None and not (0 <= self.negative_offset < 10):
            raise ValueError(f"negative_offset must be in [0, 10) half-widths or None, got {self.negative_offset}")
        if self.clutter_from < 0 or self.clutter_ramp < 0:
            raise ValueError(f"clutter_from and clutter_ramp must be ≥ 0, got {self.clutter_from}, "
                             f"{self.clutter_ramp}")
        if self.clutter_from + self.clutter_ramp > self.iterations:
            raise ValueError(f"clutter_from + clutter_ramp = {self.clutter_from + self.clutter_ramp} must be "
                             f"≤ iterations = {self.iterations} (full clutter must be reached)")
        if not 0 <= self.fine_from <= self.iterations:
            raise ValueError(f"fine_from must be in [0, iterations = {self.iterations}] (0 = never), "
                             f"got {self.fine_from}")
        if not 0 <= self.fine_offset < 10:
            raise ValueError(f"fine_offset must be in [0, 10) half-widths, got {self.fine_offset}")
        if self.lr_drop < 0:
            raise ValueError(f"lr_drop must be ≥ 0 (0 = never), got {self.lr_drop}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        return self


def crop_scale_at(cfg: ColocConfig, iteration: int, args: ColocArgs | None = None) -> float:
    """The curriculum's window size (share of the image side) at ``iteration``."""
    args = args or ColocArgs()
    end = args.crop / args.canvas
    if cfg.shrink_iterations <= 0:
        return end
    return end + (cfg.start_scale - end) * max(0.0, 1.0 - iteration / cfg.shrink_iterations)


def clutter_at(cfg: ColocConfig, iteration: int) -> int:
    """The clutter curriculum: clutter pieces per training image at ``iteration``."""
    if iteration < cfg.clutter_from:
        return 0
    if cfg.clutter_ramp <= 0:
        return cfg.noise
    return int(round(cfg.noise * min(1.0, (iteration - cfg.clutter_from) / cfg.clutter_ramp)))


def negative_offset_at(cfg: ColocConfig, iteration: int) -> float | None:
    """Where I^rand lies at ``iteration`` (half-widths from the crop; None = anywhere)."""
    if cfg.fine_from and iteration >= cfg.fine_from:
        return cfg.fine_offset
    return cfg.negative_offset



#: the default schedules (iterations; the rest as shares of the run) and random crops per image,
#: tuned with the regressing localiser; the heatmap localiser (the default) kept them.
#: Clean: the window shrinks over the first third; lr ÷10 from half-way (at the full rate a run
#: could fall from 95% to 40% within 100 iterations: digit 6 with ``--lr-drop 1600``, 84.7%);
#: the precision stage for the last third (from half-way, runs with one random crop froze with
#: windows on either lobe of a 3).
#: Noisy: one random crop per image (four made the windows worse in clutter); the same
#: shrinking window on clean images (800 iterations), the clutter rising to full over the
#: next 800, then the precision stage at lr ÷10 (at the full rate the windows wandered in
#: clutter) for the remaining two thirds — it was still improving at 4,800 iterations.
RECIPES = {"clean": {"iterations": 2400, "shrink": 1 / 3, "clutter_from": 0.0, "clutter_ramp": 0.0,
                     "fine_from": 2 / 3, "lr_drop": 1 / 2, "negatives": 4, "heatmap_norm": False},
           "noisy": {"iterations": 4800, "shrink": 1 / 6, "clutter_from": 1 / 6, "clutter_ramp": 1 / 6,
                     "fine_from": 1 / 3, "lr_drop": 1 / 3, "negatives": 1, "heatmap_norm": True}}


def recipe(digit: int, noise: int, iterations: int | None = None, **overrides) -> ColocConfig:
    """The default recipe for a digit and variant (see :data:`RECIPES`), its schedule scaled
    to ``iterations``; ``overrides`` set any other :class:`ColocConfig` field."""
    r = RECIPES["noisy" if noise else "clean"]
    n = int(iterations or r["iterations"])
    sched = {"shrink_iterations": round(n * r["shrink"]), "lr_drop": max(1, round(n * r["lr_drop"])),
             "clutter_from": round(n * r["clutter_from"]), "clutter_ramp": round(n * r["clutter_ramp"]),
             "fine_from": max(1, round(n * r["fine_from"])),
             "negatives": r["negatives"], "heatmap_norm": r["heatmap_norm"],
             "localiser": "heatmap" if overrides.get("transform", "translate") == "translate" else "regress"}
    return ColocConfig(**{"digit": digit, "noise": noise, "iterations": n, **sched, **overrides}).check()


def live_config(digit: int, noise: int, iterations: int, seed: int = 0, localiser: str = "heatmap") -> ColocConfig:
    """A short run for the app: :func:`recipe` scaled to ``iterations`` (with the given
    localiser), recorded every ~1/40 of the run, accuracy on 128 held-out images while it runs."""
    iterations = int(iterations)
    return recipe(digit, noise, iterations, record_every=max(5, iterations // 40), n_eval=128, seed=seed,
                  save_every=max(1, iterations), localiser=localiser)

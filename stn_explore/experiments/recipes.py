"""The paper's distorted-MNIST recipes as config dataclasses (one per task), their
defaults, and the curriculum's weaker versions (:func:`at_strength`). Sampling and applying
them is :mod:`stn_explore.experiments.distortions`.

Convention: see CONVENTIONS.md. Geometric parameters map *distorted-image* (target)
coordinates to *original-digit* (source) coordinates, like every transform here; the
transform that undoes a distortion (what an ideal transformer would regress) is
``geometry.invert(theta)``. Images are ``uint8``; pixel boxes use the pixel-centre
convention of ``geometry.normalized_to_pixel`` (pixel j spans [j - 0.5, j + 0.5]).

Documented choices where the paper is not explicit (PAPER.md marks them "recalled"); each is
a field of the task's config dataclass:

================  ==============================================================================
task              recipe (defaults)
================  ==============================================================================
``r``             rotation, angle ~ U(-90°, 90°), 28×28 canvas
``rts``           rotation U(-45°, 45°), scale U(0.7, 1.2), placed uniformly at random in a 42×42
                  canvas so that the scaled 28×28 frame stays inside
``p``             projective: the output corners sample the digit at ``corner / 0.75 + N(0, 0.1²)``
                  (digit shrunk to 0.75, each corner perturbed independently), 28×28
``e``             elastic: 16-point (4×4) TPS; the control points sample the digit at
                  ``point / 0.75 + N(0, 0.15²)``, 28×28
``cluttered``     digit pasted at a uniform random integer position in a 60×60 canvas, plus 8
                  random 6×6 crops of *other* digits of the same split at random positions
``coloc``         digit pasted at a uniform random position in an 84×84 canvas, with a box;
                  ``n_clutter`` 6×6 crops of other digits (0 = clean; 16 for "noisy")
``addition``      two digits, each RTS-distorted independently (the ``rts`` recipe), as the two
                  channels of a 42×42 image; label = their sum (0-18)
================  ==============================================================================

Noise in ``p`` and ``e`` is added on the *source* side (what the sampler consumes); for small
σ this is the same family as perturbing the output corners.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

DIGIT = 28  # MNIST digit size


@dataclass(frozen=True)
class RotationConfig:
    max_angle: float = 90.0
    canvas: int = 28


@dataclass(frozen=True)
class RTSConfig:
    max_angle: float = 45.0
    scale_min: float = 0.7
    scale_max: float = 1.2
    canvas: int = 42
    #: share of the free placement range used (1: anywhere the scaled frame fits; 0: centred)
    shift: float = 1.0


@dataclass(frozen=True)
class ProjectiveConfig:
    scale: float = 0.75
    sigma: float = 0.1
    canvas: int = 28


@dataclass(frozen=True)
class ElasticConfig:
    scale: float = 0.75
    sigma: float = 0.15
    n_control: int = 4
    canvas: int = 28


@dataclass(frozen=True)
class ClutterConfig:
    canvas: int = 60
    n_clutter: int = 8
    patch: int = 6


@dataclass(frozen=True)
class ColocConfig:
    canvas: int = 84
    n_clutter: int = 0
    patch: int = 6


@dataclass(frozen=True)
class AdditionConfig:
    rts: RTSConfig = field(default_factory=RTSConfig)


CONFIGS = {
    "r": RotationConfig, "rts": RTSConfig, "p": ProjectiveConfig, "e": ElasticConfig,
    "cluttered": ClutterConfig, "coloc": ColocConfig, "addition": AdditionConfig,
}
TASKS = tuple(CONFIGS)
#: Paper names of the tasks, for tables and the UI.
TASK_TITLES = {"r": "R", "rts": "RTS", "p": "P", "e": "E", "cluttered": "cluttered 60×60",
               "coloc": "co-localisation 84×84", "addition": "MNIST addition"}
NOISY_COLOC = ColocConfig(n_clutter=16)


def check_task(task: str) -> str:
    t = task.lower()
    if t not in CONFIGS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return t


def default_config(task: str):
    return CONFIGS[check_task(task)]()


def image_shape(task: str, cfg=None) -> tuple[int, int, int]:
    """``(C, H, W)`` of a task's images."""
    task = check_task(task)
    cfg = cfg or default_config(task)
    if task == "addition":
        return 2, cfg.rts.canvas, cfg.rts.canvas
    return 1, cfg.canvas, cfg.canvas


def n_classes(task: str) -> int:
    return 19 if check_task(task) == "addition" else 10


def config_to_dict(cfg) -> dict:
    return asdict(cfg)


def config_from_dict(task: str, d: dict):
    task = check_task(task)
    if task == "addition":
        return AdditionConfig(rts=RTSConfig(**d.get("rts", {})))
    return CONFIGS[task](**d)


def at_strength(cfg, f: float):
    """The recipe ``cfg`` with its distortions scaled to strength ``f`` in [0, 1] (a training
    curriculum): the rotation range × f; for RTS also the scale range shrunk toward 1 and the
    placement range × f; the clutter count × f (rounded down). ``f = 1`` is the recipe."""
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {f}")
    if isinstance(cfg, AdditionConfig):
        return replace(cfg, rts=at_strength(cfg.rts, f))
    kw = {}
    if hasattr(cfg, "max_angle"):
        kw["max_angle"] = cfg.max_angle * f
    if isinstance(cfg, RTSConfig):
        kw.update(scale_min=1 - (1 - cfg.scale_min) * f, scale_max=1 + (cfg.scale_max - 1) * f, shift=cfg.shift * f)
    if hasattr(cfg, "n_clutter"):
        kw["n_clutter"] = int(cfg.n_clutter * f)
    return replace(cfg, **kw)


def with_overrides(cfg, **kw):
    """A copy of a config dataclass with some fields replaced (unknown fields raise)."""
    return replace(cfg, **kw)

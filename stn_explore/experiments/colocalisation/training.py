"""Co-localisation (paper appendix, Table 5): a spatial transformer learns, without box
labels, to find the common object — one MNIST digit class — in 84×84 images.

Pieces (coordinates as in CONVENTIONS.md; boxes in pixels, pixel-centre convention):

* **images** — the ``coloc`` recipe of :mod:`stn_explore.distortions`: a 28×28 digit of the
  chosen class pasted at a random position of an 84×84 canvas, optionally with ``noise``
  6×6 clutter patches cut from *other* digits (any class). The ground-truth box of the
  pasted frame is used only for evaluation, never for training.
* :class:`ColocNet` — a localisation network finds the window: by default
  (:class:`HeatmapLocaliser`) a fully convolutional net scores every window position on a
  2× downsampled view and the window goes to the softmax-weighted mean position; the
  alternative (``localiser="regress"``, needed for the ``attention``/``affine`` transforms)
  is a CNN whose fully connected head regresses the parameters. The spatial transformer
  samples a 28×28 crop ``I^T``; an embedding CNN ``e(·)`` (LeNet-style) maps crops to unit
  vectors.
* :func:`triplet_hinge` — the paper's loss over pairs ``n ≠ m`` of a batch of one class:
  ``max(0, ‖e(I_n^T) − e(I_m^T)‖² − ‖e(I_n^T) − e(I_n^rand)‖² + α)`` with ``I_n^rand`` a random
  28×28 crop of ``I_n``: crops of the set must look more alike than a crop and a random
  patch of its own image (of the same shape, :func:`random_crops_like`).
* :func:`crop_quads` maps the transformer's output frame into the input (a quadrilateral in
  general), :func:`quad_box_iou` scores it against the ground-truth box; a box is correct
  when IoU > 0.5.

:func:`train` runs the experiment, recording the boxes of a fixed panel of held-out images,
the loss and the held-out accuracy every ``record_every`` iterations.

Why a curriculum: started at a 28×28 window, every variant we tried (fixed-size or zooming
crops, uniform or nearby random crops, margins 0.2/1, the embedding trained, slowed, frozen or
pre-trained as a classifier) drifted onto empty background — an empty crop equals every other
empty crop, so the pair term vanishes there, and bilinear sampling gives no gradient back
toward the digit. Starting with a window 0.9 of the image (every crop holds the whole digit,
so crops can only agree by *centring* it) and shrinking it to 28×28 over the first 800
iterations, with ``I^rand`` one to 1½ window widths away, makes the windows follow the digit.
Once on the digit, the windows stopped getting more precise: with ``I^rand`` a window width
away, a crop a few pixels off the common position already satisfies the margin, so the hinge
is zero and nothing pulls it further. A precision stage (:func:`negative_offset_at`) moves
``I^rand`` to ½–1 window widths away, overlapping the window, which makes a misaligned crop
resemble its own random crop. The clean recipe compares each crop with four random crops
of its image (the hinge averaged over them, ``negatives``) instead of the paper's one: with
one, the held-out accuracy swung by tens of points between records and a run ended wherever
the swing was when the learning rate dropped (clean digits 3 and 5 ended at 84.5% and 66.1%
with ``--negatives 1 --lr-drop 2000``). With clutter, four made the windows worse (noisy
digits 5 and 7: 4.0% and 31.9% with ``--negatives 4``, 56.6% and 48.5% with one), so the
noisy recipe keeps the paper's one. The noisy variant adds a clutter curriculum: with 16
clutter pieces from the start the windows collapsed (≈ 2% correct in our trials), so it first
shrinks the window on clean images and then raises the clutter from 0 to 16 pieces over the second sixth
of the run (:func:`clutter_at`). :func:`recipe` holds both schedules. The curricula are ours,
not the paper's; the loss is the paper's.

Why a heatmap localiser: with the regressing localiser (every finding above was made with
it) the windows reached the digits but stayed imprecise — the boxes counted wrong were a few
pixels too far off (median IoU 0.45), and in clutter even the correct ones sat ≈ 5 pixels from
the digit's centre: 95.5–99.4% clean, 48.5–87.4% noisy. A fully connected head has to learn
the window position separately for every place a digit can be; a convolutional score map
applies the same detector everywhere, and its soft-argmax is exact to a fraction of a cell.
With the same recipes and seeds, every clean digit reached 100% and every noisy one 99.6–100%
(with the batch norm and the retry below), at ≈ 1.4× the training time.

Runs that fail: a noisy run can end with its windows on no common object — digit 6 when a
whole layer of the score map went silent (fixed by batch norm, ``heatmap_norm``, on in the
noisy recipe), digit 7 (with batch norm) when the clutter arrived. Such a run is plain from the
loss alone, without labels: its training loss ended at ≈ 0.2 and 0.38, a settled run's at ≤ 0.01
(:func:`final_training_loss`). The CLI therefore trains again with the next seed when the
final loss is above α/4 (``--retries``, default 2) and keeps the attempt with the lowest loss;
the checkpoint lists the attempts.

CLI: ``python -m stn_explore.colocalise``; page: ``/colocalisation``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from . import distortions as D
from ._checks import check_image, shape_str
from .geometry import affine_grid, normalized_to_pixel
from .sampling import sample

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


# ----------------------------------------------------------------------------- model
@dataclass
class ColocArgs:
    """Everything needed to rebuild a :class:`ColocNet` (stored in checkpoints)."""

    transform: str = "translate"
    canvas: int = CANVAS
    crop: int = CROP
    embed_dim: int = 32
    loc_channels: tuple[int, int] = (20, 20)
    loc_hidden: int = 50
    #: how the localisation network gives the window: ``regress`` — a CNN + fully connected
    #: layers regress the parameters; ``heatmap`` — a fully convolutional net scores every
    #: window position and the window goes to the softmax-weighted mean position (translate only)
    localiser: str = "regress"
    #: heatmap localiser only: batch norm before each ReLU (see :class:`HeatmapLocaliser`)
    heatmap_norm: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["loc_channels"] = list(d["loc_channels"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ColocArgs":
        d = dict(d)
        d["loc_channels"] = tuple(d["loc_channels"])
        d.setdefault("localiser", "regress")     # made before the heatmap localiser existed
        d.setdefault("heatmap_norm", False)      # made before its batch norm existed
        return cls(**d)


class Embedding(nn.Module):
    """LeNet-style e(·): 28×28 crop → unit vector ``(B, embed_dim)``."""

    def __init__(self, embed_dim: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Flatten(), nn.Linear(50 * 4 * 4, 128), nn.ReLU(inplace=True), nn.Linear(128, embed_dim),
            # batch statistics keep the embedding from collapsing to one point (where the
            # hinge is stuck at α with zero gradient); crops and random crops share a batch
            nn.BatchNorm1d(embed_dim, affine=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1)


LOCALISERS = ("heatmap", "regress")


class HeatmapLocaliser(nn.Module):
    """A fully convolutional localiser: images ``(B, 1, H, W)`` → θ ``(B, 2, 3)`` of a window
    of base size ``scale`` placed at the softmax-weighted mean of a score map.

    The image is viewed at half resolution; three 5×5 convolutions (one max-pool) give one
    score per 4×4-pixel cell (receptive field ≈ 44 pixels, a digit and its surroundings).
    Only cells where a native crop×crop window fits inside the image take part, so the mean
    position always leaves room for the window. Being convolutional, the same detector
    works at every position — a regressing head must learn each position separately. The
    last layer starts at zero: a flat map, the centred window.
    """

    def __init__(self, canvas: int = CANVAS, crop: int = CROP, channels: tuple[int, int] = (20, 20),
                 batch_norm: bool = True):
        super().__init__()
        if canvas % 4:
            raise ValueError(f"the heatmap localiser needs a canvas divisible by 4, got {canvas}")
        c1, c2 = channels
        # batch norm before every ReLU: without it, Adam's early steps (while the zero-initialised
        # last layer passes back almost no gradient) silenced a whole layer in one noisy run
        # (digit 6: 99.8% of the third layer's units ≤ 0, the map flat, the window stuck in the
        # centre). The clean runs were trained without it (all ten correct) and keep that.
        def norm(c):
            return [nn.BatchNorm2d(c)] if batch_norm else []

        self.net = nn.Sequential(
            nn.AvgPool2d(2),
            nn.Conv2d(1, c1, 5, padding=2), *norm(c1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), *norm(c2), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c2, 5, padding=2), *norm(c2), nn.ReLU(inplace=True),
            nn.Conv2d(c2, 1, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        cells = canvas // 4
        centres = (torch.arange(cells, dtype=torch.float32) + 0.5) / cells * 2 - 1  # normalised
        room = 1 - crop / canvas
        keep = centres.abs() <= room + 1e-6
        self.first = int(keep.nonzero()[0])
        self.register_buffer("centres", centres[keep])

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        n = len(self.centres)
        logits = self.net(x)[:, 0, self.first:self.first + n, self.first:self.first + n]
        p = logits.flatten(1).softmax(1).view(-1, n, n)
        tx = (p.sum(1) * self.centres).sum(1)   # columns → x
        ty = (p.sum(2) * self.centres).sum(1)   # rows → y
        s = torch.as_tensor(scale, dtype=x.dtype).expand(len(x))
        room = 1 - s
        tx, ty = torch.maximum(torch.minimum(tx, room), -room), torch.maximum(torch.minimum(ty, room), -room)
        z = torch.zeros_like(s)
        return torch.stack((torch.stack((s, z, tx), -1), torch.stack((z, s, ty), -1)), -2)


class ColocNet(nn.Module):
    """Localisation → 28×28 crop (bilinear, zero padding) → embedding.

    ``crop(x)`` takes images ``(B, 1, 84, 84)`` in [0, 1] and returns ``(V (B, 1, 28, 28),
    θ (B, 2, 3))``; at initialisation every crop is the centred 28×28 window. The buffer
    ``crop_scale`` is the window's base size (share of the image side).
    """

    def __init__(self, args: ColocArgs | None = None):
        super().__init__()
        self.args = args = args or ColocArgs()
        if args.transform not in COLOC_TRANSFORMS:
            raise ValueError(f"unknown co-localisation transform {args.transform!r}; "
                             f"expected one of {COLOC_TRANSFORMS}")
        if args.localiser not in LOCALISERS:
            raise ValueError(f"unknown localiser {args.localiser!r}; expected one of {LOCALISERS}")
        if args.localiser == "heatmap" and args.transform != "translate":
            raise ValueError("the heatmap localiser only moves the window: it needs transform='translate'")
        c1, c2 = args.loc_channels
        if args.localiser == "heatmap":
            self.heat = HeatmapLocaliser(args.canvas, args.crop, (c1, c2), args.heatmap_norm)
        else:
            self.loc = nn.Sequential(
                nn.AvgPool2d(2),  # the box only needs a coarse view: 84×84 → 42×42
                nn.Conv2d(1, c1, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
                nn.Conv2d(c1, c2, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True), nn.Flatten())
            with torch.no_grad():
                flat = self.loc(torch.zeros(1, 1, args.canvas, args.canvas)).shape[1]
            self.loc_fc = nn.Sequential(nn.Linear(flat, args.loc_hidden), nn.ReLU(inplace=True),
                                        nn.BatchNorm1d(args.loc_hidden, affine=False))
            # no bias: with batch-normalised features the batch-mean parameter stays at the
            # centred crop, so the crops cannot all drift together to one (empty) place
            self.regressor = nn.Linear(args.loc_hidden, n_raw_params(args.transform), bias=False)
            nn.init.zeros_(self.regressor.weight)
        self.embed = Embedding(args.embed_dim)
        # the window's base size as a share of the image; training shrinks it from
        # ColocConfig.start_scale to crop/canvas (a native 28×28 crop), where it stays
        self.register_buffer("crop_scale", torch.tensor(args.crop / args.canvas))

    def _check(self, x: torch.Tensor) -> None:
        check_image(x, "x")
        want = (1, self.args.canvas, self.args.canvas)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"x must have shape (B, 1, {want[1]}, {want[2]}), got {shape_str(x)}")

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """θ ``(B, 2, 3)`` of the crop for images ``(B, 1, 84, 84)``."""
        self._check(x)
        if self.args.localiser == "heatmap":
            return self.heat(x, self.crop_scale)
        raw = self.regressor(self.loc_fc(self.loc(x)))
        return params_to_theta(self.args.transform, raw, self.crop_scale)

    def crop(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        theta = self.theta(x)
        grid = affine_grid(theta, (self.args.crop, self.args.crop))
        return sample(x, grid, "bilinear", "zeros", check_grid_finite=False), theta

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """→ ``(embedding (B, D), crop V (B, 1, 28, 28), θ (B, 2, 3))``."""
        v, theta = self.crop(x)
        return self.embed(v), v, theta


def triplet_hinge(crops: torch.Tensor, rand: torch.Tensor, margin: float) -> torch.Tensor:
    """The paper's co-localisation loss, averaged over ordered pairs ``n ≠ m``.

    Args:
        crops: ``(B, D)`` embeddings ``e(I_n^T)`` of the transformer's crops (B ≥ 2).
        rand: ``(B, D)`` embeddings ``e(I_n^rand)`` of a random crop of the same images, or
            ``(K, B, D)`` for K random crops per image (the loss is then averaged over them).
        margin: α ≥ 0.
    Returns:
        scalar ``mean_{n≠m} max(0, ‖c_n − c_m‖² − ‖c_n − r_n‖² + α)``; zero exactly when every
        pair satisfies the margin (for every random crop).
    """
    if rand.dim() == 2:
        rand = rand[None]
    if crops.dim() != 2 or crops.shape[0] < 2 or rand.dim() != 3 or rand.shape[1:] != crops.shape \
            or rand.shape[0] < 1:
        raise ValueError(f"crops must have shape (B ≥ 2, D) and rand (B, D) or (K, B, D) with the same B "
                         f"and D, got {shape_str(crops)} and {shape_str(rand)}")
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be finite and ≥ 0, got {margin}")
    b = crops.shape[0]
    d_pair = torch.cdist(crops, crops).pow(2)                # (B, B) ‖c_n − c_m‖²
    d_rand = (crops[None] - rand).pow(2).sum(2)[:, :, None]  # (K, B, 1) ‖c_n − r_n‖²
    hinge = F.relu(d_pair[None] - d_rand + margin)           # (K, B, B)
    off = ~torch.eye(b, dtype=torch.bool, device=crops.device)
    return hinge[:, off].mean()


def random_crops_like(x: torch.Tensor, theta: torch.Tensor, gen: torch.Generator,
                      crop: int = CROP, offset: float | None = 2.0) -> torch.Tensor:
    """``I^rand``: for each image ``(B, C, H, W)`` a crop with the same shape as the
    transformer's (θ's linear part, detached) elsewhere in the image → ``(B, C, crop, crop)``.

    ``offset=None``: at a uniformly random position inside the image. ``offset=k``: displaced
    from the transformer's window by ``k`` to ``k + 1`` half-widths in a random direction
    (clamped inside the image) — with the default 2, a window one to 1½ widths away, so a
    window on the object is compared with its surroundings.
    Matching the shape matters: a random crop of another size is told apart by its scale
    alone, which the transformer can exploit without finding the object.
    """
    lin = theta.detach()[:, :, :2]
    reach = lin.abs().sum(2)                                # (B, 2) half-extent in x and y
    room = (1 - reach).clamp(min=0)
    b = theta.shape[0]
    if offset is not None:
        ang = 2 * math.pi * torch.rand(b, generator=gen, dtype=theta.dtype)
        dist = offset + torch.rand(b, generator=gen, dtype=theta.dtype)  # × half-extent
        d = torch.stack((ang.cos(), ang.sin()), 1) * dist[:, None] * reach
        t = torch.maximum(torch.minimum(theta.detach()[:, :, 2] + d, room), -room)
    else:
        t = (2 * torch.rand(b, 2, generator=gen, dtype=theta.dtype) - 1) * room
    theta_r = torch.cat((lin, t[:, :, None]), 2)
    grid = affine_grid(theta_r, (crop, crop))
    return sample(x, grid, "bilinear", "zeros", check_grid_finite=False)


# ----------------------------------------------------------------------------- data
def class_pool(digits, digit: int) -> np.ndarray:
    """Indices of the digits of one class in a :class:`~stn_explore.mnist.Digits` pool."""
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
    out = []
    for s in range(0, len(images), batch_size):
        x = D.to_batch(images[s:s + batch_size])
        out.append(crop_quads(model.theta(x), model.args.canvas).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 4, 2), np.float32)


def localisation_accuracy(model: ColocNet, images: np.ndarray, boxes: np.ndarray,
                          threshold: float = 0.5) -> dict:
    """Share (%) of images whose predicted box has IoU > ``threshold`` with the ground truth."""
    quads = predict_quads(model, images)
    iou = quad_box_iou(quads, boxes)
    return {"accuracy": float((iou > threshold).mean() * 100) if len(iou) else float("nan"),
            "mean_iou": float(iou.mean()) if len(iou) else float("nan"), "n": int(len(iou)),
            "quads": quads, "iou": iou}


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


def build_coloc_model(model_args: dict) -> ColocNet:
    return ColocNet(ColocArgs.from_dict(model_args))


def train(cfg: ColocConfig, *, train_digits, test_digits, out=None, resume_from: dict | None = None,
          progress: bool = True, on_record: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None, log=print) -> dict:
    """Train (or continue) one co-localisation run; returns the checkpoint dict.

    Every ``record_every`` iterations the boxes of the fixed panel (the first ``n_panel``
    held-out images), the mean loss since the last record and the held-out accuracy on the
    first ``n_eval`` held-out images are appended to the recording and ``on_record(ckpt)``
    is called. With ``out`` the checkpoint is saved atomically every ``save_every``
    iterations and at the end; ``should_stop()`` returning True ends the run after the
    current iteration (the checkpoint is saved, ``ckpt["stopped"]`` is True).
    The run is deterministic for a given seed, and ``resume_from`` continues it exactly.
    """
    from tqdm.auto import tqdm

    from .checkpoint import save_checkpoint

    cfg.check()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    pool = class_pool(train_digits, cfg.digit)
    held = held_out_set(test_digits, cfg.digit, cfg.noise, cfg.eval_seed)
    panel = {k: v[:cfg.n_panel] for k, v in held.items()}
    ev = {k: v[:cfg.n_eval] for k, v in held.items()}

    torch.manual_seed(cfg.seed)
    margs = ColocArgs(transform=cfg.transform, embed_dim=cfg.embed_dim, localiser=cfg.localiser,
                      heatmap_norm=cfg.heatmap_norm)
    if resume_from is not None:
        margs = ColocArgs.from_dict(resume_from["model_args"])
    model = ColocNet(margs)
    opt = torch.optim.Adam([
        {"params": [p for n, p in model.named_parameters() if not n.startswith("embed.")],
         "lr": cfg.lr * cfg.loc_lr_scale},
        {"params": model.embed.parameters(), "lr": cfg.lr}])
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    rec = empty_recording(panel)
    it, seconds = 0, 0.0
    if resume_from is not None:
        model.load_state_dict(resume_from["state_dict"])
        if "optimizer" in resume_from:   # a compacted run restarts Adam's moments
            opt.load_state_dict(resume_from["optimizer"])
        gen.set_state(resume_from["rng"])
        rec = _rec_from_tensors(resume_from["recording"])
        it, seconds = int(resume_from["iteration"]), float(resume_from.get("seconds", 0.0))

    data_info = {"task": "coloc", "digit": cfg.digit, "noise": cfg.noise,
                 "train_source": train_digits.source, "test_source": test_digits.source,
                 "is_sample": bool(train_digits.is_sample or test_digits.is_sample),
                 "n_train_digits": int(len(pool)), "n_held_out": int(len(held["images"]))}

    def snapshot(final: dict | None = None, stopped: bool = False) -> dict:
        return {"format": 1, "kind": "colocalisation", "version": __version__,
                "model_args": margs.to_dict(), "state_dict": model.state_dict(),
                "optimizer": opt.state_dict(), "rng": gen.get_state(), "config": asdict(cfg),
                "data": data_info, "iteration": it, "seconds": seconds,
                "recording": _rec_to_tensors(rec), "final": final, "stopped": stopped}

    def record(loss_mean: float) -> None:
        m = localisation_accuracy(model, ev["images"], ev["boxes"])
        rec["iteration"].append(it)
        rec["loss"].append(loss_mean)
        rec["accuracy"].append(m["accuracy"])
        rec["mean_iou"].append(m["mean_iou"])
        rec["panel_quads"].append(predict_quads(model, panel["images"]))
        model.train()

    model.crop_scale.fill_(crop_scale_at(cfg, it, margs))
    if not rec["iteration"]:
        record(float("nan"))  # iteration 0: the initial boxes
    bar = tqdm(total=cfg.iterations, initial=it, disable=not progress, unit="it",
               desc=f"digit {cfg.digit} {'noisy' if cfg.noise else 'clean'}")
    losses: list[float] = []
    stopped = False
    model.train()
    t0 = time.perf_counter()
    while it < cfg.iterations:
        model.crop_scale.fill_(crop_scale_at(cfg, it, margs))
        factor = 0.1 if cfg.lr_drop and it >= cfg.lr_drop else 1.0
        for group, scale in zip(opt.param_groups, (cfg.loc_lr_scale, 1.0)):
            group["lr"] = cfg.lr * scale * factor
        idx = pool[torch.randint(0, len(pool), (cfg.batch_size,), generator=gen).numpy()]
        x = D.to_batch(make_images(train_digits, idx, clutter_at(cfg, it), gen)["images"])
        v, theta = model.crop(x)
        offset = negative_offset_at(cfg, it)
        rand = [random_crops_like(x, theta, gen, margs.crop, offset=offset) for _ in range(cfg.negatives)]
        emb, *rand = model.embed(torch.cat((v, *rand))).split(len(x))
        loss = triplet_hinge(emb, torch.stack(rand), cfg.margin)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        it += 1
        model.crop_scale.fill_(crop_scale_at(cfg, it, margs))
        losses.append(float(loss.detach()))
        bar.update(1)
        if it % cfg.record_every == 0 or it == cfg.iterations:
            seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            record(float(np.mean(losses)) if losses else float("nan"))
            losses = []
            bar.set_postfix(loss=f"{rec['loss'][-1]:.3f}", acc=f"{rec['accuracy'][-1]:.0f}%")
            if on_record is not None:
                on_record(snapshot())
        if should_stop is not None and should_stop():
            stopped = True
            break
        if out is not None and it % cfg.save_every == 0 and it < cfg.iterations:
            save_checkpoint(out, snapshot())
    bar.close()
    seconds += time.perf_counter() - t0
    final = None
    if it >= cfg.iterations:
        m = localisation_accuracy(model, held["images"], held["boxes"])
        final = {"accuracy": m["accuracy"], "mean_iou": m["mean_iou"], "n": m["n"]}
        log(f"digit {cfg.digit} ({'noisy' if cfg.noise else 'clean'}): {final['accuracy']:.1f}% of "
            f"{final['n']} held-out boxes with IoU > 0.5 (mean IoU {final['mean_iou']:.3f}) after "
            f"{it} iterations, {seconds:.0f} s")
    ckpt = snapshot(final, stopped)
    if out is not None:
        save_checkpoint(out, ckpt)
    return ckpt


def final_training_loss(ckpt: dict) -> float:
    """Mean training loss over the last tenth of a run's records — label-free evidence of
    whether the windows settled on a common object (our finished runs: ≤ 0.01 when they did,
    ≈ 0.2 and 0.38 in the two where they did not)."""
    loss = np.asarray(ckpt["recording"]["loss"], dtype=np.float64)
    loss = loss[np.isfinite(loss)]
    if not len(loss):
        return float("nan")
    return float(loss[-max(1, len(loss) // 10):].mean())


def recording_name(digit: int, noise: int) -> str:
    """File name of the shipped run for a digit and variant: ``coloc_3_clean.pt``."""
    return f"coloc_{int(digit)}_{'noisy' if noise else 'clean'}.pt"


def compact(ckpt: dict, test_digits) -> dict:
    """A finished run made small for shipping: no optimiser state, float16 weights (the
    ``crop_scale`` buffer stays float32), and the held-out accuracy re-measured on the rounded
    weights (the float32 figure is kept in ``compact["final_float32"]``)."""
    if ckpt.get("final") is None:
        raise ValueError("only a finished co-localisation run can be compacted")
    out = dict(ckpt)
    out.pop("optimizer", None)
    out["state_dict"] = {k: (v.half() if v.is_floating_point() and k != "crop_scale" else v)
                         for k, v in ckpt["state_dict"].items()}
    cfg = ColocConfig(**ckpt["config"])
    held = held_out_set(test_digits, cfg.digit, cfg.noise, cfg.eval_seed)
    m = evaluate_checkpoint(out, held["images"], held["boxes"])
    out["final"] = {"accuracy": m["accuracy"], "mean_iou": m["mean_iou"], "n": m["n"]}
    out["compact"] = {"dtype": "float16", "final_float32": ckpt["final"]}
    return out


def evaluate_checkpoint(ckpt: dict, images: np.ndarray, boxes: np.ndarray) -> dict:
    """IoU > 0.5 accuracy of a co-localisation checkpoint on ``images uint8 (N, 84, 84)``
    with ground-truth ``boxes (N, 4)``."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    model = build_coloc_model(ckpt["model_args"])
    want = (model.args.canvas, model.args.canvas)
    if images.ndim != 3 or images.shape[1:] != want:
        raise ValueError(f"co-localisation images must have shape (N, {want[0]}, {want[1]}), "
                         f"got {tuple(images.shape)}")
    if boxes is None or np.asarray(boxes).shape != (len(images), 4):
        raise ValueError("co-localisation evaluation needs ground-truth boxes (N, 4) = x0, y0, x1, y1")
    model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return localisation_accuracy(model, images, np.asarray(boxes))


# ----------------------------------------------------------------------------- shipped runs
#: The paper's Table 5 gives 100% without noise and a per-digit range with noise.
PAPER_CLEAN = 100.0
PAPER_NOISY_RANGE = (75.0, 93.0)


#: where the shipped runs live (relative to the repository root, where the app runs)
RUNS_FOLDER = "checkpoints"


def run_path(digit: int, noise: int, folder=None):
    """``<folder>/coloc_<digit>_<clean|noisy>.pt`` (default folder :data:`RUNS_FOLDER`)."""
    from pathlib import Path

    return Path(RUNS_FOLDER if folder is None else folder) / recording_name(digit, noise)


def load_run(path) -> dict:
    """A co-localisation checkpoint for display: ``{"recording": arrays (see
    :func:`recording_arrays`), "final", "config", "data", "iteration", "seconds"}``."""
    from .checkpoint import CheckpointError, load_checkpoint

    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != "colocalisation":
        raise CheckpointError(f"{path} is not a co-localisation checkpoint")
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
    from pathlib import Path

    from .checkpoint import CheckpointError, load_checkpoint

    rows = []
    for path in sorted(Path(RUNS_FOLDER if folder is None else folder).glob("coloc_*.pt")):
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


class LiveRun:
    """A co-localisation run on a background thread, for an interactive session.

    ``start()`` returns at once; ``latest`` is the newest recorded checkpoint dict (None before
    the first record), ``done``/``error`` tell how it ended, ``stop()`` asks it to end after
    the current iteration (the result keeps everything recorded so far). Torch releases the
    interpreter lock in its kernels, so other work in the process goes on while it trains.
    """

    def __init__(self, cfg: ColocConfig, train_digits, test_digits):
        import threading

        self.cfg = cfg.check()
        self._digits = (train_digits, test_digits)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"coloc-live-{cfg.digit}", daemon=True)
        self._latest: dict | None = None
        self.result: dict | None = None
        self.error: str | None = None
        self.started = time.time()

    def start(self) -> "LiveRun":
        self._thread.start()
        return self

    def _record(self, ckpt: dict) -> None:
        with self._lock:
            self._latest = ckpt

    def _run(self) -> None:
        try:
            res = train(self.cfg, train_digits=self._digits[0], test_digits=self._digits[1], progress=False,
                        on_record=self._record, should_stop=self._stop.is_set, log=lambda *a: None)
            with self._lock:
                self._latest = self.result = res
        except Exception as exc:  # reported to the page, never raised on the server thread
            self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._stop.set()

    @property
    def latest(self) -> dict | None:
        with self._lock:
            return self._latest

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and (self.result is not None or self.error is not None)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

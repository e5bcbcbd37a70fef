"""How a spatial transformer learns, without any UI: the gradient of an image loss through the
sampler (paper eqs. (6)–(7)), and θ fitted to a target by gradient descent, step by step.

Convention: see CONVENTIONS.md. Images here are NumPy ``(H, W)`` floats in [0, 1]; θ is a
``(2, 3)`` array mapping normalised output coordinates to normalised input coordinates
(``align_corners=False``, x right, y down). The loss is always the mean squared difference
``L = mean((V − V*)²)`` between the sampler's output V and a target V*.

Why the gradient can vanish: eq. (5) gives each output pixel from the 2×2 input pixels around its
sample point, so ∂V_i/∂x^s_i (eq. (7)) is a difference of those four values. A sample point
whose four neighbours are all 0 (no ink, or outside U with zero padding) has ∂L/∂x^s_i = 0, and
∂L/∂θ = Σ_i ∂L/∂x^s_i (x^t_i, y^t_i, 1) (eq. (1)) is 0 when every point is such a point: a crop
of empty background cannot tell which way the digit is.

The failure-mode lab (a tiny ST-CNN trained live) is :mod:`stn_explore.explorer.learning_lab`;
the figures are :mod:`stn_explore.explorer.learning_figures`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..core.affine import affine_grid, theta_from_params
from ..core.sampling import PADDING_MODES, outside_fraction, sample

__all__ = ["OPTIMISERS", "STATUSES", "GRADIENT_PRESETS", "FIT_PRESETS", "CANVAS", "DIGIT_OFFSET", "place_digit",
           "digit_box", "same_class_partner", "crop_theta", "target_theta", "target_image", "SamplerGradient",
           "sampler_gradient", "sampler_gradients", "optimiser_update", "ThetaFit", "loss_landscape",
           "path_coordinates"]

#: optimisers offered for the live fit (name → what it is)
OPTIMISERS = {"sgd": "plain gradient descent", "momentum": "SGD with momentum 0.9", "adam": "Adam"}
#: (rotation °, scale, tx, ty) of the current θ for the gradient view's presets, on the 48×48 U
#: of :func:`place_digit` (the digit's crop, the target, is about (0°, 0.58, −0.71, 0))
GRADIENT_PRESETS = {
    "near the digit": (10.0, 0.55, -0.3, 0.12),
    "half outside U": (0.0, 0.6, -0.9, 0.0),
    "empty corner": (0.0, 0.3, 0.62, 0.62),
}
#: what a fit's ``status`` means
STATUSES = {
    "running": "still moving",
    "converged": "converged: V matches V*",
    "stuck": "stuck: θ no longer moves but V does not match V* (a local minimum, or no ink under the grid)",
    "lost": "lost: the step threw the whole grid off U, where the output and the gradient are zero",
    "diverged": "diverged: θ grew without bound",
}
#: target (rotation °, scale, tx, ty), optimiser and learning rate of the live fit's presets
FIT_PRESETS = {
    "converges": {"angle": 25.0, "scale": 0.9, "tx": 0.1, "ty": -0.05, "optimiser": "adam", "lr": 0.03},
    "local minimum (150°)": {"angle": 150.0, "scale": 0.9, "tx": 0.1, "ty": -0.05, "optimiser": "adam", "lr": 0.03},
    "diverges (lr too high)": {"angle": 25.0, "scale": 0.9, "tx": 0.1, "ty": -0.05, "optimiser": "sgd", "lr": 10.0},
}
#: the gradient view's input: a 28×28 digit pasted at this (x, y) offset into a CANVAS×CANVAS U:
#: cut by U's left edge (so that a grid over the edge meets ink, and the padding modes differ
#: there) with empty space to the right
CANVAS = 48
DIGIT_OFFSET = (-7, 10)


# ----------------------------------------------------------------------------- inputs
def place_digit(digit: np.ndarray, canvas: int = CANVAS, offset: tuple[int, int] = DIGIT_OFFSET) -> np.ndarray:
    """A ``(canvas, canvas)`` float image in [0, 1] with ``digit`` ``(h, w)`` (uint8 or float)
    pasted with its top-left pixel at ``offset`` ``(x, y)`` (may be negative: the digit is cut at
    the canvas's edge) and zeros elsewhere."""
    d = np.asarray(digit)
    if d.ndim != 2:
        raise ValueError(f"digit must be (H, W), got shape {d.shape}")
    d = d.astype(np.float32) / (255.0 if d.dtype == np.uint8 else 1.0)
    h, w = d.shape
    x0, y0 = offset
    u = np.zeros((canvas, canvas), np.float32)
    ys, xs = slice(max(y0, 0), min(y0 + h, canvas)), slice(max(x0, 0), min(x0 + w, canvas))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        raise ValueError(f"a {h}×{w} digit at offset {offset} misses a {canvas}×{canvas} canvas")
    u[ys, xs] = d[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    return u


def digit_box(offset: tuple[int, int] = DIGIT_OFFSET, size: int = 28) -> tuple[float, float, float, float]:
    """The pixel box ``x0, y0, x1, y1`` of a ``size``-pixel digit pasted at ``offset``."""
    return offset[0] - 0.5, offset[1] - 0.5, offset[0] + size - 0.5, offset[1] + size - 0.5


def same_class_partner(labels: np.ndarray, i: int) -> int:
    """The next digit after ``i`` (cyclically) with the same label: a second image of the class."""
    labels = np.asarray(labels)
    pool = np.flatnonzero(labels == labels[i])
    if len(pool) < 2:
        raise ValueError(f"digit {i} is the only one of its class")
    return int(pool[(np.searchsorted(pool, i) + 1) % len(pool)])


def crop_theta(box_xyxy: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """θ ``(2, 3)`` whose output frame is exactly the pixel box ``x0, y0, x1, y1`` (pixel-centre
    convention: pixel j spans [j − 0.5, j + 0.5]) of an input of ``size`` ``(H, W)``."""
    h, w = size
    x0, y0, x1, y1 = box_xyxy
    # box edges in normalised units (align_corners=False): x = (2 p + 1) / W − 1
    nx0, nx1 = (2 * x0 + 1) / w - 1, (2 * x1 + 1) / w - 1
    ny0, ny1 = (2 * y0 + 1) / h - 1, (2 * y1 + 1) / h - 1
    return np.array([[(nx1 - nx0) / 2, 0, (nx1 + nx0) / 2], [0, (ny1 - ny0) / 2, (ny1 + ny0) / 2]])


def target_theta(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    """θ ``(2, 3)`` from the page's sliders: rotation (degrees), scale and shift, as
    :func:`~stn_explore.core.affine.theta_from_params` (a positive angle turns the grid clockwise on U)."""
    if not (math.isfinite(angle) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"need a finite angle and a positive scale, got {angle}, {scale}")
    return theta_from_params(torch.tensor(float(angle), dtype=torch.float64), float(scale),
                             translate=(float(tx), float(ty))).numpy()


def _image(u: np.ndarray, name: str = "image") -> torch.Tensor:
    a = np.asarray(u, np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be (H, W), got shape {a.shape}")
    return torch.from_numpy(a)[None, None]


def _check_theta(theta) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(theta, np.float64))
    if t.shape != (2, 3) or not torch.isfinite(t).all():
        raise ValueError(f"theta must be a finite (2, 3) array, got shape {tuple(t.shape)}")
    return t[None]


def target_image(u: np.ndarray, theta: np.ndarray, out_size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """V* = U sampled through ``theta`` (bilinear, zero padding), ``(H', W')``."""
    grid = affine_grid(_check_theta(theta), out_size)
    return sample(_image(u), grid)[0, 0].numpy()


# ----------------------------------------------------------------------------- gradients
@dataclass
class SamplerGradient:
    """The gradient of ``L = mean((V − V*)²)`` through the sampler for one padding mode."""

    padding: str
    loss: float
    v: np.ndarray            #: (H', W') the sampler's output V
    grid: np.ndarray         #: (H', W', 2) the sample points x^s (normalised source (x, y))
    grad_grid: np.ndarray    #: (H', W', 2) ∂L/∂x^s at every sample point (normalised units)
    grad_theta: np.ndarray   #: (2, 3) ∂L/∂θ
    outside: float           #: share of sample points outside U

    @property
    def zero_share(self) -> float:
        """Share of sample points whose gradient is exactly zero."""
        return float((np.abs(self.grad_grid).sum(-1) == 0).mean())


def sampler_gradient(u: np.ndarray, theta: np.ndarray, target: np.ndarray, padding: str = "zeros") -> SamplerGradient:
    """∂L/∂x^s and ∂L/∂θ of ``L = mean((V − V*)²)``, ``V = sample(U, T_θ(G))`` (bilinear), by
    autograd through ``F.grid_sample``; ``target`` V* ``(H', W')`` sets the output size.
    Computed in float64 (checked against eqs. (6)–(7) written out in the tests)."""
    if padding not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding!r}; expected one of {PADDING_MODES}")
    tgt = _image(target, "target")
    th = _check_theta(theta).requires_grad_(True)
    grid = affine_grid(th, tgt.shape[-2:])        # (1, H', W', 2), eq. (1)
    grid.retain_grad()
    v = sample(_image(u), grid, "bilinear", padding)
    loss = ((v - tgt) ** 2).mean()
    loss.backward()
    return SamplerGradient(padding, loss.item(), v[0, 0].detach().numpy(), grid[0].detach().numpy(),
                           grid.grad[0].numpy(), th.grad[0].numpy(), float(outside_fraction(grid.detach())[0]))


def sampler_gradients(u: np.ndarray, theta: np.ndarray, target: np.ndarray) -> dict[str, SamplerGradient]:
    """:func:`sampler_gradient` for every padding mode."""
    return {p: sampler_gradient(u, theta, target, p) for p in PADDING_MODES}


# ----------------------------------------------------------------------------- fitting θ
def optimiser_update(kind: str, grad: torch.Tensor, state: dict, lr: float) -> torch.Tensor:
    """The step ``Δθ`` (θ ← θ − Δθ) of torch.optim's SGD, SGD with momentum 0.9 and Adam
    (β = (0.9, 0.999), ε = 1e-8), written out; ``state`` carries the momentum / moments between
    calls. (Written out rather than using torch.optim, whose first use imports torch._dynamo:
    5 s on this machine, felt as a frozen page; the tests check both give the same path.)"""
    if kind == "sgd":
        return lr * grad
    if kind == "momentum":
        buf = grad if "buf" not in state else 0.9 * state["buf"] + grad
        state["buf"] = buf
        return lr * buf
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = 0.9 * state.get("m", torch.zeros_like(grad)) + 0.1 * grad
    v = state["v"] = 0.999 * state.get("v", torch.zeros_like(grad)) + 0.001 * grad * grad
    return lr * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)


class ThetaFit:
    """θ fitted to a target V* by gradient descent on ``L = mean((V − V*)²)``, one step at a time.

    Starts at ``theta0`` (default: the identity); ``step(n)`` takes ``n`` optimiser steps (the
    learning rate may change between calls, as on the page). ``thetas`` ``(K + 1, 2, 3)`` and
    ``losses`` ``(K + 1,)`` hold the path (``losses[k]`` is the loss at ``thetas[k]``);
    ``status`` (:data:`STATUSES`) says whether it is still moving, has converged, is stuck (a
    local minimum, or a zero gradient inside U), is lost (every sample point outside U: zero
    output and zero gradient) or has diverged (θ no longer finite, or absurdly large)."""

    #: loss below this counts as converged (V matches V* to ~1% of the intensity range)
    TOL = 1e-4
    #: a θ entry beyond this is called diverged (the grid is hundreds of image widths away)
    BLOW_UP = 1e3

    def __init__(self, u: np.ndarray, target: np.ndarray, optimiser: str = "adam", lr: float = 0.03,
                 theta0: np.ndarray | None = None, padding: str = "zeros"):
        if optimiser not in OPTIMISERS:
            raise ValueError(f"unknown optimiser {optimiser!r}; expected one of {tuple(OPTIMISERS)}")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.u, self.target = _image(u).float(), _image(target, "target").float()
        self.padding, self.optimiser, self.lr = padding, optimiser, float(lr)
        self.theta = _check_theta(np.eye(2, 3) if theta0 is None else theta0).float()   # (1, 2, 3)
        self._state: dict = {}
        self._thetas = [self.theta[0].numpy().copy()]
        loss, self._grad = self._loss_and_grad()
        self._losses = [loss]
        self.status = "running"

    def _loss_and_grad(self) -> tuple[float, torch.Tensor]:
        th = self.theta.clone().requires_grad_(True)
        grid = affine_grid(th, self.target.shape[-2:])
        v = sample(self.u, grid, "bilinear", self.padding, check_grid_finite=False)
        loss = ((v - self.target) ** 2).mean()
        (grad,) = torch.autograd.grad(loss, th)
        return loss.item(), grad

    def step(self, n: int = 1, lr: float | None = None) -> "ThetaFit":
        """Take up to ``n`` steps (none once converged or diverged); returns self."""
        if lr is not None:
            self.lr = float(lr)
        for _ in range(int(n)):
            if self.status in ("converged", "diverged"):
                break
            # the step uses the gradient at the current θ (computed after the previous step)
            th = self.theta - optimiser_update(self.optimiser, self._grad, self._state, self.lr)
            if not torch.isfinite(th).all() or float(th.abs().max()) > self.BLOW_UP:
                self.status = "diverged"
                break
            self.theta = th
            loss, self._grad = self._loss_and_grad()
            self._thetas.append(th[0].numpy().copy())
            self._losses.append(loss)
            self.status = self._judge()
        return self

    def _judge(self) -> str:
        if self._losses[-1] < self.TOL:
            return "converged"
        if not bool(self._grad.any()):   # no sample point sees ink: nothing pulls θ anywhere
            return "lost" if self.outside() == 1.0 else "stuck"
        if len(self._losses) > 60:
            recent = self._losses[-50:]
            moved = np.abs(np.diff(np.stack(self._thetas[-50:]), axis=0)).max()
            if max(recent) - min(recent) < 1e-3 * max(recent[-1], self.TOL) and moved < 1e-4:
                return "stuck"
        return "running"

    @property
    def thetas(self) -> np.ndarray:
        return np.stack(self._thetas)

    @property
    def losses(self) -> np.ndarray:
        return np.asarray(self._losses)

    @property
    def steps(self) -> int:
        return len(self._losses) - 1

    def grid(self) -> np.ndarray:
        """The sampling grid ``(H', W', 2)`` of the current θ."""
        with torch.no_grad():
            return affine_grid(self.theta, self.target.shape[-2:])[0].numpy()

    def output(self) -> np.ndarray:
        """V ``(H', W')`` at the current θ."""
        with torch.no_grad():
            grid = affine_grid(self.theta, self.target.shape[-2:])
            return sample(self.u, grid, "bilinear", self.padding, check_grid_finite=False)[0, 0].numpy()

    def outside(self) -> float:
        with torch.no_grad():
            return float(outside_fraction(affine_grid(self.theta, self.target.shape[-2:]))[0])


def loss_landscape(u: np.ndarray, target: np.ndarray, angles: np.ndarray, scales: np.ndarray,
                   translate: tuple[float, float] = (0.0, 0.0), padding: str = "zeros") -> np.ndarray:
    """L over a slice of θ space: ``θ = theta_from_params(angle, scale, translate=translate)``
    for every (scale, angle) → ``(len(scales), len(angles))`` (one batched warp)."""
    a = torch.as_tensor(np.asarray(angles, np.float64))
    s = torch.as_tensor(np.asarray(scales, np.float64))
    aa, ss = torch.meshgrid(a, s, indexing="xy")          # (S, A)
    th = theta_from_params(aa.reshape(-1), ss.reshape(-1), translate=translate).float()
    tgt = _image(target, "target").float()
    with torch.no_grad():
        grid = affine_grid(th, tgt.shape[-2:])
        v = sample(_image(u).float().expand(len(th), -1, -1, -1), grid, "bilinear", padding)
        loss = ((v - tgt) ** 2).flatten(1).mean(1)
    return loss.reshape(len(s), len(a)).numpy().astype(np.float64)


def path_coordinates(thetas: np.ndarray) -> np.ndarray:
    """Where a path of θ ``(K, 2, 3)`` lies on the landscape's axes: ``(K, 2)`` = rotation
    (degrees, the angle of θ's first column, as :func:`~stn_explore.core.affine.params_from_theta`)
    and scale ``sqrt|det A|``; NaN for a singular or non-finite θ. (NumPy: it runs on the whole
    path every frame.)"""
    t = np.asarray(thetas, np.float64).reshape(-1, 2, 3)
    det = t[:, 0, 0] * t[:, 1, 1] - t[:, 0, 1] * t[:, 1, 0]
    ok = np.isfinite(t).all((1, 2)) & (np.abs(det) > 1e-12)
    out = np.full((len(t), 2), np.nan)
    out[ok, 0] = np.degrees(np.arctan2(t[ok, 1, 0], t[ok, 0, 0]))
    out[ok, 1] = np.sqrt(np.abs(det[ok]))
    return out

"""Affine (eq. 1) and attention (eq. 2) transforms: grids, θ ↔ parameters, points.

Convention: see :mod:`stn_explore.core.geometry` (and CONVENTIONS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch

from ._checks import check_finite, check_float, check_shape, check_size
from .coords import TensorLike, _check_points, _homogeneous_base_grid


# --------------------------------------------------------------------------------------
# Affine (eq. 1) and attention (eq. 2)
# --------------------------------------------------------------------------------------
def _check_theta(theta) -> None:
    check_shape(theta, "theta", "(B, 2, 3)",
                isinstance(theta, torch.Tensor) and theta.dim() == 3 and theta.shape[1:] == (2, 3))
    check_float(theta, "theta")
    check_finite(theta, "theta")


def affine_grid(theta: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Sampling grid of an affine transform (paper eq. (1)).

    Args:
        theta: ``(B, 2, 3)`` maps normalised target ``(x, y, 1)`` to source ``(x, y)``.
        size: ``(H, W)`` of the output V.
    Returns:
        ``(B, H, W, 2)`` source ``(x, y)`` of every target pixel; equal (to the last bit
        of float32 round-off) to ``F.affine_grid(theta, (B, C, H, W), align_corners=False)``.
    """
    _check_theta(theta)
    h, w = check_size(size)
    b = theta.shape[0]
    base = _homogeneous_base_grid(h, w, theta.dtype, str(theta.device))
    # The same bmm as ATen's affine_grid, on a cached base grid.
    return base.expand(b, -1, -1).bmm(theta.transpose(1, 2)).view(b, h, w, 2)


def attention_theta(params: torch.Tensor) -> torch.Tensor:
    """The paper's constrained attention transform, eq. (2).

    ``params`` ``(B, 3)`` = ``(s, tx, ty)`` → θ ``(B, 2, 3)`` = [[s, 0, tx], [0, s, ty]]:
    an isotropic scale (crop size ``s`` of the source, 1 = whole image) and a translation.
    """
    check_shape(params, "params", "(B, 3)",
                isinstance(params, torch.Tensor) and params.dim() == 2 and params.shape[1] == 3)
    s, tx, ty = params.unbind(-1)
    zero = torch.zeros_like(s)
    return torch.stack((torch.stack((s, zero, tx), -1), torch.stack((zero, s, ty), -1)), -2)


def _as_tensor(v: TensorLike, ref: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v if v.is_floating_point() else v.to(torch.get_default_dtype())
    dtype = ref.dtype if ref is not None else torch.get_default_dtype()
    return torch.tensor(float(v), dtype=dtype)


def theta_from_params(
    angle_deg: TensorLike = 0.0,
    scale: Union[TensorLike, Sequence[TensorLike]] = 1.0,
    shear: TensorLike = 0.0,
    translate: Union[Sequence[TensorLike], torch.Tensor] = (0.0, 0.0),
) -> torch.Tensor:
    """Build θ = [R(angle) · Sh(shear) · S(sx, sy) | t] (target → source).

    ``R(a) = [[cos a, -sin a], [sin a, cos a]]``, ``Sh(k) = [[1, k], [0, 1]]``,
    ``S = diag(sx, sy)``.

    Args:
        angle_deg: rotation in degrees. Because θ maps output → input and y points down, a
            **positive angle turns the sampling grid clockwise on the input and the output
            image counter-clockwise on screen** (pinned by a test).
        scale: isotropic scale, or a pair ``(sx, sy)``. Scale > 1 samples a larger region
            of the input, so the output looks zoomed *out*; 0.5 zooms in ×2.
        shear: horizontal shear factor ``k``.
        translate: ``(tx, ty)`` (a pair, or a tensor ``(..., 2)``); the source point that
            the output centre samples.
    Every argument may be a number or a tensor; tensors broadcast to a batch shape ``S``.
    Returns:
        θ of shape ``S + (2, 3)`` (``(2, 3)`` when every argument is a number).
    """
    angle = _as_tensor(angle_deg)
    if isinstance(scale, (tuple, list)):
        sx, sy = (_as_tensor(v, angle) for v in scale)
    else:
        sx = sy = _as_tensor(scale, angle)
    k = _as_tensor(shear, angle)
    if isinstance(translate, torch.Tensor):
        check_shape(translate, "translate", "(..., 2)",
                    translate.dim() >= 1 and translate.shape[-1] == 2)
        tx, ty = translate.unbind(-1)
    else:
        tx, ty = (_as_tensor(v, angle) for v in translate)
    angle, sx, sy, k, tx, ty = torch.broadcast_tensors(angle, sx, sy, k, tx, ty)
    a = torch.deg2rad(angle)
    c, s = torch.cos(a), torch.sin(a)
    # R @ Sh @ S = [[c sx, (c k - s) sy], [s sx, (s k + c) sy]]
    row0 = torch.stack((c * sx, (c * k - s) * sy, tx), -1)
    row1 = torch.stack((s * sx, (s * k + c) * sy, ty), -1)
    return torch.stack((row0, row1), -2)


@dataclass(frozen=True)
class AffineParams:
    """Decomposition of θ = [R(angle) · Sh(shear) · diag(scale_x, scale_y) | t].

    Fields are tensors with the batch shape of θ (0-dim for a single ``(2, 3)`` θ).
    A reflection (det < 0) shows up as a negative ``scale_y``.
    """

    angle_deg: torch.Tensor
    scale_x: torch.Tensor
    scale_y: torch.Tensor
    shear: torch.Tensor
    tx: torch.Tensor
    ty: torch.Tensor

    def to_theta(self) -> torch.Tensor:
        return theta_from_params(self.angle_deg, (self.scale_x, self.scale_y), self.shear,
                                 (self.tx, self.ty))


def params_from_theta(theta: torch.Tensor) -> AffineParams:
    """Inverse of :func:`theta_from_params`: a QR decomposition of θ's linear part.

    ``theta`` ``(..., 2, 3)``. Raises ``ValueError`` when θ's linear part is singular.
    """
    check_shape(theta, "theta", "(..., 2, 3)",
                isinstance(theta, torch.Tensor) and theta.dim() >= 2 and theta.shape[-2:] == (2, 3))
    check_finite(theta, "theta")
    a00, a01, a10, a11 = theta[..., 0, 0], theta[..., 0, 1], theta[..., 1, 0], theta[..., 1, 1]
    sx = torch.hypot(a00, a10)
    det = a00 * a11 - a01 * a10
    if bool((sx < 1e-12).any()) or bool((det.abs() < 1e-12).any()):
        raise ValueError("theta's linear part is singular: it cannot be decomposed")
    c, s = a00 / sx, a10 / sx
    # U = R^T A = [[sx, k sy], [0, sy]]
    u01 = c * a01 + s * a11
    sy = -s * a01 + c * a11
    return AffineParams(torch.rad2deg(torch.atan2(s, c)), sx, sy, u01 / sy,
                        theta[..., 0, 2], theta[..., 1, 2])


def to_homogeneous(matrix: torch.Tensor) -> torch.Tensor:
    """θ ``(..., 2, 3)`` → ``(..., 3, 3)`` with last row ``(0, 0, 1)``; ``(..., 3, 3)`` unchanged."""
    check_shape(matrix, "matrix", "(..., 2, 3) or (..., 3, 3)",
                isinstance(matrix, torch.Tensor) and matrix.dim() >= 2
                and matrix.shape[-2:] in ((2, 3), (3, 3)))
    if matrix.shape[-2] == 3:
        return matrix
    last = torch.zeros(matrix.shape[:-2] + (1, 3), dtype=matrix.dtype, device=matrix.device)
    last[..., 0, 2] = 1
    return torch.cat((matrix, last), dim=-2)


def invert(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of an affine θ ``(..., 2, 3)`` (returns ``(..., 2, 3)``) or a homography
    ``(..., 3, 3)`` (returns ``(..., 3, 3)``). Raises ``ValueError`` if singular."""
    h = to_homogeneous(matrix)
    check_finite(h, "matrix")
    det = torch.linalg.det(h)
    if bool((det.abs() < 1e-12).any()):
        raise ValueError("matrix is singular (|det| < 1e-12) and has no inverse")
    inv = torch.linalg.inv(h)
    if matrix.shape[-2] == 2:
        return inv[..., :2, :]
    return inv


def compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """The map ``p ↦ outer(inner(p))`` of two affine θ ``(..., 2, 3)`` or homographies.

    Warping twice equals one warp with the composition:
    ``warp(warp(U, a), b) == warp(U, compose(a, b))`` (up to resampling), because
    ``V(p) = U(a p)`` and ``W(p) = V(b p) = U(a b p)``.
    Returns ``(..., 2, 3)`` if both are affine, else ``(..., 3, 3)``.
    """
    out = to_homogeneous(outer) @ to_homogeneous(inner)
    if outer.shape[-2] == 2 and inner.shape[-2] == 2:
        return out[..., :2, :]
    return out


def theta_to_pixel_matrix(theta: torch.Tensor, input_size: Sequence[int],
                          output_size: Sequence[int] | None = None) -> torch.Tensor:
    """Express θ (or a homography) as a ``(..., 3, 3)`` matrix mapping *output pixel*
    ``(col, row, 1)`` to *input pixel* coordinates (e.g. for OpenCV's ``WARP_INVERSE_MAP``).
    """
    hi, wi = check_size(input_size)
    ho, wo = check_size(output_size if output_size is not None else input_size)
    h = to_homogeneous(theta)
    d = dict(dtype=h.dtype, device=h.device)
    # pixel → normalised: x = (2 px + 1) / W - 1
    norm_from_out = torch.tensor([[2 / wo, 0, 1 / wo - 1], [0, 2 / ho, 1 / ho - 1], [0, 0, 1]], **d)
    in_from_norm = torch.tensor([[wi / 2, 0, (wi - 1) / 2], [0, hi / 2, (hi - 1) / 2], [0, 0, 1]], **d)
    return in_from_norm @ h @ norm_from_out



def affine_transform_points(theta: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Map target points ``(B, N, 2)`` through θ ``(B, 2, 3)`` to source points ``(B, N, 2)``."""
    _check_theta(theta)
    _check_points(points)
    return points @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]


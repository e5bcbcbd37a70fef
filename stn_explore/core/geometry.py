"""Grid generators and transform helpers (paper section 3.2).

Convention (stated once in CONVENTIONS.md, repeated briefly here):
    * images are ``(B, C, H, W)``; sizes are ``(H, W)``; points are ``(x, y)``;
    * coordinates are normalised to [-1, 1] with ``align_corners=False``: -1 and +1 are the
      outer *edges* of the image, pixel ``j`` has its centre at ``(2 j + 1) / W - 1``;
    * x points right, y points down (row index grows downwards);
    * every transform maps **target (output V) coordinates to source (input U)
      coordinates**, as in the paper's eq. (1) and ``F.affine_grid``. A grid
      ``(B, H, W, 2)`` holds, for every output pixel, the source point it samples.

Transform kinds and their parameters:
    ``affine``      θ ``(B, 2, 3)``, eq. (1).
    ``attention``   ``(B, 3)`` = ``(s, tx, ty)``, θ = [[s, 0, tx], [0, s, ty]] (eq. (2)).
    ``projective``  homography ``(B, 3, 3)`` acting on homogeneous ``(x, y, 1)``.
    ``tps``         source positions ``(B, K, 2)`` of K fixed target control points
                    (default: uniform 4×4 grid spanning [-1, 1], the paper's 16-point TPS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence, Union

import torch

from ._checks import check_finite, check_float, check_shape, check_size, shape_str

Number = Union[float, int]
TensorLike = Union[Number, torch.Tensor]

TRANSFORM_KINDS = ("affine", "attention", "projective", "tps")

#: Denominators of the homogeneous divide smaller than this (in absolute value) are clamped.
PROJECTIVE_EPS = 1e-6


# --------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------
def base_grid(size: Sequence[int], *, dtype=None, device=None) -> torch.Tensor:
    """Normalised ``(x, y)`` centres of every pixel of an ``(H, W)`` image: ``(H, W, 2)``.

    Identical to ``F.affine_grid(identity, (1, 1, H, W), align_corners=False)[0]``.
    """
    h, w = check_size(size)
    dtype = dtype or torch.get_default_dtype()
    # Same formula as ATen's affine_grid (linspace * (n - 1) / n) so the grids agree bitwise.
    xs = torch.linspace(-1, 1, w, dtype=dtype, device=device) * ((w - 1) / w)
    ys = torch.linspace(-1, 1, h, dtype=dtype, device=device) * ((h - 1) / h)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)  # (H, W, 2)


@lru_cache(maxsize=8)
def _homogeneous_base_grid(h: int, w: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """``(1, H*W, 3)`` rows ``(x, y, 1)``, cached per size: building it is most of the cost
    of ``F.affine_grid`` on small images. Treated as read-only."""
    g = base_grid((h, w), dtype=dtype, device=device)
    return torch.cat((g, torch.ones(h, w, 1, dtype=dtype, device=device)), -1).reshape(1, h * w, 3)


def normalized_to_pixel(points: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Normalised ``(x, y)`` → pixel ``(column, row)`` (pixel centres at integers).

    ``points`` ``(..., 2)``; ``size`` ``(H, W)`` of the image the points live in.
    ``x_pix = ((x + 1) W - 1) / 2`` (``align_corners=False``).
    """
    check_shape(points, "points", "(..., 2)", points.dim() >= 1 and points.shape[-1] == 2)
    h, w = check_size(size)
    scale = points.new_tensor([w, h])
    return ((points + 1) * scale - 1) / 2


def pixel_to_normalized(points: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Pixel ``(column, row)`` → normalised ``(x, y)``; inverse of :func:`normalized_to_pixel`."""
    check_shape(points, "points", "(..., 2)", points.dim() >= 1 and points.shape[-1] == 2)
    h, w = check_size(size)
    scale = points.new_tensor([w, h])
    return (2 * points + 1) / scale - 1


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


# --------------------------------------------------------------------------------------
# Mapping points through each transform kind (target → source)
# --------------------------------------------------------------------------------------
def _check_points(points, name="points") -> None:
    check_shape(points, name, "(B, N, 2)",
                isinstance(points, torch.Tensor) and points.dim() == 3 and points.shape[-1] == 2)


def affine_transform_points(theta: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Map target points ``(B, N, 2)`` through θ ``(B, 2, 3)`` to source points ``(B, N, 2)``."""
    _check_theta(theta)
    _check_points(points)
    return points @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]


def _projective_points(homography: torch.Tensor, points: torch.Tensor,
                       eps: float) -> torch.Tensor:
    # (B, N, 3) = [x, y, 1] @ H^T ; then the homogeneous divide by w
    hom = points @ homography[:, :, :2].transpose(1, 2) + homography[:, None, :, 2]
    return _divide(hom, eps)


def _divide(hom: torch.Tensor, eps: float) -> torch.Tensor:
    w = hom[..., 2:]
    # Clamp |w| >= eps keeping its sign (w == 0 → +eps): points at or beyond the horizon are
    # sent far away (outside the image) instead of producing inf/NaN.
    w = torch.where(w >= 0, w.clamp(min=eps), w.clamp(max=-eps))
    return hom[..., :2] / w


def _check_homography(h) -> None:
    check_shape(h, "homography", "(B, 3, 3)",
                isinstance(h, torch.Tensor) and h.dim() == 3 and h.shape[1:] == (3, 3))
    check_float(h, "homography")
    check_finite(h, "homography")


def projective_transform_points(homography: torch.Tensor, points: torch.Tensor,
                                eps: float = PROJECTIVE_EPS) -> torch.Tensor:
    """Map target points ``(B, N, 2)`` through a homography ``(B, 3, 3)`` (with the
    homogeneous divide; ``|w| < eps`` is clamped to ``±eps``) → ``(B, N, 2)``."""
    _check_homography(homography)
    _check_points(points)
    return _projective_points(homography, points, eps)


def projective_grid(homography: torch.Tensor, size: Sequence[int],
                    eps: float = PROJECTIVE_EPS) -> torch.Tensor:
    """Sampling grid of a plane projective transform.

    Args:
        homography: ``(B, 3, 3)``, maps target ``(x, y, 1)`` to homogeneous source
            ``(x', y', w)``; the source point is ``(x'/w, y'/w)``.
        size: ``(H, W)`` of the output.
        eps: denominators with ``|w| < eps`` are clamped to ``±eps`` (sign kept, 0 → +eps),
            so the grid stays finite; such points land far outside the input and sample
            padding. Use :func:`projective_min_denominator` to detect this case.
    Returns:
        ``(B, H, W, 2)``.
    """
    _check_homography(homography)
    h, w = check_size(size)
    b = homography.shape[0]
    base = _homogeneous_base_grid(h, w, homography.dtype, str(homography.device))
    hom = base.expand(b, -1, -1).bmm(homography.transpose(1, 2))  # (B, H*W, 3)
    return _divide(hom, eps).view(b, h, w, 2)


def projective_min_denominator(homography: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Smallest homogeneous denominator ``w`` over the output pixels, per batch item ``(B,)``.

    Values ≤ 0 (or tiny) mean the horizon crosses the output and the grid was clamped.
    """
    _check_homography(homography)
    pts = base_grid(size, dtype=homography.dtype, device=homography.device).reshape(-1, 2)
    w = pts @ homography[:, 2, :2].T + homography[:, 2, 2]  # (N, B)
    return w.min(dim=0).values


def homography_from_points(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """The homography ``(B, 3, 3)`` (with ``h33 = 1``) mapping 4 target points onto 4 source
    points, each ``(B, 4, 2)``: the direct linear transform, an 8×8 solve per item.

    Raises ``ValueError`` if three of the points are collinear (no unique solution).
    """
    check_shape(target, "target", "(B, 4, 2)",
                isinstance(target, torch.Tensor) and target.dim() == 3 and target.shape[1:] == (4, 2))
    check_shape(source, "source", "(B, 4, 2)",
                isinstance(source, torch.Tensor) and source.shape == target.shape)
    check_finite(source, "source")
    x, y = target.unbind(-1)
    u, v = source.unbind(-1)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    # u = (h11 x + h12 y + h13) / (h31 x + h32 y + 1), likewise v
    ru = torch.stack((x, y, one, zero, zero, zero, -u * x, -u * y), -1)
    rv = torch.stack((zero, zero, zero, x, y, one, -v * x, -v * y), -1)
    a = torch.cat((ru, rv), dim=1)  # (B, 8, 8)
    b = torch.cat((u, v), dim=1)  # (B, 8)
    for name, pts in (("target", target), ("source", source)):
        if bool((_min_triangle_area(pts.detach()) < 1e-9).any()):
            raise ValueError(f"degenerate {name} points: three of the four are collinear")
    h8 = torch.linalg.solve(a, b)
    return torch.cat((h8, torch.ones_like(h8[:, :1])), dim=1).reshape(-1, 3, 3)


def _min_triangle_area(pts: torch.Tensor) -> torch.Tensor:
    """Smallest |area| of the 4 triangles formed by 4 points ``(B, 4, 2)`` → ``(B,)``."""
    areas = []
    for i, j, k in ((0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)):
        d1, d2 = pts[:, j] - pts[:, i], pts[:, k] - pts[:, i]
        areas.append((d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]).abs() / 2)
    return torch.stack(areas, -1).min(-1).values


def frame_corners(dtype=None, device=None) -> torch.Tensor:
    """The four corners of the normalised frame ``(4, 2)``: TL, TR, BR, BL = (±1, ±1)."""
    return torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]],
                        dtype=dtype or torch.get_default_dtype(), device=device)


def homography_from_corners(source_corners: torch.Tensor) -> torch.Tensor:
    """Homography ``(B, 3, 3)`` sending the output frame's corners (TL, TR, BR, BL at ±1)
    to ``source_corners`` ``(B, 4, 2)`` in the input."""
    check_shape(source_corners, "source_corners", "(B, 4, 2)",
                isinstance(source_corners, torch.Tensor) and source_corners.dim() == 3
                and source_corners.shape[1:] == (4, 2))
    tgt = frame_corners(source_corners.dtype, source_corners.device)
    return homography_from_points(tgt.expand_as(source_corners), source_corners)


# --------------------------------------------------------------------------------------
# Thin plate spline (Bookstein 1989), 16 control points by default
# --------------------------------------------------------------------------------------
def control_points(n: int = 4, *, dtype=None, device=None) -> torch.Tensor:
    """Uniform ``n × n`` grid of target control points spanning [-1, 1]: ``(n*n, 2)``,
    row-major (x varies fastest). ``n = 4`` gives the paper's 16-point TPS."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    t = torch.linspace(-1, 1, n, dtype=dtype or torch.get_default_dtype(), device=device)
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack((gx, gy), -1).reshape(-1, 2)


def _tps_kernel(r2: torch.Tensor) -> torch.Tensor:
    # U(r) = r² log r², with U(0) = 0 (its limit). The clamp keeps the log finite; where
    # r2 == 0 the factor r2 makes both the value and its gradient 0.
    return r2 * torch.log(r2.clamp_min(torch.finfo(r2.dtype).tiny))


def _sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # (..., N, 2), (..., K, 2) -> (..., N, K); explicit differences are exact at 0
    return (a.unsqueeze(-2) - b.unsqueeze(-3)).pow(2).sum(-1)


def _tps_weights(target: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Matrix ``T`` ``(..., N, K)`` with ``f(points) = T @ source`` for the TPS through
    (target_k → source_k). ``target`` ``(..., K, 2)``, ``points`` ``(..., N, 2)``.

    The interpolant is ``f(p) = a0 + a1 x + a2 y + Σ_k w_k U(|p - P_k|)`` with
    ``[w; a] = L⁻¹ [Q; 0]`` and ``L = [[K, P], [Pᵀ, 0]]`` (Bookstein). Since the right-hand
    side is linear in Q, ``T = [U(|p - P|), 1, p] · L⁻¹[:, :K]`` depends only on the target
    points and the query points: one symmetric solve for the whole batch.
    """
    k = target.shape[-2]
    dtype = target.dtype
    # Solve in float64: L mixes O(1) kernel entries with an indefinite zero block.
    t64 = target.double()
    kmat = _tps_kernel(_sq_dist(t64, t64))  # (..., K, K)
    ones = torch.ones(t64.shape[:-1] + (1,), dtype=torch.float64, device=t64.device)
    p = torch.cat((ones, t64), -1)  # (..., K, 3)
    zeros = torch.zeros(t64.shape[:-2] + (3, 3), dtype=torch.float64, device=t64.device)
    lmat = torch.cat((torch.cat((kmat, p), -1), torch.cat((p.transpose(-1, -2), zeros), -1)), -2)
    rhs = torch.eye(k + 3, k, dtype=torch.float64, device=t64.device).expand(lmat.shape[:-2] + (k + 3, k))
    linv_k = torch.linalg.solve(lmat, rhs)  # (..., K+3, K)
    q64 = points.double()
    ones_q = torch.ones(q64.shape[:-1] + (1,), dtype=torch.float64, device=q64.device)
    m = torch.cat((_tps_kernel(_sq_dist(q64, t64)), ones_q, q64), -1)  # (..., N, K+3)
    return (m @ linv_k).to(dtype)


def _check_control_points(target: torch.Tensor, min_dist: float = 1e-6) -> None:
    d2 = _sq_dist(target.detach(), target.detach())
    k = target.shape[-2]
    d2 = d2 + torch.eye(k, dtype=d2.dtype, device=d2.device) * 1e9
    if bool((d2 < min_dist ** 2).any()):
        raise ValueError("target control points must be distinct: two of them coincide")


@lru_cache(maxsize=32)
def _cached_default_weights(n: int, h: int, w: int, dtype: torch.dtype,
                            device: str) -> torch.Tensor:
    tgt = control_points(n, dtype=torch.float64, device=device)
    pts = base_grid((h, w), dtype=torch.float64, device=device).reshape(-1, 2)
    return _tps_weights(tgt, pts).to(dtype)  # (H*W, K)


def _resolve_target(source_points: torch.Tensor, target_points) -> tuple[torch.Tensor | None, int]:
    k = source_points.shape[1]
    if target_points is None:
        n = math.isqrt(k)
        if n * n != k:
            raise ValueError(f"the default target control points form an n×n grid, so K must be "
                             f"a square number; got source_points of shape {shape_str(source_points)}")
        return None, n
    ok = (isinstance(target_points, torch.Tensor) and target_points.shape[-2:] == (k, 2)
          and (target_points.dim() == 2
               or (target_points.dim() == 3 and target_points.shape[0] == source_points.shape[0])))
    check_shape(target_points, "target_points", f"(K, 2) or (B, K, 2) with K={k}", ok)
    check_finite(target_points, "target_points")
    _check_control_points(target_points)
    return target_points.to(source_points.dtype), 0


def _check_source_points(source_points) -> None:
    check_shape(source_points, "source_points", "(B, K, 2)",
                isinstance(source_points, torch.Tensor) and source_points.dim() == 3
                and source_points.shape[-1] == 2 and source_points.shape[1] >= 3)
    check_float(source_points, "source_points")
    check_finite(source_points, "source_points")


def tps_transform_points(source_points: torch.Tensor, points: torch.Tensor,
                         target_points: torch.Tensor | None = None) -> torch.Tensor:
    """Map target-frame points ``(B, N, 2)`` through the TPS that sends each target control
    point to its source point (``source_points`` ``(B, K, 2)``; ``target_points`` ``(K, 2)``
    or ``(B, K, 2)``, default the uniform √K×√K grid). Returns ``(B, N, 2)``."""
    _check_source_points(source_points)
    _check_points(points)
    tgt, n = _resolve_target(source_points, target_points)
    if tgt is None:
        tgt = control_points(n, dtype=source_points.dtype, device=source_points.device)
    if tgt.dim() == 2 and points.shape[0] == 1:
        weights = _tps_weights(tgt, points[0])  # (N, K)
    else:
        weights = _tps_weights(tgt.expand(points.shape[0], -1, -1) if tgt.dim() == 2 else tgt,
                               points)
    return weights @ source_points


def tps_grid(source_points: torch.Tensor, size: Sequence[int],
             target_points: torch.Tensor | None = None) -> torch.Tensor:
    """Sampling grid of a thin plate spline (Bookstein, ``U(r) = r² log r²``).

    The spline is a function over the *target* frame: its kernels are centred at the target
    control points and it maps each target control point exactly onto its source point.

    Args:
        source_points: ``(B, K, 2)`` source ``(x, y)`` of each target control point (what a
            localisation network regresses).
        size: ``(H, W)`` of the output.
        target_points: ``(K, 2)`` shared or ``(B, K, 2)`` per item; default the uniform
            √K×√K grid spanning [-1, 1] (K = 16: the paper's 4×4 TPS). Must be distinct.
    Returns:
        ``(B, H, W, 2)``. For the default target points the ``(H·W, K)`` interpolation
        matrix is computed once per size and cached, so a grid costs one small matmul.
    """
    _check_source_points(source_points)
    h, w = check_size(size)
    tgt, n = _resolve_target(source_points, target_points)
    b = source_points.shape[0]
    if tgt is None:
        weights = _cached_default_weights(n, h, w, source_points.dtype, str(source_points.device))
    else:
        pts = base_grid((h, w), dtype=tgt.dtype, device=tgt.device).reshape(-1, 2)
        weights = _tps_weights(tgt, pts if tgt.dim() == 2 else pts.expand(b, -1, -1))
    return (weights @ source_points).reshape(b, h, w, 2)  # (B, H*W, K) @ (B, K, 2)


# --------------------------------------------------------------------------------------
# One entry point per kind
# --------------------------------------------------------------------------------------
def check_kind(kind: str) -> str:
    if kind not in TRANSFORM_KINDS:
        raise ValueError(f"unknown transform kind {kind!r}; expected one of {TRANSFORM_KINDS}")
    return kind


def make_grid(kind: str, params: torch.Tensor, size: Sequence[int],
              target_points: torch.Tensor | None = None) -> torch.Tensor:
    """Grid ``(B, H, W, 2)`` for any transform kind; ``params`` as in the module docstring."""
    check_kind(kind)
    if kind == "affine":
        return affine_grid(params, size)
    if kind == "attention":
        check_finite(params, "params")
        return affine_grid(attention_theta(params), size)
    if kind == "projective":
        return projective_grid(params, size)
    return tps_grid(params, size, target_points)


def transform_points(kind: str, params: torch.Tensor, points: torch.Tensor,
                     target_points: torch.Tensor | None = None) -> torch.Tensor:
    """Map target points ``(B, N, 2)`` to source points for any transform kind (used to
    draw sampling grids and boxes)."""
    check_kind(kind)
    if kind == "affine":
        return affine_transform_points(params, points)
    if kind == "attention":
        return affine_transform_points(attention_theta(params), points)
    if kind == "projective":
        return projective_transform_points(params, points)
    return tps_transform_points(params, points, target_points)


def identity_params(kind: str, batch: int = 1, n_control: int = 4, *, dtype=None,
                    device=None) -> torch.Tensor:
    """Parameters of the identity transform for ``kind``, batched: affine ``(B, 2, 3)``,
    attention ``(B, 3)``, projective ``(B, 3, 3)``, tps ``(B, n², 2)``."""
    check_kind(kind)
    d = dict(dtype=dtype or torch.get_default_dtype(), device=device)
    if kind == "affine":
        p = torch.tensor([[1.0, 0, 0], [0, 1, 0]], **d)
    elif kind == "attention":
        p = torch.tensor([1.0, 0, 0], **d)
    elif kind == "projective":
        p = torch.eye(3, **d)
    else:
        p = control_points(n_control, **d)
    return p.expand((batch,) + tuple(p.shape)).clone()

"""Projective transforms (8 parameters): grids, points, homographies from corners.

Convention: see :mod:`stn_explore.core.geometry` (and CONVENTIONS.md).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ._checks import check_finite, check_float, check_shape, check_size
from .coords import _check_points, _homogeneous_base_grid, base_grid

#: Denominators of the homogeneous divide smaller than this (in absolute value) are clamped.
PROJECTIVE_EPS = 1e-6


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



"""Thin plate spline transforms, 16 control points by default (paper section 3.2).

Convention: see :mod:`stn_explore.core.geometry` (and CONVENTIONS.md).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import torch

from ._checks import check_finite, check_float, check_shape, check_size, shape_str
from .coords import _check_points, base_grid


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



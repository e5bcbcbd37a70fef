"""Normalised coordinates and the base grid G of output pixel centres (paper section 3.2).

Convention: see :mod:`stn_explore.core.geometry` (and CONVENTIONS.md).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence, Union

import torch

from ._checks import check_shape, check_size

Number = Union[float, int]
TensorLike = Union[Number, torch.Tensor]

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



def _check_points(points, name="points") -> None:
    check_shape(points, name, "(B, N, 2)",
                isinstance(points, torch.Tensor) and points.dim() == 3 and points.shape[-1] == 2)


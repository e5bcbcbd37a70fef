"""Grid generators (paper section 3.2): one entry point per transform kind.

The kinds live in :mod:`.coords`, :mod:`.affine`, :mod:`.projective` and :mod:`.tps`; this module
dispatches on the kind and re-exports them.

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

from typing import Sequence

import torch

from ._checks import check_finite
from .affine import (
    AffineParams,
    affine_grid,
    affine_transform_points,
    attention_theta,
    compose,
    invert,
    params_from_theta,
    theta_from_params,
    theta_to_pixel_matrix,
    to_homogeneous,
)
from .coords import base_grid, normalized_to_pixel, pixel_to_normalized
from .projective import (
    PROJECTIVE_EPS,
    frame_corners,
    homography_from_corners,
    homography_from_points,
    projective_grid,
    projective_min_denominator,
    projective_transform_points,
)
from .tps import control_points, tps_grid, tps_transform_points

__all__ = [
    "TRANSFORM_KINDS",
    "PROJECTIVE_EPS",
    "AffineParams",
    "affine_grid",
    "affine_transform_points",
    "attention_theta",
    "base_grid",
    "check_kind",
    "compose",
    "control_points",
    "frame_corners",
    "homography_from_corners",
    "homography_from_points",
    "identity_params",
    "invert",
    "make_grid",
    "normalized_to_pixel",
    "params_from_theta",
    "pixel_to_normalized",
    "projective_grid",
    "projective_min_denominator",
    "projective_transform_points",
    "theta_from_params",
    "theta_to_pixel_matrix",
    "to_homogeneous",
    "tps_grid",
    "tps_transform_points",
    "transform_points",
]

TRANSFORM_KINDS = ("affine", "attention", "projective", "tps")




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

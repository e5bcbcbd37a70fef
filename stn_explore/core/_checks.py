"""Argument validation shared by the public functions (messages name the received shape)."""

from __future__ import annotations

import math
from typing import Sequence

import torch


def shape_str(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_tensor(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    return t


def check_float(t: torch.Tensor, name: str) -> None:
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {t.dtype}")


def check_shape(t, name: str, expected: str, ok: bool) -> None:
    """Raise ``ValueError`` naming the expected and received shape unless ``ok``."""
    check_tensor(t, name)
    if not ok:
        raise ValueError(f"{name} must have shape {expected}, got {shape_str(t)}")


def check_finite(t: torch.Tensor, name: str) -> None:
    # One reduction and one host sync: a sum is finite iff every element is (NaN and inf
    # propagate); only sums of magnitude > 1e38 would be misreported, which no valid
    # transform parameter reaches.
    if not math.isfinite(float(t.detach().sum())):
        raise ValueError(f"{name} contains NaN or infinite values (shape {shape_str(t)})")


def check_size(size: Sequence[int], name: str = "size") -> tuple[int, int]:
    """Validate an ``(H, W)`` pair of positive ints."""
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (H, W) of positive ints, got {size!r}") from None
    if h < 1 or w < 1 or h != float(size[0]) or w != float(size[1]):
        raise ValueError(f"{name} must be a pair (H, W) of positive ints, got {tuple(size)!r}")
    return h, w


def check_image(x, name: str = "input") -> None:
    check_shape(x, name, "(B, C, H, W)", isinstance(x, torch.Tensor) and x.dim() == 4)
    check_float(x, name)
    if min(x.shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {shape_str(x)}")

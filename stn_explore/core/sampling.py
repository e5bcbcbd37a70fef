"""Differentiable image sampling (paper section 3.3).

Convention: input ``(B, C, H, W)``; grid ``(B, H', W', 2)`` of normalised source ``(x, y)``
in [-1, 1] with ``align_corners=False`` (x right, y down); see CONVENTIONS.md.

:func:`sample` is the fast path (``F.grid_sample`` with ``align_corners`` always explicit).
:func:`bilinear_sample_reference` is the paper's bilinear kernel, eq. (5), with its
gradients written out as eqs. (6)-(7) — slow, meant to be read next to the paper, and
proved equal to ``grid_sample`` by the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_finite, check_float, check_image, check_shape, shape_str

SAMPLING_MODES = ("bilinear", "nearest", "bicubic")
PADDING_MODES = ("zeros", "border", "reflection")


def _check_grid(input: torch.Tensor, grid) -> None:
    check_shape(grid, "grid", "(B, H', W', 2)",
                isinstance(grid, torch.Tensor) and grid.dim() == 4 and grid.shape[-1] == 2)
    check_float(grid, "grid")
    if grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid batch size {grid.shape[0]} does not match input batch size "
                         f"{input.shape[0]} (grid {shape_str(grid)}, input {shape_str(input)})")


def sample(input: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear",
           padding_mode: str = "zeros", *, check_grid_finite: bool = True) -> torch.Tensor:
    """Sample ``input`` at the source points of ``grid`` (the paper's sampler, eq. (3)).

    Args:
        input: U ``(B, C, H, W)``, floating point.
        grid: ``(B, H', W', 2)`` normalised source ``(x, y)`` per output pixel.
        mode: ``"bilinear"`` (the paper's eq. (5)), ``"nearest"`` (zero gradient w.r.t. the
            grid) or ``"bicubic"`` (may overshoot the input's value range).
        padding_mode: value outside the input: ``"zeros"``, ``"border"`` or ``"reflection"``.
        check_grid_finite: raise on NaN/inf in the grid (``grid_sample`` would silently
            treat NaN like -1). Paths that built the grid from validated parameters skip it.
    Returns:
        V ``(B, C, H', W')``, differentiable w.r.t. ``input`` and ``grid``.
    """
    check_image(input)
    _check_grid(input, grid)
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; expected one of {SAMPLING_MODES}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding_mode!r}; expected one of {PADDING_MODES}")
    if check_grid_finite:
        check_finite(grid, "grid")
    if grid.dtype != input.dtype:
        grid = grid.to(input.dtype)
    return F.grid_sample(input, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def outside_fraction(grid: torch.Tensor) -> torch.Tensor:
    """Share of sample points outside the input, per batch item ``(B,)``.

    With zero padding such points give zero output *and zero gradient*; a value near 1
    during training is the classic "localisation collapse" alarm.
    """
    check_shape(grid, "grid", "(B, H', W', 2)",
                isinstance(grid, torch.Tensor) and grid.dim() == 4 and grid.shape[-1] == 2)
    outside = (grid.abs() > 1).any(dim=-1)
    return outside.flatten(1).float().mean(dim=1)


class _BilinearReference(torch.autograd.Function):
    """Eq. (5) forward, eqs. (6)-(7) backward, in *pixel* coordinates (m, n integers)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        # u (B, C, H, W); xs, ys (B, H', W') source positions in pixels (column, row)
        ctx.save_for_backward(u, xs, ys)
        v, _, _ = _bilinear_terms(u, xs, ys, need_grad=False)
        return v

    @staticmethod
    def backward(ctx, grad_v: torch.Tensor):
        u, xs, ys = ctx.saved_tensors
        _, grad_u_parts, (dv_dx, dv_dy) = _bilinear_terms(u, xs, ys, need_grad=True,
                                                          grad_v=grad_v)
        # Chain rule: dL/dx_i = Σ_c dL/dV_i^c · ∂V_i^c/∂x_i  (eq. (7) gives ∂V/∂x)
        grad_x = (grad_v * dv_dx).sum(1)
        grad_y = (grad_v * dv_dy).sum(1)
        return grad_u_parts, grad_x, grad_y


def _bilinear_terms(u, xs, ys, need_grad, grad_v=None):
    b, c, h, w = u.shape
    m0 = torch.floor(xs)
    n0 = torch.floor(ys)
    # Eq. (5): V_i = Σ_n Σ_m U_nm max(0, 1-|x_i - m|) max(0, 1-|y_i - n|).
    # The kernel is zero except for the 2×2 integer neighbours m ∈ {m0, m0+1}, n ∈ {n0, n0+1}.
    v = u.new_zeros(b, c, *xs.shape[1:])
    grad_u = torch.zeros_like(u) if need_grad else None
    dv_dx = u.new_zeros(v.shape) if need_grad else None
    dv_dy = u.new_zeros(v.shape) if need_grad else None
    flat_u = u.reshape(b, c, h * w)
    for dm in (0, 1):
        for dn in (0, 1):
            m = m0 + dm
            n = n0 + dn
            kx = (1 - (xs - m).abs()).clamp(min=0)  # max(0, 1 - |x - m|)
            ky = (1 - (ys - n).abs()).clamp(min=0)
            inside = (m >= 0) & (m <= w - 1) & (n >= 0) & (n <= h - 1)  # zero padding
            idx = (n.clamp(0, h - 1) * w + m.clamp(0, w - 1)).long().reshape(b, 1, -1)
            u_nm = flat_u.gather(2, idx.expand(b, c, -1)).reshape(v.shape)
            u_nm = u_nm * inside.unsqueeze(1)
            v = v + u_nm * (kx * ky).unsqueeze(1)
            if need_grad:
                # Eq. (6): ∂V_i/∂U_nm = max(0, 1-|x_i - m|) max(0, 1-|y_i - n|)
                contrib = grad_v * (kx * ky * inside).unsqueeze(1)
                grad_u.reshape(b, c, h * w).scatter_add_(2, idx.expand(b, c, -1),
                                                         contrib.reshape(b, c, -1))
                # Eq. (7): ∂V_i/∂x_i = Σ U_nm max(0, 1-|y_i - n|) · {0 if |m-x_i| ≥ 1;
                # +1 if m ≥ x_i; -1 if m < x_i}. For the neighbour m0 + 1 this is +1, for m0
                # it is -1 (at integer x_i, m0 = x_i: the one-sided derivative from the right,
                # as grid_sample takes it).
                sx = 1.0 if dm == 1 else -1.0
                sy = 1.0 if dn == 1 else -1.0
                dv_dx = dv_dx + u_nm * (sx * ky).unsqueeze(1)
                dv_dy = dv_dy + u_nm * (sy * kx).unsqueeze(1)
    return v, grad_u, (dv_dx, dv_dy)


def bilinear_sample_reference(input: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The paper's bilinear sampler, eq. (5), with zero padding and explicit gradients.

    Same contract as ``sample(input, grid, "bilinear", "zeros")``: input ``(B, C, H, W)``,
    grid ``(B, H', W', 2)`` normalised (``align_corners=False``) → ``(B, C, H', W')``.
    Gradients w.r.t. U follow eq. (6), w.r.t. the sample points eq. (7), and flow to the
    normalised grid through ``x_pix = ((x + 1) W - 1) / 2`` (so ``∂x_pix/∂x = W / 2``).
    """
    check_image(input)
    _check_grid(input, grid)
    check_finite(grid, "grid")
    h, w = input.shape[-2:]
    grid = grid.to(input.dtype)
    xs = ((grid[..., 0] + 1) * w - 1) / 2
    ys = ((grid[..., 1] + 1) * h - 1) / 2
    return _BilinearReference.apply(input, xs, ys)

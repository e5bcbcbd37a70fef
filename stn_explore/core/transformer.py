"""The spatial transformer module (paper section 3): localisation net → grid → sampler.

Convention: images ``(B, C, H, W)`` in [0, 1]; transforms map target → source in normalised
coordinates (``align_corners=False``, x right, y down); see CONVENTIONS.md and geometry.py
for each kind's parameters.
"""

from __future__ import annotations

import math

from typing import Sequence

import torch
from torch import nn

from ._checks import check_image, check_size, shape_str
from .geometry import check_kind, identity_params, make_grid
from .sampling import PADDING_MODES, SAMPLING_MODES, sample


def n_params(kind: str, n_control: int = 4) -> int:
    """Number of values a localisation network regresses for ``kind``."""
    check_kind(kind)
    return {"affine": 6, "attention": 3, "projective": 8, "tps": 2 * n_control * n_control}[kind]


def unflatten_params(kind: str, flat: torch.Tensor) -> torch.Tensor:
    """Flat regression output ``(B, P)`` → the kind's parameter tensor (see geometry.py):
    affine ``(B, 2, 3)``, attention ``(B, 3)``, projective ``(B, 3, 3)`` (h33 fixed to 1:
    the paper's 8 parameters), tps ``(B, K, 2)``."""
    check_kind(kind)
    b = flat.shape[0]
    if kind == "affine":
        return flat.view(b, 2, 3)
    if kind == "attention":
        return flat
    if kind == "projective":
        return torch.cat((flat, flat.new_ones(b, 1)), dim=1).view(b, 3, 3)
    return flat.view(b, -1, 2)


def flatten_params(kind: str, params: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`unflatten_params` (projective: divided by h33 first)."""
    check_kind(kind)
    b = params.shape[0]
    if kind == "projective":
        params = params / params[:, 2:3, 2:3]
        return params.reshape(b, 9)[:, :8]
    return params.reshape(b, -1)


def warp(input: torch.Tensor, params: torch.Tensor, kind: str = "affine",
         out_size: Sequence[int] | None = None, mode: str = "bilinear",
         padding_mode: str = "zeros", target_points: torch.Tensor | None = None) -> torch.Tensor:
    """Apply a transform of any kind to an image batch: grid generator + sampler.

    Args:
        input: U ``(B, C, H, W)``.
        params: the kind's parameters (affine θ ``(B, 2, 3)``, attention ``(B, 3)``,
            projective ``(B, 3, 3)``, tps source points ``(B, K, 2)``), target → source.
        out_size: ``(H', W')`` of V; default the input's ``(H, W)``.
    Returns:
        V ``(B, C, H', W')``.
    """
    check_image(input)
    size = check_size(out_size) if out_size is not None else tuple(input.shape[-2:])
    if params.shape[0] != input.shape[0]:
        raise ValueError(f"params batch size {params.shape[0]} does not match input batch size "
                         f"{input.shape[0]} (params {shape_str(params)})")
    grid = make_grid(kind, params.to(input.dtype), size, target_points)
    # The grid comes from validated finite parameters, so skip re-checking it.
    return sample(input, grid, mode, padding_mode, check_grid_finite=False)


def _conv_out_features(module: nn.Module, in_channels: int, input_size: tuple[int, int]) -> int:
    with torch.no_grad():
        out = module(torch.zeros(1, in_channels, *input_size))
    return out.flatten(1).shape[1]


class LocalisationFC(nn.Module):
    """Fully connected localisation feature extractor (for ST-FCN): Linear+ReLU layers.

    Input ``(B, C, H, W)`` → features ``(B, hidden[-1])``. The regression layer that turns
    features into transform parameters is added by :class:`SpatialTransformer`.
    """

    def __init__(self, in_channels: int, input_size: Sequence[int],
                 hidden: Sequence[int] = (32, 32)):
        super().__init__()
        h, w = check_size(input_size, "input_size")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * h * w
        for n in hidden:
            layers += [nn.Linear(width, n), nn.ReLU(inplace=True)]
            width = n
        self.net = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LocalisationConv(nn.Module):
    """Convolutional localisation feature extractor (for ST-CNN).

    ``[conv k×k → 2×2 max-pool → ReLU] × len(channels)`` then one hidden FC layer.
    The flatten size is computed from ``input_size``, never hard-coded.
    """

    def __init__(self, in_channels: int, input_size: Sequence[int],
                 channels: Sequence[int] = (20, 20), kernel_size: int = 5, hidden: int = 50):
        super().__init__()
        h, w = check_size(input_size, "input_size")
        layers: list[nn.Module] = []
        c = in_channels
        for out_c in channels:
            layers += [nn.Conv2d(c, out_c, kernel_size), nn.MaxPool2d(2), nn.ReLU(inplace=True)]
            c = out_c
        self.features = nn.Sequential(*layers)
        flat = _conv_out_features(self.features, in_channels, (h, w))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True))
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class SpatialTransformer(nn.Module):
    """A drop-in spatial transformer: ``V = sample(U, T_θ(G))`` with ``θ = f_loc(U)``.

    Args:
        in_channels, input_size: shape ``(C, (H, W))`` of the input U.
        transform: ``"affine"``, ``"attention"``, ``"projective"`` or ``"tps"``.
        out_size: ``(H', W')`` of V; default ``input_size``.
        localisation: ``None`` or ``"conv"`` (:class:`LocalisationConv`), ``"fc"``
            (:class:`LocalisationFC`), or any ``nn.Module`` mapping U to features (its output
            is flattened). A final regression layer, initialised to the identity transform
            (zero weights, identity bias), is appended in every case.
        n_control: TPS control grid is ``n_control × n_control`` (4 → 16 points).
        mode, padding_mode: sampler options (see :func:`stn_explore.core.sampling.sample`).

    ``forward(x)`` returns V ``(B, C, H', W')``; ``forward(x, return_aux=True)`` returns
    ``(V, aux)`` with ``aux["params"]`` (the kind's parameter tensor, see geometry.py),
    ``aux["flat"]`` ``(B, P)`` and ``aux["grid"]`` ``(B, H', W', 2)``.
    """

    def __init__(self, in_channels: int, input_size: Sequence[int], transform: str = "affine",
                 out_size: Sequence[int] | None = None, localisation=None, n_control: int = 4,
                 mode: str = "bilinear", padding_mode: str = "zeros"):
        super().__init__()
        self.kind = check_kind(transform)
        if mode not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {mode!r}; expected one of {SAMPLING_MODES}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"unknown padding mode {padding_mode!r}; expected one of {PADDING_MODES}")
        self.in_channels = int(in_channels)
        self.input_size = check_size(input_size, "input_size")
        self.out_size = check_size(out_size, "out_size") if out_size is not None else self.input_size
        self.n_control = int(n_control)
        self.mode, self.padding_mode = mode, padding_mode
        if localisation is None or localisation == "conv":
            localisation = LocalisationConv(in_channels, self.input_size)
        elif localisation == "fc":
            localisation = LocalisationFC(in_channels, self.input_size)
        elif not isinstance(localisation, nn.Module):
            raise ValueError(f"localisation must be None, 'conv', 'fc' or an nn.Module, "
                             f"got {localisation!r}")
        self.localisation = localisation
        feat = getattr(localisation, "out_features", None)
        if feat is None:
            feat = _conv_out_features(localisation, self.in_channels, self.input_size)
        self.regressor = nn.Linear(feat, n_params(self.kind, self.n_control))
        self.reset_to_identity()

    def reset_to_identity(self, scale: float = 1.0) -> None:
        """Zero the regression weights and set its bias to the identity transform — or, with
        ``scale`` < 1, to a centred zoom that samples the middle ``scale`` of U's width and
        height (affine ``[[s, 0, 0], [0, s, 0]]``, attention ``(s, 0, 0)``, projective
        ``diag(s, s, 1)``, TPS source points ``s ×`` the control points)."""
        scale = float(scale)
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        p = identity_params(self.kind, 1, self.n_control)
        if scale != 1.0:
            if self.kind == "affine":
                p[:, :, :2] *= scale
            elif self.kind == "attention":
                p[:, 0] = scale
            elif self.kind == "projective":
                p[:, :2, :2] *= scale
            else:
                p = p * scale
        ident = flatten_params(self.kind, p)[0]
        with torch.no_grad():
            self.regressor.weight.zero_()
            self.regressor.bias.copy_(ident)

    def predict_params(self, x: torch.Tensor) -> torch.Tensor:
        """Flat parameters ``(B, P)`` regressed from U ``(B, C, H, W)``."""
        return self.regressor(self.localisation(x).flatten(1))

    def forward(self, x: torch.Tensor, return_aux: bool = False):
        check_image(x, "x")
        if tuple(x.shape[1:]) != (self.in_channels, *self.input_size):
            raise ValueError(f"x must have shape (B, {self.in_channels}, {self.input_size[0]}, "
                             f"{self.input_size[1]}), got {shape_str(x)}")
        flat = self.predict_params(x)
        params = unflatten_params(self.kind, flat)
        grid = make_grid(self.kind, params, self.out_size)
        v = sample(x, grid, self.mode, self.padding_mode, check_grid_finite=False)
        if return_aux:
            return v, {"params": params, "flat": flat, "grid": grid}
        return v

    def extra_repr(self) -> str:
        return (f"transform={self.kind!r}, in_channels={self.in_channels}, "
                f"input_size={self.input_size}, out_size={self.out_size}, mode={self.mode!r}")

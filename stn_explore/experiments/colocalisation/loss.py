"""The paper's triplet hinge over a batch of one class, and the random crops it compares against.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...core._checks import shape_str
from ...core.geometry import affine_grid
from ...core.sampling import sample
from .boxes import CROP


def triplet_hinge(crops: torch.Tensor, rand: torch.Tensor, margin: float) -> torch.Tensor:
    """The paper's co-localisation loss, averaged over ordered pairs ``n ≠ m``.

    Args:
        crops: ``(B, D)`` embeddings ``e(I_n^T)`` of the transformer's crops (B ≥ 2).
        rand: ``(B, D)`` embeddings ``e(I_n^rand)`` of a random crop of the same images, or
            ``(K, B, D)`` for K random crops per image (the loss is then averaged over them).
        margin: α ≥ 0.
    Returns:
        scalar ``mean_{n≠m} max(0, ‖c_n − c_m‖² − ‖c_n − r_n‖² + α)``; zero exactly when every
        pair satisfies the margin (for every random crop).
    """
    if rand.dim() == 2:
        rand = rand[None]
    if crops.dim() != 2 or crops.shape[0] < 2 or rand.dim() != 3 or rand.shape[1:] != crops.shape \
            or rand.shape[0] < 1:
        raise ValueError(f"crops must have shape (B ≥ 2, D) and rand (B, D) or (K, B, D) with the same B "
                         f"and D, got {shape_str(crops)} and {shape_str(rand)}")
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be finite and ≥ 0, got {margin}")
    b = crops.shape[0]
    d_pair = torch.cdist(crops, crops).pow(2)                # (B, B) ‖c_n − c_m‖²
    d_rand = (crops[None] - rand).pow(2).sum(2)[:, :, None]  # (K, B, 1) ‖c_n − r_n‖²
    hinge = F.relu(d_pair[None] - d_rand + margin)           # (K, B, B)
    off = ~torch.eye(b, dtype=torch.bool, device=crops.device)
    return hinge[:, off].mean()


def random_crops_like(x: torch.Tensor, theta: torch.Tensor, gen: torch.Generator,
                      crop: int = CROP, offset: float | None = 2.0) -> torch.Tensor:
    """``I^rand``: for each image ``(B, C, H, W)`` a crop with the same shape as the
    transformer's (θ's linear part, detached) elsewhere in the image → ``(B, C, crop, crop)``.

    ``offset=None``: at a uniformly random position inside the image. ``offset=k``: displaced
    from the transformer's window by ``k`` to ``k + 1`` half-widths in a random direction
    (clamped inside the image) — with the default 2, a window one to 1½ widths away, so a
    window on the object is compared with its surroundings.
    Matching the shape matters: a random crop of another size is told apart by its scale
    alone, which the transformer can exploit without finding the object.
    """
    lin = theta.detach()[:, :, :2]
    reach = lin.abs().sum(2)                                # (B, 2) half-extent in x and y
    room = (1 - reach).clamp(min=0)
    b = theta.shape[0]
    dev = theta.device  # gen is a CPU generator: draws on the CPU, then moved (a no-op there)
    if offset is not None:
        ang = 2 * math.pi * torch.rand(b, generator=gen, dtype=theta.dtype).to(dev)
        dist = offset + torch.rand(b, generator=gen, dtype=theta.dtype).to(dev)  # × half-extent
        d = torch.stack((ang.cos(), ang.sin()), 1) * dist[:, None] * reach
        t = torch.maximum(torch.minimum(theta.detach()[:, :, 2] + d, room), -room)
    else:
        t = (2 * torch.rand(b, 2, generator=gen, dtype=theta.dtype).to(dev) - 1) * room
    theta_r = torch.cat((lin, t[:, :, None]), 2)
    grid = affine_grid(theta_r, (crop, crop))
    return sample(x, grid, "bilinear", "zeros", check_grid_finite=False)

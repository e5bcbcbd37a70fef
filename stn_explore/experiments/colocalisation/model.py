"""The network: localisers (heatmap score map or regressing CNN), the 28×28 crop, the embedding.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...core._checks import check_image, shape_str
from ...core.geometry import affine_grid
from ...core.sampling import sample
from .boxes import CANVAS, COLOC_TRANSFORMS, CROP, n_raw_params, params_to_theta


# ----------------------------------------------------------------------------- model
@dataclass
class ColocArgs:
    """Everything needed to rebuild a :class:`ColocNet` (stored in checkpoints)."""

    transform: str = "translate"
    canvas: int = CANVAS
    crop: int = CROP
    embed_dim: int = 32
    loc_channels: tuple[int, int] = (20, 20)
    loc_hidden: int = 50
    #: how the localisation network gives the window: ``regress`` — a CNN + fully connected
    #: layers regress the parameters; ``heatmap`` — a fully convolutional net scores every
    #: window position and the window goes to the softmax-weighted mean position (translate only)
    localiser: str = "regress"
    #: heatmap localiser only: batch norm before each ReLU (see :class:`HeatmapLocaliser`)
    heatmap_norm: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["loc_channels"] = list(d["loc_channels"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ColocArgs":
        d = dict(d)
        d["loc_channels"] = tuple(d["loc_channels"])
        d.setdefault("localiser", "regress")     # made before the heatmap localiser existed
        d.setdefault("heatmap_norm", False)      # made before its batch norm existed
        return cls(**d)


class Embedding(nn.Module):
    """LeNet-style e(·): 28×28 crop → unit vector ``(B, embed_dim)``."""

    def __init__(self, embed_dim: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Flatten(), nn.Linear(50 * 4 * 4, 128), nn.ReLU(inplace=True), nn.Linear(128, embed_dim),
            # batch statistics keep the embedding from collapsing to one point (where the
            # hinge is stuck at α with zero gradient); crops and random crops share a batch
            nn.BatchNorm1d(embed_dim, affine=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1)


LOCALISERS = ("heatmap", "regress")


class HeatmapLocaliser(nn.Module):
    """A fully convolutional localiser: images ``(B, 1, H, W)`` → θ ``(B, 2, 3)`` of a window
    of base size ``scale`` placed at the softmax-weighted mean of a score map.

    The image is viewed at half resolution; three 5×5 convolutions (one max-pool) give one
    score per 4×4-pixel cell (receptive field ≈ 44 pixels, a digit and its surroundings).
    Only cells where a native crop×crop window fits inside the image take part, so the mean
    position always leaves room for the window. Being convolutional, the same detector
    works at every position — a regressing head must learn each position separately. The
    last layer starts at zero: a flat map, the centred window.
    """

    def __init__(self, canvas: int = CANVAS, crop: int = CROP, channels: tuple[int, int] = (20, 20),
                 batch_norm: bool = True):
        super().__init__()
        if canvas % 4:
            raise ValueError(f"the heatmap localiser needs a canvas divisible by 4, got {canvas}")
        c1, c2 = channels
        # batch norm before every ReLU: without it, Adam's early steps (while the zero-initialised
        # last layer passes back almost no gradient) silenced a whole layer in one noisy run
        # (digit 6: 99.8% of the third layer's units ≤ 0, the map flat, the window stuck in the
        # centre). The clean runs were trained without it (all ten correct) and keep that.
        def norm(c):
            return [nn.BatchNorm2d(c)] if batch_norm else []

        self.net = nn.Sequential(
            nn.AvgPool2d(2),
            nn.Conv2d(1, c1, 5, padding=2), *norm(c1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), *norm(c2), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c2, 5, padding=2), *norm(c2), nn.ReLU(inplace=True),
            nn.Conv2d(c2, 1, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        cells = canvas // 4
        centres = (torch.arange(cells, dtype=torch.float32) + 0.5) / cells * 2 - 1  # normalised
        room = 1 - crop / canvas
        keep = centres.abs() <= room + 1e-6
        self.first = int(keep.nonzero()[0])
        self.register_buffer("centres", centres[keep])

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        n = len(self.centres)
        logits = self.net(x)[:, 0, self.first:self.first + n, self.first:self.first + n]
        p = logits.flatten(1).softmax(1).view(-1, n, n)
        tx = (p.sum(1) * self.centres).sum(1)   # columns → x
        ty = (p.sum(2) * self.centres).sum(1)   # rows → y
        s = torch.as_tensor(scale, dtype=x.dtype).expand(len(x))
        room = 1 - s
        tx, ty = torch.maximum(torch.minimum(tx, room), -room), torch.maximum(torch.minimum(ty, room), -room)
        z = torch.zeros_like(s)
        return torch.stack((torch.stack((s, z, tx), -1), torch.stack((z, s, ty), -1)), -2)


class ColocNet(nn.Module):
    """Localisation → 28×28 crop (bilinear, zero padding) → embedding.

    ``crop(x)`` takes images ``(B, 1, 84, 84)`` in [0, 1] and returns ``(V (B, 1, 28, 28),
    θ (B, 2, 3))``; at initialisation every crop is the centred 28×28 window. The buffer
    ``crop_scale`` is the window's base size (share of the image side).
    """

    def __init__(self, args: ColocArgs | None = None):
        super().__init__()
        self.args = args = args or ColocArgs()
        if args.transform not in COLOC_TRANSFORMS:
            raise ValueError(f"unknown co-localisation transform {args.transform!r}; "
                             f"expected one of {COLOC_TRANSFORMS}")
        if args.localiser not in LOCALISERS:
            raise ValueError(f"unknown localiser {args.localiser!r}; expected one of {LOCALISERS}")
        if args.localiser == "heatmap" and args.transform != "translate":
            raise ValueError("the heatmap localiser only moves the window: it needs transform='translate'")
        c1, c2 = args.loc_channels
        if args.localiser == "heatmap":
            self.heat = HeatmapLocaliser(args.canvas, args.crop, (c1, c2), args.heatmap_norm)
        else:
            self.loc = nn.Sequential(
                nn.AvgPool2d(2),  # the box only needs a coarse view: 84×84 → 42×42
                nn.Conv2d(1, c1, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
                nn.Conv2d(c1, c2, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True), nn.Flatten())
            with torch.no_grad():
                flat = self.loc(torch.zeros(1, 1, args.canvas, args.canvas)).shape[1]
            self.loc_fc = nn.Sequential(nn.Linear(flat, args.loc_hidden), nn.ReLU(inplace=True),
                                        nn.BatchNorm1d(args.loc_hidden, affine=False))
            # no bias: with batch-normalised features the batch-mean parameter stays at the
            # centred crop, so the crops cannot all drift together to one (empty) place
            self.regressor = nn.Linear(args.loc_hidden, n_raw_params(args.transform), bias=False)
            nn.init.zeros_(self.regressor.weight)
        self.embed = Embedding(args.embed_dim)
        # the window's base size as a share of the image; training shrinks it from
        # ColocConfig.start_scale to crop/canvas (a native 28×28 crop), where it stays
        self.register_buffer("crop_scale", torch.tensor(args.crop / args.canvas))

    def _check(self, x: torch.Tensor) -> None:
        check_image(x, "x")
        want = (1, self.args.canvas, self.args.canvas)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"x must have shape (B, 1, {want[1]}, {want[2]}), got {shape_str(x)}")

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """θ ``(B, 2, 3)`` of the crop for images ``(B, 1, 84, 84)``."""
        self._check(x)
        if self.args.localiser == "heatmap":
            return self.heat(x, self.crop_scale)
        raw = self.regressor(self.loc_fc(self.loc(x)))
        return params_to_theta(self.args.transform, raw, self.crop_scale)

    def crop(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        theta = self.theta(x)
        grid = affine_grid(theta, (self.args.crop, self.args.crop))
        return sample(x, grid, "bilinear", "zeros", check_grid_finite=False), theta

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """→ ``(embedding (B, D), crop V (B, 1, 28, 28), θ (B, 2, 3))``."""
        v, theta = self.crop(x)
        return self.embed(v), v, theta

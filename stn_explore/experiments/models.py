"""The paper's classification models (section 4.1): FCN, CNN, ST-FCN, ST-CNN, and the
parallel 2×ST models of the MNIST-addition experiment.

Convention: inputs ``(B, C, H, W)`` in [0, 1]; outputs are logits ``(B, n_classes)``. The
classifier head sees ``V - input_offset`` (a model argument, never applied to the data): 0 for
models made since the MNIST-addition work — centring sparse digit images by 0.5 adds a large
constant to every input of a fully connected layer and stalls SGD — and 0.5 for the
checkpoints trained before, which stored no offset.

Fairness rule (paper): apart from the localisation network, every model has three weight
layers — FCN: FC-FC-FC; CNN: conv-conv-FC — so ST variants differ from their base only by the
spatial transformer in front. ``parameter_counts`` reports the split.

A model is rebuilt from plain arguments (:func:`build_model` with ``model_args``), which the
checkpoints store, so loading never unpickles objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..core._checks import check_image, shape_str
from ..core.transformer import LocalisationConv, LocalisationFC, SpatialTransformer
from .distortions import to_batch

MODELS = ("fcn", "cnn", "st-fcn", "st-cnn", "2st-fcn", "2st-cnn")


@dataclass
class ModelArgs:
    """Everything needed to rebuild a model (stored in checkpoints as a plain dict)."""

    name: str = "st-cnn"
    in_channels: int = 1
    input_size: tuple[int, int] = (42, 42)
    n_classes: int = 10
    transform: str = "affine"
    fcn_hidden: int = 128
    cnn_channels: tuple[int, int] = (32, 64)
    cnn_kernels: tuple[int, int] = (9, 7)
    loc_fc_hidden: tuple[int, ...] = (32, 32)
    loc_conv_channels: tuple[int, ...] = (20, 20)
    loc_conv_hidden: int = 50
    #: output size (H', W') of each spatial transformer; None = the input size. Smaller than the
    #: input makes the transformer zoom in to keep the digit's detail (the cluttered recipe).
    st_out_size: tuple[int, int] | None = None
    #: the localisation net sees the input max-pooled by this factor (1 = the input itself)
    loc_pool: int = 1
    #: the transformers start as a centred zoom onto this share of the input's side
    #: (SpatialTransformer.reset_to_identity); 1 = the identity, the paper's initialisation
    st_init_scale: float = 1.0
    n_control: int = 4
    input_offset: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelArgs":
        d = dict(d)
        d.setdefault("input_offset", 0.5)  # checkpoints from before the field centred by 0.5
        for k in ("input_size", "cnn_channels", "cnn_kernels", "loc_fc_hidden", "loc_conv_channels",
                  "st_out_size"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


class FCNHead(nn.Module):
    """Three fully connected weight layers: FC-ReLU-FC-ReLU-FC."""

    def __init__(self, in_channels: int, size: Sequence[int], n_classes: int, hidden: int):
        super().__init__()
        n_in = in_channels * size[0] * size[1]
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, n_classes))

    def forward(self, x):
        return self.net(x)


class CNNHead(nn.Module):
    """Two conv layers (9×9 and 7×7, each followed by 2×2 max-pooling) and one FC layer."""

    def __init__(self, in_channels: int, size: Sequence[int], n_classes: int,
                 channels: Sequence[int], kernels: Sequence[int]):
        super().__init__()
        c1, c2 = channels
        k1, k2 = kernels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, k1), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, k2), nn.MaxPool2d(2), nn.ReLU(inplace=True))
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, *size)).numel()
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, n_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class STClassifier(nn.Module):
    """``k`` spatial transformers in parallel (k = 0, 1 or 2) in front of a classifier head.

    With ``k = 2`` (the addition experiment) each transformer sees the whole input and their
    outputs are concatenated along channels before the head.
    ``forward(x, return_aux=True)`` returns ``(logits, aux)`` with ``aux["v"]`` (list of V)
    and ``aux["params"]`` / ``aux["grid"]`` (lists, one per transformer).
    """

    def __init__(self, args: ModelArgs):
        super().__init__()
        if args.name not in MODELS:
            raise ValueError(f"unknown model {args.name!r}; expected one of {MODELS}")
        self.args = args
        base = args.name.split("-")[-1]  # fcn | cnn
        n_st = 2 if args.name.startswith("2st") else (1 if args.name.startswith("st") else 0)
        size = tuple(args.input_size)
        out = tuple(args.st_out_size) if args.st_out_size else size
        sts = []
        pool = int(args.loc_pool)
        loc_size = (size[0] // pool, size[1] // pool)
        for _ in range(n_st):
            if base == "fcn":
                loc = LocalisationFC(args.in_channels, loc_size, args.loc_fc_hidden)
            else:
                loc = LocalisationConv(args.in_channels, loc_size, args.loc_conv_channels,
                                       hidden=args.loc_conv_hidden)
            if pool > 1:
                loc = nn.Sequential(nn.MaxPool2d(pool), loc)
            st = SpatialTransformer(args.in_channels, size, args.transform, out_size=out,
                                    localisation=loc, n_control=args.n_control)
            if args.st_init_scale != 1.0:
                st.reset_to_identity(args.st_init_scale)
            sts.append(st)
        self.transformers = nn.ModuleList(sts)
        head_in = args.in_channels * max(n_st, 1)
        head_size = out if n_st else size
        if base == "fcn":
            self.head = FCNHead(head_in, head_size, args.n_classes, args.fcn_hidden)
        else:
            self.head = CNNHead(head_in, head_size, args.n_classes, args.cnn_channels, args.cnn_kernels)

    def forward(self, x: torch.Tensor, return_aux: bool = False):
        check_image(x, "x")
        expected = (self.args.in_channels, *self.args.input_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got {shape_str(x)}")
        vs, params, grids = [], [], []
        for st in self.transformers:
            v, aux = st(x, return_aux=True)
            vs.append(v)
            params.append(aux["params"])
            grids.append(aux["grid"])
        h = torch.cat(vs, dim=1) if vs else x
        if self.args.input_offset:
            h = h - self.args.input_offset
        logits = self.head(h)
        if return_aux:
            return logits, {"v": vs, "params": params, "grid": grids}
        return logits

    def localisation_parameters(self):
        return [p for st in self.transformers for p in st.parameters()]

    def head_parameters(self):
        return list(self.head.parameters())


def build_model(args: ModelArgs | dict) -> STClassifier:
    if isinstance(args, dict):
        args = ModelArgs.from_dict(args)
    return STClassifier(args)


def parameter_counts(model: STClassifier) -> dict:
    loc = sum(p.numel() for p in model.localisation_parameters())
    head = sum(p.numel() for p in model.head_parameters())
    return {"total": loc + head, "localisation": loc, "classifier": head}


def load_model(ckpt: dict) -> STClassifier:
    """The classifier of a checkpoint dict (see :func:`checkpoint.load_checkpoint`), in eval mode.

    Raises :class:`~stn_explore.experiments.checkpoint.CheckpointError` when the model
    arguments build no model or the weights do not fit it (a checkpoint of another
    architecture, non-finite weights)."""
    from .checkpoint import CheckpointError, check_weights

    try:
        model = build_model(ckpt["model_args"])
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"the checkpoint's model_args describe no classifier of this version "
                              f"({type(exc).__name__}: {exc})") from None
    check_weights(model, ckpt["state_dict"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model


def evaluate_arrays(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 500,
                    device="cpu") -> tuple[float, np.ndarray]:
    """% error of ``model`` on uint8 images ``(N, H, W)`` / ``(N, C, H, W)``; also returns
    the predictions ``(N,)``."""
    model.eval()
    preds = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = to_batch(images[s:s + batch_size])
            preds.append(model(x.to(device)).argmax(1).cpu().numpy())
    pred = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    return float((pred != labels).mean() * 100) if len(labels) else float("nan"), pred

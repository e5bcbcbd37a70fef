"""/compare's live view (issue 17): the two models as plain float32 arrays for the browser's
own forward pass, a NumPy forward pass over the same arrays (the reference the browser's
``components/compare_live.js`` is written from, and tested against torch), and the rules of
the extra-distortion sliders' state on plain mappings (tested without Streamlit).

Convention: images ``(C, H, W)`` floats in [0, 1] (one image, no batch: the browser shows
one); normalised coordinates in [-1, 1], ``align_corners=False``, x right, y down; θ maps
output (V) → input (U). See CONVENTIONS.md.

An exported model is ``{"spec": dict, "weights": float32 (P,)}``; ``spec`` holds
``in`` ``[C, H, W]``, ``offset`` (subtracted from the head's input), ``n_classes``,
``transformers`` (each ``{"kind", "out": [H', W'], "loc": [layers], "regressor": layer}``)
and ``head`` ``[layers]``. A layer is ``{"op": "conv" | "maxpool" | "relu" | "flatten" |
"linear", …}``; ``conv`` / ``linear`` name their weights as ``"w": [offset, shape]`` and
``"b": [offset, [n]]`` into ``weights``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.transformer import LocalisationConv, LocalisationFC, SpatialTransformer
from ..experiments.models import CNNHead, FCNHead, STClassifier

__all__ = ["export_model", "encode", "decode", "forward_numpy", "distort_numpy", "SLIDERS", "read_url",
           "sync_url", "apply_live", "values", "reset", "is_off", "theta_from_grid", "server_thetas"]

#: transform kinds the browser can run (its grid is affine); the others stay on the server
BROWSER_KINDS = ("affine", "attention")


# ----------------------------------------------------------------------------- export
class _Writer:
    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.n = 0

    def add(self, t: torch.Tensor) -> list:
        a = t.detach().cpu().float().contiguous().numpy().astype(np.float32).ravel()
        ref = [self.n, list(t.shape)]
        self.parts.append(a)
        self.n += a.size
        return ref


def _layers(m: nn.Module, w: _Writer) -> list[dict]:
    """A module as the layer list the browser runs; ValueError on anything it cannot run."""
    if isinstance(m, nn.Sequential):
        return [layer for sub in m for layer in _layers(sub, w)]
    if isinstance(m, LocalisationConv):
        return _layers(m.features, w) + _layers(m.fc, w)
    if isinstance(m, LocalisationFC):
        return _layers(m.net, w)
    if isinstance(m, CNNHead):
        return _layers(m.features, w) + _layers(m.classifier, w)
    if isinstance(m, FCNHead):
        return _layers(m.net, w)
    if isinstance(m, nn.Conv2d):
        if (m.stride, m.padding, m.dilation, m.groups) != ((1, 1), (0, 0), (1, 1), 1) or m.bias is None:
            raise ValueError(f"the browser runs only unpadded stride-1 convolutions with a bias, got {m}")
        return [{"op": "conv", "w": w.add(m.weight), "b": w.add(m.bias)}]
    if isinstance(m, nn.MaxPool2d):
        k, s = m.kernel_size, m.stride
        if not (isinstance(k, int) and k == s and m.padding == 0 and m.dilation == 1 and not m.ceil_mode):
            raise ValueError(f"the browser runs only non-overlapping max-pooling, got {m}")
        return [{"op": "maxpool", "k": int(k)}]
    if isinstance(m, nn.ReLU):
        return [{"op": "relu"}]
    if isinstance(m, nn.Flatten):
        return [{"op": "flatten"}]
    if isinstance(m, nn.Linear):
        return [{"op": "linear", "w": w.add(m.weight), "b": w.add(m.bias)}]
    raise ValueError(f"the browser cannot run a {type(m).__name__} layer")


def export_model(model: nn.Module) -> dict:
    """``{"spec", "weights"}`` of a trained :class:`~stn_explore.experiments.models.STClassifier`
    (see the module docstring). Raises ValueError for what the browser cannot run: another
    module, a transform other than :data:`BROWSER_KINDS`, a sampler other than bilinear with
    zero padding."""
    if not isinstance(model, STClassifier):
        raise ValueError(f"expected an STClassifier, got {type(model).__name__}")
    w = _Writer()
    sts = []
    outs = {tuple(st.out_size) for st in model.transformers}
    if len(outs) > 1:  # their outputs are stacked as channels (STClassifier.forward): one size
        raise ValueError(f"the browser stacks parallel transformers' outputs as channels: they need one "
                         f"output size, got {sorted(outs)}")
    for st in model.transformers:
        assert isinstance(st, SpatialTransformer)
        if st.kind not in BROWSER_KINDS or st.mode != "bilinear" or st.padding_mode != "zeros":
            raise ValueError(f"the browser runs only {BROWSER_KINDS} transformers with bilinear sampling and "
                             f"zero padding, got {st.kind!r} ({st.mode}, {st.padding_mode})")
        sts.append({"kind": st.kind, "out": list(st.out_size), "loc": _layers(st.localisation, w),
                    "regressor": _layers(st.regressor, w)[0]})
    a = model.args
    spec = {"in": [int(a.in_channels), *map(int, a.input_size)], "offset": float(a.input_offset or 0.0),
            "n_classes": int(a.n_classes), "transformers": sts, "head": _layers(model.head, w)}
    weights = np.concatenate(w.parts).astype(np.float32) if w.parts else np.zeros(0, np.float32)
    return {"spec": spec, "weights": weights}


def encode(exported: dict) -> dict:
    """JSON-ready: the weights as base64 of little-endian float32, and their size in bytes."""
    raw = exported["weights"].astype("<f4").tobytes()
    return {"spec": exported["spec"], "weights": base64.b64encode(raw).decode("ascii"), "bytes": len(raw)}


def decode(payload: Mapping) -> dict:
    """Inverse of :func:`encode`."""
    weights = np.frombuffer(base64.b64decode(payload["weights"]), dtype="<f4").astype(np.float32)
    return {"spec": payload["spec"], "weights": weights}


# ----------------------------------------------------------------------------- NumPy forward
def _param(weights: np.ndarray, ref: list) -> np.ndarray:
    off, shape = ref
    return weights[off:off + int(np.prod(shape))].reshape(shape)


def _run(layers: list[dict], x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    for layer in layers:
        op = layer["op"]
        if op == "conv":  # valid cross-correlation: out[o] = b[o] + Σ_i Σ_k w[o, i, k] x[i, · + k]
            k = _param(weights, layer["w"])
            win = np.lib.stride_tricks.sliding_window_view(x, k.shape[-2:], axis=(1, 2))  # (I, H', W', kh, kw)
            x = np.einsum("ihwyx,oiyx->ohw", win, k, optimize=True) + _param(weights, layer["b"])[:, None, None]
        elif op == "maxpool":
            s = layer["k"]
            c, h, w = x.shape
            x = x[:, :h // s * s, :w // s * s].reshape(c, h // s, s, w // s, s).max(axis=(2, 4))
        elif op == "relu":
            x = np.maximum(x, 0)
        elif op == "flatten":
            x = x.reshape(-1)
        elif op == "linear":
            x = _param(weights, layer["w"]) @ x + _param(weights, layer["b"])
        else:
            raise ValueError(f"unknown layer {op!r}")
    return x


def affine_sample(u: np.ndarray, theta: np.ndarray, out: tuple[int, int]) -> np.ndarray:
    """V ``(C, H', W')`` = bilinear sample of U ``(C, H, W)`` on ``θ (2, 3) · G`` with zero
    padding, ``align_corners=False`` (eq. (5); as ``stn_explore.sample``)."""
    c, h, w = u.shape
    ho, wo = out
    ys, xs = (2 * np.arange(ho) + 1) / ho - 1, (2 * np.arange(wo) + 1) / wo - 1
    gx, gy = np.meshgrid(xs, ys)                                         # (H', W')
    sx = theta[0, 0] * gx + theta[0, 1] * gy + theta[0, 2]
    sy = theta[1, 0] * gx + theta[1, 1] * gy + theta[1, 2]
    px, py = ((sx + 1) * w - 1) / 2, ((sy + 1) * h - 1) / 2             # pixel coordinates
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = px - x0, py - y0
    v = np.zeros((c, ho, wo), dtype=np.float64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            v += np.where(ok, u[:, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0) * (wx * wy)
    return v


def _theta(kind: str, flat: np.ndarray) -> np.ndarray:
    if kind == "attention":
        s, tx, ty = flat
        return np.array([[s, 0, tx], [0, s, ty]])
    return flat.reshape(2, 3)


def forward_numpy(exported: dict, image: np.ndarray) -> dict:
    """The exported model on one image ``(C, H, W)`` in [0, 1], in float64: ``probs (K,)``,
    and per transformer ``thetas`` (each ``(2, 3)``) and ``vs`` (each ``(C, H', W')``)."""
    spec, weights = exported["spec"], exported["weights"]
    x = np.asarray(image, dtype=np.float64)
    if x.shape != tuple(spec["in"]):
        raise ValueError(f"image must have shape {tuple(spec['in'])}, got {x.shape}")
    thetas, vs = [], []
    for st in spec["transformers"]:
        flat = _run(st["loc"] + [{"op": "flatten"}, st["regressor"]], x, weights)
        theta = _theta(st["kind"], flat)
        thetas.append(theta)
        vs.append(affine_sample(x, theta, tuple(st["out"])))
    h = np.concatenate(vs, axis=0) if vs else x
    logits = _run(spec["head"], h - spec["offset"], weights)
    e = np.exp(logits - logits.max())
    return {"probs": e / e.sum(), "thetas": thetas, "vs": vs}


def distort_numpy(image: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """:func:`stn_explore.explorer.compare.extra_distortion` of one uint8 image ``(H, W)`` (or
    ``(C, H, W)``: every channel the same way, as MNIST addition's two digits) as the
    browser computes it: θ = inverse of "rotate by ``angle``, scale by ``scale``, shift by
    ``shift``" (a positive angle turns the digit counter-clockwise on screen), its grid and the
    bilinear sample with zero padding, every step rounded to float32, then rounded half to even
    to uint8. Pixels whose value lies on a rounding boundary (a scale of 0.5 samples exactly
    between pixels) can still round the other way than torch's (its grid is a BLAS product):
    one grey level, in < 2% of the pixels at scale 0.5 and almost none elsewhere; in float64
    it would be ≈ 5× as many."""
    if not np.isfinite([angle, scale, *shift]).all() or scale <= 0:
        raise ValueError(f"extra distortion needs finite values and scale > 0, got angle={angle}, "
                         f"scale={scale}, shift={shift}")
    if image.ndim == 3:
        return np.stack([distort_numpy(c, angle, scale, shift) for c in image])
    f = np.float32
    h, w = image.shape
    a = f(f(angle) * f(np.pi / 180))                                   # torch.deg2rad
    c, s, k = f(np.cos(a)), f(np.sin(a)), f(1.0 / scale)
    a00, a01, a10, a11 = f(c * k), f(-s * k), f(s * k), f(c * k)      # theta_from_params(angle, 1 / scale)
    t0, t1 = f(shift[0]), f(shift[1])
    b0, b1 = -f(f(a00 * t0) + f(a01 * t1)), -f(f(a10 * t0) + f(a11 * t1))
    xs = (np.linspace(-1, 1, w, dtype=np.float64).astype(f) * f((w - 1) / w)).astype(f)  # coords.base_grid
    ys = (np.linspace(-1, 1, h, dtype=np.float64).astype(f) * f((h - 1) / h)).astype(f)
    gx, gy = np.meshgrid(xs, ys)
    sx = (gx * a00 + gy * a01 + b0).astype(f)                          # eq. (1)
    sy = (gx * a10 + gy * a11 + b1).astype(f)
    px, py = (((sx + f(1)) * f(w) - f(1)) / f(2)).astype(f), (((sy + f(1)) * f(h) - f(1)) / f(2)).astype(f)
    x0, y0 = np.floor(px), np.floor(py)
    x1, y1 = x0 + 1, y0 + 1
    u = (image.astype(f) / f(255)).astype(f)

    def at(yy, xx):
        ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        return np.where(ok, u[np.clip(yy, 0, h - 1).astype(int), np.clip(xx, 0, w - 1).astype(int)], f(0)).astype(f)

    # eq. (5): the four neighbours and their weights
    v = (at(y0, x0) * ((x1 - px) * (y1 - py)) + at(y0, x1) * ((px - x0) * (y1 - py))
         + at(y1, x0) * ((x1 - px) * (py - y0)) + at(y1, x1) * ((px - x0) * (py - y0))).astype(f)
    return np.round(np.clip(v, 0, 1) * f(255)).astype(np.uint8)


# ----------------------------------------------------------------------------- slider state
#: key → (label, min, max, step, off value); the keys are also the URL's (app_ui/urls.py)
SLIDERS = {"cmp_angle": ("rotation (°)", -180.0, 180.0, 5.0, 0.0),
           "cmp_scale": ("scale", 0.5, 1.5, 0.05, 1.0),
           "cmp_sx": ("shift x", -0.5, 0.5, 0.05, 0.0),
           "cmp_sy": ("shift y", -0.5, 0.5, 0.05, 0.0)}
_URL_READ = "cmp_url_read"
#: session key of the nonce of the last edit the component sent and the page applied
ACK = "cmp_live_ack"


def _on_step(key: str, v: float) -> float:
    """``v`` clamped to the slider's range (first: ±1e308 cannot overflow) and put on its step."""
    _, lo, hi, step, _ = SLIDERS[key]
    v = float(np.clip(v, lo, hi))
    return float(round(float(np.clip(round(v / step) * step, lo, hi)), 6))


def set_value(state: MutableMapping, key: str, value: Any) -> None:
    """Store a slider value on its step and range; non-finite or unreadable values are ignored."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return
    if np.isfinite(v):
        state[key] = _on_step(key, v)


def values(state: MutableMapping) -> tuple[float, float, tuple[float, float]]:
    """``(angle, scale, (sx, sy))``, defaults filled in."""
    for key, spec in SLIDERS.items():
        state.setdefault(key, spec[4])
    return (float(state["cmp_angle"]), float(state["cmp_scale"]),
            (float(state["cmp_sx"]), float(state["cmp_sy"])))


def is_off(state: Mapping) -> bool:
    return all(float(state.get(k, spec[4])) == spec[4] for k, spec in SLIDERS.items())


def reset(state: MutableMapping) -> None:
    state.update({k: spec[4] for k, spec in SLIDERS.items()})


def read_url(state: MutableMapping, query: Mapping) -> None:
    """Once per session: the sliders from a shared URL (``?cmp_angle=45``)."""
    if state.get(_URL_READ):
        return
    state[_URL_READ] = True
    for key in SLIDERS:
        if key in query:
            set_value(state, key, query[key])


def sync_url(state: Mapping, query: MutableMapping) -> None:
    """Mirror the sliders into the URL: a value off its default is written (``cmp_angle=45``),
    a default one removed; unchanged ones are not rewritten."""
    for key, spec in SLIDERS.items():
        v = float(state.get(key, spec[4]))
        if v != spec[4]:
            text = f"{v:g}"
            if query.get(key) != text:
                query[key] = text
        elif key in query:
            del query[key]


def apply_live(state: MutableMapping, got: Mapping | None) -> None:
    """The component sent ``{"values": {key: value}, "nonce"}`` (a slider released or a key
    pressed): the values become the page's, on the sliders' steps and ranges (unknown keys and
    non-finite values are ignored); the nonce is kept as :data:`ACK`, so the component adopts
    the server's state only once the server has seen its last edit."""
    if not got:
        return
    try:
        state[ACK] = int(got.get("nonce", state.get(ACK, 0)))
    except (TypeError, ValueError):
        pass
    for key, v in (got.get("values") or {}).items():
        if key in SLIDERS:
            set_value(state, key, v)


def controls(state: Mapping) -> list[dict]:
    """The sliders as the component builds them."""
    return [{"key": k, "label": lab, "min": lo, "max": hi, "step": st, "value": float(state.get(k, off))}
            for k, (lab, lo, hi, st, off) in SLIDERS.items()]


def theta_from_grid(grid: np.ndarray) -> np.ndarray:
    """θ ``(2, 3)`` of an affine sampling grid ``(H', W', 2)`` (least squares over its points:
    exact for a grid made by ``affine_grid``; the server's θ drawn by the browser)."""
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 3 or grid.shape[-1] != 2:
        raise ValueError(f"grid must have shape (H', W', 2), got {grid.shape}")
    ho, wo = grid.shape[:2]
    ys, xs = (2 * np.arange(ho) + 1) / ho - 1, (2 * np.arange(wo) + 1) / wo - 1
    gx, gy = np.meshgrid(xs, ys)
    a = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], 1)        # (H'W', 3)
    sol, *_ = np.linalg.lstsq(a, grid.reshape(-1, 2), rcond=None)     # (3, 2)
    return sol.T


def server_thetas(model: nn.Module, grids: list[np.ndarray]) -> list[list[float] | None]:
    """Per transformer of ``model``: θ (6 numbers) of its grid ``(H', W', 2)`` for the affine
    kinds (:data:`BROWSER_KINDS`), None for the others (a projective or TPS grid has no θ: the
    browser draws the grid's own points)."""
    kinds = [st.kind for st in getattr(model, "transformers", [])]
    if len(kinds) != len(grids):
        raise ValueError(f"{len(grids)} grids for {len(kinds)} transformers")
    return [theta_from_grid(g).ravel().tolist() if k in BROWSER_KINDS else None for k, g in zip(kinds, grids)]

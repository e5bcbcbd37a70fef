"""Everything the θ playground computes, without any UI: inputs (test patterns, uploaded
images), the transform of each kind from slider values, the rendered output V with its
sampling grid, and θ as LaTeX and as a PyTorch snippet.

Convention: see CONVENTIONS.md (normalised [-1, 1], ``align_corners=False``, x right, y down,
transforms map output → input). Images here are NumPy ``(H, W)`` or ``(H, W, 3)`` floats in [0, 1].
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np

# torch and the core are imported inside the functions that need them: the page draws its first
# view (and the browser's preview of V) before torch has loaded, which keeps the app's cold start short.

KINDS = ("affine", "attention", "projective", "tps")
PATTERNS = ("checkerboard", "text")
#: Uploaded images larger than this (in pixels) are refused outright (decompression bombs).
MAX_UPLOAD_PIXELS = 40_000_000
#: Uploaded images are downscaled so that their longer side is at most this.
MAX_SIDE = 256


class ImageInputError(ValueError):
    """An uploaded file that cannot be used as an input image."""


# ----------------------------------------------------------------------------- inputs
def test_pattern(name: str = "checkerboard", size: int = 64) -> np.ndarray:
    """A ``(size, size)`` float image that makes distortions easy to see.

    ``checkerboard``: 8×8 squares with a bright marker in the top-left square (so flips and
    rotations are visible); ``text``: the letters "STN" above an arrow pointing right.
    """
    if name == "checkerboard":
        yy, xx = np.mgrid[0:size, 0:size]
        cell = max(1, size // 8)
        img = (((yy // cell) + (xx // cell)) % 2).astype(np.float32) * 0.6 + 0.2
        img[cell // 4: cell - cell // 4, cell // 4: cell - cell // 4] = 1.0
        return img
    if name == "text":
        from PIL import Image, ImageDraw, ImageFont

        im = Image.new("L", (size, size), 0)
        d = ImageDraw.Draw(im)
        try:
            font = ImageFont.load_default(size=max(8, size // 3))
        except TypeError:  # Pillow without FreeType sizes
            font = ImageFont.load_default()
        d.text((size / 2, size * 0.35), "STN", fill=255, font=font, anchor="mm")
        y = int(size * 0.75)
        d.line([(size * 0.15, y), (size * 0.85, y)], fill=255, width=max(1, size // 16))
        d.polygon([(size * 0.85, y - size * 0.08), (size * 0.97, y), (size * 0.85, y + size * 0.08)], fill=255)
        return np.asarray(im, dtype=np.float32) / 255.0
    raise ValueError(f"unknown pattern {name!r}; expected one of {PATTERNS}")


def load_image_bytes(data: bytes, max_side: int = MAX_SIDE) -> tuple[np.ndarray, str | None]:
    """Decode an uploaded image (PNG, JPEG, … via Pillow) into ``(H, W)`` (grayscale) or
    ``(H, W, 3)`` (colour) floats in [0, 1], upright: the EXIF orientation tag (set by phone
    cameras instead of rotating the pixels) is applied, so the array looks as an image viewer
    shows the photo (see :func:`_upright`).

    Images with a longer side above ``max_side`` are downscaled (the returned note says so);
    images above :data:`MAX_UPLOAD_PIXELS` pixels are refused. Raises
    :class:`ImageInputError` with a clear message for anything that is not a whole image.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageInputError("the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_UPLOAD_PIXELS:
                raise ImageInputError(f"the image is {w}×{h} pixels; the limit is "
                                      f"{MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels")
            im.load()  # decode fully now: a truncated file fails here
            im = _upright(im)
            w, h = im.size  # a quarter turn swaps them
            colour = im.mode not in ("1", "L", "LA", "I", "I;16", "F", "P") or (
                im.mode == "P" and "transparency" not in im.info and _palette_is_colour(im))
            im = im.convert("RGB" if colour else "L")
    except ImageInputError:
        raise
    except UnidentifiedImageError:
        raise ImageInputError("the file is not an image that Pillow can read (PNG, JPEG, GIF, "
                              "BMP, TIFF, WebP, …)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"the image could not be decoded ({exc}); is the file truncated?") from None
    note = None
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        im = im.resize(new, Image.Resampling.LANCZOS)
        note = f"downscaled from {w}×{h} to {new[0]}×{new[1]} (longer side limit {max_side} px)"
    return np.asarray(im, dtype=np.float32) / 255.0, note


def _upright(im):
    """``im`` turned and/or mirrored as its EXIF orientation tag (1–8) says, with the tag
    removed; unchanged without a tag. A tag Pillow cannot read leaves the image as stored
    (the pixels are still a valid image)."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return im


def _palette_is_colour(im) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


# ----------------------------------------------------------------------------- transforms
def affine_params(angle: float = 0.0, scale_x: float = 1.0, scale_y: float = 1.0, shear: float = 0.0,
                  tx: float = 0.0, ty: float = 0.0) -> np.ndarray:
    """θ ``(2, 3)`` from slider values: ``geometry.theta_from_params`` in NumPy (no torch, so
    the page's first view needs none; equal to it to float64 precision, pinned by a test).

    θ = [R(angle) · Sh(shear) · diag(sx, sy) | t] = [[c sx, (c k − s) sy, tx], [s sx, (s k + c) sy, ty]].
    """
    a = math.radians(float(angle))
    c, s, k = math.cos(a), math.sin(a), float(shear)
    sx, sy = float(scale_x), float(scale_y)
    return np.array([[c * sx, (c * k - s) * sy, float(tx)], [s * sx, (s * k + c) * sy, float(ty)]])


def attention_params(s: float = 1.0, tx: float = 0.0, ty: float = 0.0) -> np.ndarray:
    return np.array([s, tx, ty], dtype=np.float64)


def projective_params(corners: np.ndarray) -> np.ndarray:
    """Homography ``(3, 3)`` sending the output frame's corners (TL, TR, BR, BL) to
    ``corners`` ``(4, 2)`` (normalised source points)."""
    import torch

    from ..core.geometry import homography_from_corners

    c = torch.as_tensor(np.asarray(corners, dtype=np.float64)).reshape(1, 4, 2)
    return homography_from_corners(c)[0].numpy()


def tps_params(offsets: np.ndarray, n: int = 4) -> np.ndarray:
    """TPS source points ``(n², 2)``: the uniform control grid (``geometry.control_points``,
    row-major, x fastest) moved by ``offsets``."""
    t = np.linspace(-1.0, 1.0, n)
    gy, gx = np.meshgrid(t, t, indexing="ij")
    return np.stack((gx, gy), -1).reshape(-1, 2) + np.asarray(offsets, dtype=np.float64).reshape(-1, 2)


PRESETS = {
    "identity": dict(angle=0.0, scale_x=1.0, scale_y=1.0, shear=0.0, tx=0.0, ty=0.0),
    "zoom ×2 on the centre": dict(angle=0.0, scale_x=0.5, scale_y=0.5, shear=0.0, tx=0.0, ty=0.0),
    "rotate 45°": dict(angle=45.0, scale_x=1.0, scale_y=1.0, shear=0.0, tx=0.0, ty=0.0),
    # like the paper's Fig. 3(b): a rotated, sheared, shifted crop of the input
    "Fig. 3(b)-like warp": dict(angle=-25.0, scale_x=0.75, scale_y=0.6, shear=0.3, tx=0.15, ty=0.1),
}


# ----------------------------------------------------------------------------- rendering
@dataclass
class Rendered:
    """Output of :func:`render`: V, its sampling grid and outline, and diagnostics."""

    v: np.ndarray  # (H', W') or (H', W', 3)
    grid: np.ndarray  # (H', W', 2) normalised source points
    outline: np.ndarray  # (N, 2) normalised source points along the output frame's border
    outside: float  # share of sample points outside U
    warnings: list = field(default_factory=list)
    control_points: np.ndarray | None = None  # TPS source points (K, 2)


def _check_params(kind: str, params: np.ndarray) -> np.ndarray:
    if kind not in KINDS:
        raise ValueError(f"unknown transform kind {kind!r}; expected one of {KINDS}")
    p = np.asarray(params, dtype=np.float64)
    shapes = {"affine": (2, 3), "attention": (3,), "projective": (3, 3)}
    if kind in shapes and p.shape != shapes[kind]:
        raise ValueError(f"{kind} parameters must have shape {shapes[kind]}, got {p.shape}")
    if kind == "tps" and (p.ndim != 2 or p.shape[1] != 2):
        raise ValueError(f"tps parameters must have shape (K, 2), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("the transform parameters contain NaN or infinite values")
    return p


def render(image: np.ndarray, kind: str, params: np.ndarray, out_size: tuple[int, int] | None = None,
           mode: str = "bilinear", padding_mode: str = "zeros") -> Rendered:
    """Warp ``image`` with a transform of ``kind`` (target → source) and return V plus what
    the figures need. Raises ``ValueError`` for unusable parameters (wrong shape, NaN/inf);
    a singular or degenerate transform still renders but adds a warning."""
    import torch

    from ..core.geometry import PROJECTIVE_EPS, make_grid, projective_min_denominator, transform_points
    from ..core.sampling import outside_fraction, sample
    from .figures import frame_outline

    p = _check_params(kind, params)
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape[:2]
    out_size = tuple(out_size) if out_size is not None else (h, w)
    x = torch.from_numpy(img)
    x = x.permute(2, 0, 1)[None] if x.ndim == 3 else x[None, None]  # (1, C, H, W)
    pt = torch.from_numpy(p)[None].float()
    grid = make_grid(kind, pt, out_size)  # (1, H', W', 2)
    v = sample(x, grid, mode, padding_mode, check_grid_finite=False)[0]
    v = v.permute(1, 2, 0).numpy() if v.shape[0] == 3 else v[0].numpy()
    outline = transform_points(kind, pt, torch.from_numpy(frame_outline()).float()[None])[0].numpy()
    warnings = []
    if kind in ("affine", "attention"):
        a = p[:, :2] if kind == "affine" else np.diag([p[0], p[0]])
        if abs(np.linalg.det(a)) < 1e-6:
            warnings.append("θ is singular (its 2×2 part has determinant 0): the whole output "
                            "samples a line or a point of the input")
    elif kind == "projective":
        if float(projective_min_denominator(pt.double(), out_size)[0]) <= PROJECTIVE_EPS:
            warnings.append("the homography sends part of the output beyond the horizon "
                            "(w ≤ 0): those pixels show padding")
    out_frac = float(outside_fraction(grid)[0])
    if out_frac > 0.99:
        warnings.append("every sample point lies outside the input: V is all padding "
                        "(in training this would give zero gradient — 'localisation collapse')")
    cps = p if kind == "tps" else None
    return Rendered(v=v, grid=grid[0].numpy(), outline=outline, outside=out_frac, warnings=warnings,
                    control_points=cps)


# ----------------------------------------------------------------------------- text
def _fmt(x: float) -> str:
    s = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def theta_latex(kind: str, params: np.ndarray) -> str:
    """Eq. (1) of the paper with the current numbers filled in (LaTeX)."""
    p = _check_params(kind, params)
    if kind == "attention":
        p = np.array([[p[0], 0, p[1]], [0, p[0], p[2]]])
        kind = "affine"
    if kind == "affine":
        m = r" \\ ".join(" & ".join(_fmt(v) for v in row) for row in p)
        return (r"\begin{pmatrix} x^s_i \\ y^s_i \end{pmatrix} = \mathcal{T}_\theta(G_i) = "
                r"\begin{bmatrix}" + m + r"\end{bmatrix}"
                r"\begin{pmatrix} x^t_i \\ y^t_i \\ 1 \end{pmatrix}")
    # (two lines: the formula fits a narrow column, issue 23 item 4)
    if kind == "projective":
        m = r" \\ ".join(" & ".join(_fmt(v) for v in row) for row in p)
        return (r"\begin{gathered}\begin{pmatrix} x' \\ y' \\ w \end{pmatrix} = \begin{bmatrix}" + m +
                r"\end{bmatrix}\begin{pmatrix} x^t_i \\ y^t_i \\ 1 \end{pmatrix} \\ "
                r"(x^s_i, y^s_i) = (x'/w,\ y'/w)\end{gathered}")
    return (r"\begin{gathered}(x^s_i, y^s_i) = a_0 + a_1 x^t_i + a_2 y^t_i + \sum_{k=1}^{" + str(len(p)) +
            r"} w_k\, U(\lVert G_i - P_k \rVert) \\ U(r) = r^2 \log r^2\end{gathered}")


def torch_snippet(kind: str, params: np.ndarray, in_size: tuple[int, int], out_size: tuple[int, int],
                  mode: str = "bilinear", padding_mode: str = "zeros", channels: int = 1) -> str:
    """A self-contained PyTorch snippet that reproduces V from an input ``u``."""
    p = _check_params(kind, params)
    h, w = in_size
    ho, wo = out_size
    arr = np.array2string(p, separator=", ", precision=4, suppress_small=True,
                          floatmode="maxprec").replace("\n", "\n" + " " * 4)
    head = (f"import torch\nimport torch.nn.functional as F\nimport stn_explore as stn\n\n"
            f"u = torch.rand(1, {channels}, {h}, {w})  # your input U: (B, C, H, W) in [0, 1]\n")
    if kind == "affine":
        return head + (f"theta = torch.tensor([{arr}])  # (1, 2, 3), output → input\n"
                       f"grid = F.affine_grid(theta, (1, {channels}, {ho}, {wo}), align_corners=False)\n"
                       f"v = F.grid_sample(u, grid, mode={mode!r}, padding_mode={padding_mode!r}, "
                       f"align_corners=False)\n"
                       f"# same as: stn.warp(u, theta, 'affine', out_size=({ho}, {wo}), mode={mode!r}, "
                       f"padding_mode={padding_mode!r})\n")
    shape = {"attention": "(1, 3) = (s, tx, ty)", "projective": "(1, 3, 3) homography",
             "tps": f"(1, {len(p)}, 2) source points of the 4×4 target grid"}[kind]
    return head + (f"params = torch.tensor([{arr}])  # {shape}\n"
                   f"v = stn.warp(u, params, {kind!r}, out_size=({ho}, {wo}), mode={mode!r}, "
                   f"padding_mode={padding_mode!r})\n")


def random_tps_offsets(seed: int, sigma: float = 0.12, n: int = 4) -> np.ndarray:
    """Seeded Gaussian offsets ``(n², 2)`` for the TPS control points."""
    import torch

    g = torch.Generator().manual_seed(int(seed))
    return (sigma * torch.randn(n * n, 2, generator=g, dtype=torch.float64)).numpy()


def decompose_affine(theta: np.ndarray) -> dict:
    """Slider values (angle, scale_x, scale_y, shear, tx, ty) of an affine θ ``(2, 3)``;
    raises ``ValueError`` if θ is singular or not finite."""
    import torch

    from ..core.geometry import params_from_theta

    t = torch.as_tensor(_check_params("affine", theta))
    d = params_from_theta(t)
    out = {"angle": float(d.angle_deg), "scale_x": float(d.scale_x), "scale_y": float(d.scale_y),
           "shear": float(d.shear), "tx": float(d.tx), "ty": float(d.ty)}
    if not all(math.isfinite(v) for v in out.values()):
        raise ValueError("θ cannot be decomposed into finite slider values")
    return out

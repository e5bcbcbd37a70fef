"""Plotly figure builders: arrays in, ``plotly.graph_objects.Figure`` out (no Streamlit).

Images are drawn in *pixel* coordinates (pixel centres at integers, x right, y down) as one
``go.Image`` trace whose source is a compressed PNG, so a figure stays small however large
the image; sampling grids are converted from normalised coordinates with
``x_pix = ((x + 1) W - 1) / 2`` (CONVENTIONS.md) and drawn as ONE line trace with ``None``
separators (plotly.js slows down sharply with the number of traces).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import pandas  # noqa: F401  (imported whole before any figure is built: see below)
import plotly.graph_objects as go

# plotly's validators peek at ``sys.modules["pandas"]`` without importing it; while another
# thread of the app server was still importing pandas they found it half-initialised and a page
# failed with "partially initialized module 'pandas' has no attribute 'Series'" (seen on
# /colocalisation while a live run trained). Importing it here, under the import lock, means a
# figure is only ever built once pandas is complete.

GRID_COLOR = "rgba(0, 200, 255, 0.75)"
OUTLINE_COLOR = "#ff4b4b"
POINT_COLOR = "#ffd000"


def to_uint8(img: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` float in [0, 1] (or uint8) → uint8, values clipped."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def png_data_uri(img: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of a grayscale or RGB image."""
    from PIL import Image

    arr = to_uint8(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def normalized_to_pixel_np(points: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """NumPy twin of ``geometry.normalized_to_pixel`` (points ``(..., 2)``, size ``(H, W)``)."""
    h, w = size
    return ((np.asarray(points, dtype=np.float64) + 1) * np.array([w, h]) - 1) / 2


def polyline_xy(lines: Sequence[np.ndarray]) -> tuple[list, list]:
    """Concatenate polylines ``(N_i, 2)`` into x/y lists separated by ``None``."""
    xs: list = []
    ys: list = []
    for line in lines:
        if len(line) == 0:
            continue
        xs.extend(np.round(line[:, 0], 3).tolist() + [None])
        ys.extend(np.round(line[:, 1], 3).tolist() + [None])
    return xs, ys


def _image_layout(size: Sequence[int], px: float, title: str | None, margin: int = 4,
                  pad: float = 0.0) -> dict:
    h, w = size
    top = margin + (28 if title else 0)
    return {
        "width": int(w * px) + 2 * margin, "height": int(h * px) + margin + top,
        "margin": {"l": margin, "r": margin, "t": top, "b": margin},
        "title": {"text": title, "x": 0.5, "font": {"size": 14}} if title else None,
        "showlegend": False, "plot_bgcolor": "#808080", "paper_bgcolor": "rgba(0,0,0,0)",
        "dragmode": False, "hovermode": "closest",
        "xaxis": {"range": [-0.5 - pad, w - 0.5 + pad], "visible": False, "constrain": "domain"},
        "yaxis": {"range": [h - 0.5 + pad, -0.5 - pad], "visible": False, "scaleanchor": "x",
                  "constrain": "domain"},
    }


def _image_trace(img: np.ndarray) -> dict:
    return {"type": "image", "source": png_data_uri(img), "x0": 0, "y0": 0, "dx": 1, "dy": 1,
            "hovertemplate": "col %{x}, row %{y}<br>value %{color[0]}<extra></extra>"}


def two_channel_rgb(x: np.ndarray) -> np.ndarray:
    """A two-channel image ``(2, H, W)`` in [0, 1] as RGB ``(H, W, 3)``: channel 1 magenta,
    channel 2 green (where both overlap the pixel turns white)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != 2:
        raise ValueError(f"x must have shape (2, H, W), got {x.shape}")
    return np.stack((x[0], x[1], x[0]), axis=-1).clip(0, 1)


# Figures are assembled as one dict and built once: incremental add_trace / update_layout
# calls cost ~10 ms per figure, which matters on a slider's hot path.
def image_figure(img: np.ndarray, *, title: str | None = None, px: float = 8.0) -> go.Figure:
    """An image ``(H, W)`` / ``(H, W, 3)`` at ``px`` screen pixels per image pixel; hover
    shows the pixel's column, row and value."""
    img = np.asarray(img)
    return go.Figure({"data": [_image_trace(img)], "layout": _image_layout(img.shape[:2], px, title)})


def grid_lines(grid: np.ndarray, size: Sequence[int], every: int = 1) -> list[np.ndarray]:
    """Rows and columns of a sampling grid ``(H', W', 2)`` (normalised source points) as
    pixel polylines in an input of ``size`` ``(H, W)``, keeping every ``every``-th line."""
    pts = normalized_to_pixel_np(grid, size)
    hh, ww = pts.shape[:2]
    rows = [pts[i] for i in range(0, hh, every)]
    cols = [pts[:, j] for j in range(0, ww, every)]
    if (hh - 1) % every:
        rows.append(pts[hh - 1])
    if (ww - 1) % every:
        cols.append(pts[:, ww - 1])
    return rows + cols


def grid_overlay_figure(img: np.ndarray, grid: np.ndarray, outline: np.ndarray | None = None, *,
                        title: str | None = None, px: float = 8.0, max_lines: int = 24,
                        show_points: bool = False, pad: float = 0.0,
                        points: np.ndarray | None = None, points_name: str = "control points") -> go.Figure:
    """The input U with the sampling grid T_θ(G) overlaid.

    Args:
        img: U, ``(H, W)`` or ``(H, W, 3)``.
        grid: ``(H', W', 2)`` normalised source points (one per output pixel).
        outline: ``(N, 2)`` normalised source points tracing the border of the sampled region
            (closed automatically); drawn highlighted.
        max_lines: at most this many grid rows (and columns) are drawn.
        show_points: also mark the sample points (subsampled like the lines).
        pad: extra margin (in input pixels) shown around U, so a region sampling outside U
            stays visible.
        points: extra normalised points ``(K, 2)`` to mark (e.g. TPS control points).
    Traces, in order: image, grid lines (one trace), [outline], [sample points], [points].
    """
    img = np.asarray(img)
    size = img.shape[:2]
    grid = np.asarray(grid)
    if grid.ndim != 3 or grid.shape[-1] != 2:
        raise ValueError(f"grid must have shape (H', W', 2), got {grid.shape}")
    every = max(1, int(np.ceil(max(grid.shape[:2]) / max_lines)))
    xs, ys = polyline_xy(grid_lines(grid, size, every))
    data = [_image_trace(img),
            {"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": "grid",
             "line": {"color": GRID_COLOR, "width": 1}, "hoverinfo": "skip"}]
    if outline is not None:
        o = normalized_to_pixel_np(outline, size)
        o = np.round(np.vstack([o, o[:1]]), 3)
        data.append({"type": "scatter", "x": o[:, 0].tolist(), "y": o[:, 1].tolist(), "mode": "lines",
                     "name": "sampled region", "line": {"color": OUTLINE_COLOR, "width": 2.5},
                     "hoverinfo": "skip"})
    if show_points:
        p = np.round(normalized_to_pixel_np(grid[::every, ::every], size).reshape(-1, 2), 3)
        data.append({"type": "scatter", "x": p[:, 0].tolist(), "y": p[:, 1].tolist(), "mode": "markers",
                     "name": "sample points", "marker": {"color": POINT_COLOR, "size": 3},
                     "hovertemplate": "source col %{x:.2f}, row %{y:.2f}<extra></extra>"})
    if points is not None:
        data.append(points_trace(points, size, name=points_name))
    return go.Figure({"data": data, "layout": _image_layout(size, px, title, pad=pad)})


def frame_outline(n_per_side: int = 32) -> np.ndarray:
    """Points ``(4 n, 2)`` along the border of the normalised output frame [-1, 1]², clockwise
    from the top-left corner; map them through a transform to outline the sampled region."""
    t = np.linspace(-1, 1, n_per_side, endpoint=False)
    one = np.ones_like(t)
    top = np.stack([t, -one], 1)
    right = np.stack([one, t], 1)
    bottom = np.stack([-t, one], 1)
    left = np.stack([-one, -t], 1)
    return np.concatenate([top, right, bottom, left])


def points_trace(points: np.ndarray, size: Sequence[int], *, color: str = POINT_COLOR,
                 name: str = "points") -> dict:
    """A marker trace (dict) of normalised points ``(N, 2)`` drawn over an image of ``size``."""
    p = np.round(normalized_to_pixel_np(points, size), 3)
    return {"type": "scatter", "x": p[:, 0].tolist(), "y": p[:, 1].tolist(), "mode": "markers",
            "name": name, "marker": {"color": color, "size": 8, "line": {"color": "black", "width": 1}},
            "hovertemplate": name + ": col %{x:.1f}, row %{y:.1f}<extra></extra>"}


def probabilities_figure(probs: np.ndarray, *, title: str | None = None, true_label: int | None = None,
                         width: int = 300, height: int = 220) -> go.Figure:
    """Bar chart of class probabilities ``(K,)``; the predicted class is highlighted, the true
    class (if given) outlined."""
    probs = np.asarray(probs, dtype=np.float64).ravel()
    if probs.ndim != 1 or len(probs) == 0 or not np.isfinite(probs).all():
        raise ValueError(f"probs must be a finite vector (K,), got shape {np.shape(probs)}")
    k = len(probs)
    pred = int(np.argmax(probs))
    colors = [OUTLINE_COLOR if i == pred else "#9aa5b1" for i in range(k)]
    line = [3 if i == true_label else 0 for i in range(k)]
    data = [{"type": "bar", "x": list(range(k)), "y": np.round(probs, 4).tolist(),
             "marker": {"color": colors, "line": {"color": "#111", "width": line}},
             "hovertemplate": "class %{x}: %{y:.1%}<extra></extra>"}]
    layout = {"width": width, "height": height, "margin": {"l": 36, "r": 8, "t": 34 if title else 8, "b": 28},
              "title": {"text": title, "x": 0.5, "xanchor": "center", "font": {"size": 13}} if title else None,
              # every class up to 10, then every other one, upright (19 sums in ~250 px stay readable)
              "xaxis": {"tickmode": "linear", "tick0": 0, "dtick": 1 if k <= 10 else 2, "tickangle": 0,
                        "tickfont": {"size": 12}, "fixedrange": True},
              "yaxis": {"range": [0, 1], "tickformat": ".0%", "fixedrange": True},
              "showlegend": False, "bargap": 0.15, "paper_bgcolor": "rgba(0,0,0,0)"}
    return go.Figure({"data": data, "layout": layout})


def sweep_figure(values: np.ndarray, errors: dict, *, xlabel: str, shade: tuple | None = None,
                 width: int = 640, height: int = 300) -> go.Figure:
    """Error (%) curves ``{name: (len(values),)}`` over a swept quantity, with the training
    distribution's range shaded."""
    colors = ["#9aa5b1", OUTLINE_COLOR, "#1f77b4", "#2ca02c"]
    data = [{"type": "scatter", "x": np.asarray(values).tolist(), "y": np.round(np.asarray(e), 3).tolist(),
             "mode": "lines+markers", "name": name, "line": {"color": colors[i % len(colors)], "width": 2},
             "hovertemplate": name + ": %{y:.1f}% at %{x}<extra></extra>"}
            for i, (name, e) in enumerate(errors.items())]
    shapes = []
    if shade is not None:
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": shade[0], "x1": shade[1],
                       "y0": 0, "y1": 1, "fillcolor": "rgba(0, 200, 255, 0.12)", "line": {"width": 0},
                       "layer": "below"})
    layout = {"width": width, "height": height, "margin": {"l": 50, "r": 10, "t": 10, "b": 45},
              "xaxis": {"title": {"text": xlabel}}, "yaxis": {"title": {"text": "error %"}, "rangemode": "tozero"},
              "shapes": shapes, "legend": {"orientation": "h", "y": 1.08}, "paper_bgcolor": "rgba(0,0,0,0)"}
    return go.Figure({"data": data, "layout": layout})


#: bins per axis of the applied-vs-recovered density images
LEARNED_BINS = 36
#: empty bins transparent, one image already visible, the fullest bin in the scatter's blue
DENSITY_SCALE = [[0.0, "rgba(31,119,180,0)"], [1e-6, "rgba(31,119,180,0.3)"], [1.0, "rgba(31,119,180,1)"]]


def _bins(lo: float, hi: float) -> dict:
    size = max(hi - lo, 1e-6) / LEARNED_BINS
    return {"start": lo - size / 2, "end": hi + size / 2, "size": size}


def learned_figures(truth: dict, stats: dict, iou: np.ndarray | None = None, *, width: int = 215,
                    height: int = 230) -> list[go.Figure]:
    """Applied vs recovered distortion, one small figure per quantity the test set knows (so a
    page can wrap them onto as many rows as its width needs), each a density of the images
    (``histogram2d``, hover gives the count) with the diagonal of an exact inverse: rotation (applied angle vs
    rotation undone, degrees), shift (digit centre x vs region centre x, normalised), scale
    (applied scale vs region size); and, with ``iou`` ``(N,)``, the histogram of the region
    box's IoU with the digit's box. ``truth``/``stats`` as returned by
    :func:`stn_explore.explorer.compare.learned` for one transformer."""
    panels = []
    if "angles" in truth:
        panels.append(("rotation", truth["angles"], stats["rotation"], "applied rotation (°)", "rotation undone (°)"))
    if "centres" in truth:
        panels.append(("shift", truth["centres"][:, 0], stats["centre"][:, 0], "digit centre x", "region centre x"))
    if "scales" in truth:
        panels.append(("scale", truth["scales"], stats["size"], "applied scale", "region size"))
    if iou is not None:
        panels.append(("iou", None, None, "IoU with the digit's box", "images"))
    if not panels:
        raise ValueError("nothing to plot: the test set carries no angles, centres, scales or boxes")
    out = []
    for name, x, y, xl, yl in panels:
        layout = {"width": width, "height": height, "showlegend": False, "paper_bgcolor": "rgba(0,0,0,0)",
                  "margin": {"l": 50, "r": 8, "t": 8, "b": 45},
                  "xaxis": {"title": {"text": xl}}, "yaxis": {"title": {"text": yl}}}
        if name == "iou":
            data = [{"type": "histogram", "x": np.round(np.asarray(iou), 3).tolist(),
                     "xbins": {"start": 0, "end": 1, "size": 0.05}, "marker": {"color": OUTLINE_COLOR}}]
            layout["xaxis"]["range"] = [0, 1]
            out.append(go.Figure({"data": data, "layout": layout}))
            continue
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        # a density image (one <image> in the SVG), not one marker per image: a page repaint then
        # re-layerises one element per chart instead of 1,000 (44 → 2 ms of Chromium per slider
        # move on /compare, issue 18). The same square bins on both axes keep the diagonal straight.
        # (scale: applied scale vs region size, no diagonal, so each axis spans its own values)
        xbins = _bins(lo, hi) if name != "scale" else _bins(float(x.min()), float(x.max()))
        ybins = xbins if name != "scale" else _bins(float(y.min()), float(y.max()))
        data = [{"type": "histogram2d", "x": np.round(x, 4).tolist(), "y": np.round(y, 4).tolist(),
                 "xbins": xbins, "ybins": ybins, "zmin": 0, "showscale": False, "colorscale": DENSITY_SCALE,
                 "hovertemplate": f"{xl}: %{{x}}<br>{yl}: %{{y}}<br>%{{z}} images<extra></extra>"}]
        if name != "scale":  # the diagonal: a transformer that undoes exactly what was applied
            data.append({"type": "scatter", "mode": "lines", "x": [lo, hi], "y": [lo, hi],
                         "line": {"color": "#9aa5b1", "dash": "dot"}, "hoverinfo": "skip"})
        out.append(go.Figure({"data": data, "layout": layout}))
    return out


# ----------------------------------------------------------------------------- co-localisation
TRUTH_COLOR = "#2ecc71"


def mosaic(images: np.ndarray, cols: int = 4, gap: int = 4, fill: int = 70) -> tuple[np.ndarray, np.ndarray]:
    """Tile grayscale images ``(P, H, W)`` into one image, ``cols`` per row with ``gap``
    pixels between them → ``(mosaic uint8, offsets (P, 2) = x, y of each tile's corner)``."""
    images = to_uint8(np.asarray(images))
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"images must have shape (P ≥ 1, H, W), got {images.shape}")
    p, h, w = images.shape
    rows = -(-p // cols)
    out = np.full((rows * (h + gap) - gap, min(cols, p) * (w + gap) - gap), fill, np.uint8)
    offsets = np.zeros((p, 2))
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = img
        offsets[i] = (c * (w + gap), r * (h + gap))
    return out, offsets


def _quads_xy(quads: np.ndarray, offsets: np.ndarray) -> tuple[list, list]:
    closed = [np.vstack((q, q[:1])) + o for q, o in zip(np.asarray(quads, np.float64), offsets)]
    return polyline_xy(closed)


def coloc_figure(panel_images: np.ndarray, panel_boxes: np.ndarray, panel_quads: np.ndarray,
                 iterations: np.ndarray, loss: np.ndarray, accuracy: np.ndarray, *,
                 animate: bool = True, frame: int = -1, cols: int = 4, px: float = 1.6,
                 title: str | None = None) -> go.Figure:
    """Co-localisation training as a figure: the panel of images ``(P, H, W)`` with the
    ground-truth boxes ``(P, 4)`` (green, x0 y0 x1 y1 in pixels) and the predicted crop
    quadrilaterals ``(T, P, 4, 2)`` (red), beside the loss and accuracy (%) curves ``(T,)``
    over ``iterations (T,)`` with a marker at the shown iteration.

    ``animate=True``: one plotly frame per recorded iteration, with play/pause buttons above
    the panels and an iteration slider below (the figure opens at ``frame``).
    ``animate=False``: just ``frame``. The frames carry only the moving traces (boxes and
    markers) and play without a redraw, so the panel image is never re-rendered while playing
    (a redraw re-decodes it and blanks the panels for a moment).
    """
    panel_quads = np.asarray(panel_quads, dtype=np.float64)
    iterations = np.asarray(iterations)
    t = len(iterations)
    p = len(panel_images)
    if panel_quads.shape != (t, p, 4, 2):
        raise ValueError(f"panel_quads must have shape (T={t}, P={p}, 4, 2), got {panel_quads.shape}")
    if np.asarray(panel_boxes).shape != (p, 4) or len(loss) != t or len(accuracy) != t:
        raise ValueError("panel_boxes must be (P, 4) and loss/accuracy (T,)")
    if t == 0:
        raise ValueError("the recording is empty")
    frame = frame % t
    img, offsets = mosaic(panel_images, cols)
    h, w = img.shape
    b = np.asarray(panel_boxes, np.float64)
    truth = np.stack([b[:, [0, 2, 2, 0]], b[:, [1, 1, 3, 3]]], -1)  # (P, 4, 2)
    tx, ty = _quads_xy(truth, offsets)
    it_list = iterations.tolist()
    loss = np.asarray(loss, np.float64)
    acc = np.asarray(accuracy, np.float64)
    loss_y = [None if not np.isfinite(v) else round(float(v), 5) for v in loss]
    acc_y = np.round(acc, 2).tolist()
    curve_mode = "lines+markers" if t <= 12 else "lines"  # a short (stopped) run: its few points stay visible

    def moving(k: int) -> list[dict]:
        qx, qy = _quads_xy(panel_quads[k], offsets)
        return [{"type": "scatter", "x": qx, "y": qy, "mode": "lines", "xaxis": "x", "yaxis": "y",
                 "line": {"color": OUTLINE_COLOR, "width": 2}, "name": "predicted", "hoverinfo": "skip"},
                {"type": "scatter", "x": [it_list[k]], "y": [loss_y[k]], "mode": "markers", "xaxis": "x2",
                 "yaxis": "y2", "marker": {"size": 10, "color": OUTLINE_COLOR}, "hoverinfo": "skip"},
                {"type": "scatter", "x": [it_list[k]], "y": [acc_y[k]], "mode": "markers", "xaxis": "x3",
                 "yaxis": "y3", "marker": {"size": 10, "color": OUTLINE_COLOR}, "hoverinfo": "skip"}]

    data = [
        # The panels are a layout image, not an image trace: plotly re-renders image traces when
        # an animation starts (the panels blank for a moment), layout images it leaves alone.
        # Trace 0 stays as an empty placeholder, so the moving traces keep their indices 4–6.
        {"type": "scatter", "x": [], "y": [], "xaxis": "x", "yaxis": "y", "name": "panels", "hoverinfo": "skip"},
        {"type": "scatter", "x": tx, "y": ty, "mode": "lines", "xaxis": "x", "yaxis": "y", "name": "ground truth",
         "line": {"color": TRUTH_COLOR, "width": 1.5, "dash": "dot"}, "hoverinfo": "skip"},
        {"type": "scatter", "x": it_list, "y": loss_y, "mode": curve_mode, "xaxis": "x2", "yaxis": "y2",
         "line": {"color": "#9aa5b1"}, "name": "loss", "hovertemplate": "iteration %{x}: loss %{y:.3f}<extra></extra>"},
        {"type": "scatter", "x": it_list, "y": acc_y, "mode": curve_mode, "xaxis": "x3", "yaxis": "y3",
         "line": {"color": "#1f77b4"}, "name": "accuracy",
         "hovertemplate": "iteration %{x}: %{y:.1f}% IoU > 0.5<extra></extra>"},
    ] + moving(frame)
    moving_idx = [4, 5, 6]
    img_w = int(w * px)
    width = img_w + 420
    top = 10 + (28 if title else 0) + (44 if animate else 0)  # title, then the Play/Pause row
    height = max(int(h * px), 320) + top + 10 + (80 if animate else 0)
    split = img_w / width
    xmax = max(it_list[-1], 1)
    pad = 2.0  # image pixels around the mosaic: a crop reaching past an edge panel stays visible
    layout = {  # no width: the chart takes its container's (``width`` only sets the split)
        "height": height, "showlegend": False, "paper_bgcolor": "rgba(0,0,0,0)", "autosize": True,
        "margin": {"l": 4, "r": 10, "t": top, "b": 10 + (80 if animate else 0)},
        "title": {"text": title, "x": 0.5, "xanchor": "center", "y": 1, "yanchor": "top", "yref": "container",
                  "pad": {"t": 6}} if title else None, "dragmode": False,
        # the mosaic keeps its aspect ratio in the top-left corner of its area, however wide the chart
        "xaxis": {"domain": [0, split], "range": [-0.5 - pad, w - 0.5 + pad], "visible": False, "constrain": "domain",
                  "constraintoward": "left"},
        "yaxis": {"range": [h - 0.5 + pad, -0.5 - pad], "visible": False, "scaleanchor": "x", "constrain": "domain",
                  "constraintoward": "top"},
        "xaxis2": {"domain": [split + 0.12, 1], "anchor": "y2", "range": [0, xmax], "showticklabels": False},
        "yaxis2": {"domain": [0.56, 1], "anchor": "x2", "title": {"text": "loss"}, "rangemode": "tozero"},
        "xaxis3": {"domain": [split + 0.12, 1], "anchor": "y3", "range": [0, xmax],
                   "title": {"text": "iteration"}},
        "yaxis3": {"domain": [0, 0.44], "anchor": "x3", "title": {"text": "IoU > 0.5 (%)"}, "range": [0, 102]},
        "images": [{"source": png_data_uri(img), "xref": "x", "yref": "y", "x": -0.5, "y": -0.5, "sizex": w,
                    "sizey": h, "xanchor": "left", "yanchor": "top", "sizing": "stretch", "layer": "below"}],
    }
    fig: dict = {"data": data, "layout": layout}
    if animate:
        fig["frames"] = [{"name": str(it_list[k]), "data": moving(k), "traces": moving_idx}
                         for k in range(t)]
        play = {"frame": {"duration": 120, "redraw": False}, "transition": {"duration": 0},
                "fromcurrent": True, "mode": "immediate"}
        # Play/Pause above the panels (in view without scrolling), the slider on its own row
        # below: they never overlap, however narrow the chart
        layout["updatemenus"] = [{
            "type": "buttons", "direction": "left", "x": 0, "y": 1, "xanchor": "left", "yanchor": "bottom",
            "pad": {"b": 8}, "showactive": False,
            "buttons": [{"label": "▶ Play", "method": "animate", "args": [None, play]},
                        {"label": "❚❚ Pause", "method": "animate",
                         "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate",
                                           "transition": {"duration": 0}}]}]}]
        layout["sliders"] = [{
            "active": frame, "x": 0, "y": 0, "len": 1, "xanchor": "left", "yanchor": "top",
            "pad": {"t": 20}, "currentvalue": {"prefix": "iteration ", "visible": True},
            "steps": [{"label": str(it_list[k]), "method": "animate",
                       "args": [[str(it_list[k])], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate",
                                                    "transition": {"duration": 0}}]} for k in range(t)]}]
    return go.Figure(fig)

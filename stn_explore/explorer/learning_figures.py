"""Plotly figures of /learning: arrays in, ``plotly.graph_objects.Figure`` out (no Streamlit).

Same drawing rules as :mod:`stn_explore.explorer.figures` (images in pixel coordinates, pixel
centres at integers, x right, y down; grids converted with ``x_pix = ((x + 1) W − 1) / 2``;
many segments as ONE line trace; figures assembled as one dict). Because these figures are
redrawn live several times a second, numbers go in as NumPy arrays (line breaks as NaN; plotly
sends them as typed arrays) and without plotly's default template (:func:`_figure`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .figures import (GRID_COLOR, OUTLINE_COLOR, TRUTH_COLOR, frame_outline, grid_lines, mosaic,
                      normalized_to_pixel_np, png_data_uri, polyline_xy)

__all__ = ["ARROW_COLOR", "arrow_segments", "gradient_figure", "fit_view_figure", "images_row_figure",
           "loss_curve_figure", "landscape_figure", "lab_panel_figure", "lab_curves_figure", "region_outline"]

ARROW_COLOR = "#ffd000"
ZERO_COLOR = "rgba(160, 160, 160, 0.8)"
PATH_COLOR = "#ff4b4b"


def _a(values, nd: int = 3) -> np.ndarray:
    """Numbers as a rounded float array, ``None`` → NaN (a gap in a line). Plotly validates and
    sends arrays as base64 typed arrays, 3–4× faster than lists: a live frame's main cost."""
    return np.round(np.array(values, dtype=np.float64), nd)


def _figure(data: list, layout: dict) -> go.Figure:
    """One Figure from dicts, without plotly's default template: Streamlit themes the chart
    itself and every trace here sets its colours, and the template (6.5 kB, deep-copied and
    validated per figure) was a third of a live frame's server time."""
    return go.Figure({"data": data, "layout": {**layout, "template": {}}})


def _image_trace(img: np.ndarray, **kw) -> dict:
    return {"type": "image", "source": png_data_uri(img), "x0": 0, "y0": 0, "dx": 1, "dy": 1,
            "hoverinfo": "skip", **kw}


def _image_axes(size: Sequence[int], pad: float) -> tuple[dict, dict]:
    h, w = size
    return ({"range": [-0.5 - pad, w - 0.5 + pad], "visible": False, "constrain": "domain"},
            {"range": [h - 0.5 + pad, -0.5 - pad], "visible": False, "scaleanchor": "x", "constrain": "domain"})


def region_outline(theta: np.ndarray) -> np.ndarray:
    """Normalised source points ``(N, 2)`` tracing the output frame's border through θ ``(2, 3)``."""
    f = frame_outline(16)
    return f @ np.asarray(theta, np.float64)[:, :2].T + np.asarray(theta, np.float64)[:, 2]


def arrow_segments(start: np.ndarray, vec: np.ndarray, head: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Arrows from ``start`` ``(N, 2)`` along ``vec`` ``(N, 2)`` (same units) as x and y arrays
    with NaN breaks: per arrow the shaft, a break, a two-stroke head ``head`` × its length, a break."""
    start, vec = np.asarray(start, np.float64).reshape(-1, 2), np.asarray(vec, np.float64).reshape(-1, 2)
    tip = start + vec
    c, s = np.cos(np.radians(25)), np.sin(np.radians(25))
    back = -vec * head
    left = np.stack((c * back[:, 0] - s * back[:, 1], s * back[:, 0] + c * back[:, 1]), 1)
    right = np.stack((c * back[:, 0] + s * back[:, 1], -s * back[:, 0] + c * back[:, 1]), 1)
    gap = np.full_like(start, np.nan)
    pts = np.stack((start, tip, gap, tip + left, tip, tip + right, gap), 1).reshape(-1, 2)   # (7 N, 2)
    return pts[:, 0], pts[:, 1]


def gradient_figure(img: np.ndarray, grid: np.ndarray, grad: np.ndarray, *, target_outline: np.ndarray | None = None,
                    every: int = 2, arrow_px: float = 4.0, px: float = 7.0, pad: float = 12.0,
                    title: str | None = None) -> go.Figure:
    """U with the sampling grid and, at every ``every``-th sample point, an arrow along −∂L/∂x^s
    (the way gradient descent moves that point), the longest ``arrow_px`` input pixels long;
    points whose gradient is exactly zero are grey dots. ``grid`` and ``grad`` ``(H', W', 2)``
    in normalised units; ``target_outline`` ``(N, 2)`` normalised (green, dotted).
    Traces: image, grid lines, zero-gradient points, arrows, [target outline]."""
    img = np.asarray(img)
    grid, grad = np.asarray(grid, np.float64), np.asarray(grad, np.float64)
    if grid.shape != grad.shape or grid.ndim != 3 or grid.shape[-1] != 2:
        raise ValueError(f"grid and grad must both be (H', W', 2), got {grid.shape} and {grad.shape}")
    size = img.shape[:2]
    h, w = size
    gx, gy = polyline_xy(grid_lines(grid, size, max(1, every)))
    pts = normalized_to_pixel_np(grid[::every, ::every], size).reshape(-1, 2)
    # a step −∂L/∂x^s in normalised units moves the point by W/2 times as many pixels
    g = -grad[::every, ::every].reshape(-1, 2) * np.array([w / 2, h / 2])
    norm = np.hypot(g[:, 0], g[:, 1])
    zero = norm == 0
    scale = arrow_px / norm.max() if norm.max() > 0 else 0.0
    ax, ay = arrow_segments(pts[~zero], g[~zero] * scale)
    xaxis, yaxis = _image_axes(size, pad)
    data = [_image_trace(img),
            {"type": "scatter", "x": _a(gx), "y": _a(gy), "mode": "lines", "name": "grid",
             "line": {"color": "rgba(0, 200, 255, 0.35)", "width": 1}, "hoverinfo": "skip"},
            {"type": "scatter", "x": _a(pts[zero, 0]), "y": _a(pts[zero, 1]),
             "mode": "markers", "name": "∂L/∂x^s = 0", "marker": {"color": ZERO_COLOR, "size": 3},
             "hoverinfo": "skip"},
            {"type": "scatter", "x": _a(ax), "y": _a(ay), "mode": "lines", "name": "−∂L/∂x^s",
             "line": {"color": ARROW_COLOR, "width": 1.5}, "hoverinfo": "skip"}]
    if target_outline is not None:
        o = normalized_to_pixel_np(target_outline, size)
        o = np.round(np.vstack([o, o[:1]]), 3)
        data.append({"type": "scatter", "x": o[:, 0].tolist(), "y": o[:, 1].tolist(), "mode": "lines",
                     "name": "target crop", "line": {"color": TRUTH_COLOR, "width": 2, "dash": "dot"},
                     "hoverinfo": "skip"})
    top = 30 if title else 4
    layout = {"width": int((w + 2 * pad) * px) + 8, "height": int((h + 2 * pad) * px) + top + 4,
              "margin": {"l": 4, "r": 4, "t": top, "b": 4}, "showlegend": False, "dragmode": False,
              "title": {"text": title, "x": 0.5, "xanchor": "center", "font": {"size": 14}} if title else None,
              "plot_bgcolor": "#808080", "paper_bgcolor": "rgba(0,0,0,0)", "xaxis": xaxis, "yaxis": yaxis}
    return _figure(data, layout)


def fit_view_figure(img: np.ndarray, grid: np.ndarray, theta: np.ndarray, target_theta: np.ndarray, *,
                    px: float = 7.0, pad: float = 14.0, title: str | None = None) -> go.Figure:
    """U with the current sampling grid (blue), the current region's border (red) and the
    target's (green, dotted); θ and θ* ``(2, 3)``. Traces: image, grid, region, target."""
    img = np.asarray(img)
    size = img.shape[:2]
    h, w = size
    grid = np.asarray(grid, np.float64)
    every = max(1, int(np.ceil(max(grid.shape[:2]) / 14)))
    gx, gy = polyline_xy(grid_lines(grid, size, every))
    data = [_image_trace(img), {"type": "scatter", "x": _a(gx), "y": _a(gy), "mode": "lines", "name": "grid",
                                "line": {"color": GRID_COLOR, "width": 1}, "hoverinfo": "skip"}]
    for th, name, line in ((theta, "θ", {"color": OUTLINE_COLOR, "width": 2.5}),
                           (target_theta, "θ*", {"color": TRUTH_COLOR, "width": 2, "dash": "dot"})):
        o = normalized_to_pixel_np(region_outline(th), size)
        o = np.round(np.vstack([o, o[:1]]), 3)
        data.append({"type": "scatter", "x": o[:, 0].tolist(), "y": o[:, 1].tolist(), "mode": "lines",
                     "name": name, "line": line, "hoverinfo": "skip"})
    xaxis, yaxis = _image_axes(size, pad)
    top = 30 if title else 4
    layout = {"width": int((w + 2 * pad) * px) + 8, "height": int((h + 2 * pad) * px) + top + 4,
              "margin": {"l": 4, "r": 4, "t": top, "b": 4}, "showlegend": False, "dragmode": False,
              "title": {"text": title, "x": 0.5, "xanchor": "center", "font": {"size": 14}} if title else None,
              "plot_bgcolor": "#808080", "paper_bgcolor": "rgba(0,0,0,0)", "xaxis": xaxis, "yaxis": yaxis}
    return _figure(data, layout)


def images_row_figure(images: Sequence[np.ndarray], titles: Sequence[str], *, px: float = 5.0,
                      gap: int = 3) -> go.Figure:
    """Same-size grayscale images ``(H, W)`` side by side, each captioned above."""
    imgs = np.stack([np.asarray(i, np.float64) for i in images])
    if imgs.ndim != 3 or len(titles) != len(imgs):
        raise ValueError(f"need (H, W) images and one title each, got {imgs.shape} and {len(titles)} titles")
    tile, offsets = mosaic(imgs, cols=len(imgs), gap=gap)
    h, w = tile.shape
    xaxis, yaxis = _image_axes((h, w), 0.0)
    notes = [{"text": t, "x": o[0] + imgs.shape[2] / 2 - 0.5, "y": 1, "xref": "x", "yref": "paper",
              "yanchor": "bottom", "showarrow": False, "font": {"size": 12}} for t, o in zip(titles, offsets)]
    layout = {"width": int(w * px) + 8, "height": int(h * px) + 30, "margin": {"l": 4, "r": 4, "t": 26, "b": 4},
              "showlegend": False, "dragmode": False, "paper_bgcolor": "rgba(0,0,0,0)",
              "plot_bgcolor": "rgba(0,0,0,0)", "xaxis": xaxis, "yaxis": yaxis, "annotations": notes}
    return _figure([_image_trace(tile)], layout)


def loss_curve_figure(losses: np.ndarray, *, title: str = "loss", width: int = 360, height: int = 240,
                      log: bool = True) -> go.Figure:
    """L per step ``(K,)`` (non-finite values left as gaps)."""
    y = np.asarray(losses, np.float64)
    y = np.where(np.isfinite(y), y, np.nan).astype(np.float32)       # 7 digits; inf → a gap
    data = [{"type": "scatter", "x": np.arange(len(y), dtype=np.int32), "y": y, "mode": "lines", "name": "loss",
             "line": {"color": PATH_COLOR, "width": 2}, "hovertemplate": "step %{x}: L = %{y:.5f}<extra></extra>"}]
    layout = {"width": width, "height": height, "margin": {"l": 55, "r": 8, "t": 30, "b": 40},
              "title": {"text": title, "x": 0.5, "xanchor": "center", "font": {"size": 13}}, "showlegend": False,
              "xaxis": {"title": {"text": "step"}, "rangemode": "tozero"},
              "yaxis": {"type": "log" if log else "linear", "exponentformat": "power"},
              "paper_bgcolor": "rgba(0,0,0,0)"}
    return _figure(data, layout)


def landscape_figure(angles: np.ndarray, scales: np.ndarray, loss: np.ndarray, path: np.ndarray,
                     target: tuple[float, float], *, width: int = 420, height: int = 300) -> go.Figure:
    """log₁₀ L over rotation (x, degrees) × scale (y), ``loss`` ``(len(scales), len(angles))``,
    with the optimiser's ``path`` ``(K, 2)`` (rotation, scale; NaN breaks the line), its start
    (white) and current point (red), and the target (green star). Points off the slice's range
    are drawn at its edge. Traces: heatmap, path, start, current, target."""
    loss = np.asarray(loss, np.float64)
    if loss.shape != (len(scales), len(angles)):
        raise ValueError(f"loss must be (len(scales), len(angles)) = ({len(scales)}, {len(angles)}), got {loss.shape}")
    p = np.asarray(path, np.float64).reshape(-1, 2).copy()
    p[:, 0] = np.clip(p[:, 0], angles[0], angles[-1])
    p[:, 1] = np.clip(p[:, 1], scales[0], scales[-1])

    px_, py_ = _a(p[:, 0]), _a(p[:, 1], 4)
    z = np.round(np.log10(np.maximum(loss, 1e-8)), 3)
    data = [{"type": "heatmap", "x": _a(angles), "y": _a(scales, 4), "z": z, "colorscale": "Viridis",
             "reversescale": True, "showscale": True,
             "colorbar": {"title": {"text": "log₁₀ L", "side": "right"}, "thickness": 10},
             "hovertemplate": "rotation %{x:.0f}°, scale %{y:.2f}: log₁₀ L = %{z:.2f}<extra></extra>"},
            {"type": "scatter", "x": px_, "y": py_, "mode": "lines", "name": "path",
             "line": {"color": PATH_COLOR, "width": 2}, "hoverinfo": "skip"},
            {"type": "scatter", "x": px_[:1], "y": py_[:1], "mode": "markers", "name": "start",
             "marker": {"color": "white", "size": 8, "line": {"color": "black", "width": 1}}, "hoverinfo": "skip"},
            {"type": "scatter", "x": px_[-1:], "y": py_[-1:], "mode": "markers", "name": "θ now",
             "marker": {"color": PATH_COLOR, "size": 10, "line": {"color": "white", "width": 1}},
             "hoverinfo": "skip"},
            {"type": "scatter", "x": [float(target[0])], "y": [float(target[1])], "mode": "markers", "name": "θ*",
             "marker": {"color": TRUTH_COLOR, "size": 14, "symbol": "star", "line": {"color": "black", "width": 1}},
             "hovertemplate": "target: rotation %{x:.0f}°, scale %{y:.2f}<extra></extra>"}]
    layout = {"width": width, "height": height, "margin": {"l": 50, "r": 8, "t": 30, "b": 40},
              "title": {"text": "L over rotation × scale", "x": 0.5, "xanchor": "center", "font": {"size": 13}},
              "showlegend": False, "paper_bgcolor": "rgba(0,0,0,0)",
              "xaxis": {"title": {"text": "rotation (°)"}, "range": [angles[0], angles[-1]]},
              "yaxis": {"title": {"text": "scale"}, "range": [scales[0], scales[-1]]}}
    return _figure(data, layout)


def lab_panel_figure(images: np.ndarray, corners: np.ndarray, *, frame: int = -1, past: int = 8, px: float = 3.0,
                     title: str | None = None) -> go.Figure:
    """A few fixed images ``(P, H, W)`` side by side with the transformer's sampling region at
    record ``frame`` (red quadrilateral), up to ``past`` earlier regions (faint) and the path of
    the region's centre over the records so far (yellow). ``corners`` ``(R, P, 4, 2)``
    normalised (TL, TR, BR, BL). Traces: image, earlier regions, centre paths, regions."""
    images = np.asarray(images)
    c = np.asarray(corners, np.float64)
    if images.ndim != 3 or c.ndim != 4 or c.shape[1:] != (len(images), 4, 2):
        raise ValueError(f"need images (P, H, W) and corners (R, P, 4, 2), got {images.shape} and {c.shape}")
    tile, offsets = mosaic(images, cols=len(images), gap=4)
    size = images.shape[1:]
    frame = frame % len(c)
    pix = normalized_to_pixel_np(c[:frame + 1], size)                          # (R', P, 4, 2)
    centres = [pix[:, i].mean(1) + offsets[i] for i in range(len(images))]
    cx, cy = polyline_xy(centres)
    quads = [np.vstack((q, q[:1])) + o for q, o in zip(pix[-1], offsets)]
    qx, qy = polyline_xy(quads)
    earlier = pix[:-1][::-(-(len(pix) - 1) // past) or 1] if len(pix) > 1 and past else pix[:0]
    ex, ey = polyline_xy([np.vstack((q, q[:1])) + o for rec in earlier for q, o in zip(rec, offsets)])
    pad = 0.5 * max(size)
    h, w = tile.shape
    xaxis = {"range": [-0.5 - pad / 2, w - 0.5 + pad / 2], "visible": False, "constrain": "domain"}
    yaxis = {"range": [h - 0.5 + pad, -0.5 - pad], "visible": False, "scaleanchor": "x", "constrain": "domain"}
    top = 30 if title else 4
    data = [_image_trace(tile),
            {"type": "scatter", "x": _a(ex), "y": _a(ey), "mode": "lines", "name": "earlier regions",
             "line": {"color": "rgba(255, 75, 75, 0.3)", "width": 1}, "hoverinfo": "skip"},
            {"type": "scatter", "x": _a(cx), "y": _a(cy), "mode": "lines", "name": "centre path",
             "line": {"color": ARROW_COLOR, "width": 1.5}, "hoverinfo": "skip"},
            {"type": "scatter", "x": _a(qx), "y": _a(qy), "mode": "lines", "name": "sampling region",
             "line": {"color": OUTLINE_COLOR, "width": 2.5}, "hoverinfo": "skip"}]
    layout = {"width": int((w + pad) * px) + 8, "height": int((h + 2 * pad) * px) + top + 4,
              "margin": {"l": 4, "r": 4, "t": top, "b": 4}, "showlegend": False, "dragmode": False,
              "title": {"text": title, "x": 0.5, "xanchor": "center", "font": {"size": 13}} if title else None,
              "plot_bgcolor": "#808080", "paper_bgcolor": "rgba(0,0,0,0)", "xaxis": xaxis, "yaxis": yaxis}
    return _figure(data, layout)


def lab_curves_figure(iterations: Sequence[int], loss: Sequence[float], error: Sequence[float],
                      outside: Sequence[float], spread: Sequence[float], *, collapse_spread: float,
                      total: int, width: int = 520, height: int = 330) -> go.Figure:
    """Three stacked panels over iterations (x up to ``total``): training loss and evaluation
    error (%), the share of sample points outside U, and the regions' spread across images
    (log axis) with the collapse threshold dashed."""
    it = np.asarray(iterations, dtype=np.int32)

    def clean(v, nd=4):
        return _a([np.nan if v_ is None or not np.isfinite(v_) else v_ for v_ in v], nd)

    data = [
        {"type": "scatter", "x": it, "y": clean(loss), "mode": "lines", "name": "training loss", "xaxis": "x",
         "yaxis": "y", "line": {"color": "#9aa5b1"}, "hovertemplate": "iteration %{x}: loss %{y:.3f}<extra></extra>"},
        {"type": "scatter", "x": it, "y": clean(error, 2), "mode": "lines+markers", "name": "error %", "xaxis": "x",
         "yaxis": "y4", "line": {"color": "#1f77b4"}, "marker": {"size": 4},
         "hovertemplate": "iteration %{x}: error %{y:.1f}%<extra></extra>"},
        {"type": "scatter", "x": it, "y": clean(outside), "mode": "lines", "name": "outside U", "xaxis": "x2",
         "yaxis": "y2", "line": {"color": OUTLINE_COLOR}, "fill": "tozeroy",
         "hovertemplate": "iteration %{x}: %{y:.0%} of the grid outside U<extra></extra>"},
        {"type": "scatter", "x": it, "y": clean([max(s, 1e-5) for s in spread], 5), "mode": "lines",
         "name": "spread", "xaxis": "x3", "yaxis": "y3", "line": {"color": "#2ca02c"},
         "hovertemplate": "iteration %{x}: spread %{y:.3f}<extra></extra>"},
        {"type": "scatter", "x": [0, total], "y": [collapse_spread, collapse_spread], "mode": "lines",
         "name": "collapse threshold", "xaxis": "x3", "yaxis": "y3", "line": {"color": "#555", "dash": "dash"},
         "hoverinfo": "skip"},
    ]
    xr = [0, max(int(total), 1)]
    layout = {"width": width, "height": height, "showlegend": False, "paper_bgcolor": "rgba(0,0,0,0)",
              "margin": {"l": 50, "r": 45, "t": 10, "b": 35},
              "xaxis": {"domain": [0, 1], "anchor": "y", "range": xr, "showticklabels": False},
              "yaxis": {"domain": [0.62, 1], "title": {"text": "loss"}, "rangemode": "tozero"},
              "yaxis4": {"overlaying": "y", "side": "right", "range": [0, 100], "title": {"text": "error %"},
                         "showgrid": False, "tickvals": [0, 25, 50, 75, 100]},
              "xaxis2": {"domain": [0, 1], "anchor": "y2", "range": xr, "showticklabels": False},
              "yaxis2": {"domain": [0.34, 0.56], "range": [0, 1], "tickformat": ".0%", "title": {"text": "outside"}},
              "xaxis3": {"domain": [0, 1], "anchor": "y3", "range": xr, "title": {"text": "iteration"}},
              "yaxis3": {"domain": [0, 0.28], "type": "log", "range": [-3.5, 0.5], "title": {"text": "spread"}}}
    return _figure(data, layout)

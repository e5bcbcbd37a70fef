"""Figure builders (inspected through fig.data / fig.layout) and the playground logic."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch

import stn_explore as stn
from stn_explore.explorer import figures, playground as pg


def decode_png(uri: str) -> np.ndarray:
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_image_figure_is_one_compressed_bitmap_in_pixel_coordinates():
    img = np.linspace(0, 1, 6 * 10).reshape(6, 10)
    fig = figures.image_figure(img, title="U", px=10)
    assert len(fig.data) == 1 and fig.data[0].type == "image"
    np.testing.assert_array_equal(decode_png(fig.data[0].source), figures.to_uint8(img))
    assert fig.layout.xaxis.range == (-0.5, 9.5)
    assert fig.layout.yaxis.range == (5.5, -0.5)  # y down
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.width == 10 * 10 + 8


def test_grid_overlay_uses_one_line_trace_and_pixel_convention():
    size = (8, 12)
    theta = torch.eye(2, 3)[None]
    grid = stn.affine_grid(theta, (4, 5))[0].numpy()
    outline = figures.frame_outline(4)
    fig = figures.grid_overlay_figure(np.zeros(size), grid, outline, show_points=True)
    assert [t.type for t in fig.data] == ["image", "scatter", "scatter", "scatter"]
    lines = fig.data[1]
    assert sum(v is None for v in lines.x) == 4 + 5  # one None after each row and column
    xs = [v for v in lines.x if v is not None]
    # identity grid of a 5-wide output over a 12-wide input: first column centre at x=-0.6
    assert min(xs) == pytest.approx(((-0.8 + 1) * 12 - 1) / 2)
    # the outline of the identity transform is the image border (pixel edges)
    ox, oy = np.array(fig.data[2].x), np.array(fig.data[2].y)
    assert ox.min() == pytest.approx(-0.5) and ox.max() == pytest.approx(11.5)
    assert oy.min() == pytest.approx(-0.5) and oy.max() == pytest.approx(7.5)
    assert (ox[0], oy[0]) == (ox[-1], oy[-1])  # closed


def test_grid_overlay_caps_the_number_of_lines():
    grid = stn.base_grid((200, 100)).numpy()
    fig = figures.grid_overlay_figure(np.zeros((10, 10)), grid, max_lines=20)
    n_lines = sum(v is None for v in fig.data[1].x)
    assert n_lines <= 2 * 21 + 2


def test_bad_grid_shape_raises():
    with pytest.raises(ValueError, match=r"\(H', W', 2\)"):
        figures.grid_overlay_figure(np.zeros((4, 4)), np.zeros((4, 4)))


def test_test_patterns():
    cb = pg.test_pattern("checkerboard", 64)
    assert cb.shape == (64, 64) and cb[2, 2] == 1.0 and cb.min() >= 0
    txt = pg.test_pattern("text", 64)
    assert txt.shape == (64, 64) and txt.max() > 0.9 and txt.mean() < 0.5
    with pytest.raises(ValueError, match="pattern"):
        pg.test_pattern("zebra")


def png(arr, mode=None, fmt="PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format=fmt)
    return buf.getvalue()


def test_load_image_bytes_gray_rgb_and_downscale():
    gray = (np.arange(20 * 30) % 256).astype(np.uint8).reshape(20, 30)
    img, note = pg.load_image_bytes(png(gray))
    assert img.shape == (20, 30) and note is None
    np.testing.assert_allclose(img, gray / 255.0)
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0] = 200
    img, _ = pg.load_image_bytes(png(rgb, fmt="JPEG"))
    assert img.shape == (10, 10, 3)
    big = np.zeros((600, 300), np.uint8)
    img, note = pg.load_image_bytes(png(big), max_side=256)
    assert img.shape == (256, 128) and "downscaled from 300×600" in note


@pytest.mark.parametrize("data,match", [(b"", "empty"), (b"hello world", "not an image"),
                                       (None, "truncated")])
def test_load_image_bytes_errors(data, match):
    if data is None:
        data = png((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8))[:300]
    with pytest.raises(pg.ImageInputError, match=match):
        pg.load_image_bytes(data)


def test_render_matches_library_warp_for_every_kind():
    img = pg.test_pattern("checkerboard", 32)
    x = torch.from_numpy(img)[None, None]
    cases = {
        "affine": pg.affine_params(20, 0.8, 0.9, 0.1, 0.1, -0.1),
        "attention": pg.attention_params(0.5, 0.2, 0.0),
        "projective": pg.projective_params(np.array([[-0.9, -0.8], [0.8, -1], [1, 0.9], [-0.7, 1.1]])),
        "tps": pg.tps_params(pg.random_tps_offsets(1)),
    }
    for kind, p in cases.items():
        r = pg.render(img, kind, p, (20, 24), "bilinear", "zeros")
        ref = stn.warp(x, torch.from_numpy(p)[None].float(), kind, out_size=(20, 24))[0, 0].numpy()
        np.testing.assert_allclose(r.v, ref, atol=1e-6)
        assert r.grid.shape == (20, 24, 2) and r.outline.shape[1] == 2
    rgb = np.stack([img, 1 - img, img * 0.5], -1)
    assert pg.render(rgb, "affine", cases["affine"]).v.shape == (32, 32, 3)


def test_render_flags_singular_degenerate_and_collapse_and_rejects_nan():
    img = np.ones((8, 8))
    assert any("singular" in w for w in pg.render(img, "affine", np.zeros((2, 3))).warnings)
    far = pg.affine_params(tx=5.0)
    r = pg.render(img, "affine", far)
    assert r.outside == 1.0 and any("collapse" in w for w in r.warnings)
    horizon = np.array([[1.0, 0, 0], [0, 1, 0], [2.0, 0, 0.5]])
    assert any("horizon" in w for w in pg.render(img, "projective", horizon).warnings)
    with pytest.raises(ValueError, match="NaN"):
        pg.render(img, "affine", np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="shape"):
        pg.render(img, "affine", np.eye(3))


def test_snippet_reproduces_v():
    img = pg.test_pattern("text", 32)
    for kind, p in (("affine", pg.affine_params(30, 0.7, 0.7, 0, 0.1, 0)),
                    ("tps", pg.tps_params(pg.random_tps_offsets(2)))):
        code = pg.torch_snippet(kind, p, (32, 32), (16, 20), "bicubic", "border")
        ns: dict = {}
        exec(code.replace("u = torch.rand(1, 1, 32, 32)", "u = U"), {"U": torch.from_numpy(img)[None, None]}, ns)
        r = pg.render(img, kind, p, (16, 20), "bicubic", "border")
        np.testing.assert_allclose(ns["v"][0, 0].numpy(), r.v, atol=2e-3)  # snippet rounds to 4 digits


def test_theta_latex_and_decompose():
    t = pg.affine_params(90.0, 1.0, 1.0, 0.0, 0.25, 0.0)
    assert r"\begin{bmatrix}0 & -1 & 0.25 \\ 1 & 0 & 0\end{bmatrix}" in pg.theta_latex("affine", t)
    vals = pg.decompose_affine(t)
    assert vals["angle"] == pytest.approx(90.0) and vals["tx"] == pytest.approx(0.25)
    with pytest.raises(ValueError):
        pg.decompose_affine(np.zeros((2, 3)))
    assert "U(r) = r^2" in pg.theta_latex("tps", pg.tps_params(np.zeros((16, 2))))


def test_two_channel_rgb_colours():
    from stn_explore.explorer.figures import two_channel_rgb

    x = np.zeros((2, 3, 3))
    x[0, 0, 0] = 1.0
    x[1, 1, 1] = 1.0
    x[:, 2, 2] = 1.0
    rgb = two_channel_rgb(x)
    assert rgb.shape == (3, 3, 3)
    assert rgb[0, 0].tolist() == [1, 0, 1] and rgb[1, 1].tolist() == [0, 1, 0] and rgb[2, 2].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="2, H, W"):
        two_channel_rgb(np.zeros((3, 4, 4)))

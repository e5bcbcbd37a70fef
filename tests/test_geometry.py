"""Grid generators and transform helpers: parity, closed forms, round trips, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

import stn_explore as stn
from stn_explore.core import geometry


def rand_theta(b, gen, dtype=torch.float32):
    angle = (torch.rand(b, generator=gen) - 0.5) * 180
    scale = (0.6 + 0.8 * torch.rand(b, generator=gen), 0.6 + 0.8 * torch.rand(b, generator=gen))
    shear = (torch.rand(b, generator=gen) - 0.5) * 0.6
    t = (torch.rand(b, 2, generator=gen) - 0.5)
    return stn.theta_from_params(angle, scale, shear, t).to(dtype)


# ---------------------------------------------------------------- affine
@pytest.mark.parametrize("size", [(5, 7), (28, 28), (13, 40)])
def test_affine_grid_equals_torch(size):
    gen = torch.Generator().manual_seed(0)
    theta = rand_theta(4, gen)
    ours = stn.affine_grid(theta, size)
    ref = F.affine_grid(theta, (4, 3, *size), align_corners=False)
    assert ours.shape == (4, *size, 2)
    # same bmm as ATen on a cached base grid: equal up to 1 ulp of float32
    torch.testing.assert_close(ours, ref, rtol=0, atol=2.5e-7)
    torch.testing.assert_close(stn.affine_grid(theta.double(), size),
                               F.affine_grid(theta.double(), (4, 3, *size), align_corners=False))


def test_base_grid_is_identity_grid_and_pixel_centres():
    g = stn.base_grid((3, 4))
    ref = F.affine_grid(torch.eye(2, 3)[None], (1, 1, 3, 4), align_corners=False)[0]
    torch.testing.assert_close(g, ref)
    # pixel j's centre is at (2j + 1) / W - 1; x varies along columns, y along rows
    torch.testing.assert_close(g[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    torch.testing.assert_close(g[:, 0, 1], torch.tensor([-2 / 3, 0.0, 2 / 3]))


def test_pixel_normalized_round_trip_and_edges():
    size = (6, 10)
    px = torch.tensor([[0.0, 0.0], [9.0, 5.0], [-0.5, -0.5], [9.5, 5.5]])
    n = stn.pixel_to_normalized(px, size)
    # pixel centres of the corner pixels, and the outer edges at exactly ±1
    torch.testing.assert_close(n[0], torch.tensor([-0.9, -5 / 6]))
    torch.testing.assert_close(n[2], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(n[3], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(stn.normalized_to_pixel(n, size), px)


def test_theta_from_params_closed_forms():
    torch.testing.assert_close(stn.theta_from_params(), torch.eye(2, 3))
    th = stn.theta_from_params(90.0)
    torch.testing.assert_close(th, torch.tensor([[0.0, -1, 0], [1, 0, 0]]), atol=1e-7, rtol=0)
    th = stn.theta_from_params(0.0, (2.0, 3.0), 0.5, (0.1, -0.2))
    torch.testing.assert_close(th, torch.tensor([[2.0, 1.5, 0.1], [0, 3, -0.2]]))


def test_params_from_theta_round_trip_batched():
    gen = torch.Generator().manual_seed(1)
    theta = rand_theta(64, gen, torch.float64)
    p = stn.params_from_theta(theta)
    torch.testing.assert_close(p.to_theta(), theta)
    assert p.angle_deg.shape == (64,)


def test_params_from_theta_singular_raises():
    with pytest.raises(ValueError, match="singular"):
        stn.params_from_theta(torch.tensor([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]]))


def test_attention_theta():
    th = stn.attention_theta(torch.tensor([[0.5, 0.1, -0.3]]))
    torch.testing.assert_close(th, torch.tensor([[[0.5, 0.0, 0.1], [0.0, 0.5, -0.3]]]))


def test_invert_and_compose_round_trip():
    gen = torch.Generator().manual_seed(2)
    theta = rand_theta(8, gen, torch.float64)
    ident = torch.eye(2, 3, dtype=torch.float64).expand(8, 2, 3)
    torch.testing.assert_close(stn.compose(theta, stn.invert(theta)), ident)
    torch.testing.assert_close(stn.compose(stn.invert(theta), theta), ident)
    hom = stn.to_homogeneous(theta)
    hom[:, 2, :2] = 0.1 * torch.randn(8, 2, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(stn.compose(hom, stn.invert(hom)),
                               torch.eye(3, dtype=torch.float64).expand(8, 3, 3))
    # compose(a, b) maps p -> a(b(p))
    a, b = theta[:4], theta[4:]
    p = torch.randn(4, 5, 2, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(stn.affine_transform_points(stn.compose(a, b), p),
                               stn.affine_transform_points(a, stn.affine_transform_points(b, p)))


def test_invert_singular_raises():
    with pytest.raises(ValueError, match="singular"):
        stn.invert(torch.zeros(1, 2, 3))


def test_warp_twice_equals_warp_with_compose():
    # Smooth image so that resampling twice ≈ once.
    h = w = 64
    g = stn.base_grid((h, w))
    img = (torch.sin(3 * g[..., 0]) * torch.cos(2 * g[..., 1]))[None, None].double()
    a = stn.theta_from_params(20.0, 0.8, 0.0, (0.05, 0.0))[None].double()
    b = stn.theta_from_params(-10.0, 0.9, 0.1, (0.0, 0.05))[None].double()
    twice = stn.warp(stn.warp(img, a, padding_mode="border"), b, padding_mode="border")
    once = stn.warp(img, stn.compose(a, b), padding_mode="border")
    # compare away from the border where padding differs
    assert (twice - once)[..., 16:48, 16:48].abs().max() < 0.02


def test_theta_to_pixel_matrix_matches_sampling():
    theta = stn.theta_from_params(30.0, 0.7, 0.0, (0.1, 0.2))[None]
    m = stn.theta_to_pixel_matrix(theta, (20, 30), (10, 12))[0]
    out_px = torch.tensor([[3.0, 4.0], [11.0, 0.0]])
    norm_out = stn.pixel_to_normalized(out_px, (10, 12))
    src_norm = stn.affine_transform_points(theta, norm_out[None])[0]
    expect = stn.normalized_to_pixel(src_norm, (20, 30))
    got = (m @ torch.cat((out_px, torch.ones(2, 1)), 1).T).T[:, :2]
    torch.testing.assert_close(got, expect)


# ---------------------------------------------------------------- convention pins
def test_positive_angle_turns_output_counter_clockwise_on_screen():
    # A bright dot right of centre in U; rotating by +90° puts it *above* centre in V
    # (y points down), i.e. the image content turns counter-clockwise on screen.
    h, w = 21, 31  # H != W: a swapped x/y or a missing aspect correction fails
    u = torch.zeros(1, 1, h, w)
    u[0, 0, h // 2, w // 2 + 5] = 1.0
    th = stn.theta_from_params(90.0)[None]
    v = stn.warp(u, th, out_size=(w, w), mode="nearest")
    r, c = divmod(int(v.argmax()), w)
    assert c == w // 2  # same column as the centre
    assert r < w // 2  # above the centre


def test_translation_sign_and_one_pixel_shift_equals_slicing():
    h, w = 8, 12
    u = torch.arange(h * w, dtype=torch.float64).reshape(1, 1, h, w)
    # tx = +2/W shifts the source by one pixel to the right: V[:, j] = U[:, j + 1]
    th = torch.tensor([[[1.0, 0, 2 / w], [0, 1, 0]]], dtype=torch.float64)
    v = stn.warp(u, th)
    torch.testing.assert_close(v[..., :, :-1], u[..., :, 1:])
    assert v[..., :, -1].abs().max() < 1e-9  # zero padding enters on the right
    th = torch.tensor([[[1.0, 0, 0], [0, 1, -2 / h]]], dtype=torch.float64)
    v = stn.warp(u, th)
    torch.testing.assert_close(v[..., 1:, :], u[..., :-1, :])


def test_rotation_on_non_square_image_is_not_a_shear():
    # θ lives in normalised units, which are anisotropic when H != W: a true rotation of a
    # non-square image needs the aspect correction A' = D⁻¹ R D with D = diag(W, H).
    # Pin that a 90° rotation in *pixel* space maps the pixel grid onto itself.
    h, w = 10, 20
    d = torch.diag(torch.tensor([w / 2, h / 2], dtype=torch.float64))
    r = stn.theta_from_params(90.0)[:, :2].double()
    a = torch.linalg.inv(d) @ r @ d
    th = torch.cat((a, torch.zeros(2, 1, dtype=torch.float64)), 1)[None]
    pts_px = torch.tensor([[[4.5, 4.5], [14.5, 4.5]]], dtype=torch.float64)  # centre-ish
    src = stn.normalized_to_pixel(stn.affine_transform_points(th, stn.pixel_to_normalized(
        pts_px, (h, w))), (h, w))
    # pixel distance is preserved by a rotation
    assert math.isclose(float((src[0, 0] - src[0, 1]).norm()), 10.0, rel_tol=1e-9)


# ---------------------------------------------------------------- projective
def test_projective_with_affine_last_row_equals_affine():
    gen = torch.Generator().manual_seed(3)
    theta = rand_theta(3, gen, torch.float64)
    g1 = stn.projective_grid(stn.to_homogeneous(theta), (9, 14))
    g2 = stn.affine_grid(theta, (9, 14))
    torch.testing.assert_close(g1, g2)


def test_projective_divide_closed_form():
    hom = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [0.5, 0, 1]]], dtype=torch.float64)
    p = torch.tensor([[[1.0, 0.5]]], dtype=torch.float64)
    out = stn.projective_transform_points(hom, p)
    torch.testing.assert_close(out, torch.tensor([[[1 / 1.5, 0.5 / 1.5]]], dtype=torch.float64))


def test_projective_near_zero_denominator_is_clamped_finite():
    # w = x + 0 crosses zero in the middle of the image
    hom = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [1.0, 0, 0]]])
    g = stn.projective_grid(hom, (4, 4))
    assert torch.isfinite(g).all()
    assert float(stn.projective_min_denominator(hom, (4, 4))[0]) < 0


def test_homography_from_corners_maps_frame_corners():
    src = torch.tensor([[[-0.8, -0.9], [0.7, -0.6], [0.9, 0.8], [-0.6, 0.7]]], dtype=torch.float64)
    hom = stn.homography_from_corners(src)
    out = stn.projective_transform_points(hom, stn.frame_corners(torch.float64)[None])
    torch.testing.assert_close(out, src)
    with pytest.raises(ValueError, match="collinear"):
        stn.homography_from_corners(torch.tensor([[[0.0, 0], [1, 0], [2, 0], [0, 1]]]))


# ---------------------------------------------------------------- TPS
def test_tps_interpolates_control_points_exactly():
    gen = torch.Generator().manual_seed(4)
    tgt = stn.control_points(4, dtype=torch.float64)
    src = tgt + 0.15 * torch.randn(3, 16, 2, generator=gen, dtype=torch.float64)
    out = stn.tps_transform_points(src, tgt.expand(3, -1, -1))
    torch.testing.assert_close(out, src, atol=1e-10, rtol=0)
    # custom, per-item target points
    tgt_b = torch.rand(3, 10, 2, generator=gen, dtype=torch.float64) * 2 - 1
    src_b = tgt_b + 0.1 * torch.randn(3, 10, 2, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(stn.tps_transform_points(src_b, tgt_b, tgt_b), src_b,
                               atol=1e-10, rtol=0)


def test_tps_reduces_to_affine():
    gen = torch.Generator().manual_seed(5)
    theta = rand_theta(2, gen, torch.float64)
    tgt = stn.control_points(4, dtype=torch.float64)
    src = stn.affine_transform_points(theta, tgt.expand(2, -1, -1))
    torch.testing.assert_close(stn.tps_grid(src, (11, 17)), stn.affine_grid(theta, (11, 17)))


def test_tps_matches_scipy_thin_plate_rbf():
    scipy_interp = pytest.importorskip("scipy.interpolate")
    gen = torch.Generator().manual_seed(6)
    tgt = stn.control_points(4, dtype=torch.float64)
    src = tgt + 0.15 * torch.randn(1, 16, 2, generator=gen, dtype=torch.float64)
    rbf = scipy_interp.RBFInterpolator(tgt.numpy(), src[0].numpy(),
                                       kernel="thin_plate_spline", degree=1, smoothing=0)
    g = stn.base_grid((9, 13), dtype=torch.float64).reshape(-1, 2)
    ref = torch.from_numpy(rbf(g.numpy())).reshape(1, 9, 13, 2)
    torch.testing.assert_close(stn.tps_grid(src, (9, 13)), ref, atol=1e-9, rtol=0)


def test_tps_identity_and_cached_default_equals_explicit_targets():
    src = stn.control_points(4)[None].repeat(2, 1, 1)
    torch.testing.assert_close(stn.tps_grid(src, (7, 9)), stn.base_grid((7, 9)).expand(2, -1, -1, -1),
                               atol=1e-6, rtol=0)
    src = src + 0.1 * torch.randn(2, 16, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(stn.tps_grid(src, (7, 9)),
                               stn.tps_grid(src, (7, 9), stn.control_points(4)), atol=1e-6, rtol=0)


def test_tps_coincident_control_points_raise():
    tgt = stn.control_points(3)
    tgt[1] = tgt[0]
    with pytest.raises(ValueError, match="coincide"):
        stn.tps_grid(torch.zeros(1, 9, 2), (4, 4), tgt)


def test_tps_default_needs_square_k():
    with pytest.raises(ValueError, match=r"square.*\(1, 10, 2\)"):
        stn.tps_grid(torch.zeros(1, 10, 2), (4, 4))


# ---------------------------------------------------------------- gradients (float64)
def test_gradcheck_affine_grid():
    theta = rand_theta(2, torch.Generator().manual_seed(7), torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: stn.affine_grid(t, (4, 5)), (theta,))


def test_gradcheck_projective_grid():
    hom = stn.to_homogeneous(rand_theta(2, torch.Generator().manual_seed(8), torch.float64))
    hom[:, 2, :2] = 0.1
    hom.requires_grad_()
    assert torch.autograd.gradcheck(lambda h: stn.projective_grid(h, (4, 5)), (hom,))


def test_gradcheck_tps_grid_source_and_target_points():
    gen = torch.Generator().manual_seed(9)
    tgt = stn.control_points(3, dtype=torch.float64)
    tgt = (tgt + 0.05 * torch.randn(9, 2, generator=gen, dtype=torch.float64)).requires_grad_()
    src = (tgt.detach() + 0.1 * torch.randn(2, 9, 2, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, t: stn.tps_grid(s, (4, 5), t), (src, tgt))
    src16 = (stn.control_points(4, dtype=torch.float64)[None] + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda s: stn.tps_grid(s, (3, 4)), (src16,))


def test_gradcheck_homography_from_corners():
    src = (stn.frame_corners(torch.float64)[None] * 0.8 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(stn.homography_from_corners, (src,))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("fn,arg,shape", [
    (lambda t: stn.affine_grid(t, (4, 4)), torch.zeros(4, 3, 3), r"\(4, 3, 3\)"),
    (lambda t: stn.affine_grid(t, (4, 4)), torch.zeros(2, 3), r"\(2, 3\)"),
    (lambda t: stn.projective_grid(t, (4, 4)), torch.zeros(1, 2, 3), r"\(1, 2, 3\)"),
    (lambda t: stn.tps_grid(t, (4, 4)), torch.zeros(16, 2), r"\(16, 2\)"),
    (lambda t: stn.attention_theta(t), torch.zeros(2, 4), r"\(2, 4\)"),
])
def test_bad_shapes_raise_naming_shape(fn, arg, shape):
    with pytest.raises(ValueError, match=shape):
        fn(arg)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_parameters_raise(bad):
    theta = torch.eye(2, 3)[None].clone()
    theta[0, 0, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        stn.affine_grid(theta, (4, 4))
    with pytest.raises(ValueError, match="NaN or infinite"):
        stn.projective_grid(stn.to_homogeneous(theta), (4, 4))
    src = stn.control_points()[None].clone()
    src[0, 3, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        stn.tps_grid(src, (4, 4))


@pytest.mark.parametrize("size", [(0, 4), (4,), (2.5, 3), "ab"])
def test_bad_size_raises(size):
    with pytest.raises(ValueError, match="size"):
        stn.affine_grid(torch.eye(2, 3)[None], size)


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown transform kind"):
        geometry.make_grid("similarity", torch.zeros(1, 2, 3), (4, 4))


def test_inputs_not_modified_in_place():
    theta = rand_theta(2, torch.Generator().manual_seed(10))
    keep = theta.clone()
    stn.affine_grid(theta, (4, 4))
    stn.params_from_theta(theta)
    stn.invert(theta)
    assert torch.equal(theta, keep)

"""The sampler: parity with grid_sample, the paper's reference kernel, gradients."""

import pytest
import torch
import torch.nn.functional as F

import stn_explore as stn


def random_grid(b, h, w, gen, spread=1.3, dtype=torch.float64):
    # points inside and outside [-1, 1], avoiding exact integer pixel positions
    return (torch.rand(b, h, w, 2, generator=gen, dtype=dtype) * 2 - 1) * spread


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_sample_equals_grid_sample(mode, padding):
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(2, 3, 9, 13, generator=gen)
    grid = random_grid(2, 5, 7, gen, dtype=torch.float32)
    ours = stn.sample(u, grid, mode, padding)
    ref = F.grid_sample(u, grid, mode=mode, padding_mode=padding, align_corners=False)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_reference_bilinear_equals_grid_sample_values_and_gradients():
    gen = torch.Generator().manual_seed(1)
    u = torch.rand(2, 3, 6, 11, generator=gen, dtype=torch.float64, requires_grad=True)
    grid = random_grid(2, 4, 5, gen).requires_grad_()
    ref = F.grid_sample(u, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ours = stn.bilinear_sample_reference(u, grid)
    torch.testing.assert_close(ours, ref)
    w = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    gu_ref, gg_ref = torch.autograd.grad((ref * w).sum(), (u, grid))
    gu, gg = torch.autograd.grad((ours * w).sum(), (u, grid))
    torch.testing.assert_close(gu, gu_ref)
    torch.testing.assert_close(gg, gg_ref)


def test_reference_bilinear_closed_form_midpoint():
    # Halfway between two pixel centres: the average of the two (eq. (5)).
    u = torch.tensor([[[[0.0, 1.0, 4.0]]]], dtype=torch.float64)
    x_mid = (2 * 1.5 + 1) / 3 - 1  # pixel 1.5 in normalised units
    grid = torch.tensor([[[[x_mid, 0.0]]]], dtype=torch.float64)
    assert float(stn.bilinear_sample_reference(u, grid)) == pytest.approx(2.5)


def test_gradcheck_reference_sampler():
    gen = torch.Generator().manual_seed(2)
    u = torch.rand(1, 2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    grid = random_grid(1, 3, 4, gen).requires_grad_()
    assert torch.autograd.gradcheck(stn.bilinear_sample_reference, (u, grid))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_gradcheck_sample(mode):
    gen = torch.Generator().manual_seed(3)
    u = torch.rand(2, 2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    grid = random_grid(2, 3, 4, gen, spread=0.9).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, g: stn.sample(a, g, mode), (u, grid))


def test_nearest_has_zero_grid_gradient():
    gen = torch.Generator().manual_seed(4)
    u = torch.rand(1, 1, 5, 5, generator=gen, dtype=torch.float64)
    grid = random_grid(1, 3, 3, gen, spread=0.9).requires_grad_()
    (g,) = torch.autograd.grad(stn.sample(u, grid, "nearest").sum(), grid)
    assert torch.count_nonzero(g) == 0


def test_batched_equals_unbatched():
    gen = torch.Generator().manual_seed(5)
    u = torch.rand(4, 2, 8, 8, generator=gen)
    grid = random_grid(4, 6, 6, gen, dtype=torch.float32)
    full = stn.sample(u, grid)
    for i in range(4):
        torch.testing.assert_close(stn.sample(u[i:i + 1], grid[i:i + 1]), full[i:i + 1])


def test_outside_fraction():
    grid = torch.zeros(2, 2, 2, 2)
    grid[0, 0, 0, 0] = 1.5
    grid[1] = -3
    torch.testing.assert_close(stn.outside_fraction(grid), torch.tensor([0.25, 1.0]))


def test_sample_rejects_bad_input():
    u = torch.rand(2, 1, 4, 4)
    g = torch.zeros(2, 3, 3, 2)
    with pytest.raises(ValueError, match=r"\(1, 4, 4\)"):
        stn.sample(u[0], g)
    with pytest.raises(ValueError, match=r"\(2, 3, 3, 3\)"):
        stn.sample(u, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="batch size"):
        stn.sample(u, g[:1])
    with pytest.raises(ValueError, match="mode"):
        stn.sample(u, g, mode="lanczos")
    with pytest.raises(ValueError, match="padding"):
        stn.sample(u, g, padding_mode="wrap")
    with pytest.raises(ValueError, match="floating"):
        stn.sample(u.to(torch.uint8), g)
    bad = g.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        stn.sample(u, bad)

"""The SpatialTransformer module and the functional warp."""

import subprocess
import sys

import pytest
import torch
from torch import nn

import stn_explore as stn

KINDS = ["affine", "attention", "projective", "tps"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loc", [None, "fc"])
def test_identity_at_initialisation(kind, loc):
    torch.manual_seed(0)
    st = stn.SpatialTransformer(2, (20, 28), kind, localisation=loc)
    x = torch.rand(3, 2, 20, 28)
    v, aux = st(x, return_aux=True)
    assert v.shape == x.shape
    torch.testing.assert_close(v, x, atol=1e-5, rtol=0)
    assert aux["grid"].shape == (3, 20, 28, 2)
    assert aux["flat"].shape == (3, stn.n_params(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_zoomed_initialisation_samples_the_centre(kind):
    """reset_to_identity(0.5): every kind starts by sampling the middle half of U, exactly the
    crop an attention window (0.5, 0, 0) takes (a reference independent of the kind's maths)."""
    torch.manual_seed(0)
    st = stn.SpatialTransformer(1, (16, 16), kind, out_size=(8, 8))
    st.reset_to_identity(0.5)
    x = torch.rand(2, 1, 16, 16)
    ref = stn.warp(x, torch.tensor([[0.5, 0.0, 0.0]]).expand(2, 3), "attention", (8, 8))
    torch.testing.assert_close(st(x), ref, atol=1e-5, rtol=0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            st.reset_to_identity(bad)


def test_out_size_and_custom_localisation_module():
    loc = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
    st = stn.SpatialTransformer(1, (16, 16), "affine", out_size=(8, 12), localisation=loc)
    v, aux = st(torch.rand(5, 1, 16, 16), return_aux=True)
    assert v.shape == (5, 1, 8, 12)
    assert aux["params"].shape == (5, 2, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_localisation_and_input(kind):
    torch.manual_seed(1)
    st = stn.SpatialTransformer(1, (16, 16), kind, localisation="fc")
    x = torch.rand(2, 1, 16, 16, requires_grad=True)
    st(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert st.regressor.bias.grad.abs().sum() > 0
    # weights of the regressor start at zero but receive gradient
    assert st.regressor.weight.grad.abs().sum() > 0


def test_forward_rejects_wrong_input_shape():
    st = stn.SpatialTransformer(1, (16, 16))
    with pytest.raises(ValueError, match=r"\(2, 3, 16, 16\)"):
        st(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="unknown transform kind"):
        stn.SpatialTransformer(1, (16, 16), "rigid")


@pytest.mark.parametrize("kind", KINDS)
def test_flatten_unflatten_round_trip(kind):
    p = stn.identity_params(kind, 3)
    flat = stn.flatten_params(kind, p)
    assert flat.shape == (3, stn.n_params(kind))
    torch.testing.assert_close(stn.unflatten_params(kind, flat), p)


def test_warp_every_kind_identity():
    x = torch.rand(2, 3, 10, 14)
    for kind in KINDS:
        torch.testing.assert_close(stn.warp(x, stn.identity_params(kind, 2), kind), x,
                                   atol=1e-5, rtol=0)


def test_warp_attention_zoom_crops_centre():
    # s = 0.5: V is the central half of U, magnified ×2
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    v = stn.warp(x, torch.tensor([[0.5, 0.0, 0.0]]), "attention", out_size=(4, 4))
    torch.testing.assert_close(v, x[..., 2:6, 2:6])


def test_importing_library_does_not_import_streamlit():
    code = "import sys, stn_explore; sys.exit(1 if 'streamlit' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

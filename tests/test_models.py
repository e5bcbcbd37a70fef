"""The paper's models: shapes, the fairness rule, identity transformers at initialisation."""

import pytest
import torch

from stn_explore.experiments import distortions as D
from stn_explore.experiments.models import MODELS, ModelArgs, build_model, parameter_counts
from stn_explore.experiments.train import TrainConfig, model_args_for


@pytest.mark.parametrize("task", ["r", "rts", "cluttered", "addition"])
@pytest.mark.parametrize("model", MODELS)
def test_forward_shapes(task, model):
    torch.manual_seed(0)
    args = model_args_for(TrainConfig(task=task, model=model, transform="tps" if model == "st-cnn" else "affine"))
    net = build_model(args)
    c, h, w = D.image_shape(task)
    logits, aux = net(torch.rand(3, c, h, w), return_aux=True)
    assert logits.shape == (3, D.n_classes(task))
    n_st = 2 if model.startswith("2st") else (1 if model.startswith("st") else 0)
    assert len(aux["v"]) == n_st
    for v in aux["v"]:
        assert v.shape == (3, c, h, w)


@pytest.mark.parametrize("model", ["st-fcn", "st-cnn", "2st-fcn"])
@pytest.mark.parametrize("transform", ["affine", "attention", "projective", "tps"])
def test_transformers_are_identity_at_initialisation(model, transform):
    net = build_model(ModelArgs(name=model, in_channels=2, input_size=(42, 42), transform=transform))
    x = torch.rand(4, 2, 42, 42)
    _, aux = net(x, return_aux=True)
    for v in aux["v"]:
        torch.testing.assert_close(v, x, atol=1e-5, rtol=0)


def test_three_weight_layers_apart_from_localisation():
    for name in MODELS:
        net = build_model(ModelArgs(name=name))
        weights = [m for m in net.head.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        assert len(weights) == 3, name
    counts = parameter_counts(build_model(ModelArgs(name="st-cnn")))
    assert counts["total"] == counts["localisation"] + counts["classifier"] and counts["localisation"] > 0


def test_model_args_round_trip_through_plain_dict():
    args = ModelArgs(name="2st-cnn", in_channels=2, transform="projective", st_out_size=(28, 28))
    d = args.to_dict()
    assert all(isinstance(v, (int, float, str, list, dict, type(None))) for v in d.values())
    assert ModelArgs.from_dict(d) == args


def test_wrong_input_shape_and_unknown_model_raise():
    net = build_model(ModelArgs(name="cnn", input_size=(28, 28)))
    with pytest.raises(ValueError, match=r"\(2, 1, 42, 42\)"):
        net(torch.rand(2, 1, 42, 42))
    with pytest.raises(ValueError, match="unknown model"):
        build_model(ModelArgs(name="resnet"))


def test_input_offset_default_and_legacy_checkpoints():
    from stn_explore.experiments.models import ModelArgs, build_model

    assert ModelArgs().input_offset == 0.0
    legacy = ModelArgs(name="cnn").to_dict()
    del legacy["input_offset"]  # written before the field existed: those models centred by 0.5
    assert ModelArgs.from_dict(legacy).input_offset == 0.5
    torch.manual_seed(0)
    a = build_model(ModelArgs(name="fcn", input_offset=0.0))
    b = build_model(ModelArgs(name="fcn", input_offset=0.5))
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 42, 42)
    # the offset is subtracted before the head: same as feeding x - 0.5 to the offset-0 model
    assert torch.allclose(b(x), a(x - 0.5), atol=1e-6)


def test_pooled_localisation_and_smaller_output():
    # the cluttered recipe: the localisation net sees the input max-pooled 2×, the transformer
    # outputs 30×30 from 60×60; at initialisation it samples the whole input (identity)
    args = ModelArgs(name="st-cnn", input_size=(60, 60), st_out_size=(30, 30), loc_pool=2)
    model = build_model(args)
    x = torch.rand(3, 1, 60, 60)
    logits, aux = model(x, return_aux=True)
    assert logits.shape == (3, 10) and aux["v"][0].shape == (3, 1, 30, 30)
    assert isinstance(model.transformers[0].localisation[0], torch.nn.MaxPool2d)
    torch.testing.assert_close(aux["params"][0], torch.eye(2, 3).expand(3, 2, 3))
    again = build_model(ModelArgs.from_dict(args.to_dict()))  # rebuilt from a checkpoint's plain dict
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again(x), logits)
    assert ModelArgs.from_dict({k: v for k, v in args.to_dict().items() if k != "loc_pool"}).loc_pool == 1

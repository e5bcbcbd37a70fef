"""Training and evaluation CLIs: checkpoints reload bit-exactly, resume exactly, refuse
pickles, and the evaluator reproduces the recorded error."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from stn_explore.experiments import checkpoint as ckpt_mod
from stn_explore.experiments import data as data_mod
from stn_explore.experiments import evaluate, train
from stn_explore.experiments import results as results_mod
from stn_explore.experiments.checkpoint import CheckpointError, load_checkpoint
from stn_explore.experiments.models import ModelArgs, build_model


def tiny_cfg(**kw) -> train.TrainConfig:
    # 24 digits / batch 8 = 3 SGD steps per epoch
    base = dict(task="rts", model="st-cnn", transform="affine", epochs=1, batch_size=8, n_train=24,
                n_test=20, lr=0.05, seed=3)
    base.update(kw)
    return train.TrainConfig(**base)


def run(cfg, out, idx_dir, **kw):
    return train.train(cfg, out, data_dir=idx_dir, progress=False, log=lambda m: None, **kw)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_three_step_run_writes_checkpoint_that_reloads_bit_exactly(tmp_path, idx_dir):
    out = tmp_path / "m.pt"
    res = run(tiny_cfg(), out, idx_dir)
    ck = load_checkpoint(out)
    assert ck["epoch"] == 1 and len(ck["history"]) == 1
    assert ck["model_args"]["name"] == "st-cnn" and ck["train_config"]["n_train"] == 24
    assert ck["data"]["task"] == "rts" and ck["data"]["n_train_digits"] == 24
    assert ck["version"] and ck["format"] == ckpt_mod.FORMAT
    model = build_model(ck["model_args"])
    model.load_state_dict(ck["state_dict"])
    assert states_equal(model.state_dict(), res["state_dict"])
    # training changed the weights (3 steps happened)
    fresh = build_model(ck["model_args"])
    assert not states_equal(fresh.state_dict(), model.state_dict())


def test_resume_after_kill_continues_exactly(tmp_path, idx_dir):
    straight = run(tiny_cfg(epochs=2, lr_drops=[1]), tmp_path / "a.pt", idx_dir)
    # "killed" after epoch 1: only the first epoch was saved ...
    run(tiny_cfg(epochs=1, lr_drops=[1]), tmp_path / "b.pt", idx_dir)
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 1
    # ... and resuming runs epoch 2 only, ending bit-identical to the uninterrupted run
    resumed = run(tiny_cfg(epochs=2, lr_drops=[1]), tmp_path / "b.pt", idx_dir, resume=True)
    assert resumed["epoch"] == 2
    assert states_equal(resumed["state_dict"], straight["state_dict"])
    assert [h["lr"] for h in resumed["history"]] == [0.05, pytest.approx(0.005)]
    assert resumed["test_error"] == straight["test_error"]


def test_resume_refuses_a_different_run(tmp_path, idx_dir):
    run(tiny_cfg(), tmp_path / "m.pt", idx_dir)
    with pytest.raises(CheckpointError, match="model"):
        run(tiny_cfg(model="cnn", epochs=2), tmp_path / "m.pt", idx_dir, resume=True)


def test_zoomed_start_is_part_of_the_recipe(tmp_path, idx_dir):
    # --st-init-scale reaches the model (its regression bias starts at the zoom) and resume checks it
    res = run(tiny_cfg(st_init_scale=0.5), tmp_path / "m.pt", idx_dir)
    assert res["model_args"]["st_init_scale"] == 0.5
    with pytest.raises(CheckpointError, match="st_init_scale"):
        run(tiny_cfg(epochs=2), tmp_path / "m.pt", idx_dir, resume=True)
    assert res["history"][0]["transformers"][0]["mean_size"] < 1  # the per-epoch summary is kept
    for bad in ("0", "-1", "nan", "inf"):
        with pytest.raises(SystemExit):
            train.build_parser().parse_args(["--st-init-scale", bad])
    first = build_model(ModelArgs(**{**ModelArgs().to_dict(), "st_init_scale": 0.5}))
    assert first.transformers[0].regressor.bias[:6].tolist() == [0.5, 0, 0, 0, 0.5, 0]


def test_crash_during_save_keeps_previous_checkpoint(tmp_path, idx_dir, monkeypatch):
    out = tmp_path / "m.pt"
    run(tiny_cfg(), out, idx_dir)
    before = out.read_bytes()

    def broken_save(obj, f, *a, **k):  # f: the atomic writer's temporary file
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(OSError):
        run(tiny_cfg(epochs=2), out, idx_dir, resume=True)
    assert out.read_bytes() == before
    assert not list(tmp_path.glob("*.part"))


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "model_args": {}, "state_dict": {}, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_evaluate_reproduces_recorded_error_and_reads_npz(tmp_path, idx_dir, capsys):
    out = tmp_path / "m.pt"
    res = run(tiny_cfg(model="cnn", epochs=2, n_train=0, batch_size=32, n_test=60), out, idx_dir)
    r = evaluate.evaluate_checkpoint(out, data_dir=idx_dir, log=lambda m: None)
    assert r["error"] == res["test_error"] and r["n"] == 60
    # the same set exported through the data CLI gives the same error
    npz = tmp_path / "rts.npz"
    assert data_mod.main(["export", "--task", "rts", "--n", "60", "--seed", "0", "--data-dir", str(idx_dir),
                          "--out", str(npz)]) == 0
    r2 = evaluate.evaluate_checkpoint(out, npz=npz)
    assert r2["error"] == res["test_error"]
    np.testing.assert_array_equal(r2["predictions"], r["predictions"])
    # a set of the wrong task is refused clearly
    bad = tmp_path / "r.npz"
    data_mod.main(["export", "--task", "r", "--n", "5", "--data-dir", str(idx_dir), "--out", str(bad)])
    assert evaluate.main(["--checkpoint", str(out), "--npz", str(bad)]) == 2
    assert "model expects 1×42×42" in capsys.readouterr().err


def test_results_table(tmp_path, idx_dir):
    folder = tmp_path / "ckpts"
    run(tiny_cfg(model="cnn"), folder / "rts_cnn.pt", idx_dir)
    run(tiny_cfg(), folder / "rts_st-cnn_affine.pt", idx_dir)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\nrest\n")
    assert evaluate.main(["--table", "--folder", str(folder), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "old" not in text
    assert "| ST-CNN Aff |" in text
    results = json.loads((folder / "results.json").read_text())
    rows = {r["row"]: r for r in results["results"]}
    assert rows["cnn"]["paper_error"] == 0.8 and rows["st-cnn_affine"]["paper_error"] == 0.5
    assert rows["cnn"]["command"].startswith("python -m stn_explore.train --task rts --model cnn")
    md = (folder / "results.md").read_text()
    assert "| ST-CNN Aff |" in md and "(0.5)" in md and "10,000 MNIST training digits" in md
    assert "`rts_cnn.pt`" in md and "--out " in rows["cnn"]["command"]
    # what the transformers learned, measured on the checkpoints themselves
    (learned,) = results["transformers"]
    assert learned["checkpoint"].endswith("rts_st-cnn_affine.pt") and learned["n"] == 1000
    assert {"rotation_r", "centre_r", "size_r", "median_iou", "spread", "verdict"} <= set(learned)
    assert "## What the transformers learned" in md and learned["verdict"] in md
    # a run that has not reached its planned epochs is listed as in progress, not as a result
    ck = torch.load(folder / "rts_cnn.pt", weights_only=True)
    ck["train_config"]["epochs"] = 5
    torch.save(ck, folder / "rts_cnn.pt")
    results_mod.write_table(folder)
    results = json.loads((folder / "results.json").read_text())
    assert [r["row"] for r in results["results"]] == ["st-cnn_affine"]
    assert results["in_progress"][0]["epoch"] == 1 and "--resume" in results["in_progress"][0]["command"]


def test_train_cli_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    assert "--loc-lr-scale" in capsys.readouterr().out
    rc = train.main(["--task", "rts", "--epochs", "1", "--data-dir", str(tmp_path / "none"),
                     "--out", str(tmp_path / "x.pt")])
    assert rc == 2 and "no mnist" in capsys.readouterr().err


def test_compact_shrinks_records_float16_error_and_still_resumes(tmp_path, idx_dir):
    out = tmp_path / "m.pt"
    run(tiny_cfg(epochs=1, n_test=60), out, idx_dir)
    before = load_checkpoint(out)
    size = out.stat().st_size
    res = evaluate.compact_checkpoint(out, idx_dir, log=lambda m: None)
    small = load_checkpoint(out)
    assert "optimizer" not in small and small["compact"]["dtype"] == "float16"
    assert all(v.dtype == torch.float16 for v in small["state_dict"].values() if v.is_floating_point())
    assert out.stat().st_size < 0.6 * size
    assert small["compact"]["test_error_float32"] == before["test_error"]
    # the recorded error is the one the float16 weights give, and evaluate reproduces it
    assert small["test_error"] == res["after"]
    assert evaluate.evaluate_checkpoint(out, data_dir=idx_dir, log=lambda m: None)["error"] == res["after"]
    assert evaluate.compact_checkpoint(out, idx_dir, log=lambda m: None) is None  # idempotent
    # a compacted run can be trained further (momentum restarts)
    msgs = []
    more = train.train(tiny_cfg(epochs=2, n_test=60), out, data_dir=idx_dir, progress=False,
                       log=msgs.append, resume=True)
    assert more["epoch"] == 2 and any("momentum restarting" in m for m in msgs)


def test_compact_refuses_unfinished_runs(tmp_path, idx_dir):
    out = tmp_path / "m.pt"
    run(tiny_cfg(epochs=1), out, idx_dir)
    ck = load_checkpoint(out)
    ck["train_config"]["epochs"] = 5
    ckpt_mod.save_checkpoint(out, ck)
    with pytest.raises(CheckpointError, match="still training"):
        evaluate.compact_checkpoint(out, idx_dir, log=lambda m: None)


def test_resume_keeps_the_saved_architecture(tmp_path, idx_dir):
    # a checkpoint from before input_offset existed (no key) resumes with the old centring
    out = tmp_path / "m.pt"
    run(tiny_cfg(epochs=1), out, idx_dir)
    ck = load_checkpoint(out)
    del ck["model_args"]["input_offset"]
    ckpt_mod.save_checkpoint(out, ck)
    res = run(tiny_cfg(epochs=2), out, idx_dir, resume=True)
    assert res["model_args"]["input_offset"] == 0.5


def _hold_training_lock(out: str, ready) -> None:
    import time

    with ckpt_mod.training_lock(out):
        ready.set()
        time.sleep(60)


def test_a_second_process_training_the_same_file_is_refused(tmp_path, idx_dir):
    import multiprocessing
    import os
    import signal

    out = tmp_path / "m.pt"
    fork = multiprocessing.get_context("fork")  # torch is imported already: starts at once
    ready = fork.Event()
    holder = fork.Process(target=_hold_training_lock, args=(str(out), ready))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(CheckpointError, match=r"being trained by another process.*m\.pt\.lock"):
            run(tiny_cfg(), out, idx_dir)
        assert not out.exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up: the kernel lock goes with its holder
        holder.join(10)
    run(tiny_cfg(), out, idx_dir)
    assert out.is_file()


def test_results_command_reproduces_every_recipe_option():
    # the command printed in results.md, parsed by the training CLI, gives back the same recipe
    import shlex

    tc = train.TrainConfig(task="cluttered", model="st-cnn", transform="affine", epochs=7, lr=0.001,
                           loc_lr_scale=0.5, optimizer="adam", noise=4, st_out_size=30, loc_pool=2,
                           ramp_epochs=3, st_init_scale=0.5, seed=2, test_seed=5, n_test=300, n_train=900,
                           ramp_head_lr_scale=0.1, weight_decay=1e-4, loc_hidden=96)
    cmd = results_mod.command_for(dataclasses.asdict(tc), "checkpoints/x.pt")
    args = train.build_parser().parse_args(shlex.split(cmd)[3:])
    for key in train.RECIPE_KEYS + ("epochs", "lr", "loc_lr_scale", "weight_decay"):
        assert getattr(args, key) == getattr(tc, key), key


def test_ramp_head_lr_scale_slows_only_the_classifier_while_the_curriculum_grows():
    cfg = tiny_cfg(ramp_epochs=4, ramp_head_lr_scale=0.1, lr=0.01, loc_lr_scale=0.5)
    assert [train.head_lr_scale_at(cfg, e) for e in range(6)] == [1.0, 0.1, 0.1, 0.1, 1.0, 1.0]
    assert [train.head_lr_scale_at(tiny_cfg(ramp_epochs=4), e) for e in range(6)] == [1.0] * 6
    model = build_model(train.model_args_for(cfg))
    opt = train.make_optimizer(model, cfg)
    head = {id(p) for p in model.head_parameters()}
    assert {id(p) for p in opt.param_groups[0]["params"]} == head  # set_lr scales group 0: the head
    train.set_lr(opt, 0.01, train.head_lr_scale_at(cfg, 2))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.001, 0.005])
    train.set_lr(opt, 0.01, train.head_lr_scale_at(cfg, 4))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.005])


def test_loc_hidden_sizes_the_localisation_nets_hidden_layer():
    def loc_linears(cfg):  # widths of the localisation net's hidden FC layers (the last one regresses θ)
        model = build_model(train.model_args_for(cfg))
        return [m.out_features for st in model.transformers for m in st.modules()
                if isinstance(m, torch.nn.Linear)][:-1]

    assert loc_linears(tiny_cfg()) == [50]
    assert loc_linears(tiny_cfg(loc_hidden=96)) == [96]
    assert loc_linears(tiny_cfg(model="st-fcn", loc_hidden=40)) == [40, 40]
    for bad in ("x", "-3"):
        with pytest.raises(SystemExit):
            train.build_parser().parse_args(["--task", "rts", "--loc-hidden", bad])


def test_ramp_head_lr_scale_is_part_of_the_recipe_for_resume(tmp_path, idx_dir):
    out = tmp_path / "m.pt"
    run(tiny_cfg(ramp_epochs=2, ramp_head_lr_scale=0.1), out, idx_dir)
    with pytest.raises(CheckpointError, match="ramp_head_lr_scale"):
        run(tiny_cfg(epochs=2, ramp_epochs=2), out, idx_dir, resume=True)

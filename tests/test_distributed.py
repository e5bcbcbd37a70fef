"""Training on several processes with torchrun (DistributedDataParallel, gloo on the CPU):
the ranks' parts of a batch are the single-process batch, their averaged gradient is its
gradient, a 2-rank run follows the single-process run and writes a checkpoint that loads and
evaluates, --resume works under torchrun, a failing rank stops the job cleanly; --device and
--amp; the README's commands are the tested ones."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stn_explore.experiments import colocalise, distributed, evaluate, train
from stn_explore.experiments import distortions as D
from stn_explore.experiments.checkpoint import load_checkpoint, training_lock
from stn_explore.experiments.distributed import Context
from stn_explore.experiments.models import build_model

ROOT = Path(__file__).resolve().parents[1]

#: the issue's command, run verbatim by test_two_cpu_ranks_match_one_process_and_write_a_checkpoint
#: and quoted verbatim in the README ("Training at scale")
TORCHRUN_CPU = ("torchrun --standalone --nproc_per_node 2 -m stn_explore.train --task r --model st-cnn "
                "--epochs 1 --n-train 1024 --n-test 500 --out OUT.pt")


def torchrun(command: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run a ``torchrun ...`` command line with this interpreter (``python -m
    torch.distributed.run`` is torchrun), stn_explore importable, one thread per process."""
    argv = shlex.split(command)
    assert argv[0] == "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(cwd),  # torchelastic's folders go with cwd
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", *argv[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """The in-process runs below set one thread (--threads 1); give the next tests theirs back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def states_close(a: dict, b: dict, atol: float = 1e-4) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-3, msg=k)


def rank_logs(log_dir: Path, rank: int) -> str:
    return "".join(p.read_text() for p in sorted(log_dir.glob(f"**/attempt_0/{rank}/*.log")))


# ----------------------------------------------------------------------------- in one process
@pytest.mark.parametrize("task", ["r", "rts", "p", "e", "cluttered", "addition"])
def test_the_ranks_parts_of_a_batch_are_the_single_process_batch(task, idx_dir):
    from stn_explore.experiments.mnist import load_digits

    d = load_digits("train", root=idx_dir)
    images, labels = d.images[:51], d.labels[:51]
    # 51 digits in batches of 10 (chunks of 20): the last batch of 1 is smaller than 2 or 3 ranks
    single = list(D.epoch_batches(task, images, labels, 10, 4, 1, chunk=20))
    for world in (2, 3):
        parts = [list(D.epoch_batch_shards(task, images, labels, 10, 4, 1, chunk=20,
                                           shard=Context(rank=r, world_size=world).shard))
                 for r in range(world)]
        assert all(len(p) == len(single) for p in parts)
        for k, (x, y) in enumerate(single):
            assert all(p[k][2] in (len(y), 0) for p in parts)   # each knows the batch's size, or 0
            real = [p[k] for p in parts if p[k][2]]
            assert len(real) == min(world, len(y))              # a rank with no part gets n = 0
            assert torch.equal(torch.cat([x for x, _, _ in real]), x)
            assert torch.equal(torch.cat([y for _, y, _ in real]), y)


def test_averaged_rank_gradients_are_the_whole_batch_gradient():
    # what DistributedDataParallel does: average the ranks' gradients of batch_loss
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 3)
    x, y = torch.randn(7, 5), torch.randint(0, 3, (7,))

    def grads(xs, ys, n, world):
        lin.zero_grad()
        loss, loss_sum = train.batch_loss(lin(xs), ys, n, world)
        loss.backward()
        return [p.grad.clone() for p in lin.parameters()], loss_sum

    whole, whole_sum = grads(x, y, 7, 1)
    for world in (2, 3, 8):   # 7 over 8 ranks: one rank has no part (a stand-in image, n = 0)
        per_rank = []
        total = 0.0
        for r in range(world):
            rows = Context(rank=r, world_size=world).shard(7)
            n = rows.stop - rows.start
            g, s = grads(x[rows] if n else x[:1], y[rows] if n else y[:1], 7 if n else 0, world)
            per_rank.append(g)
            total += s
        for k, g in enumerate(whole):
            torch.testing.assert_close(sum(pr[k] for pr in per_rank) / world, g)
        assert total == pytest.approx(whole_sum, rel=1e-6)


def test_device_choice(monkeypatch, tmp_path, idx_dir, capsys):
    assert not torch.cuda.is_available()  # these machines have no GPU
    assert distributed.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(distributed.DeviceError, match="no CUDA device"):
        distributed.resolve_device("cuda")
    # the CLI: a clear error, exit 2, nothing written
    out = tmp_path / "m.pt"
    common = ["--task", "rts", "--model", "cnn", "--epochs", "1", "--n-train", "16", "--batch-size", "8",
              "--n-test", "20", "--data-dir", str(idx_dir), "--threads", "1", "--no-progress", "--out", str(out)]
    assert train.main(common + ["--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda: torch sees no CUDA device" in err and not out.exists()
    assert colocalise.main(["--digit", "3", "--iterations", "2", "--device", "cuda", "--out",
                            str(tmp_path / "c.pt")]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    # --amp on the CPU: a note, then float32 training, the same as without it
    assert train.main(common + ["--amp"]) == 0
    assert "note: --amp (mixed precision) is for CUDA devices" in capsys.readouterr().out
    with_amp = load_checkpoint(out)
    out.unlink()
    assert train.main(common + ["--device", "cpu"]) == 0
    plain = load_checkpoint(out)
    assert all(torch.equal(with_amp["state_dict"][k], plain["state_dict"][k]) for k in plain["state_dict"])
    assert "launch" not in plain   # a single CPU process writes the checkpoint it always wrote
    # with a GPU present, auto takes the one of this process's LOCAL_RANK
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    with pytest.raises(distributed.DeviceError, match="at most 2 processes per machine"):
        distributed.resolve_device("cuda", local_rank=2)


def test_help_has_a_devices_and_distributed_group(capsys):
    for main in (train.main, colocalise.main):
        with pytest.raises(SystemExit):
            main(["--help"])
        text = capsys.readouterr().out
        assert "devices and distributed:" in text and "torchrun" in text and "--device" in text
    # the training CLI alone has --amp (the co-localisation models are tiny)
    assert "--amp" in train.build_parser().format_help()


# ----------------------------------------------------------------------------- torchrun
def test_two_cpu_ranks_match_one_process_and_write_a_checkpoint(tmp_path):
    res = torchrun(TORCHRUN_CPU, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    # rank 0 alone logs: every line once
    assert res.stdout.count("epoch   1/1") == 1 and res.stdout.count("done: OUT.pt") == 1
    assert "data-parallel over 2 processes (cpu)" in res.stdout
    out = tmp_path / "OUT.pt"
    ck = load_checkpoint(out)
    assert ck["epoch"] == 1 and ck["launch"] == {"device": "cpu", "processes": 2, "amp": False}
    assert ck["train_config"]["batch_size"] == 128 and ck["data"]["n_train_digits"] == 1024
    assert all(v.device.type == "cpu" for v in torch.load(out, weights_only=True)["state_dict"].values())
    # it loads and evaluates: the evaluator reproduces the recorded error
    r = evaluate.evaluate_checkpoint(out, log=lambda m: None)
    assert r["n"] == 500 and r["error"] == ck["test_error"]
    # the same run in one process with the whole batch of 128: the same 8 steps, to float rounding
    one = train.train(train.TrainConfig(task="r", model="st-cnn", epochs=1, n_train=1024, n_test=500, threads=1),
                      tmp_path / "one.pt", progress=False, log=lambda m: None)
    states_close(ck["state_dict"], one["state_dict"])
    h2, h1 = ck["history"][0], one["history"][0]
    assert h2["loss"] == pytest.approx(h1["loss"], rel=1e-5)
    assert abs(h2["train_error"] - h1["train_error"]) <= 100 / 1024      # at most one digit apart
    assert abs(ck["test_error"] - one["test_error"]) <= 100 / 500
    model = build_model(ck["model_args"])
    model.load_state_dict(ck["state_dict"])


def test_resume_under_torchrun_on_another_number_of_ranks(tmp_path, idx_dir):
    # 22 digits in batches of 7 (7, 7, 7, 1): split 4/3 on two ranks, 3/2/2 on three, and the
    # last batch leaves all ranks but one without a part
    common = (f"-m stn_explore.train --task rts --model st-cnn --batch-size 7 --n-train 22 --n-test 20 "
              f"--seed 3 --lr-drops 1 --data-dir {idx_dir} --out m.pt")
    logs = tmp_path / "logs"
    first = torchrun(f"torchrun --standalone --nproc_per_node 2 --log-dir {logs} --redirects 3 {common} --epochs 1",
                     tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "epoch   1/1" in rank_logs(logs, 0)
    assert rank_logs(logs, 1).strip() == ""                      # rank 1 prints nothing, no progress bar
    assert load_checkpoint(tmp_path / "m.pt")["epoch"] == 1
    second = torchrun(f"torchrun --standalone --nproc_per_node 3 {common} --epochs 2 --resume", tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("resuming m.pt after epoch 1 (of 2)") == 1
    resumed = load_checkpoint(tmp_path / "m.pt")
    assert resumed["epoch"] == 2 and resumed["launch"]["processes"] == 3
    straight = train.train(train.TrainConfig(task="rts", model="st-cnn", batch_size=7, n_train=22, n_test=20, seed=3,
                                             lr_drops=[1], epochs=2, threads=1),
                           tmp_path / "straight.pt", data_dir=idx_dir, progress=False, log=lambda m: None)
    states_close(resumed["state_dict"], straight["state_dict"])
    for a, b in zip(resumed["history"], straight["history"]):
        assert a["lr"] == b["lr"] and a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_a_rank_that_fails_stops_the_job(tmp_path, idx_dir):
    # rank 0 cannot take the training lock (another process trains the file): every rank exits
    # with the error (reported once), none waits for ever, torchrun exits non-zero
    with training_lock(tmp_path / "m.pt"):
        res = torchrun(f"torchrun --standalone --nproc_per_node 2 -m stn_explore.train --task rts --epochs 1 "
                       f"--n-train 16 --n-test 20 --data-dir {idx_dir} --out m.pt", tmp_path, timeout=120)
    assert res.returncode != 0
    assert res.stderr.count("error: m.pt is being trained by another process") == 1, res.stderr
    # the first process to end left through the CLI's error path (exit 2, no traceback of ours)
    assert re.search(r"Root Cause.*?exitcode\s*: 2 ", res.stderr, re.S), res.stderr
    assert "stn_explore/" not in res.stderr
    assert not (tmp_path / "m.pt").exists()


AGREEMENT_SCRIPT = """
import shutil, sys, time
from pathlib import Path
from stn_explore.experiments import distributed, mnist

src, log = Path(sys.argv[1]), Path(sys.argv[2])

def fake_download(dataset, folder, mirrors=None):   # slow, so a rank that did not wait would see nothing
    time.sleep(1)
    folder.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.gz"):
        shutil.copy(f, folder / f.name)
    with open(log, "a") as fh:
        fh.write("download\\n")
    return folder

mnist.download_dataset = fake_download
with distributed.session("cpu") as ctx:
    d = ctx.local_first(lambda: mnist.load_digits("train", download=True))
    assert "downloaded files" in d.source and len(d) == 200, d.source
    assert ctx.from_main(lambda: ctx.rank) == 0
    for fn in (lambda: 1 / 0 if ctx.is_main else 0, lambda: 1 / 0 if ctx.rank == 1 else 0):
        try:
            ctx.local_first(fn)
        except ZeroDivisionError as exc:
            print(f"rank {ctx.rank} raised the error of rank {exc.stn_rank}", flush=True)
    try:
        ctx.require_same(ctx.rank, "differ")
    except ValueError:
        print(f"rank {ctx.rank} saw the ranks differ", flush=True)
"""


def test_local_rank_0_downloads_and_errors_are_agreed(tmp_path, idx_dir):
    # what the CLIs do with --download under torchrun (the download itself faked): local rank 0
    # downloads, the other waits, then reads the files it fetched; a failure on any rank is
    # raised on every rank
    (tmp_path / "agree.py").write_text(AGREEMENT_SCRIPT)
    log = tmp_path / "downloads.log"
    res = torchrun(f"torchrun --standalone --nproc_per_node 2 agree.py {idx_dir} {log}", tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert log.read_text() == "download\n"
    said = set(re.findall(r"rank \d (?:raised the error of rank \d|saw the ranks differ)", res.stdout))
    assert said == {f"rank {r} raised the error of rank {e}" for r in (0, 1) for e in (0, 1)} | {
        "rank 0 saw the ranks differ", "rank 1 saw the ranks differ"}, res.stdout


@pytest.mark.slow
def test_colocalise_under_torchrun_and_resumed_exactly(tmp_path):
    # the noisy recipe (batch norm in the localiser), its schedule fixed so that a run of 10
    # iterations resumed to 15 is the run of 15
    common = ("-m stn_explore.colocalise --digit 3 --noise 4 --batch-size 8 --record-every 5 --save-every 5 "
              "--retries 0 --no-progress --shrink-iterations 6 --lr-drop 9 --clutter-from 0 --clutter-ramp 0 "
              "--fine-from 8")
    res = torchrun(f"torchrun --standalone --nproc_per_node 2 {common} --iterations 15 --out a.pt", tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("done: a.pt") == 1
    assert "each trains on its own batch of 8 images, 16 per step" in res.stdout
    ck = load_checkpoint(tmp_path / "a.pt")
    assert ck["iteration"] == 15 and ck["final"] is not None and ck["launch"]["processes"] == 2
    assert len(ck["rng_ranks"]) == 2 and not torch.equal(ck["rng_ranks"][0], ck["rng_ranks"][1])
    assert list(ck["recording"]["iteration"]) == [0, 5, 10, 15]
    # it loads and evaluates: the held-out accuracy recomputed from the weights is the recorded one
    from stn_explore.experiments import colocalisation as C
    from stn_explore.experiments.mnist import load_digits

    held = C.held_out_set(load_digits("test"), 3, 4, ck["config"]["eval_seed"])
    assert C.evaluate_checkpoint(ck, held["images"], held["boxes"])["accuracy"] == ck["final"]["accuracy"]
    # 10 iterations, then --resume to 15 under torchrun: the same weights and streams, bit for bit
    res = torchrun(f"torchrun --standalone --nproc_per_node 2 {common} --iterations 10 --out b.pt", tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    res = torchrun(f"torchrun --standalone --nproc_per_node 2 {common} --iterations 15 --out b.pt --resume", tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("resuming b.pt after iteration 10 (of 15)") == 1
    resumed = load_checkpoint(tmp_path / "b.pt")
    assert all(torch.equal(resumed["state_dict"][k], v) for k, v in ck["state_dict"].items())
    assert all(torch.equal(a, b) for a, b in zip(resumed["rng_ranks"], ck["rng_ranks"]))
    assert resumed["final"] == ck["final"]


# ----------------------------------------------------------------------------- the README
def scale_commands(readme: str) -> list[str]:
    """The command lines of the README's "Training at scale" section (continuations joined)."""
    m = re.search(r"^## Training at scale\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    assert m, 'README.md has no "## Training at scale" section'
    lines = "\n".join(re.findall(r"```(?:bash|sh)?\n(.*?)```", m.group(1), re.S)).replace("\\\n", " ")
    return [" ".join(line.split()) for line in lines.splitlines()
            if line.strip().startswith(("torchrun ", "python -m stn_explore."))]


def check_scale_commands(commands: list[str]) -> None:
    """The tested CPU command is among them verbatim; every one parses, torchrun's options with
    torchrun's own parser and the rest with the CLI's."""
    from torch.distributed.run import get_args_parser

    assert TORCHRUN_CPU in commands
    from stn_explore.experiments import data as data_cli

    parsers = {"stn_explore.train": train.build_parser(), "stn_explore.colocalise": colocalise.build_parser(),
               "stn_explore.data": data_cli.build_parser()}
    for cmd in commands:
        argv = shlex.split(cmd, comments=True)
        if argv[0] == "torchrun":
            ns = get_args_parser().parse_args(argv[1:])
            assert ns.module, cmd
            module, rest = ns.training_script, ns.training_script_args
        else:
            module, rest = argv[2], argv[3:]
        parsers[module].parse_args(rest)


def test_readme_training_at_scale_commands_are_the_tested_ones():
    check_scale_commands(scale_commands((ROOT / "README.md").read_text(encoding="utf-8")))


def test_readme_check_catches_a_changed_command():
    good = f"## Training at scale\n\n```bash\n{TORCHRUN_CPU}\n```\n"
    check_scale_commands(scale_commands(good))
    with pytest.raises(AssertionError):
        check_scale_commands(scale_commands(good.replace("--n-test 500", "--n-test 50")))
    with pytest.raises(SystemExit):   # an option the CLI does not have
        check_scale_commands(scale_commands(good + f"```\n{TORCHRUN_CPU} --no-such-option\n```\n"))


def test_context_of_a_single_process_is_plain():
    ctx = Context()
    assert not ctx.distributed and ctx.is_main and ctx.shard(5) == slice(0, 5)
    assert ctx.on_main(lambda: 3) == 3 and ctx.from_main(lambda: 4) == 4 and ctx.local_first(lambda: 5) == 5
    assert ctx.sum([1, 2]) == [1.0, 2.0] and ctx.any(True) and not ctx.any(False)
    model = torch.nn.Linear(2, 2)
    assert ctx.wrap(model) is model
    with pytest.raises(KeyError):
        ctx.on_main(lambda: {}["missing"])
    assert [Context(rank=r, world_size=3).shard(7) for r in range(3)] == [slice(0, 3), slice(3, 5), slice(5, 7)]
    assert np.concatenate([np.arange(2)[Context(rank=r, world_size=3).shard(2)] for r in range(3)]).tolist() == [0, 1]

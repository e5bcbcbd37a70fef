"""Faults (issue 18): `train` and `colocalise` killed with SIGKILL at random moments and in the
middle of a checkpoint save, then continued with --resume, end bit-identical to an
uninterrupted run — both commands promise that "--resume continues a killed run exactly" — with
no damaged checkpoint at any moment, the killed run's lock taken over at once and its
half-written temporary files removed.

The commands run as child processes of a fork server that has imported torch once (a fresh
`python -m` per run would spend seconds importing it); each child runs the command's `main()`,
the code of `python -m stn_explore.train` / `stn_explore.colocalise`, and is killed with
SIGKILL from here.
"""

from __future__ import annotations

import importlib
import io
import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stn_explore.experiments.checkpoint import load_checkpoint
from stn_explore.experiments.mnist import write_idx

from .conftest import synthetic_digits

SERVER = multiprocessing.get_context("forkserver")
# torch._dynamo: the first optimiser a process builds imports it (seconds on a busy machine)
SERVER.set_forkserver_preload(["torch", "torch._dynamo", "numpy", "tqdm.auto", "stn_explore.experiments.train",
                               "stn_explore.experiments.colocalise"])
SEED = int(os.environ.get("STN_FAULT_SEED", "18"))   # the kill moments; any seed must pass


def _child(argv: list[str], log: str, hang_on_save: int) -> None:
    """Run ``<module>.main(argv[1:])`` with its output in ``log``. With ``hang_on_save = k``
    the k-th checkpoint save writes half its bytes into the temporary file, says so
    (``<log>.saving``) and hangs there, to be killed mid-write."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if hang_on_save:
        real, calls = torch.save, [0]

        def save(obj, f, *a, **k):
            calls[0] += 1
            if calls[0] != hang_on_save:
                return real(obj, f, *a, **k)
            buf = io.BytesIO()
            real(obj, buf, *a, **k)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            os.fsync(f.fileno())
            Path(log + ".saving").touch()
            time.sleep(600)

        torch.save = save
    rc = importlib.import_module(argv[0]).main(argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def _start(argv, log: Path, hang_on_save: int = 0):
    p = SERVER.Process(target=_child, args=(argv, str(log), hang_on_save), daemon=True)
    p.start()
    return p


def _said(log: Path, p) -> str:
    """What a child wrote, or why there is nothing (it never got as far as opening its log)."""
    if log.exists():
        return log.read_text()
    return f"no log: the child (exit code {p.exitcode}) never opened {log.name}"


def run_to_end(argv, log: Path) -> float:
    t0 = time.perf_counter()
    p = _start(argv, log)
    p.join(120)
    assert p.exitcode == 0, _said(log, p)
    return time.perf_counter() - t0


def kill_during_save(argv, log: Path, save: int) -> None:
    p = _start(argv, log, hang_on_save=save)
    flag = Path(str(log) + ".saving")
    deadline = time.monotonic() + 120
    while not flag.exists():
        assert p.is_alive() and time.monotonic() < deadline, _said(log, p)
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    flag.unlink()
    assert p.exitcode == -signal.SIGKILL


def kill_after(argv, log: Path, seconds: float) -> bool:
    """Run, and SIGKILL after ``seconds`` if still running; whether it was killed."""
    p = _start(argv, log)
    p.join(seconds)
    if p.exitcode is None:
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        return True
    assert p.exitcode == 0, _said(log, p)
    return False


def assert_usable(path: Path) -> None:
    """At every moment the checkpoint is absent or whole."""
    if path.exists():
        load_checkpoint(path)


def tensors_equal(a, b, where="") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert a.numpy().tobytes() == b.numpy().tobytes(), where   # bit for bit, NaN included
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            tensors_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            tensors_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b, (where, a, b)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("faults_mnist")
    for prefix, n, seed in (("train", 120, 1), ("t10k", 40, 2)):
        d = synthetic_digits(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", d.images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", d.labels.astype(np.uint8))
    return folder


def _interrupt(argv, out: Path, logs: Path, first_save_to_break: int, kills: int, span: float) -> None:
    """Kill a run in the middle of save ``first_save_to_break``, then ``kills`` times while
    resuming, at random moments within ``span`` seconds (an uninterrupted run's time), checking
    the checkpoint after every kill; then resume to the end."""
    rng = random.Random(SEED)
    kill_during_save(argv, logs / "saving.log", first_save_to_break)
    assert len(list(out.parent.glob(out.name + ".*.part"))) == 1   # the half-written temporary file
    assert Path(str(out) + ".lock").exists()   # left behind by the killed run: the resumes take it over
    assert_usable(out)
    finished = False
    for k in range(kills):
        finished = not kill_after(argv + ["--resume"], logs / f"kill{k}.log", rng.uniform(0.05, 0.7) * span)
        assert_usable(out)
        if finished:   # the run ended before its kill came: nothing left to resume
            break
    if not finished:
        run_to_end(argv + ["--resume"], logs / "resume.log")
    assert not list(out.parent.glob(out.name + ".*.part")), "a killed save's temporary file was left behind"


def test_train_killed_anywhere_resumes_bit_identical(tmp_path, mnist):
    argv = ["stn_explore.experiments.train", "--task", "rts", "--model", "st-cnn", "--epochs", "3",
            "--batch-size", "8", "--n-train", "48", "--n-test", "20", "--seed", "5", "--threads", "1",
            "--data-dir", str(mnist), "--no-progress"]
    straight, broken = tmp_path / "straight.pt", tmp_path / "broken.pt"
    span = run_to_end(argv + ["--out", str(straight)], tmp_path / "straight.log")
    _interrupt(argv + ["--out", str(broken)], broken, tmp_path, first_save_to_break=2, kills=2, span=span)
    a, b = load_checkpoint(straight), load_checkpoint(broken)
    assert a["epoch"] == b["epoch"] == 3
    for key in ("state_dict", "optimizer", "test_error", "model_args", "train_config"):
        tensors_equal(a[key], b[key], key)
    timing = {"seconds", "images_per_s"}
    tensors_equal([{k: v for k, v in h.items() if k not in timing} for h in a["history"]],
                  [{k: v for k, v in h.items() if k not in timing} for h in b["history"]], "history")


def test_colocalise_killed_anywhere_resumes_bit_identical(tmp_path, mnist):
    # saves every 2 iterations, records every 3: most saves fall between two records
    argv = ["stn_explore.experiments.colocalise", "--digit", "3", "--iterations", "12", "--batch-size", "4",
            "--record-every", "3", "--save-every", "2", "--shrink-iterations", "4", "--lr-drop", "8",
            "--retries", "0", "--threads", "1", "--data-dir", str(mnist), "--no-progress"]
    straight, broken = tmp_path / "straight.pt", tmp_path / "broken.pt"
    span = run_to_end(argv + ["--out", str(straight)], tmp_path / "straight.log")
    _interrupt(argv + ["--out", str(broken)], broken, tmp_path, first_save_to_break=3, kills=2, span=span)
    a, b = load_checkpoint(straight), load_checkpoint(broken)
    assert a["iteration"] == b["iteration"] == 12
    for key in ("state_dict", "optimizer", "rng", "recording", "final", "config", "model_args"):
        tensors_equal(a[key], b[key], key)


def test_a_resume_after_a_save_between_records_keeps_the_loss_curve(tmp_path):
    """The finding behind the co-localisation fix, without processes: a run saved at iteration
    4 (records at 3 and 6) and resumed from that file records the same mean loss at 6 as the
    run that was never stopped (the losses of iteration 4 were lost before)."""
    from stn_explore.experiments import colocalisation as C

    cfg = dict(digit=3, noise=0, iterations=6, batch_size=4, record_every=3, n_panel=3, n_eval=6, save_every=2,
               seed=1, shrink_iterations=2, lr_drop=5)
    tr, te = synthetic_digits(60, 1), synthetic_digits(40, 2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        full = C.train(C.ColocConfig(**cfg), train_digits=tr, test_digits=te, progress=False, log=lambda m: None)
        stop = iter([False] * 3 + [True])   # stop after iteration 4 (the save at 4 is the last)
        C.train(C.ColocConfig(**cfg), train_digits=tr, test_digits=te, out=tmp_path / "c.pt", progress=False,
                log=lambda m: None, should_stop=lambda: next(stop))
        saved = load_checkpoint(tmp_path / "c.pt")
        assert saved["iteration"] == 4 and saved["stopped"]
        resumed = C.train(C.ColocConfig(**cfg), train_digits=tr, test_digits=te, resume_from=saved, progress=False,
                          log=lambda m: None)
    finally:
        torch.set_num_threads(before)
    tensors_equal(full["recording"], resumed["recording"], "recording")
    tensors_equal(full["state_dict"], resumed["state_dict"], "state_dict")

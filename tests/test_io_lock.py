"""Atomic writes (one helper: synced temporary file, rename, synced folder, no umask changes)
and the training lock (a kernel lock: one holder at a time, released when its holder dies)."""

from __future__ import annotations

import gzip
import hashlib
import multiprocessing
import os
import signal
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stn_explore.experiments import checkpoint as ckpt_mod
from stn_explore.experiments import io as io_mod
from stn_explore.experiments import mnist
from stn_explore.experiments.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

# Forked children start at once: torch is already imported here (spawned ones would each
# spend seconds importing it).
FORK = multiprocessing.get_context("fork")


@pytest.fixture
def fsyncs(monkeypatch):
    """Record every os.fsync (the file descriptors' targets) and forbid os.umask."""
    calls = []
    real = os.fsync

    def spy(fd):
        calls.append(os.fstat(fd))
        real(fd)

    def no_umask(mask):
        raise AssertionError("os.umask changes the process umask: not thread-safe")

    monkeypatch.setattr(os, "fsync", spy)
    monkeypatch.setattr(os, "umask", no_umask)
    return calls


def _synced_file_and_folder(calls, folder: Path) -> bool:
    return (any(stat.S_ISREG(s.st_mode) for s in calls)
            and any(stat.S_ISDIR(s.st_mode) and os.path.samestat(s, folder.stat()) for s in calls))


# ----------------------------------------------------------------------------- atomic writes
def test_atomic_write_syncs_file_and_folder_and_leaves_no_temporary_file(tmp_path, fsyncs):
    path = tmp_path / "sub" / "a.bin"
    io_mod.atomic_write_bytes(path, b"hello")
    assert path.read_bytes() == b"hello"
    assert _synced_file_and_folder(fsyncs, path.parent)
    assert os.listdir(path.parent) == ["a.bin"]


def test_new_file_gets_the_mode_open_would_give_and_a_rewrite_keeps_the_mode(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")  # open(path, "w"): 0o666 less the umask
    new = io_mod.atomic_write_text(tmp_path / "new.txt", "x")
    assert stat.S_IMODE(new.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == io_mod.default_mode()
    os.chmod(new, 0o600)
    io_mod.atomic_write_text(new, "y")
    assert new.read_text() == "y" and stat.S_IMODE(new.stat().st_mode) == 0o600


def test_a_failing_writer_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="mid-write"):
        with io_mod.atomic_writer(path) as fh:
            fh.write(b"new, partial")
            raise RuntimeError("mid-write")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_checkpoints_and_idx_files_go_through_the_synced_writer(tmp_path, fsyncs):
    ck = {"format": ckpt_mod.FORMAT, "model_args": {}, "state_dict": {"w": torch.arange(3.0)}}
    save_checkpoint(tmp_path / "m.pt", ck)
    assert torch.equal(load_checkpoint(tmp_path / "m.pt")["state_dict"]["w"], torch.arange(3.0))
    assert _synced_file_and_folder(fsyncs, tmp_path)
    fsyncs.clear()
    mnist.write_idx(tmp_path / "x.gz", np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert _synced_file_and_folder(fsyncs, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["m.pt", "x.gz"]


def test_download_is_written_only_once_verified(tmp_path, fsyncs):
    src = tmp_path / "src.gz"
    src.write_bytes(gzip.compress(b"payload"))
    good = hashlib.md5(src.read_bytes(), usedforsecurity=False).hexdigest()
    dest = tmp_path / "out" / "f.gz"
    with pytest.raises(mnist.DataSourceError, match="md5 mismatch"):
        mnist.download_file(src.as_uri(), dest, "0" * 32, progress=False)
    assert os.listdir(dest.parent) == []  # neither the file nor its temporary file
    mnist.download_file(src.as_uri(), dest, good, progress=False)
    assert dest.read_bytes() == src.read_bytes() and os.listdir(dest.parent) == ["f.gz"]
    assert _synced_file_and_folder(fsyncs, dest.parent)


# ----------------------------------------------------------------------------- training lock
ROUNDS = 4  # times each contender takes the lock


def _contend(out: str, log: str, go, deadline: float) -> None:
    """Child: retry until it has held the lock ROUNDS times; while holding it, log
    ``pid enter exit`` (monotonic clock, shared by all processes)."""
    go.wait()
    held = 0
    while held < ROUNDS and time.monotonic() < deadline:
        try:
            with ckpt_mod.training_lock(out):
                enter = time.monotonic()
                time.sleep(0.005)
                leave = time.monotonic()
                fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                os.write(fd, f"{os.getpid()} {enter!r} {leave!r}\n".encode())
                os.close(fd)
            held += 1
        except CheckpointError:
            pass
        time.sleep(0.001)
    raise SystemExit(0 if held == ROUNDS else 3)


def test_eight_contending_processes_hold_the_lock_one_at_a_time(tmp_path):
    out, log = tmp_path / "m.pt", tmp_path / "holders.log"
    go = FORK.Event()
    procs = [FORK.Process(target=_contend, args=(str(out), str(log), go, time.monotonic() + 8))
             for _ in range(8)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(15)
    assert [p.exitcode for p in procs] == [0] * 8
    records = [line.split() for line in log.read_text().splitlines()]  # pid enter exit
    spans = sorted((float(enter), float(leave)) for _, enter, leave in records)
    assert len(spans) == 8 * ROUNDS
    overlaps = [(s, t) for s, t in zip(spans, spans[1:]) if t[0] < s[1]]
    assert not overlaps, f"two processes held the lock at once: {overlaps}"


def _hold(out: str, ready) -> None:
    with ckpt_mod.training_lock(out):
        ready.set()
        time.sleep(60)


def test_a_held_lock_is_refused_by_name_and_freed_when_its_holder_is_killed(tmp_path):
    out = tmp_path / "m.pt"
    ready = FORK.Event()
    holder = FORK.Process(target=_hold, args=(str(out), ready))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(CheckpointError, match=r"m\.pt is being trained by another process.*m\.pt\.lock"):
            with ckpt_mod.training_lock(out):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
    assert holder.exitcode == -signal.SIGKILL
    with ckpt_mod.training_lock(out) as lock:  # no stale lock: the next process takes it at once
        assert lock == tmp_path / "m.pt.lock"


def test_a_second_thread_is_refused_and_a_leftover_pid_file_is_no_lock(tmp_path):
    out = tmp_path / "m.pt"
    (tmp_path / "m.pt.lock").write_text(str(os.getppid()))  # an old-style lock naming a live pid
    refused = []

    def second():
        try:
            with ckpt_mod.training_lock(out):
                pass
        except CheckpointError as exc:
            refused.append(str(exc))

    with ckpt_mod.training_lock(out):
        t = threading.Thread(target=second)
        t.start()
        t.join()
    assert len(refused) == 1 and "another process" in refused[0]
    second()  # released: taken again
    assert len(refused) == 1

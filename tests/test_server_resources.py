"""How the app server shares its process between many sessions (issue 18).

``app_ui.shell.release_memory`` runs when Streamlit drops a session; it must return the C
heap's free pages that threads left in their malloc arenas, which ``gc.collect`` alone does not.
``one_torch_thread`` makes every torch computation of the app single-threaded unless the user
says otherwise; Streamlit's full collection after every script run is switched off.
"""

from __future__ import annotations

import ctypes.util
import gc
import os
import subprocess
import sys
import tomllib
import threading
from pathlib import Path

import numpy as np
import pytest

from app_ui import shell

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or "libc" not in str(ctypes.util.find_library("c")),
                           reason="malloc_trim is glibc's")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def fragment_a_thread_arena(mb: int = 160) -> list:
    """What a script run does to the heap: a worker thread allocates many mid-sized arrays
    (below the mmap threshold, so from its own arena) and frees most of them, keeping every
    16th alive so that the arena cannot shrink from its top. Returns the survivors."""
    kept: list = []

    def work():
        chunks = [np.ones(100_000 // 8) for _ in range(mb * 10)]   # 100 kB each, touched
        kept.extend(chunks[::16])
        chunks.clear()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    return kept


@glibc
def test_release_memory_returns_freed_arena_pages_to_the_os():
    gc.collect()
    base = rss_mb()
    kept = fragment_a_thread_arena()
    gc.collect()
    held = rss_mb() - base
    assert held > 100, f"the fragmented arena holds only {held:.0f} MB: the test's premise does not hold here"
    assert shell.release_memory() is True
    after = rss_mb() - base
    # 15/16 of it was free: at least half the held memory goes back (without the trim, none does)
    assert after < 0.5 * held, f"RSS above start: {held:.0f} MB before release_memory, {after:.0f} MB after"
    assert len(kept) == 100


def test_release_memory_without_malloc_trim_only_collects(monkeypatch):
    monkeypatch.setattr(shell.sys, "platform", "darwin")
    assert shell.release_memory() is False


def test_every_session_registers_the_release_hook():
    """run_router asks for the session-scoped resource whose release calls release_memory."""
    src = Path(shell.__file__).read_text()
    assert "_session_memory()" in src.split("def run_router", 1)[1].split("def ", 1)[0]
    assert 'scope="session"' in src and "on_release=lambda _: release_memory()" in src


def _torch_threads_after_one_torch_thread(env: dict) -> int:
    code = ("from app_ui.shell import one_torch_thread; one_torch_thread(); import torch; "
            "print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(shell.__file__).parents[1], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return int(out.stdout.split()[-1])


def test_the_app_runs_torch_on_one_thread_unless_the_user_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    assert _torch_threads_after_one_torch_thread(env) == 1
    assert _torch_threads_after_one_torch_thread({**env, "OMP_NUM_THREADS": "2"}) == 2


def test_app_py_limits_torch_threads_before_the_router_runs():
    src = (Path(shell.__file__).parents[1] / "app.py").read_text()
    assert src.index("one_torch_thread()") < src.index("run_router()")
    assert "import torch" not in src


def test_streamlit_does_not_collect_after_every_script_run():
    cfg = tomllib.loads((Path(shell.__file__).parents[1] / ".streamlit" / "config.toml").read_text())
    assert cfg["runner"]["postScriptGC"] is False


def test_app_py_runs_without_a_session():
    """Bare `python app.py` (what multiprocessing's spawn does when app.py was the main module,
    as after an AppTest) must not fail on the session-scoped release hook."""
    root = Path(shell.__file__).parents[1]
    out = subprocess.run([sys.executable, "app.py"], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]

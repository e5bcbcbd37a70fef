"""The server hands a closed session's memory back (issue 18: RSS after many sessions closed).

``app_ui.shell.release_memory`` runs when Streamlit drops a session; it must return the C
heap's free pages that threads left in their malloc arenas, which ``gc.collect`` alone does not.
"""

from __future__ import annotations

import ctypes.util
import gc
import sys
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

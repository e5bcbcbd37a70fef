"""Background training yields the CPU to interactive work.

The app trains on background threads of its own server process (a live co-localisation run, the
failure-mode lab). On a small machine shared by many browser sessions those threads would take a
full core from every slider rerun. :func:`lower_this_thread` raises the calling thread's nice
value (Linux: nice is per thread, and threads it starts later — torch's OpenMP workers — inherit
it), so the scheduler runs a rerun first and the training in the time left over; on an idle
machine the training runs at full speed as before.
"""

from __future__ import annotations

import os
import threading

__all__ = ["BACKGROUND_NICE", "lower_this_thread"]

#: how much nicer than the server a background training thread runs (0 … 19)
BACKGROUND_NICE = 10


def lower_this_thread(by: int = BACKGROUND_NICE) -> int | None:
    """Raise the calling thread's nice value by ``by`` (capped at 19) and return the new value,
    or None where the platform has no per-thread priority (then nothing changes)."""
    if not 0 <= by <= 19:
        raise ValueError(f"by must be in 0 … 19, got {by}")
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return None
    tid = threading.get_native_id()
    try:
        new = min(19, os.getpriority(os.PRIO_PROCESS, tid) + by)
        os.setpriority(os.PRIO_PROCESS, tid, new)  # PRIO_PROCESS with a thread id: that thread only (Linux)
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:
        return None

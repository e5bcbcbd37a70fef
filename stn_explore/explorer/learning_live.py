"""The failure-mode lab's live runs: :func:`~stn_explore.explorer.learning_lab.train_lab` on a
background thread that a page polls and can always stop (no Streamlit here).

Convention: see CONVENTIONS.md and :mod:`stn_explore.explorer.learning_lab`.
"""

from __future__ import annotations

import threading
import weakref

from ..experiments.priority import lower_this_thread
from .learning_lab import LabConfig, LabData, train_lab

__all__ = ["MAX_LIVE_RUNS", "LabRun", "LabSlot"]

#: live runs training at the same time in one process (see :class:`LabSlot`)
MAX_LIVE_RUNS = 2


class LabRun:
    """:func:`train_lab` on a background thread, for an interactive session.

    ``start()`` returns at once; ``latest`` is a copy of the history at the newest record (None
    before the first), ``error`` the exception text if the run failed. ``stop()`` ends the run
    before its next iteration (within one step, ≈ 15–60 ms here) and ``join()`` waits for it.
    Torch releases the interpreter lock in its kernels, so the server stays responsive (the thread
    also runs nicer than the server: :func:`~stn_explore.experiments.priority.lower_this_thread`), and the
    thread trains with ``cfg.threads`` threads of its own (set per thread)."""

    def __init__(self, cfg: LabConfig, data: LabData):
        self.cfg = cfg.check()
        self._data = data
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: dict | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="learning-lab", daemon=True)

    def start(self) -> "LabRun":
        self._thread.start()
        return self

    def _record(self, hist: dict) -> None:
        snap = {k: (list(v) if isinstance(v, list) else v) for k, v in hist.items()}
        with self._lock:
            self._latest = snap

    def _run(self) -> None:
        lower_this_thread()  # slider reruns of every session come first (issue 18)
        try:
            final = train_lab(self.cfg, self._data, on_record=self._record, should_stop=self._stop.is_set)
            self._record({**final, "panel": list(final["panel"]), "finished": True})
        except Exception as exc:  # reported to the page, never raised on the server thread
            self.error = f"{type(exc).__name__}: {exc}"

    def stop(self, wait: float = 0.0) -> None:
        self._stop.set()
        if wait:
            self.join(wait)

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def latest(self) -> dict | None:
        with self._lock:
            return self._latest

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class LabSlot:
    """At most one :class:`LabRun` per owner (a browser session): starting a new run stops the
    previous one; ``stop()`` stops the current one. Owned by a session-scoped cache on the page,
    whose release calls ``stop()``, so a closed tab does not leave a run training. At most
    :data:`MAX_LIVE_RUNS` runs train at once in the process (all slots together): a two-core
    server shared by many sessions would otherwise crawl."""

    _slots: "weakref.WeakSet[LabSlot]" = weakref.WeakSet()

    def __init__(self):
        self.run: LabRun | None = None
        LabSlot._slots.add(self)

    @classmethod
    def live_runs(cls) -> int:
        return sum(1 for s in list(cls._slots) if s.run is not None and s.run.running and not s.run.stop_requested)

    def start(self, cfg: LabConfig, data: LabData) -> LabRun:
        """Start a run (stopping this slot's previous one); raises RuntimeError when
        :data:`MAX_LIVE_RUNS` other runs are training."""
        self.stop()
        if self.live_runs() >= MAX_LIVE_RUNS:
            raise RuntimeError(f"{MAX_LIVE_RUNS} live runs are already training on this server; try again shortly")
        self.run = LabRun(cfg, data).start()
        return self.run

    def stop(self, wait: float = 0.0) -> None:
        if self.run is not None:
            self.run.stop(wait)

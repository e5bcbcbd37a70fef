"""A run on a background thread, for an interactive session (the /colocalisation page).

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

import time

from ..priority import lower_this_thread
from .curriculum import ColocConfig
from .training import train


class LiveRun:
    """A co-localisation run on a background thread, for an interactive session.

    ``start()`` returns at once; ``latest`` is the newest recorded checkpoint dict (None before
    the first record), ``done``/``error`` tell how it ended, ``stop()`` asks it to end at the
    next recorded iteration (at most ``cfg.record_every`` iterations later), so a stopped run
    ends on a recorded frame and keeps everything recorded so far. Torch releases the
    interpreter lock in its kernels, so other work in the process goes on while it trains, and
    the thread runs nicer than the server (:func:`~stn_explore.experiments.priority.lower_this_thread`),
    so that work comes first on a busy machine.
    """

    def __init__(self, cfg: ColocConfig, train_digits, test_digits):
        import threading

        self.cfg = cfg.check()
        self._digits = (train_digits, test_digits)
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"coloc-live-{cfg.digit}", daemon=True)
        self._latest: dict | None = None
        self._steps = 0          # iterations done (train() asks should_stop once after each)
        self.result: dict | None = None
        self.error: str | None = None
        self.started = time.time()
        self.ended: float | None = None

    def start(self) -> "LiveRun":
        self._thread.start()
        return self

    def _record(self, ckpt: dict) -> None:
        with self._lock:
            self._latest = ckpt

    def _run(self) -> None:
        lower_this_thread()  # slider reruns of every session come first (issue 18)
        try:
            res = train(self.cfg, train_digits=self._digits[0], test_digits=self._digits[1], progress=False,
                        on_record=self._record, should_stop=self._should_stop, log=lambda *a: None)
            with self._lock:
                self._latest = self.result = res
        except Exception as exc:  # reported to the page, never raised on the server thread
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = time.time()

    def _should_stop(self) -> bool:
        """Called by train() after every iteration: stop only once asked and the iteration just
        done was recorded."""
        self._steps += 1
        if self._abandon.is_set():
            return True
        if not self._stop.is_set():
            return False
        latest = self.latest
        return latest is not None and int(latest["iteration"]) == self._steps

    def stop(self) -> None:
        self._stop.set()

    def abandon(self) -> None:
        """End after the current iteration, recorded or not: nobody is watching any more
        (the page's session ended, e.g. its browser tab closed)."""
        self._abandon.set()
        self._stop.set()

    @property
    def iteration(self) -> int:
        """Iterations done so far (records come every ``cfg.record_every``)."""
        return self._steps

    @property
    def stopping(self) -> bool:
        """Asked to stop, still running to its next recorded iteration."""
        return self._stop.is_set() and self.running

    @property
    def seconds(self) -> float:
        """Wall-clock seconds since start, until it ended."""
        return (self.ended or time.time()) - self.started

    @property
    def latest(self) -> dict | None:
        with self._lock:
            return self._latest

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and (self.result is not None or self.error is not None)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

"""A run on a background thread, for an interactive session (the /colocalisation page).

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

import time

from .curriculum import ColocConfig
from .training import train


class LiveRun:
    """A co-localisation run on a background thread, for an interactive session.

    ``start()`` returns at once; ``latest`` is the newest recorded checkpoint dict (None before
    the first record), ``done``/``error`` tell how it ended, ``stop()`` asks it to end after
    the current iteration (the result keeps everything recorded so far). Torch releases the
    interpreter lock in its kernels, so other work in the process goes on while it trains.
    """

    def __init__(self, cfg: ColocConfig, train_digits, test_digits):
        import threading

        self.cfg = cfg.check()
        self._digits = (train_digits, test_digits)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"coloc-live-{cfg.digit}", daemon=True)
        self._latest: dict | None = None
        self.result: dict | None = None
        self.error: str | None = None
        self.started = time.time()

    def start(self) -> "LiveRun":
        self._thread.start()
        return self

    def _record(self, ckpt: dict) -> None:
        with self._lock:
            self._latest = ckpt

    def _run(self) -> None:
        try:
            res = train(self.cfg, train_digits=self._digits[0], test_digits=self._digits[1], progress=False,
                        on_record=self._record, should_stop=self._stop.is_set, log=lambda *a: None)
            with self._lock:
                self._latest = self.result = res
        except Exception as exc:  # reported to the page, never raised on the server thread
            self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._stop.set()

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

"""Background training threads run nicer than the server (issue 18: a live run must not stall
the slider reruns of other sessions)."""

from __future__ import annotations

import os
import threading

import pytest

from stn_explore.experiments import priority

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority") or os.uname().sysname != "Linux",
                                reason="per-thread nice values are a Linux feature")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.update(value=fn()))
    t.start()
    t.join(30)
    return out["value"]


def test_lowers_only_the_calling_thread():
    base = _nice()
    seen = _in_thread(lambda: (priority.lower_this_thread(), _nice()))
    assert seen == (min(19, base + priority.BACKGROUND_NICE),) * 2
    assert _nice() == base  # the server's own threads keep their priority


def test_rejects_out_of_range():
    with pytest.raises(ValueError, match="0 … 19"):
        priority.lower_this_thread(20)


def test_coloc_live_run_trains_on_a_nicer_thread(monkeypatch):
    from stn_explore.experiments.colocalisation import live
    from stn_explore.experiments.colocalisation.curriculum import ColocConfig

    seen = {}

    def fake_train(cfg, **kw):
        seen["nice"] = _nice()
        return {"iteration": 0}

    monkeypatch.setattr(live, "train", fake_train)
    run = live.LiveRun(ColocConfig(), None, None).start()
    run.join(30)
    assert run.error is None
    assert seen["nice"] == min(19, _nice() + priority.BACKGROUND_NICE)


def test_failure_lab_run_trains_on_a_nicer_thread(monkeypatch):
    from stn_explore.explorer import learning_live
    from stn_explore.explorer.learning_lab import LabConfig

    seen = {}

    def fake_train_lab(cfg, data, **kw):
        seen["nice"] = _nice()
        return {"panel": []}

    monkeypatch.setattr(learning_live, "train_lab", fake_train_lab)
    run = learning_live.LabRun(LabConfig(), None).start()
    run.join(30)
    assert run.error is None
    assert seen["nice"] == min(19, _nice() + priority.BACKGROUND_NICE)

"""/learning in a real browser: ▶ Play makes the fit step on its own (the fragment's run_every
ticks), Pause stops it for good, and the lab's live run starts, reports and stops at once."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import screenshot, wait_idle

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

STEP = re.compile(r"Step (\d+) ·")


def steps(page) -> int:
    m = STEP.search(page.locator('[data-testid="stMainBlockContainer"]').inner_text())
    return int(m.group(1)) if m else -1


def test_fit_plays_and_pauses_and_the_lab_starts_and_stops(page, server):
    page.goto(server["url"] + "/learning")
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_role("tab", name="Fitting θ").click()
    page.get_by_role("button", name="local minimum (150°)").click()   # keeps moving for ~300 steps
    wait_idle(page)
    assert steps(page) == 0
    page.get_by_role("button", name="▶ Play").click()
    deadline = time.time() + 60
    while steps(page) < 15 and time.time() < deadline:             # frames arrive without any input
        page.wait_for_timeout(200)
    assert steps(page) >= 15
    page.get_by_role("button", name="❚❚ Pause").click()
    expect(page.get_by_role("button", name="▶ Play")).to_be_visible()
    wait_idle(page)                                                 # paused: the page goes idle
    paused = steps(page)
    page.wait_for_timeout(1500)
    assert steps(page) == paused                                    # and no tick moves it any more
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "learning_fit_paused")

    page.get_by_role("tab", name="Failure-mode lab").click()
    page.locator(".st-key-learn_l_start button").click()   # (the toolbar has a Stop of its own)
    expect(page.get_by_text(re.compile(r"iteration \d+ of 1000"))).to_be_visible(timeout=60_000)
    page.locator(".st-key-learn_l_stop button").click()
    expect(page.get_by_text("Stopped at iteration", exact=False)).to_be_visible(timeout=15_000)
    expect(page.locator(".st-key-learn_l_start button")).to_be_enabled()
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "learning_lab_stopped")

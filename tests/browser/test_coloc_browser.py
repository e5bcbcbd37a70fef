"""/colocalisation in a real browser: the recorded animation plays (the boxes move frame by
frame) and a live training run starts, reports progress and stops."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import screenshot
from .test_widths import settle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not list((ROOT / "checkpoints").glob("coloc_*_clean.pt")), reason="needs a committed co-localisation run")]
expect = pytest.importorskip("playwright.sync_api").expect

LINES = """() => { const c = document.querySelector('[data-testid="stPlotlyChart"]');
    return [...c.querySelectorAll('.scatterlayer .trace path.js-line')].map(e => e.getAttribute('d')); }"""


def test_animation_plays_and_live_training_starts_and_stops(page, server):
    page.goto(server["url"] + "/colocalisation")
    settle(page, "/colocalisation")
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    expect(chart.locator(".main-svg").first).to_be_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    before = page.evaluate(LINES)
    chart.locator(".updatemenu-button").filter(has_text="Play").click()
    # frames advance: the predicted boxes (and the marker on the curves) move
    page.wait_for_function(f"(old) => JSON.stringify(({LINES})()) !== JSON.stringify(old)", arg=before)
    screenshot(page, "colocalisation_playing")

    page.get_by_role("button", name="Start").click()
    expect(page.get_by_text("live run 1: digit", exact=False).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"iteration [1-9][0-9]* of 400, .* left"))).to_be_visible(timeout=60_000)  # time left
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("stopped at iteration", exact=False)).to_be_visible(timeout=60_000)
    # the stopped run is offered beside the shipped one
    expect(page.get_by_text("live run 1 (stopped at", exact=False)).to_be_visible(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "colocalisation_live_stopped")

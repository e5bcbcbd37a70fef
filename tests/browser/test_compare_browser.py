"""/compare in a real browser: pick a task, change the extra rotation, predictions follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import screenshot, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
    reason="needs the committed RTS checkpoints")]
expect = pytest.importorskip("playwright.sync_api").expect


def test_extra_rotation_updates_both_predictions(page, server):
    page.goto(server["url"] + "/compare?cmp_task=rts&cmp_index=7")
    wait_idle(page)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(4)
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                              .every(c => c.querySelector('.main-svg'))""")
    assert page.locator('[data-testid="stException"]').count() == 0
    v_before = charts.nth(1).locator("image").first.get_attribute("href")
    bars_before = charts.nth(2).locator(".point path").evaluate_all("els => els.map(e => e.getAttribute('d'))")
    rotation = page.locator('[data-testid="stSlider"]').filter(has_text="rotation").locator('input[type="range"]')
    rotation.focus()
    page.keyboard.press("End")  # one key press: rotate the digit by 180°
    expect(rotation).to_have_value("180")
    expect(charts.nth(1).locator("image").first).not_to_have_attribute("href", v_before)
    page.wait_for_function("""(old) => { const c = document.querySelectorAll('[data-testid="stPlotlyChart"]')[2];
        const d = [...c.querySelectorAll('.point path')].map(e => e.getAttribute('d'));
        return JSON.stringify(d) !== JSON.stringify(old); }""", arg=bars_before)
    screenshot(page, "compare_rotated")

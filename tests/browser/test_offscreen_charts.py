"""Charts out of view are not rendered until they scroll into view (issue 18): without it every
slider move's repaint re-layerised all of /compare's chart SVGs (app_ui.shell.PAGE_CSS; the
CPU it saves per move is printed by ``python -m benchmarks.bench_load --cost N``)."""

from __future__ import annotations

import pytest

from .conftest import wait_idle
from .test_widths import CHARTS_DRAWN

expect = pytest.importorskip("playwright.sync_api").expect

#: per chart: [content-visibility, its plot's width and height once drawn]
CHART_STATE = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].map((c) => {
  const svg = c.querySelector('.main-svg'), r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return [getComputedStyle(c).contentVisibility, Math.round(r.width), Math.round(r.height)]; })"""


def test_charts_out_of_view_skip_rendering_and_draw_when_scrolled_to(page, server):
    page.goto(server["url"] + "/compare?cmp_task=rts")
    wait_idle(page)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.nth(3).wait_for()   # "what did the transformer learn?": four charts, below the view
    page.wait_for_function(CHARTS_DRAWN)
    assert all(s[0] == "auto" for s in page.evaluate(CHART_STATE)), page.evaluate(CHART_STATE)
    last = charts.last
    last.scroll_into_view_if_needed()
    page.wait_for_function("""() => { const c = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].pop();
        const r = c.querySelector('.main-svg')?.getBoundingClientRect(); return r && r.width > 100 && r.height > 100; }""")
    assert last.locator(".main-svg").first.is_visible()
    assert page.locator('[data-testid="stException"]').count() == 0

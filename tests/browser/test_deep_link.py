"""A shared deep link must work as the very first request to a freshly started server."""

from __future__ import annotations

import pytest

from .conftest import screenshot, wait_idle

pytestmark = pytest.mark.browser


def test_deep_link_first_request_on_fresh_server(fresh_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(fresh_server["url"] + "/playground?pg_angle=30&pg_kind=affine")
        wait_idle(page)
        # the θ sliders live in the warp_editor component: wait until it has drawn
        page.locator(".stn-editor[data-painted]").wait_for()
        assert page.locator("h1").first.inner_text() == "θ playground"
        assert "pg_angle=30" in page.url
        # the router ran: its navigation titles, not the file names, are in the sidebar
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "θ playground" in nav and "app" not in nav.split()
        assert page.locator('[role="dialog"]').count() == 0
        value = page.get_by_role("slider", name="rotation (°)", exact=True).input_value()
        assert float(value) == 30.0
        screenshot(page, "deep_link")
    finally:
        page.close()



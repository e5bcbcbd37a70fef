"""Browser-test fixtures (reused by every page's browser tests): a real `streamlit run`
server and Playwright on Debian's Chromium; helpers live in harness.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import CHROMIUM, launch_chromium, screenshot, streamlit_server, wait_idle

__all__ = ["screenshot", "wait_idle"]


def _serve(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    with streamlit_server(log_path) as url:
        yield {"url": url, "log": log_path}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The app, started once for the session; its log is kept for assertions."""
    yield from _serve(tmp_path_factory)


@pytest.fixture
def fresh_server(tmp_path_factory):
    """A server that has answered no request yet (for first-request behaviour)."""
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="session")
def browser(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()

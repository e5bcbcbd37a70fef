"""Hostile input in a real browser (issue 18): a decompression bomb uploaded under a file name
full of HTML and Markdown shows one escaped message, runs no script, loads nothing from the
name, and leaves the server up. A live co-localisation run whose tab closes should free its
thread. (A file over the upload limit is tested with AppTest: handing Chromium 21 MB through
Playwright takes most of a minute.)"""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest

from ..test_hostile_uploads import HOSTILE_NAME, REFUSED, gif_bomb, png_bomb
from .conftest import screenshot, wait_idle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


def server_pid(url: str) -> int:
    """The pid of the `streamlit run` serving ``url`` (found by its --server.port)."""
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(args) and port.encode() in args:
                return int(proc.name)
    raise LookupError(f"no streamlit process on port {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def truncated_png() -> bytes:
    return REFUSED["cut.png"][0]()


def test_a_bomb_named_with_html_is_one_escaped_message(page, server):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server["url"])
    wait_idle(page)
    page.goto(server["url"] + "/playground?pg_source=upload")
    wait_idle(page)
    chooser = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    for data, mime, words in ((truncated_png(), "image/png", "truncated"),
                              (png_bomb(20_000, 20_000), "image/png", "megapixels"),
                              (gif_bomb(), "image/gif", "4,295 megapixels")):
        chooser.set_input_files({"name": HOSTILE_NAME, "mimeType": mime, "buffer": data})
        alert = page.locator('[data-testid="stAlertContentError"]').first
        expect(alert).to_contain_text(words, timeout=30_000)
        wait_idle(page)
        text = alert.inner_text()
        assert "_img src_x onerror" in text and "<img" not in text
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.evaluate("window.__pwned") is None and page.evaluate("typeof alert") == "function"
        assert page.locator('a[href*="127.0.0.1:9"], img[src*="127.0.0.1:9"], img[src="x"]').count() == 0
        assert not [u for u in requests if "127.0.0.1:9/" in u]
    screenshot(page, "hostile_upload")
    with urllib.request.urlopen(server["url"] + "/_stcore/health", timeout=10) as r:
        assert r.status == 200
    assert "Traceback" not in Path(server["log"]).read_text()


class StillTraining(AssertionError):
    """The one failure the tab-close test expects today (any other is a real failure)."""


@pytest.mark.skipif(not list((ROOT / "checkpoints").glob("coloc_*_clean.pt")),
                    reason="needs a committed co-localisation run")
def test_closing_the_tab_of_a_live_run_frees_its_thread(browser, fresh_server):
    # a server of its own, stopped after the test: a run left training must not slow the other tests
    url = fresh_server["url"]
    pid = server_pid(url)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(url + "/colocalisation")                  # a deep link works as the first request
    wait_idle(page, timeout=60_000)
    start = page.locator(".st-key-coloc_start").get_by_role("button", name="Start", exact=True)
    start.click()                                       # the default run: minutes of training
    expect(page.locator(".st-key-coloc_stop").get_by_role("button", name="Stop", exact=True)).to_be_enabled(
        timeout=60_000)
    time.sleep(2)
    c0 = cpu_seconds(pid)
    time.sleep(4)
    training = cpu_seconds(pid) - c0
    assert training > 0.4, f"the live run does not seem to train ({training:.2f} CPU-s in 4 s)"
    ctx.close()                                         # the tab closes while the run trains
    deadline, after = time.monotonic() + 12, None       # a stop request ends it at its next record
    while time.monotonic() < deadline:
        c0 = cpu_seconds(pid)
        time.sleep(2)
        after = cpu_seconds(pid) - c0
        if after < min(0.15, training / 8):
            return
    raise StillTraining(f"12 s after its tab closed the server still used {after:.2f} CPU-s per 2 s "
                        f"({training:.2f} per 4 s while the tab was open): the live run still trains")

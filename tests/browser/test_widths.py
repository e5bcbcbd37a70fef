"""Every page at 800 px (sidebar open: ≈ 470 px of content) and at 1400 px: no clipped text in
titles, buttons and select boxes, no chart wider than its place, no exception; and on
/colocalisation, no blank panels while the recording plays.

Clipped means an element whose content is wider than its box (``scrollWidth > clientWidth``),
or a plotly title or chart reaching past its drawing. docs/make_screenshots.py uses
:func:`open_page` to photograph the same views.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from app_ui.shell import PAGES

from .conftest import wait_idle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

WIDTHS = (800, 1400)
#: every page of the app's navigation, by url path ("" is Home)
PATHS = [url for _, _, _, url in PAGES]

CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                       .every(c => c.querySelector('.main-svg'))"""

# Titles (headings, bold card titles, plotly titles), buttons, select boxes, widget labels.
CLIPPED = r"""() => {
  const out = [];
  const name = (el) => (el.tagName === 'INPUT' ? el.value : (el.innerText || el.textContent || '')).trim().slice(0, 60);
  const visible = (el) => el.offsetParent !== null && el.clientWidth > 0;
  const roots = ['h1', 'h2', 'h3', 'h4', '[data-testid="stHeading"]', '[data-testid="stMarkdownContainer"] strong',
                 '[data-testid="stButton"]', '[data-testid="stSelectbox"]', '[data-testid="stWidgetLabel"]',
                 '[data-testid="stSegmentedControl"]', '[data-testid="stRadio"] label'];
  for (const root of document.querySelectorAll(roots.join(','))) {
    for (const el of [root, ...root.querySelectorAll('*')]) {
      if (el.closest('svg') || !visible(el) || !name(el)) continue;  // text only (a select box's is its input's value)
      if (el.scrollWidth > el.clientWidth + 1) out.push(`text: "${name(el)}" (${el.scrollWidth} > ${el.clientWidth} px)`);
    }
  }
  for (const c of document.querySelectorAll('[data-testid="stPlotlyChart"]')) {
    const svg = c.querySelector('svg.main-svg');
    if (!svg || !visible(c)) continue;
    const box = c.getBoundingClientRect(), w = svg.getBoundingClientRect().width;
    const parent = c.parentElement.getBoundingClientRect();
    if (w > box.width + 1 || box.right > parent.right + 1)
      out.push(`chart ${c.querySelector('.gtitle')?.textContent || ''} wider than its place (${Math.round(w)} px in ${Math.round(parent.width)} px)`);
    for (const t of c.querySelectorAll('.gtitle')) {
      const r = t.getBoundingClientRect(), s = svg.getBoundingClientRect();
      if (r.left < s.left - 1 || r.right > s.right + 1) out.push(`plotly title "${t.textContent}" clipped`);
    }
  }
  return out;
}"""


SETTLED = """(path) => document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state')
                         === 'notRunning' && document.querySelector('h1') && location.pathname === path"""


def open_page(browser, url: str, width: int, height: int = 1000):
    """A fresh tab at ``width``×``height`` on ``url``, its script done (after the router's
    hand-over on a deep link) and every chart drawn."""
    from urllib.parse import urlparse

    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    settle(page, urlparse(url).path or "/")
    return ctx, page


def settle(page, path: str) -> None:
    """Wait until the page at ``path`` has run (a fresh tab on a deep link first runs the router
    and then the page: ``wait_idle`` alone can return before either) and its charts are drawn."""
    for _ in range(2):  # settled twice, half a second apart: not a pause between two runs
        page.wait_for_function(SETTLED, arg=path)
        page.wait_for_timeout(500)
    wait_idle(page, 120_000)
    page.wait_for_function(CHARTS_DRAWN)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", PATHS)
def test_page_fits_the_window(browser, server, path, width):
    ctx, page = open_page(browser, f"{server['url']}/{path}", width)
    try:
        errors = page.locator('[data-testid="stException"]')
        assert errors.count() == 0, errors.all_inner_texts()
        assert page.evaluate(CLIPPED) == []
    finally:
        ctx.close()


# One flickering frame is enough to fail: the panel image must never be taken out of the page
# while the recording plays, and every photographed frame must show the (dark) digit panels.
WATCH_IMAGES = """() => { const c = document.querySelector('[data-testid="stPlotlyChart"]');
  window.__removed = 0;
  new MutationObserver(ms => ms.forEach(m => m.removedNodes.forEach(n => {
      if (n.nodeName === 'image' || (n.querySelector && n.querySelector('image'))) window.__removed++; })))
    .observe(c, {childList: true, subtree: true});
  return true; }"""
BOXES = """() => [...document.querySelector('[data-testid="stPlotlyChart"]')
                 .querySelectorAll('.scatterlayer .trace path.js-line')].map(e => e.getAttribute('d')).join()"""


@pytest.mark.parametrize("width", WIDTHS)
def test_colocalisation_panels_never_blank_while_playing(browser, server, width):
    from PIL import Image

    if not list((ROOT / "checkpoints").glob("coloc_*_clean.pt")):
        pytest.skip("needs a committed co-localisation run")
    ctx, page = open_page(browser, f"{server['url']}/colocalisation", width)
    try:
        chart = page.locator('[data-testid="stPlotlyChart"]').first
        mosaic = chart.locator("xpath=.//*[local-name()='image']").first  # the panels (an SVG <image>)
        expect(mosaic).to_have_attribute("href", re.compile(r"^data:image/png"))
        play = chart.locator(".updatemenu-button").filter(has_text="Play")
        assert play.bounding_box()["y"] + play.bounding_box()["height"] <= 1000, "Play is below the fold"
        buttons, slider = chart.locator(".updatemenu-container").bounding_box(), \
            chart.locator(".slider-container").bounding_box()
        assert buttons["y"] + buttons["height"] <= slider["y"] or slider["y"] + slider["height"] <= buttons["y"] \
            or buttons["x"] + buttons["width"] <= slider["x"], "Play/Pause overlap the slider"
        mosaic.scroll_into_view_if_needed()
        box = mosaic.bounding_box()
        inner = {"x": box["x"] + 0.1 * box["width"], "y": box["y"] + 0.1 * box["height"],
                 "width": 0.8 * box["width"], "height": 0.8 * box["height"]}
        page.evaluate(WATCH_IMAGES)
        before = page.evaluate(BOXES)
        play.click()
        page.wait_for_function(f"(old) => ({BOXES})() !== old", arg=before)
        dark = []
        for _ in range(8):  # the digit panels are black: a blank (white) frame is bright
            shot = Image.open(io.BytesIO(page.screenshot(clip=inner, animations="allow"))).convert("L")
            dark.append(sum(shot.getdata()) / (shot.width * shot.height) < 128)
            page.wait_for_timeout(150)
        moved = page.evaluate(BOXES) != before
        assert page.evaluate("() => window.__removed") == 0, "the panel image was re-rendered while playing"
        assert all(dark), f"blank panels in {dark.count(False)} of {len(dark)} frames"
        assert moved
        assert page.evaluate(CLIPPED) == []
    finally:
        ctx.close()

"""The app in a real browser: pages load, the playground reacts, uploads show, URLs share."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from .conftest import screenshot, wait_idle

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

ERROR_SELECTORS = '[data-testid="stException"]'


def open_page(page, server, path: str):
    page.goto(server["url"] + path)
    wait_idle(page)
    page.wait_for_selector('[data-testid="stPlotlyChart"], [data-testid="stMarkdown"]')
    # every chart has drawn (plotly renders asynchronously after the script finished)
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                                  .every(c => c.querySelector('.main-svg image, .main-svg .point'))""")
    return page


def chart(page, n: int):
    return page.locator('[data-testid="stPlotlyChart"]').nth(n)


def slider_input(page, label: str):
    """A θ slider of the playground's component (a labelled ``<input type="range">``)."""
    return page.get_by_role("slider", name=label, exact=True)


def v_pixels(page) -> list:
    return page.locator(".stn-editor canvas.stn-v").evaluate(
        "(c) => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)")


@pytest.mark.parametrize("path,name", [("/", "home"), ("/playground", "playground"), ("/compare", "compare"),
                                       ("/paper", "paper"),
                                       ("/colocalisation", "colocalisation")])
def test_page_loads_without_exception(page, server, path, name):
    open_page(page, server, path)
    assert page.locator(ERROR_SELECTORS).count() == 0
    assert page.locator("h1").first.inner_text()
    screenshot(page, name)


def test_rotation_slider_changes_output_pixels_and_url(page, server):
    open_page(page, server, "/playground")
    editor = page.locator(".stn-editor")
    expect(editor).to_have_attribute("data-confirmed", re.compile("."), timeout=60_000)
    before = v_pixels(page)
    handle = slider_input(page, "rotation (°)")
    # one step at a time, each confirmed by the server (θ[0,0] = cos angle) before the next key
    for step in range(1, 6):
        handle.focus()
        page.keyboard.press("ArrowRight")
        expect(page.get_by_label("θ[0,0]")).to_have_value(f"{np.cos(np.radians(step)):.4f}")
        wait_idle(page)
    expect(page).to_have_url(re.compile(r"pg_angle=5(\.0)?(&|$)"))
    expect(page.locator('[data-testid="stCode"]')).to_contain_text("0.9962")
    assert v_pixels(page) != before
    params = parse_qs(urlparse(page.url).query)
    assert float(params["pg_angle"][0]) == 5.0
    screenshot(page, "playground_rotated")


def test_shared_url_restores_the_view(page, server):
    open_page(page, server, "/playground?pg_kind=projective&pg_c0x=-0.5&pg_out_h=40")
    assert page.locator(ERROR_SELECTORS).count() == 0
    assert page.get_by_role("radio", name="projective").is_checked()
    expect(page.locator(".stn-editor .stn-vtitle")).to_have_text("V (40×28)")
    expect(slider_input(page, "top-left x")).to_have_value("-0.5")
    screenshot(page, "playground_projective")


def png_bytes(arr) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_uploaded_png_appears_and_bad_file_errors(page, server):
    open_page(page, server, "/playground?pg_source=upload")
    img = np.zeros((40, 60, 3), np.uint8)
    img[10:30, 20:40] = (255, 128, 0)
    page.locator('input[type="file"]').set_input_files(
        files=[{"name": "square.png", "mimeType": "image/png", "buffer": png_bytes(img)}])
    page.get_by_text(re.compile(r"square\.png 60×40")).wait_for()
    wait_idle(page)
    assert page.locator(ERROR_SELECTORS).count() == 0
    screenshot(page, "playground_upload")
    page.locator('input[type="file"]').set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"no image here"}])
    page.get_by_text("not an image").wait_for()
    assert page.locator(ERROR_SELECTORS).count() == 0
    expect(page.locator(".stn-editor")).to_have_attribute("data-confirmed", re.compile("."), timeout=60_000)


def test_server_log_has_no_errors_or_warnings(page, server):
    open_page(page, server, "/playground")
    log = server["log"].read_text()
    bad = [ln for ln in log.splitlines() if re.search(r"Traceback|Error|WARNING|Warning", ln)]
    assert not bad, bad


def test_hover_shows_pixel_coordinates_and_value(page, server):
    # the plotly server view is off by default (page settle time); its toggle is in the URL
    open_page(page, server, "/playground?pg_source=test+pattern&pg_out_h=28&pg_out_w=28&pg_plotly=true")
    v = chart(page, 1)
    v.locator("image").wait_for()
    v.scroll_into_view_if_needed()
    box = v.locator(".nsewdrag").first.bounding_box()
    # near the top-left of V (identity warp of the checkerboard): its bright marker square
    cell = box["width"] / 28  # V is 28×28 (drawn about 300 px wide)
    page.mouse.move(box["x"] + 1.3 * cell, box["y"] + 1.3 * cell)
    page.mouse.move(box["x"] + 1.5 * cell, box["y"] + 1.5 * cell)
    label = v.locator(".hoverlayer").filter(has_text="col")
    expect(label).to_contain_text(re.compile(r"col [0-2], row [0-2]"))
    expect(label).to_contain_text("value 255")

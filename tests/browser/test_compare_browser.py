"""/compare in a real browser: pick a task, change the extra rotation, predictions follow.
(The live view's tolerance against the server: test_compare_live.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import screenshot, wait_idle
from .test_widths import CHARTS_DRAWN, CLIPPED, open_page

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "checkpoints" / "rts_st-cnn_affine.pt").is_file(),
    reason="needs the committed RTS checkpoints")]
expect = pytest.importorskip("playwright.sync_api").expect


SERVER_DRAWN = "() => window.__stnCompareLive?.status?.settled"
BARS = """els => els.map(e => e.style.height)"""


def rotation_slider(page):
    return page.locator(".cmp-live").get_by_label("rotation (°)", exact=True)


def test_extra_rotation_updates_both_predictions(page, server):
    page.goto(server["url"] + "/compare?cmp_task=rts&cmp_index=7")
    wait_idle(page)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(4)  # four of what the transformer learned (the view is one component)
    page.wait_for_function(CHARTS_DRAWN)
    page.wait_for_function(SERVER_DRAWN)
    assert page.locator('[data-testid="stException"]').count() == 0
    view = page.locator(".cmp-live")
    v_before = view.locator("canvas.cmp-v").evaluate("c => c.toDataURL()")
    bars_before = [view.locator(f".cmp-p{s} .cmp-bar").evaluate_all(BARS) for s in "ab"]
    rotation = rotation_slider(page)
    rotation.focus()
    page.keyboard.press("End")  # one key press: rotate the digit by 180°
    expect(rotation).to_have_value("180")
    page.wait_for_function(SERVER_DRAWN)
    assert view.locator("canvas.cmp-v").evaluate("c => c.toDataURL()") != v_before
    assert all(view.locator(f".cmp-p{s} .cmp-bar").evaluate_all(BARS) != bars_before[i] for i, s in enumerate("ab"))
    expect(view.locator(".cmp-src")).to_have_text("computed by stn_explore on the server")
    screenshot(page, "compare_rotated")


def test_what_the_transformer_learned_panel(page, server):
    page.goto(server["url"] + "/compare?cmp_task=cluttered")
    wait_idle(page)
    expect(page.get_by_role("heading", name="What did the transformer learn?")).to_be_visible()
    verdict = page.locator('[data-testid="stMarkdown"]').filter(has_text="spread across images").first
    expect(verdict).to_be_visible()
    text = verdict.inner_text()
    assert text.startswith(("Undoes", "Collapsed")) and "shift r = " in text, text
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(2)  # one per quantity the cluttered test set knows (the view is a component)
    page.wait_for_function(CHARTS_DRAWN)
    titles = [charts.nth(i).locator("text").evaluate_all(
        "els => els.filter(e => /^x\\d*title$/.test(e.getAttribute('class'))).map(e => e.textContent)")
        for i in (0, 1)]
    assert titles == [["digit centre x"], ["IoU with the digit's box"]], titles  # cluttered: shift + the box
    assert charts.nth(1).locator(".bars .point").count() > 0  # the IoU histogram is drawn
    # the shift panel is one density image, not a marker per test image: a page with thousands of
    # SVG markers re-layerised them all on every slider move (44 ms of Chromium each, issue 18)
    assert charts.nth(0).locator("g.hm image").count() == 1
    assert charts.nth(0).locator("path.point").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "compare_learned")


def stroke(page, canvas, points):
    """Draw one stroke through ``points`` given as fractions (x, y) of the pad."""
    box = canvas.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        for k in range(1, 9):
            page.mouse.move(x0 + (x1 - x0) * k / 8, y0 + (y1 - y0) * k / 8)
    page.mouse.up()


def test_drawn_digit_is_classified_and_clear_resets(page, server):
    page.goto(server["url"] + "/compare?cmp_task=rts&cmp_source=draw+a+digit")
    wait_idle(page)
    canvas = page.locator(".stn-pad canvas.stn-pad-canvas")
    canvas.wait_for()
    expect(page.get_by_text("Draw a digit in the black square")).to_be_visible()
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(0)
    stroke(page, canvas, [(0.5, 0.15), (0.5, 0.85)])  # a "1"
    expect(page.locator(".stn-pad")).to_have_attribute("data-strokes", "1")
    expect(charts).to_have_count(4, timeout=30_000)  # what the transformer learned; the view is a component
    expect(page.get_by_text("as the models see it")).to_be_visible()
    page.wait_for_function(CHARTS_DRAWN)
    page.wait_for_function(SERVER_DRAWN)
    view = page.locator(".cmp-live")
    titles = [view.locator(f".cmp-p{s} figcaption").inner_text() for s in "ab"]
    # a vertical stroke is a "1" to both models (the titles name the predicted class)
    assert [t.split(" (")[0] for t in titles] == ["CNN: 1", "ST-CNN: 1"], titles
    assert page.locator('[data-testid="stException"]').count() == 0
    v_one = view.locator("canvas.cmp-v").evaluate("c => c.toDataURL()")
    stroke(page, canvas, [(0.2, 0.15), (0.5, 0.15)])  # a bar on top: now more like a "7"
    expect(page.locator(".stn-pad")).to_have_attribute("data-strokes", "2")
    page.wait_for_function("""(old) => { const s = window.__stnCompareLive?.server;
        return s && JSON.stringify(s.u) !== old; }""", arg=page.evaluate("() => JSON.stringify(window.__stnCompareLive.server.u)"),
                           timeout=30_000)
    page.wait_for_function(SERVER_DRAWN)
    assert view.locator("canvas.cmp-v").evaluate("c => c.toDataURL()") != v_one
    screenshot(page, "compare_drawn")
    page.locator(".stn-pad-clear").click()
    expect(page.locator(".stn-pad")).to_have_attribute("data-strokes", "0")
    expect(page.get_by_text("Draw a digit in the black square")).to_be_visible(timeout=30_000)
    expect(charts).to_have_count(0)


def test_show_brings_the_shown_image_into_view_without_the_extra_distortion(page, server):
    page.goto(server["url"] + "/compare?cmp_task=rts")
    wait_idle(page)
    rotation = rotation_slider(page)
    rotation.focus()
    page.keyboard.press("End")
    expect(page.get_by_text("Extra distortion on: rotation 180°")).to_be_visible()
    show = page.locator(".st-key-cmp_gallery_a_wrong_b_right").get_by_role("button", name="show").first
    show.scroll_into_view_if_needed()
    view = page.locator(".st-key-cmp_view")
    assert view.bounding_box()["y"] < 0  # scrolled past it
    show.click()
    expect(rotation).to_have_value("0")
    expect(page.get_by_text("Extra distortion on")).to_have_count(0)
    page.wait_for_function("""() => { const r = document.querySelector('.st-key-cmp_view').getBoundingClientRect();
                                      return r.top >= 0 && r.top < window.innerHeight / 2; }""")
    screenshot(page, "compare_show")


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / "checkpoints" / "addition_2st-fcn_affine.pt").is_file(),
                    reason="needs the committed addition checkpoints")
@pytest.mark.parametrize("width", (800, 1400))
def test_addition_reads_at_both_widths(browser, server, width):
    ctx, page = open_page(browser, server["url"] + "/compare?cmp_task=addition", width)
    try:
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.evaluate(CLIPPED) == []
        expect(page.get_by_role("combobox", name="distortion task")).to_have_value("MNIST addition")
        expect(page.get_by_role("combobox", name="model with two parallel transformers")).to_have_value("2×ST-FCN Aff")
        # the sums' bars (the live view's component): 0, 2, …, 18
        for slot, name in (("pa", "CNN: sum"), ("pb", "2×ST-FCN Aff: sum")):
            card = page.locator(f".cmp-live .cmp-{slot}")
            expect(card.locator("figcaption")).to_contain_text(name)
            assert card.locator(".cmp-col span").all_text_contents() == [str(k) if k % 2 == 0 else "" for k in range(19)]
        # every gallery card's "show" button at the same height as its neighbours'
        for row in page.locator('[class*="st-key-cmp_gallery_"]').all():
            tops = row.evaluate("""r => [...r.querySelectorAll('[data-testid="stButton"]')].map(b => {
                const img = b.parentElement.closest('[data-testid="stVerticalBlock"]').querySelector('img');
                return [Math.round(img.getBoundingClientRect().top), Math.round(b.getBoundingClientRect().top)]; })""")
            by_line = {}
            for img_top, button_top in tops:
                by_line.setdefault(img_top, set()).add(button_top)
            assert all(len(b) == 1 for b in by_line.values()), tops
            assert row.get_by_role("button", name="show").first.inner_text().strip() == "show"
        screenshot(page, f"compare_addition_{width}")
    finally:
        ctx.close()


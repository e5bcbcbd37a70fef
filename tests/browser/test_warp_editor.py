"""The drag editor (components v2) in a real browser: drag, keyboard, touch, refusal of
degenerate shapes, and parity of its JavaScript preview with stn_explore."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import stn_explore as stn
from stn_explore.explorer import playground as pg

from .conftest import screenshot, wait_idle

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

PATTERN = "/playground?pg_source=test+pattern&pg_pattern=checkerboard&pg_psize=64"


def open_editor(page, server, query: str):
    page.goto(server["url"] + PATTERN + query)
    wait_idle(page)
    page.locator(".stn-editor .stn-handle").first.wait_for()
    return page.locator(".stn-editor")


def params(editor):
    return json.loads(editor.get_attribute("data-params"))


def slider(page, label: str):
    """A θ slider of the component (its ``<input type="range">``, by its label)."""
    return page.get_by_role("slider", name=label, exact=True)


def drag(page, handle, dx: float, dy: float, steps: int = 8):
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, steps + 1):
        page.mouse.move(x + dx * k / steps, y + dy * k / steps)
    return x + dx, y + dy


def v_canvas_pixels(page) -> np.ndarray:
    # (the component lives in a shadow root: locators pierce it, document.querySelector does not)
    data = page.locator(".stn-editor canvas.stn-v").evaluate("""(c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
        return {w: c.width, h: c.height, px: Array.from(d.data)}; }""")
    return np.array(data["px"], dtype=np.float64).reshape(data["h"], data["w"], 4)[..., 0] / 255.0


def test_drag_previews_while_dragging_and_server_follows_on_release(page, server):
    editor = open_editor(page, server, "&pg_kind=projective")
    assert params(editor)[0] == [-1, -1]
    expect(editor).to_have_attribute("data-confirmed", re.compile("."), timeout=60_000)
    confirmed = editor.get_attribute("data-confirmed")
    drag(page, page.locator('.stn-handle[data-handle="c0"]'), 40, 30)
    moved = params(editor)[0]
    assert moved[0] > -0.9 and moved[1] > -0.9  # the preview (and the sliders) followed the pointer ...
    expect(slider(page, "top-left x")).to_have_value(re.compile(r"^-0\.\d+$"))
    assert "pg_c0x" not in page.url and editor.get_attribute("data-nonce") is None  # ... before Python heard of it
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"pg_c0x=-0\.\d+"))
    wait_idle(page)
    assert float(slider(page, "top-left x").input_value()) == pytest.approx(moved[0], abs=0.006)
    assert f"pg_c0x={float(slider(page, 'top-left x').input_value()):g}" in page.url
    # the editor now shows the V that the server computed for the released parameters
    expect(editor).not_to_have_attribute("data-confirmed", confirmed)
    screenshot(page, "editor_projective")


def test_keyboard_moves_a_focused_handle(page, server):
    editor = open_editor(page, server, "&pg_kind=attention")
    centre = page.locator('.stn-handle[data-handle="centre"]')
    centre.focus()
    for step in range(1, 4):
        page.keyboard.press("ArrowRight")
        expect(slider(page, "tx")).to_have_value(f"{0.02 * step:.2f}".rstrip("0"))
        wait_idle(page)
    expect(centre).to_be_focused()  # focus survives the server round trips
    page.keyboard.press("Shift+ArrowDown")
    expect(slider(page, "ty")).to_have_value("0.1")
    assert params(editor) == pytest.approx([1.0, 0.06, 0.1])


def test_touch_drag_moves_a_tps_point(page, server):
    editor = open_editor(page, server, "&pg_kind=tps")
    before = params(editor)[5]
    page.locator('.stn-handle[data-handle="p5"]').evaluate("""(el) => {
        const r = el.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
        const ev = (type, dx, dy) => el.dispatchEvent(new PointerEvent(type, {pointerId: 7,
            pointerType: 'touch', isPrimary: true, bubbles: true, clientX: x + dx, clientY: y + dy}));
        ev('pointerdown', 0, 0); ev('pointermove', 10, 6); ev('pointermove', 20, 12); ev('pointerup', 20, 12);
    }""")
    after = params(editor)[5]
    assert after[0] > before[0] + 0.05 and after[1] > before[1] + 0.03
    expect(page).to_have_url(re.compile(r"pg_tps="))


def test_degenerate_moves_are_refused_with_a_reason(page, server):
    editor = open_editor(page, server, "&pg_kind=projective")
    tl, br = page.locator('.stn-handle[data-handle="c0"]'), page.locator('.stn-handle[data-handle="c2"]')
    start = params(editor)
    b = br.bounding_box()
    t = tl.bounding_box()
    drag(page, tl, b["x"] - t["x"] + 15, b["y"] - t["y"] + 15, steps=20)  # across the opposite corner
    expect(editor.locator(".stn-msg")).to_contain_text("Move refused")
    page.mouse.up()
    wait_idle(page)
    assert all(np.isfinite(np.array(params(editor), dtype=float)).ravel())
    # the shape stayed valid: the top-left corner never crossed to the bottom-right
    assert params(editor)[0][0] < start[2][0] and params(editor)[0][1] < start[2][1]
    corners = np.array(params(editor), dtype=np.float64)
    r = pg.render(pg.test_pattern("checkerboard", 64), "projective", pg.projective_params(corners))
    assert not any("horizon" in w for w in r.warnings)


@pytest.mark.parametrize("kind,handle,dxy", [("projective", "c1", (-25, 18)), ("affine", "rot", (30, 20)),
                                             ("tps", "p6", (12, -9)), ("attention", "corner", (-20, -20))])
def test_preview_matches_stn_explore(page, server, kind, handle, dxy):
    editor = open_editor(page, server, f"&pg_kind={kind}")
    drag(page, page.locator(f'.stn-handle[data-handle="{handle}"]'), *dxy)
    p = np.array(params(editor), dtype=np.float64)
    v_js = v_canvas_pixels(page)
    page.mouse.up()
    image = pg.test_pattern("checkerboard", 64)
    kind_params = pg.projective_params(p) if kind == "projective" else p
    v_ref = stn.warp(torch.from_numpy(image)[None, None].double(), torch.from_numpy(kind_params)[None], kind,
                     out_size=v_js.shape)[0, 0].numpy()
    mad = np.abs(v_js - np.clip(v_ref, 0, 1)).mean()
    assert mad <= 2 / 255, f"{kind}: mean |JS preview - stn_explore| = {mad * 255:.2f}/255"


def test_affine_release_updates_theta_sliders_and_snippet(page, server):
    editor = open_editor(page, server, "&pg_kind=affine")
    drag(page, page.locator('.stn-handle[data-handle="centre"]'), 30, 0)
    tx = params(editor)[0][2]
    assert tx > 0.1
    page.mouse.up()
    # θ (exact, from the editor) and the sliders (its rounded decomposition) follow
    page.locator(f'input[aria-label="θ[0,2]"][value="{tx:.4f}"]').wait_for()
    expect(page.locator('[data-testid="stCode"]').first).to_contain_text(f"{tx:.4f}"[:5])
    wait_idle(page)
    expect(slider(page, "translate x")).to_have_value(f"{round(tx / 0.05) * 0.05:g}")
    assert f"{tx:.4f}"[:5] in page.locator('[data-testid="stCode"]').first.inner_text()
    # the exact θ is in the URL: a new page opened on it shows the same θ, not the rounded sliders
    expect(page).to_have_url(re.compile(r"pg_theta="))
    shared = page.url
    page.goto(shared)
    wait_idle(page)
    page.locator(f'input[aria-label="θ[0,2]"][value="{tx:.4f}"]').wait_for()


def test_editor_follows_a_new_input_image(page, server):
    page.goto(server["url"] + "/playground?pg_source=MNIST+digit&pg_index=0")
    wait_idle(page)
    u = page.locator(".stn-editor canvas.stn-u-img")
    u.wait_for()

    def u_pixels():
        return u.evaluate("""(c) => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)
                             .filter((_, i) => i % 4 == 0)""")

    first = u_pixels()
    page.get_by_label("index").fill("1")
    page.keyboard.press("Enter")
    expect(page.locator('[data-testid="stCaptionContainer"]').filter(has_text="digit 1 ")).to_have_count(1)
    wait_idle(page)
    page.wait_for_timeout(200)
    assert u_pixels() != first

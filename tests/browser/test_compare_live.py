"""/compare's live view in a real browser (issue 17): while a slider moves the browser distorts
the digit and runs both models itself; on release the server's result is drawn — and the
browser's own result equals the server's within the stated tolerances:

* the models alone (the browser's forward pass on the server's distorted digit): class
  probabilities within :data:`MODEL_PROB_TOL` (absolute), V and θ within :data:`MODEL_V_TOL`;
* what the preview shows (the browser's distorted digit, then its forward pass): the distorted
  input at most 1 grey level apart in any pixel (the browser computes in float64, torch in
  float32: a value on a rounding boundary can round the other way, in a few pixels), hence
  class probabilities within :data:`PROB_TOL`, V within :data:`V_MEAN_TOL` (1/255) on average
  and :data:`V_MAX_TOL` at most.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import screenshot, wait_idle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not (ROOT / "checkpoints" / "rts_st-cnn_affine.pt").is_file(), reason="needs the committed RTS checkpoints")]
expect = pytest.importorskip("playwright.sync_api").expect

MODEL_PROB_TOL = 1e-4
MODEL_V_TOL = 1e-4
PROB_TOL = 3e-3
V_MEAN_TOL = 1 / 255
V_MAX_TOL = 4 / 255
LIVE = ".cmp-live"

#: key presses, one slider after another: each press is a release (a change event) the server answers
STEPS = [("rotation (°)", ["End"]), ("scale", ["Home"]), ("shift x", ["ArrowRight"] * 3),
         ("rotation (°)", ["ArrowDown"] * 2), ("shift y", ["ArrowLeft"] * 2), ("scale", ["End"])]


def slider(page, label: str):
    return page.locator(LIVE).get_by_label(label, exact=True)


def settled(page) -> None:
    """The server has answered the component's last edit and its result is drawn."""
    page.wait_for_function("""() => { const s = window.__stnCompareLive?.status;
        return s && s.settled && s.models === 'browser' && s.nonce <= s.ack; }""", timeout=60_000)


def results(page) -> tuple[dict, dict, dict]:
    got = page.evaluate("""() => { const x = window.__stnCompareLive;
        return {client: x.client, server: x.server, same: x.runOn(x.server.u)}; }""")
    return got["client"], got["server"], got["same"]


def assert_agree(client: dict, server: dict, same_input: dict | None = None) -> dict:
    assert client["values"] == server["values"], (client["values"], server["values"])
    model_probs = float("nan")
    if same_input is not None:  # the browser's models on the server's distorted digit
        model_probs = float(np.abs(np.array(same_input["probs"]) - np.array(server["probs"])).max())
        assert model_probs <= MODEL_PROB_TOL, model_probs
        assert np.abs(np.array(same_input["v"]) - np.array(server["v"])).max() <= MODEL_V_TOL
        assert np.abs(np.array(same_input["theta"]) - np.array(server["theta"])).max() <= MODEL_V_TOL
    u = np.abs(np.array(client["u"], float) - np.array(server["u"], float))
    assert u.max() <= 1, f"distorted input: {int((u > 1).sum())} pixels differ by more than one level"
    probs = np.abs(np.array(client["probs"]) - np.array(server["probs"]))
    assert probs.max() <= PROB_TOL, probs.max()
    v = np.abs(np.array(client["v"]) - np.array(server["v"]))
    assert v.mean() <= V_MEAN_TOL and v.max() <= V_MAX_TOL, (v.mean(), v.max())
    return {"probs": float(probs.max()), "model_probs": model_probs, "v_mean": float(v.mean()), "v_max": float(v.max()),
            "u_pixels_off": int((u > 0).sum())}


def step_through(page, steps):
    """Press each step's keys on its slider and wait for the view to settle; yields the step's label."""
    for label, keys in steps:
        slider(page, label).focus()
        for key in keys:
            page.keyboard.press(key)
        settled(page)
        yield label


@pytest.mark.parametrize("task", ("rts", "cluttered"))
def test_browser_result_equals_the_servers_within_tolerance(page, server, task):
    if not (ROOT / "checkpoints" / f"{task}_st-cnn_affine.pt").is_file():
        pytest.skip(f"needs the {task} checkpoints")
    page.goto(f"{server['url']}/compare?cmp_task={task}&cmp_index=7")
    wait_idle(page)
    settled(page)
    worst = [assert_agree(*results(page)) for _ in step_through(page, STEPS)]
    # the steps changed every slider, and the URL keeps them
    values = page.evaluate("() => window.__stnCompareLive.server.values")
    assert values["cmp_angle"] == 170 and values["cmp_scale"] == 1.5, values
    assert values["cmp_sx"] == pytest.approx(0.15) and values["cmp_sy"] == pytest.approx(-0.1), values
    page.wait_for_function("() => location.search.includes('cmp_angle=170') && location.search.includes('cmp_scale=1.5')")
    print(f"\n{task}: worst over {len(STEPS)} settings: |Δp| {max(w['probs'] for w in worst):.2e} "
          f"(same input: {max(w['model_probs'] for w in worst):.2e}), "
          f"V mean {max(w['v_mean'] for w in worst) * 255:.4f}/255, V max {max(w['v_max'] for w in worst) * 255:.3f}/255, "
          f"input pixels one level off: {max(w['u_pixels_off'] for w in worst)}; "
          f"frame {page.locator(LIVE).get_attribute('data-frame-ms')} ms")


def test_dragging_previews_in_the_browser_and_release_asks_the_server(page, server):
    page.goto(f"{server['url']}/compare?cmp_task=rts&cmp_index=3")
    wait_idle(page)
    settled(page)
    root = page.locator(LIVE)
    nonce = root.get_attribute("data-nonce")
    title_before = root.locator(".cmp-pb figcaption").inner_text()
    v_before = root.locator("canvas.cmp-v").evaluate("c => c.toDataURL()")
    box = slider(page, "rotation (°)").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    for k in range(1, 11):  # drag to the right end, held: nothing is sent yet
        page.mouse.move(box["x"] + box["width"] / 2 + k * box["width"] / 20, y)
    expect(root).to_have_attribute("data-source", "preview")
    assert root.get_attribute("data-nonce") == nonce  # the server has not been asked
    client = page.evaluate("() => window.__stnCompareLive.client")
    assert client["values"]["cmp_angle"] > 90 and client["probs"] is not None
    assert root.locator("canvas.cmp-v").evaluate("c => c.toDataURL()") != v_before  # V moved with the digit
    assert float(root.get_attribute("data-frame-ms")) > 0
    assert "preview" in root.locator(".cmp-src").inner_text()
    page.mouse.up()  # release: the server computes, and its result is drawn
    settled(page)
    assert root.get_attribute("data-nonce") != nonce
    assert_agree(*results(page))
    expect(page.get_by_text("Extra distortion on: rotation")).to_be_visible()
    assert title_before.startswith("ST-CNN:")
    screenshot(page, "compare_live_dragged")
    # reset (a Streamlit button): the component takes the server's values
    page.get_by_role("button", name="reset").click()
    expect(slider(page, "rotation (°)")).to_have_value("0")
    expect(page.get_by_text("Extra distortion on")).to_have_count(0)
    page.wait_for_function("() => !location.search.includes('cmp_angle')")  # nor the URL
    # a tab that lost the models (sent once per session) asks for them again
    page.evaluate("() => { for (const k in window.__stnCompareModels) delete window.__stnCompareModels[k]; }")
    scale = slider(page, "scale")
    scale.focus()
    page.keyboard.press("ArrowLeft")
    settled(page)
    assert_agree(*results(page))


# ----------------------------------------------------------------------------- MNIST addition
def has_addition(row: str) -> bool:
    return all((ROOT / "checkpoints" / f"addition_{r}.pt").is_file() for r in ("cnn", row))


def settled_on(page, models: str) -> None:
    """As :func:`settled`, for a pair the browser runs (``browser``) or not (``server``)."""
    page.wait_for_function("""(m) => { const s = window.__stnCompareLive?.status;
        return s && s.settled && s.models === m && s.nonce <= s.ack; }""", arg=models, timeout=60_000)


#: addition: key presses on every slider (two digits move together)
ADD_STEPS = [("rotation (°)", ["ArrowUp"] * 3), ("scale", ["ArrowLeft"] * 4), ("shift x", ["ArrowRight"] * 2),
             ("shift y", ["ArrowLeft"] * 3), ("rotation (°)", ["End"])]


def assert_addition_agrees(client: dict, server: dict, same: dict) -> dict:
    """:func:`assert_agree` (on the first transformer's V and θ), then every transformer's."""
    got = assert_agree(client, server, same)
    assert len(server["vs"]) == len(client["vs"]) == len(same["vs"]) == 2
    for k in range(2):
        assert np.abs(np.array(same["vs"][k]) - np.array(server["vs"][k])).max() <= MODEL_V_TOL
        assert np.abs(np.array(same["thetas"][k]) - np.array(server["thetas"][k])).max() <= MODEL_V_TOL
        v = np.abs(np.array(client["vs"][k]) - np.array(server["vs"][k]))
        assert v.mean() <= V_MEAN_TOL and v.max() <= V_MAX_TOL, (k, v.mean(), v.max())
        got["v_mean"], got["v_max"] = max(got["v_mean"], float(v.mean())), max(got["v_max"], float(v.max()))
        np.testing.assert_allclose(same["shares"][k], server["shares"][k], atol=1e-4)
    return got


@pytest.mark.parametrize("row", ("2st-fcn_affine", "2st-cnn_affine"))
def test_addition_browser_result_equals_the_servers_within_tolerance(page, server, row):
    if not has_addition(row):
        pytest.skip(f"needs the committed addition_{row} checkpoints")
    page.goto(f"{server['url']}/compare?cmp_task=addition&cmp_add_model={row}&cmp_index=7")
    wait_idle(page)
    settled(page)
    root = page.locator(LIVE)
    # what the addition view showed: both channels, per transformer its grid and V and its ink, the sums
    expect(root.locator(".cmp-addin canvas.cmp-ch")).to_have_count(2)
    expect(root.locator(".cmp-st figcaption")).to_have_text(["transformer 1", "transformer 2"])
    expect(root.locator(".cmp-st .cmp-share").first).to_contain_text("ink from channel 1 / 2")
    expect(root.locator(".cmp-note")).to_contain_text("attends to one digit")
    expect(root.locator(".cmp-ufig")).to_be_hidden()
    assert root.locator(".cmp-pa figcaption").inner_text().startswith("CNN: sum ")
    assert root.locator(".cmp-pb figcaption").inner_text().startswith("2×ST-")
    assert root.locator(".cmp-pb .cmp-col span").all_text_contents() == [
        str(k) if k % 2 == 0 else "" for k in range(19)]  # 19 sums, every other one labelled
    worst = []
    for _ in step_through(page, ADD_STEPS):
        client, srv, same = results(page)
        assert len(client["probs"][1]) == 19
        worst.append(assert_addition_agrees(client, srv, same))
    values = page.evaluate("() => window.__stnCompareLive.server.values")
    assert values == {"cmp_angle": 180, "cmp_scale": pytest.approx(0.8), "cmp_sx": pytest.approx(0.1),
                      "cmp_sy": pytest.approx(-0.15)}, values
    page.wait_for_function("() => location.search.includes('cmp_angle=180') && location.search.includes('cmp_scale=0.8')")
    screenshot(page, f"compare_live_addition_{row}")
    print(f"\naddition {row}: worst over {len(ADD_STEPS)} settings: |Δp| {max(w['probs'] for w in worst):.2e} "
          f"(same input: {max(w['model_probs'] for w in worst):.2e}), "
          f"V mean {max(w['v_mean'] for w in worst) * 255:.4f}/255, V max {max(w['v_max'] for w in worst) * 255:.3f}/255, "
          f"input pixels one level off: {max(w['u_pixels_off'] for w in worst)}; "
          f"frame {root.get_attribute('data-frame-ms')} ms")


def test_a_projective_addition_pair_previews_the_input_and_draws_the_servers_result(page, server):
    if not has_addition("2st-fcn_projective"):
        pytest.skip("needs the committed addition_2st-fcn_projective checkpoints")
    page.goto(f"{server['url']}/compare?cmp_task=addition&cmp_add_model=2st-fcn_projective&cmp_index=3")
    wait_idle(page)
    settled_on(page, "server")
    root = page.locator(LIVE)
    expect(root).to_have_attribute("data-models", "server")
    before = page.evaluate("() => window.__stnCompareLive.server")
    box = slider(page, "rotation (°)").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    for k in range(1, 7):  # held: the browser previews the distorted input only
        page.mouse.move(box["x"] + box["width"] / 2 + k * box["width"] / 20, y)
    expect(root).to_have_attribute("data-source", "preview")
    client = page.evaluate("() => window.__stnCompareLive.client")
    assert client["values"]["cmp_angle"] > 0 and "probs" not in client
    assert "distorted input only" in root.locator(".cmp-src").inner_text()
    assert "cmp-stale" in root.locator(".cmp-pb").get_attribute("class")
    page.mouse.up()  # release: the server's result is drawn
    settled_on(page, "server")
    expect(root).to_have_attribute("data-source", "server")
    srv = page.evaluate("() => window.__stnCompareLive.server")
    assert srv["values"] == client["values"] and srv["probs"] != before["probs"]
    assert srv["thetas"] == [None, None] and len(srv["grids"]) == 2  # the projective grids' own points
    assert np.abs(np.array(client["u"], float) - np.array(srv["u"], float)).max() <= 1  # two channels, as the server's
    assert "cmp-stale" not in root.locator(".cmp-pb").get_attribute("class")
    assert root.locator(".cmp-pb figcaption").inner_text().startswith("2×ST-FCN Proj: sum ")
    ink = root.locator(".cmp-st canvas.cmp-grid2").first.evaluate(
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((x, i) => i % 4 === 3 && x).length")
    assert ink > 100  # the server's grid is drawn
    screenshot(page, "compare_live_addition_projective")
    # another task in the same tab: the same component turns back into the single-ST view
    page.get_by_role("combobox", name="distortion task").click()
    page.get_by_role("option", name="RTS", exact=True).click()
    settled(page)
    expect(root.locator(".cmp-add")).to_have_count(0)
    expect(root.locator(".cmp-ufig")).to_be_visible()
    expect(root.locator(".cmp-vfig")).to_be_visible()
    assert root.locator(".cmp-pb figcaption").inner_text().startswith("ST-CNN: ")
    assert len(page.evaluate("() => window.__stnCompareLive.server.probs[1]")) == 10


@pytest.mark.parametrize("width", (800, 1400))
def test_the_addition_view_fits_both_widths(browser, server, width):
    """The cards wrap inside the view (none sticks out, no text clipped): the component's shadow
    root is out of test_widths.CLIPPED's reach."""
    if not has_addition("2st-fcn_affine"):
        pytest.skip("needs the committed addition checkpoints")
    from .test_widths import open_page

    ctx, page = open_page(browser, server["url"] + "/compare?cmp_task=addition&cmp_angle=20", width)
    try:
        settled(page)
        root = page.locator(LIVE)
        out = root.evaluate("""r => { const right = r.getBoundingClientRect().right + 1, out = [];
            for (const e of r.querySelectorAll('.cmp-card, .cmp-card *, .cmp-note')) {
              if (!e.offsetParent) continue;
              const b = e.getBoundingClientRect();
              if (b.right > right) out.push(`${e.className}: right ${b.right} > ${right}`);
              if (e.tagName !== 'CANVAS' && e.scrollWidth > e.clientWidth + 1) out.push(`${e.className}: text clipped`);
            }
            return out; }""")
        assert out == []
        assert page.locator(".st-key-cmp_view").bounding_box()["width"] <= width
        expect(root.locator(".cmp-st")).to_have_count(2)
        for slot in ("pa", "pb"):
            assert root.locator(f".cmp-{slot} .cmp-col span").all_text_contents() == [
                str(k) if k % 2 == 0 else "" for k in range(19)]
        screenshot(page, f"compare_live_addition_{width}")
    finally:
        ctx.close()

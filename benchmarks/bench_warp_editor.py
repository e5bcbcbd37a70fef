"""The drag editor on /playground, measured in headless Chromium.

    python -m benchmarks.bench_warp_editor [--moves 60] [--releases 15]   (from the repo root)

1. pointer move → canvas repainted: pointermove events are dispatched to a handle one at a
   time; each is timed from just before the dispatch to the next animation frame (the
   preview is recomputed and drawn synchronously in the handler, so the frame figure is
   bounded below by the display's frame interval — compare it with the empty frame), and
   the handler's own work (grid + bilinear sampling + drawing) is reported too. For a 128×128 test
   pattern with a 128×128 output (the issue's largest case) and a 28×28 digit.
   Goal: p50 ≤ 16 ms, p95 ≤ 33 ms.
2. release → server-confirmed V: from pointerup to the first frame after the server's V
   figure (stn_explore) shows its new image. Goal: p50 ≤ 150 ms.
3. parity: mean |JS preview − stn_explore| over V after a drag, per transform kind
   (goal ≤ 2/255).
Reference measured in the same run: an empty requestAnimationFrame round trip.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import stn_explore as stn  # noqa: E402
from stn_explore.explorer import playground as pg  # noqa: E402
from tests.browser.harness import launch_chromium, streamlit_server, wait_idle  # noqa: E402

TIME_MOVES = """async (el, n) => {
  const r = el.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
  const fire = (type, dx, dy) => el.dispatchEvent(new PointerEvent(type, {pointerId: 3, pointerType: 'mouse',
      isPrimary: true, bubbles: true, clientX: x + dx, clientY: y + dy}));
  const frame = () => new Promise((res) => requestAnimationFrame(() => res(performance.now())));
  const empty = [], moves = [], work = [];
  const root = el.getRootNode().querySelector('.stn-editor');
  for (let i = 0; i < 10; i++) { const t = performance.now(); empty.push((await frame()) - t); }
  fire('pointerdown', 0, 0);
  for (let i = 1; i <= n; i++) {
    await frame();
    const t0 = performance.now();
    fire('pointermove', 12 * Math.sin(i / 5), 12 * Math.cos(i / 7) - 12);
    moves.push((await frame()) - t0);
    work.push(parseFloat(root.dataset.frameMs));
  }
  return {empty, moves, work};
}"""


def pct(v, q):
    v = sorted(v)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def open_page(page, url, query):
    page.goto(f"{url}/playground?{query}")
    wait_idle(page)
    page.locator(".stn-editor .stn-handle").first.wait_for()
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                              .every(c => c.querySelector('.main-svg image'))""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=60)
    ap.add_argument("--releases", type=int, default=15)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, streamlit_server(Path(tmp) / "log") as url, \
            sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        cases = {"128×128 pattern → 128×128": "pg_source=test+pattern&pg_psize=128&pg_out_h=128&pg_out_w=128",
                 "28×28 digit → 28×28": "pg_source=MNIST+digit"}
        for name, query in cases.items():
            for kind, handle in (("tps", "p5"), ("projective", "c0")):
                open_page(page, url, f"{query}&pg_kind={kind}")
                h = page.locator(f'.stn-handle[data-handle="{handle}"]')
                r = h.evaluate(TIME_MOVES, args.moves)
                h.evaluate("(el) => el.dispatchEvent(new PointerEvent('pointerup', {pointerId: 3, bubbles: true}))")
                print(f"{name}, {kind:10s}: pointer move → repaint p50 {pct(r['moves'], .5):5.1f} ms, "
                      f"p95 {pct(r['moves'], .95):5.1f} ms (empty frame p50 {pct(r['empty'], .5):.1f} ms); "
                      f"grid + sampling + drawing in the handler p50 {pct(r['work'], .5):.2f} ms, "
                      f"p95 {pct(r['work'], .95):.2f} ms")
                wait_idle(page)

        # release → server-confirmed V (the editor shows the V the server computed)
        open_page(page, url, "pg_source=test+pattern&pg_kind=projective")
        times = []
        h = page.locator('.stn-handle[data-handle="c1"]')
        editor = page.locator(".stn-editor")
        for i in range(args.releases):
            old = editor.get_attribute("data-confirmed")
            t = h.evaluate("""(el, i) => {
                const r = el.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
                const fire = (type, dy) => el.dispatchEvent(new PointerEvent(type, {pointerId: 4,
                    pointerType: 'mouse', isPrimary: true, bubbles: true, clientX: x, clientY: y + dy}));
                fire('pointerdown', 0); fire('pointermove', (i % 2 ? -6 : 6)); const t0 = performance.now();
                fire('pointerup', (i % 2 ? -6 : 6)); return t0; }""", i)
            editor.evaluate("""(root, old) => new Promise((res) => { const check = () =>
                root.dataset.confirmed !== old ? requestAnimationFrame(() => res()) : setTimeout(check, 1);
                check(); })""", old)
            done = page.evaluate("performance.now()")
            times.append(done - t)
            page.wait_for_timeout(150)
            wait_idle(page)
        print(f"release → server-confirmed V in the editor: p50 {pct(times, .5):.0f} ms, "
              f"p95 {pct(times, .95):.0f} ms ({len(times)} releases)")

        # parity
        image = pg.test_pattern("checkerboard", 64)
        for kind, handle in (("affine", "rot"), ("attention", "corner"), ("projective", "c1"), ("tps", "p6")):
            open_page(page, url, f"pg_source=test+pattern&pg_kind={kind}")
            box = page.locator(f'.stn-handle[data-handle="{handle}"]').bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x - 20, y + 15, steps=6)
            editor = page.locator(".stn-editor")
            prm = np.array(json.loads(editor.get_attribute("data-params")), dtype=np.float64)
            px = editor.locator("canvas.stn-v").evaluate("""(c) => { const d = c.getContext('2d')
                .getImageData(0, 0, c.width, c.height); return [c.height, c.width, Array.from(d.data)]; }""")
            page.mouse.up()
            v_js = np.array(px[2], dtype=np.float64).reshape(px[0], px[1], 4)[..., 0] / 255
            kp = pg.projective_params(prm) if kind == "projective" else prm
            v_ref = stn.warp(torch.from_numpy(image)[None, None].double(), torch.from_numpy(kp)[None], kind,
                             out_size=v_js.shape)[0, 0].numpy().clip(0, 1)
            diff = np.abs(v_js - v_ref)
            print(f"parity {kind:10s}: mean |JS − stn_explore| = {diff.mean() * 255:.3f}/255, "
                  f"max {diff.max() * 255:.2f}/255")
            wait_idle(page)
        browser.close()


if __name__ == "__main__":
    main()

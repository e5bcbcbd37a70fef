"""/compare's live view (issue 17), measured: what running both models in the browser costs.

    python -m benchmarks.bench_compare_live [--frames 30] [--releases 5] [--tasks rts cluttered addition]
        [--addition-rows 2st-fcn_affine 2st-cnn_affine]

Per task (the CNN / ST-CNN pair; MNIST addition: the CNN / each two-transformer model the
browser runs, two channels in, 19 sums out):
1. size: the exported float32 weights per model (bytes; sent once per session as base64, +33%).
2. one preview frame in headless Chromium: ``input`` events are dispatched to the rotation
   slider one at a time; each frame's own work (distort the digit, both models' forward pass,
   drawing) is read from the component (``window.__stnCompareLive.client.ms``), and the time
   from the dispatch to the next animation frame is reported too. Reference in the same run:
   an empty requestAnimationFrame round trip, and the server's own computation for the same
   view (``compare.extra_distortion`` + both models' ``compare.predict``, torch on the CPU).
3. release → the server's result drawn: a key press (a change event) until the component shows
   the server's result for it (the path every move took before the browser ran the models).
4. parity: the largest |browser − server| class probability over the releases.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stn_explore.explorer import compare  # noqa: E402
from stn_explore.explorer import compare_live as live  # noqa: E402
from tests.browser.harness import launch_chromium, streamlit_server, wait_idle  # noqa: E402

TIME_FRAMES = """async (el, n) => {
  const frame = () => new Promise((res) => requestAnimationFrame(() => res(performance.now())));
  const empty = [], frames = [], work = [];
  for (let i = 0; i < 10; i++) { const t = performance.now(); empty.push((await frame()) - t); }
  for (let i = 1; i <= n; i++) {
    await frame();
    el.value = String(-180 + (i * 35) % 360);
    const t0 = performance.now();
    el.dispatchEvent(new Event('input', {bubbles: true}));
    frames.push((await frame()) - t0);
    work.push(window.__stnCompareLive.client.ms);
  }
  return {empty, frames, work};
}"""
SETTLED = "() => window.__stnCompareLive?.status?.settled && window.__stnCompareLive.status.models === 'browser'"


def pct(v, q):
    return float(np.percentile(np.asarray(v, dtype=float), q * 100))


def server_reference(task: str, row: str | None = None, n: int = 10) -> float:
    """ms for the server's computation of one view (distortion + both models), median of n."""
    (cnn, stcnn), _ = compare.load_pair(ROOT / "checkpoints", task, row)
    images, _, _ = compare.test_images(task, stcnn.checkpoint["data"]["config"], 8)
    times = []
    for i in range(n):
        t = time.perf_counter()
        img = compare.extra_distortion(images[i % 8:i % 8 + 1], 10.0 * i, 1.0, (0.0, 0.0))
        compare.predict(cnn.model, img), compare.predict(stcnn.model, img)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def sizes(task: str, row: str | None = None) -> list[int]:
    (cnn, stcnn), _ = compare.load_pair(ROOT / "checkpoints", task, row)
    return [live.encode(live.export_model(m.model))["bytes"] for m in (cnn, stcnn)]


def measure(page, url: str, task: str, row: str | None, frames: int, releases: int) -> dict:
    page.goto(f"{url}/compare?cmp_task={task}&cmp_index=7" + (f"&cmp_add_model={row}" if row else ""))
    wait_idle(page, 120_000)
    page.wait_for_function(SETTLED, timeout=120_000)
    slider = page.locator(".cmp-live").get_by_label("rotation (°)", exact=True)
    got = slider.evaluate(TIME_FRAMES, frames)
    slider.evaluate("el => el.dispatchEvent(new Event('change', {bubbles: true}))")
    page.wait_for_function(SETTLED, timeout=60_000)
    settle, worst = [], 0.0
    slider.focus()
    for _ in range(releases):
        t = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(SETTLED, timeout=60_000)
        settle.append((time.perf_counter() - t) * 1000)
        c, s = page.evaluate("() => [window.__stnCompareLive.client, window.__stnCompareLive.server]")
        worst = max(worst, float(np.abs(np.array(c["probs"]) - np.array(s["probs"])).max()))
    return {**got, "settle": settle, "worst_dp": worst}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--releases", type=int, default=5)
    ap.add_argument("--tasks", nargs="+", default=["rts", "cluttered", "addition"])
    ap.add_argument("--addition-rows", nargs="+", default=["2st-fcn_affine", "2st-cnn_affine"],
                    help="MNIST addition's models to measure (those the browser runs)")
    args = ap.parse_args(argv)
    pairs = [(t, r) for t in args.tasks for r in (args.addition_rows if t == "addition" else [None])]
    pairs = [(t, r) for t, r in pairs if all((ROOT / "checkpoints" / f"{t}_{m}.pt").is_file()
                                             for m in ("cnn", r or "st-cnn_affine"))]
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, streamlit_server(Path(tmp) / "streamlit.log") as url, \
            sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for task, row in pairs:
            m = measure(page, url, task, row, args.frames, args.releases)
            rows.append((task if row is None else f"{task} {row}", row, sizes(task, row), m, server_reference(task, row)))
        browser.close()
    for name, row, (a, b), m, ref in rows:
        print(f"{name}: weights CNN {a / 1e3:.0f} kB + {row or 'ST-CNN'} {b / 1e3:.0f} kB float32 "
              f"({(a + b) * 4 / 3 / 1e6:.2f} MB base64, once per session)")
        print(f"  preview frame (distort + both models + draw, in the browser): p50 {pct(m['work'], .5):.1f} ms, "
              f"p95 {pct(m['work'], .95):.1f} ms; input event → next frame p50 {pct(m['frames'], .5):.1f} ms "
              f"(empty frame p50 {pct(m['empty'], .5):.1f} ms)")
        print(f"  reference: the server's computation of the same view {ref:.1f} ms (torch, CPU); "
              f"release → server's result drawn p50 {pct(m['settle'], .5):.0f} ms, max {max(m['settle']):.0f} ms")
        print(f"  parity over {len(m['settle'])} releases: max |p_browser − p_server| {m['worst_dp']:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

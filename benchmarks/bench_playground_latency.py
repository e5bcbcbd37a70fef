"""How fast /playground is, end to end in headless Chromium, next to an empty-page reference.

    python -m benchmarks.bench_playground_latency [--n 30] [--moves 60]   (from the repo root)

One run measures, in this order:

1. **Cold start**: from starting `streamlit run app.py` (a fresh server process) to a painted
   /playground — its title shown and the θ component's U and V drawn — and on to the moment
   V is the server's (stn_explore, after torch has loaded). Reference: the same for an
   empty app (a title and one stock slider) started the same way. Goal ≤ 3 s.
2. **Warm page switch**: clicking Home in the sidebar, then θ playground, until that page is
   drawn and idle; the reference app switches between two empty pages. Goal ≤ 1 s.
3. **Page settle**: `--n` times, an ArrowRight on the focused rotation slider, timed (in the
   page's clock) to the first DOM change it causes (the browser's preview) and to the page's
   *last* DOM change (a MutationObserver over the document and the component's shadow root;
   the page is quiet for 600 ms afterwards). Reference: the same key press on the empty
   app's stock slider. Goal p50 ≤ 100 ms, p95 ≤ 250 ms.
4. **Lost key presses**: 10 ArrowRight presses 50 ms apart on rotation, and on the editor's
   centre handle (after the page settles): the steps that arrive.
5. **Pointer move → repaint of V**: the mouse drags the rotation slider's thumb (`--moves`
   moves, one per frame); each move is timed from its pointermove event to the next
   animation frame after the component redrew V (the preview is drawn synchronously in the
   input handler); the handler's own work is reported too. For the default 28×28 digit and a
   128×128 pattern with a 128×128 output. Reference: an empty animation frame. Goal p50 ≤ 17 ms.

The server-side fragment rerun (``?pg_debug=1``) is printed too. Figures depend on the
machine's load: say what else was running when you quote them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import free_port, launch_chromium, wait_idle  # noqa: E402

REFERENCE_APP = '''
import streamlit as st

def main():
    st.title("empty")
    st.slider("value", 0, 100, 0, key="ref")

def other():
    st.title("other")

st.navigation([st.Page(main, title="main", default=True), st.Page(other, title="other", url_path="other")]).run()
'''

#: last DOM change anywhere: the document and every open shadow root (the component's)
OBSERVER = """(roots) => {
  window.__mut = []; const rec = () => window.__mut.push(performance.now());
  const opts = {subtree: true, childList: true, attributes: true, characterData: true};
  const obs = new MutationObserver(rec);
  obs.observe(document.documentElement, opts);
  for (const r of roots) obs.observe(r.getRootNode(), opts);
}"""

QUIET = """async ([t0, quiet, cap]) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  while (performance.now() - t0 < cap) {
    await sleep(50);
    const m = window.__mut, last = m.length ? m[m.length - 1] : t0;
    if (performance.now() - last >= quiet && document.querySelector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]')) break;
  }
  const after = window.__mut.filter((t) => t >= t0);
  return after.length ? [after[0] - t0, after[after.length - 1] - t0] : [null, null];
}"""

DRAG_RECORDER = """(input) => {
  const root = input.getRootNode().querySelector('.stn-editor');
  window.__moves = []; window.__work = []; let last = null;
  input.addEventListener('pointermove', (e) => { last = e.timeStamp; }, {capture: true});
  input.addEventListener('input', () => {
    const t = last; last = null;
    if (t === null) return;
    requestAnimationFrame(() => { window.__moves.push(performance.now() - t);
                                  window.__work.push(parseFloat(root.dataset.frameMs)); });
  });
}"""

EMPTY_FRAMES = """async () => { const out = [];
  for (let i = 0; i < 30; i++) { const t = performance.now();
    await new Promise((r) => requestAnimationFrame(r)); out.push(performance.now() - t); }
  return out; }"""


def pct(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def fig(values) -> str:
    return f"p50 {pct(values, 0.5):.0f} ms, p95 {pct(values, 0.95):.0f} ms, max {max(values):.0f} ms (n={len(values)})"


@contextlib.contextmanager
def server(script: Path, log: Path):
    """`streamlit run <script>` on a free port; yields (url, t_start) as soon as it is spawned."""
    port = free_port()
    with open(log, "w") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            yield f"http://127.0.0.1:{port}", t, proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_health(url: str, proc, timeout: float = 90) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("streamlit exited")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(url)


def cold_start(browser, script: Path, log: Path, path: str, painted: str, confirmed: str | None):
    """Seconds from spawning the server to ``painted`` (and to ``confirmed``) on ``path``."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto("about:blank")
    with server(script, log) as (url, t0, proc):
        wait_health(url, proc)
        page.goto(url + path)
        page.locator(painted).first.wait_for(timeout=90_000)
        t_paint = time.perf_counter() - t0
        t_conf = None
        if confirmed:
            page.locator(confirmed).first.wait_for(timeout=90_000)
            t_conf = time.perf_counter() - t0
    page.close()
    return t_paint, t_conf


def settle(page, slider, n: int, server: list | None = None) -> tuple[list, list]:
    """Key press on ``slider`` → first and last DOM change, ``n`` times (and the server's
    rerun time from the ?pg_debug=1 caption into ``server``)."""
    first, last = [], []
    for i in range(n + 2):  # 2 warm-up presses
        slider.focus()
        t0 = page.evaluate("performance.now()")
        page.keyboard.press("ArrowRight")
        f, l_ = page.evaluate(QUIET, [t0, 600, 8000])
        if i >= 2 and l_ is not None:
            first.append(f)
            last.append(l_)
            if server is not None:
                cap = page.get_by_text(re.compile(r"server rerun [0-9.]+ ms")).last.inner_text()
                server.append(float(re.search(r"([0-9.]+) ms", cap).group(1)))
    return first, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="key presses timed for the page settle")
    ap.add_argument("--moves", type=int, default=60, help="pointer moves timed on the slider")
    ap.add_argument("--switches", type=int, default=15, help="warm page switches timed (default 15)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load average before the run: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        tmp = Path(tmp)
        ref_app = tmp / "reference_app.py"
        ref_app.write_text(REFERENCE_APP)
        browser = launch_chromium(p)

        # 1. cold start ------------------------------------------------------------------
        ref_cold, _ = cold_start(browser, ref_app, tmp / "ref.log", "/", '[data-testid="stSlider"]', None)
        app_paint, app_conf = cold_start(browser, ROOT / "app.py", tmp / "app.log", "/playground",
                                         '.stn-editor[data-painted]', ".stn-editor[data-confirmed]")
        print(f"cold start, `streamlit run` → painted page: /playground {app_paint:.2f} s "
              f"(V from the server at {app_conf:.2f} s); empty reference app {ref_cold:.2f} s  (goal ≤ 3 s)")

        # reference: warm page switch and key press on an empty page ----------------------
        with server(ref_app, tmp / "ref2.log") as (url, _, proc):
            wait_health(url, proc)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            wait_idle(page)
            ref_switch = []
            for _ in range(args.switches):
                for name, title in (("other", "other"), ("main", "empty")):
                    t = time.perf_counter()
                    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=name).click()
                    page.locator("h1").filter(has_text=title).wait_for()
                    wait_idle(page)
                    ref_switch.append((time.perf_counter() - t) * 1e3)
            page.evaluate(OBSERVER, [page.locator("h1").first.element_handle()])
            ref_first, ref_last = settle(page, page.locator('[data-testid="stSlider"] input[type="range"]'),
                                         args.n)
            ref_frames = page.evaluate(EMPTY_FRAMES)
            page.close()

        # the app, warm -------------------------------------------------------------------
        with server(ROOT / "app.py", tmp / "app2.log") as (url, _, proc):
            wait_health(url, proc)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "/playground?pg_debug=1")
            page.locator(".stn-editor[data-confirmed]").wait_for(timeout=90_000)
            wait_idle(page)

            # 2. warm page switch
            switch = []
            for _ in range(args.switches):
                t = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Home").click()
                page.locator("h1").filter(has_text="Spatial Transformer").wait_for()
                wait_idle(page)
                t_home = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a').filter(has_text="playground").click()
                page.locator("h1").filter(has_text="θ playground").wait_for()
                page.locator(".stn-editor[data-painted]").wait_for()
                wait_idle(page)
                switch.append(((t_home - t) * 1e3, (time.perf_counter() - t_home) * 1e3))
            page.goto(url + "/playground?pg_debug=1")
            page.locator(".stn-editor[data-confirmed]").wait_for(timeout=90_000)
            wait_idle(page)

            # 3. page settle
            editor = page.locator(".stn-editor")
            rotation = page.get_by_role("slider", name="rotation (°)")
            page.evaluate(OBSERVER, [editor.element_handle()])
            server_ms = []
            first, last = settle(page, rotation, args.n, server_ms)

            # 4. lost key presses
            start = float(rotation.input_value())
            rotation.focus()
            for _ in range(10):
                page.keyboard.press("ArrowRight")
                page.wait_for_timeout(50)
            page.evaluate(QUIET, [page.evaluate("performance.now()"), 800, 10_000])
            rot_steps = float(rotation.input_value()) - start
            url_ok = f"pg_angle={float(rotation.input_value()):g}" in page.url
            page.goto(url + "/playground?pg_debug=1&pg_kind=attention")
            page.locator(".stn-editor[data-confirmed]").wait_for()
            wait_idle(page)
            centre = page.locator('.stn-handle[data-handle="centre"]')
            centre.focus()
            for _ in range(10):
                page.keyboard.press("ArrowRight")
                page.wait_for_timeout(50)
            page.evaluate(OBSERVER, [editor.element_handle()])
            page.evaluate(QUIET, [page.evaluate("performance.now()"), 800, 10_000])
            tx = float(page.get_by_role("slider", name="tx", exact=True).input_value())

            # 5. pointer move → repaint of V
            drags = {}
            for name, query in (("28×28 digit → 28×28", ""),
                                ("128×128 pattern → 128×128",
                                 "&pg_source=test+pattern&pg_psize=128&pg_out_h=128&pg_out_w=128")):
                page.goto(url + "/playground?pg_debug=1" + query)
                page.locator(".stn-editor[data-confirmed]").wait_for()
                wait_idle(page)
                slider = page.get_by_role("slider", name="rotation (°)")
                slider.evaluate(DRAG_RECORDER)
                box = slider.bounding_box()
                x0, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                page.mouse.move(x0, y)
                page.mouse.down()
                for i in range(1, args.moves + 1):
                    page.mouse.move(x0 + (box["width"] / 2.2) * ((i % 40) / 40 - 0.5), y)
                    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")
                page.mouse.up()
                drags[name] = (page.evaluate("window.__moves"), page.evaluate("window.__work"))
                wait_idle(page)
            app_frames = page.evaluate(EMPTY_FRAMES)
            page.close()
        browser.close()

    home = [a for a, _ in switch]
    back = [b for _, b in switch]
    print(f"warm page switch (click in the sidebar → page drawn and idle): Home {fig(home)}; "
          f"back to /playground {fig(back)}; reference (empty pages) {fig(ref_switch)}  (goal ≤ 1000 ms)")
    print(f"key press on a θ slider → first DOM change (the browser's preview): {fig(first)}")
    print(f"key press on a θ slider → page's last DOM change: {fig(last)}  (goal p50 ≤ 100, p95 ≤ 250); "
          f"reference (stock slider on an empty page) {fig(ref_last)}")
    if server_ms:
        print(f"server-side fragment rerun: p50 {pct(server_ms, 0.5):.1f} ms, p95 {pct(server_ms, 0.95):.1f} ms")
    print(f"lost key presses: 10 ArrowRight 50 ms apart on rotation → {rot_steps:g} steps "
          f"(URL {'follows' if url_ok else 'DOES NOT follow'}); on the editor's centre handle → "
          f"tx {tx:g} (10 × 0.02 = 0.2)")
    for name, (moves, work) in drags.items():
        print(f"pointer move on the rotation slider → V repainted, {name}: {fig(moves)}; "
              f"the component's work per move p50 {statistics.median(work):.2f} ms  (goal p50 ≤ 17 ms)")
    print(f"reference: an empty animation frame p50 {pct(app_frames, 0.5):.1f} ms "
          f"(empty app {pct(ref_frames, 0.5):.1f} ms)")


if __name__ == "__main__":
    main()

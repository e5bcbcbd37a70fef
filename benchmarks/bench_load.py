"""Many sessions at once: N headless Chromium sessions move sliders on /playground and /compare
while one more session trains live on /colocalisation.

    python -m benchmarks.bench_load --sessions 8 --seconds 60      (from the repository root)

One `streamlit run app.py` on a loopback port (127.0.0.1; the browser's requests to any other
host are aborted and counted). A warm-up visit loads each page once (models, test images,
MNIST), moves each slider and starts and stops one live run, so the figures are the steady
state, not the first visitor's cold caches. Then, for
``--seconds``:

* sessions 1…N (odd ones on /playground, even ones on /compare) press ArrowRight/ArrowLeft on
  their page's rotation slider, one press at a time, each timed from the key press to the
  page's last DOM change (a MutationObserver; the page idle and quiet for 300 ms afterwards),
  or, if later, to the moment the slider's component drew the server's answer to the press (its
  ``data-confirmed`` mark: the drag editor and /compare's live view draw inside shadow roots,
  which the page's observer does not see): **slider→settle**. At most ``--max-moves`` presses per session; a press whose page has not
  settled within 10 s, an exception element, a lost connection or a failed browser call is an
  **error**;
* the live session opens /colocalisation and, at half time, presses Start: slider moves made
  before its run is going (its Stop button enabled) count as "without live training", the
  others as "while it trained", and the ratio of their medians says how much one session's
  training slows the others (goal ≤ 2×).

Then every session closes (the live one while its run still trains, as a closed tab would)
and the server's resident memory (RSS) is read: before the sessions (after the warm-up), at
its peak, 10 s after they closed, and once Streamlit's ``server.disconnectedSessionTTL`` has
passed (it keeps a closed tab's session that long for a reconnect; goal: within 10% of before);
the server's CPU use after the close says whether the closed tab's live run still trains. The
CPU used by the server and by Chromium during the run says where the machine's time went.

Figures depend on the machine and its load: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, streamlit_process  # noqa: E402

PAGES = ("/playground", "/compare")
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
SETTLE_CAP_MS = 10_000

#: records the time of every DOM change of the page, and of every change of the components'
#: "server's result drawn" mark: /playground's drag editor and /compare's live view draw inside
#: shadow roots (the browser's own preview at once, the server's result later), which the
#: document's observer does not see; each sets ``data-nonce`` when it sends a value to the
#: server and ``data-confirmed`` when it draws the server's answer
OBSERVER = """() => {
  window.__mut = []; window.__conf = [];
  const rec = () => window.__mut.push(performance.now());
  new MutationObserver(rec).observe(document.documentElement,
      {subtree: true, childList: true, attributes: true, characterData: true});
  const roots = [], walk = (n) => { for (const e of n.querySelectorAll('*')) if (e.shadowRoot) {
      roots.push(e.shadowRoot); walk(e.shadowRoot); } };
  walk(document);
  window.__croots = roots.flatMap((r) => [...r.querySelectorAll('[data-painted]')]);
  const conf = new MutationObserver(() => window.__conf.push(performance.now()));
  for (const r of window.__croots) conf.observe(r, {attributes: true, attributeFilter: ['data-confirmed']});
}"""

#: the time and the components' (nonce, confirmed) marks just before a key press
MARK = "() => [performance.now(), (window.__croots || []).map((r) => [r.dataset.nonce, r.dataset.confirmed])]"

#: resolves with the first and last change after t0 — DOM changes, and the server's result drawn
#: in a component that sent a value since t0 — once the page has been idle and quiet for
#: ``quiet`` ms (or after ``cap`` ms: [null, null, why])
SETTLE = """async ([t0, marks, quiet, cap]) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const roots = window.__croots || [];
  // a component that sent a value since t0 and has not drawn the server's answer yet
  const waiting = () => roots.some((r, i) => r.dataset.nonce !== marks[i][0] && r.dataset.confirmed === marks[i][1]);
  while (performance.now() - t0 < cap) {
    await sleep(25);
    const m = window.__mut, last = m.length ? m[m.length - 1] : t0;
    if (m.length && last >= t0 && performance.now() - last >= quiet && !waiting()
        && document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]')) {
      const after = m.filter((t) => t >= t0), conf = window.__conf.filter((t) => t >= t0);
      return [after[0] - t0, Math.max(after[after.length - 1], ...conf) - t0, null];
    }
  }
  const state = document.querySelector('[data-testid=stApp]')?.dataset.testScriptState;
  return [null, null, `${window.__mut.filter((t) => t >= t0).length} DOM changes since the press, script ${state}, `
          + (waiting() ? "a component still waits for the server's answer "
                         + JSON.stringify(roots.map((r) => [r.dataset.nonce, r.dataset.confirmed, r.dataset.ack]))
                       : "no component waiting")];
}"""


# ----------------------------------------------------------------------------- the server
#: `streamlit run app.py` on a free loopback port; yields (url, process)
app_server = streamlit_process


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuTally:
    """CPU seconds used so far by the server, Chromium and the benchmark (Python + Playwright's
    node driver), counting processes that have exited since (a closed tab's renderer) at the
    last value seen: call :meth:`read` often (the RSS sampler does, every 0.25 s)."""

    def __init__(self, server_pid: int):
        self.server_pid, self.seen, self._lock = server_pid, {}, threading.Lock()

    def _group(self, pid: int) -> str | None:
        if pid == self.server_pid:
            return "server"
        if pid == os.getpid():
            return "benchmark"
        comm = Path(f"/proc/{pid}/comm").read_text()
        return "chromium" if "chrom" in comm else "benchmark" if "node" in comm else None

    def read(self) -> dict:
        with self._lock:
            for d in Path("/proc").iterdir():
                if d.name.isdigit():
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        group = self._group(int(d.name))
                        if group:
                            self.seen[int(d.name)] = (group, cpu_seconds(int(d.name)))
            out = {"server": 0.0, "chromium": 0.0, "benchmark": 0.0, "t": time.monotonic()}
            for group, sec in self.seen.values():
                out[group] += sec
            return out


def session_ttl() -> float:
    """How long Streamlit keeps a closed tab's session for a reconnect
    (``server.disconnectedSessionTTL``, read from this repository's .streamlit/config.toml)."""
    from streamlit import config

    os.chdir(ROOT)
    return float(config.get_option("server.disconnectedSessionTTL"))


class RssSampler(threading.Thread):
    """The server's RSS every 0.25 s, for its peak (and the CPU tally, so that it sees every
    process before it exits)."""

    def __init__(self, pid: int, tally=None):
        super().__init__(daemon=True)
        self.pid, self.peak, self._halt, self.tally = pid, 0.0, threading.Event(), tally

    def run(self):
        while not self._halt.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_mb(self.pid))
            if self.tally is not None:
                self.tally.read()
            self._halt.wait(0.25)

    def stop(self):
        self._halt.set()
        self.join(2)


# ----------------------------------------------------------------------------- sessions
class Session:
    def __init__(self, name: str, path: str):
        self.name, self.path = name, path
        self.quiet: list[float] = []      # settle times (ms) while no live run trained
        self.training: list[float] = []   # … and while one did
        self.errors: list[str] = []
        self.blocked = 0                  # requests to other hosts, aborted


class Clock:
    """The shared schedule: every session opens its page, then all start together."""

    def __init__(self, n_sessions: int, seconds: float, cpu=dict):
        self.opened = asyncio.Barrier(n_sessions)
        self.seconds = seconds
        self.start = self.end = self.train_at = float("inf")
        self.training_since = float("inf")   # when the live run was seen training
        self.cpu, self.cpu_at_start = cpu, {}  # CPU times read when the sessions start

    async def go(self) -> None:
        await self.opened.wait()
        if self.start == float("inf"):
            self.start = time.monotonic()
            self.cpu_at_start = self.cpu()
            self.train_at = self.start + self.seconds / 2
            self.end = self.start + self.seconds


async def new_page(browser, session: Session, viewport=(1400, 1000)):
    ctx = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})

    async def loopback_only(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost") or route.request.url.startswith(
                ("data:", "blob:", "about:")):
            await route.continue_()
        else:
            session.blocked += 1
            await route.abort()

    await ctx.route("**/*", loopback_only)
    page = await ctx.new_page()
    page.set_default_timeout(120_000)
    return ctx, page


async def wait_idle(page, timeout=120_000):
    await page.wait_for_selector(IDLE, timeout=timeout)


async def slider_session(browser, url: str, s: Session, clock: Clock, max_moves: int) -> None:
    ctx, page = await new_page(browser, s)
    try:
        try:
            await page.goto(url + s.path)
            await wait_idle(page)
            # the rotation slider: a stock slider on /compare, the drag editor's on /playground
            slider = page.get_by_role("slider", name="rotation (°)").first
            await slider.wait_for()
            await page.evaluate(OBSERVER)
        except Exception as exc:  # noqa: BLE001
            s.errors.append(f"open: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            return
        finally:
            await clock.go()
        moves = 0
        while time.monotonic() < clock.end and moves < max_moves:
            key_name = "ArrowRight" if (moves // 5) % 2 == 0 else "ArrowLeft"   # stays near the default
            try:
                await slider.focus()
                t0, marks = await page.evaluate(MARK)
                when = time.monotonic()
                await page.keyboard.press(key_name)
                first, last, why = await page.evaluate(SETTLE, [t0, marks, 300, SETTLE_CAP_MS])
                if last is None:
                    s.errors.append(f"move {moves}: no settle within {SETTLE_CAP_MS / 1000:.0f} s ({why})")
                else:
                    (s.training if when >= clock.training_since else s.quiet).append(last)
                if await page.locator('[data-testid="stException"]').count():
                    s.errors.append(f"move {moves}: exception element on the page")
                    break
            except Exception as exc:  # noqa: BLE001 — a broken session is counted, the others go on
                s.errors.append(f"move {moves}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
                break
            moves += 1
    finally:
        await ctx.close()


async def live_session(browser, url: str, s: Session, clock: Clock, log: list) -> None:
    ctx, page = await new_page(browser, s)
    try:
        try:
            await page.goto(url + "/colocalisation")
            await wait_idle(page)
        finally:
            await clock.go()
        await asyncio.sleep(max(0.0, clock.train_at - time.monotonic()))
        await page.locator(".st-key-coloc_start").get_by_role("button", name="Start", exact=True).click()
        stop = page.locator(".st-key-coloc_stop").get_by_role("button", name="Stop", exact=True)
        seen, started, first = 0, None, None
        while time.monotonic() < clock.end:
            await asyncio.sleep(0.5)
            if started is None and await stop.is_enabled():   # its thread is working
                started = clock.training_since = time.monotonic()
            m = re.search(r"iteration (\d+) of (\d+)", await page.locator("body").inner_text())
            if m:
                seen = int(m.group(1))
                if seen > 0 and first is None:
                    first = time.monotonic()
            if await page.locator('[data-testid="stException"]').count():
                s.errors.append("exception element on the page")
                break
        if started is None:
            s.errors.append("the live run had not started before the end")
        log.append({"started": started - clock.train_at if started else float("nan"),
                    "first": first - clock.train_at if first else float("nan"), "iteration": seen})
    except Exception as exc:  # noqa: BLE001
        s.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    finally:
        await ctx.close()   # the tab closes while the run trains


async def warm_up(browser, url: str) -> None:
    """Each page once, its rotation slider moved there and back, and one live co-localisation
    run started and stopped, so that models, test images, MNIST and what a first move or a
    first run loads once per process (torch's kernels and buffers for these shapes: ≈ 130 MB
    for the first live run, a few MB for each later one) are in memory before the clock and
    before the RSS the sessions are compared with."""
    s = Session("warm-up", "")
    ctx, page = await new_page(browser, s)
    try:
        for path in ("/", "/playground", "/compare", "/colocalisation"):
            await page.goto(url + path)
            await wait_idle(page, timeout=180_000)
            if path in PAGES:
                slider = page.get_by_role("slider", name="rotation (°)").first
                for key_name in ("ArrowRight", "ArrowLeft"):
                    await slider.focus()
                    await page.keyboard.press(key_name)
                    await asyncio.sleep(1.0)
                    await wait_idle(page, timeout=60_000)
            if path == "/colocalisation":   # one live run to its first iterations, then stopped
                await page.locator(".st-key-coloc_start").get_by_role("button", name="Start", exact=True).click()
                t = time.monotonic()
                while time.monotonic() - t < 120:
                    await asyncio.sleep(0.5)
                    m = re.search(r"iteration (\d+) of", await page.locator("body").inner_text())
                    if m and int(m.group(1)) > 0:
                        break
                await page.locator(".st-key-coloc_stop").get_by_role("button", name="Stop", exact=True).click()
                start = page.locator(".st-key-coloc_start").get_by_role("button", name="Start", exact=True)
                t = time.monotonic()
                while time.monotonic() - t < 120 and not await start.is_enabled():
                    await asyncio.sleep(0.5)
    finally:
        await ctx.close()


# ----------------------------------------------------------------------------- report
def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def fmt(values) -> str:
    if not values:
        return "        –        "
    return f"{pct(values, 0.5):6.0f} {pct(values, 0.95):6.0f} {len(values):4d}"


async def run(args) -> int:
    from playwright.async_api import async_playwright

    print(f"load average before the run: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs; "
          f"{args.sessions} slider sessions + 1 live session, {args.seconds:.0f} s")
    with tempfile.TemporaryDirectory() as tmp, app_server(Path(tmp) / "server.log") as (url, proc):
        pid = proc.pid
        rss_cold = rss_mb(pid)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            t = time.monotonic()
            await warm_up(browser, url)
            print(f"warm-up (each page once, one live run started and stopped): {time.monotonic() - t:.1f} s")
            rss_before = rss_mb(pid)
            tally = CpuTally(pid)
            sampler = RssSampler(pid, tally)
            sampler.start()
            sessions = [Session(f"{i + 1}", PAGES[i % 2]) for i in range(args.sessions)]
            live = Session("live", "/colocalisation")
            clock = Clock(args.sessions + 1, args.seconds, tally.read)
            live_log: list = []
            t = time.monotonic()
            await asyncio.gather(*(slider_session(browser, url, s, clock, args.max_moves) for s in sessions),
                                 live_session(browser, url, live, clock, live_log))
            cpu0, cpu1 = clock.cpu_at_start, tally.read()   # from the moment all pages were open
            await browser.close()
            print(f"opening the {args.sessions + 1} pages together: {clock.start - t:.1f} s")
        closed = time.monotonic()
        await asyncio.sleep(10)
        rss_after = rss_mb(pid)
        c0 = cpu_seconds(pid)
        await asyncio.sleep(5)
        cpu_after = cpu_seconds(pid) - c0
        # Streamlit keeps a closed tab's session (its state) for a reconnect until the TTL
        # has passed; what the sessions leave behind is only known after that
        ttl = session_ttl()
        await asyncio.sleep(max(0.0, closed + ttl + args.after_ttl - time.monotonic()))
        rss_ttl = rss_mb(pid)
        sampler.stop()
        log_text = (Path(tmp) / "server.log").read_text()

    print("\nslider→settle (ms): p50, p95 and count, without live training / while it trained")
    print(f"{'session':>8} {'page':12} {'p50':>6} {'p95':>6} {'n':>4}   {'p50':>6} {'p95':>6} {'n':>4}  "
          f"{'slowdown':>8}  errors")
    all_quiet, all_train, n_errors = [], [], 0
    for s in sessions:
        ratio = (pct(s.training, 0.5) / pct(s.quiet, 0.5)) if s.quiet and s.training else float("nan")
        print(f"{s.name:>8} {s.path:12} {fmt(s.quiet)}   {fmt(s.training)}  {ratio:7.2f}×  {len(s.errors)}"
              + (f"  ({s.errors[0]})" if s.errors else ""))
        all_quiet += s.quiet
        all_train += s.training
        n_errors += len(s.errors)
    ratio = pct(all_train, 0.5) / pct(all_quiet, 0.5) if all_quiet and all_train else float("nan")
    print(f"{'all':>8} {'':12} {fmt(all_quiet)}   {fmt(all_train)}  {ratio:7.2f}×  {n_errors}")
    lv = live_log[0] if live_log else {"started": float("nan"), "first": float("nan"), "iteration": 0}
    print(f"\nlive session: {len(live.errors)} errors" + (f" ({live.errors[0]})" if live.errors else "")
          + f"; after Start its run was going in {lv['started']:.1f} s, reported its first iteration after "
            f"{lv['first']:.1f} s and reached iteration {lv['iteration']} by the end")
    blocked = sum(s.blocked for s in [*sessions, live])
    print(f"requests to other hosts than 127.0.0.1 (aborted): {blocked}")
    span, presses = cpu1["t"] - cpu0["t"], max(1, len(all_quiet) + len(all_train))
    used = {k: cpu1[k] - cpu0[k] for k in ("server", "chromium", "benchmark")}
    print(f"CPU while the sessions moved sliders ({span:.0f} s, {os.cpu_count()} CPUs): server "
          f"{used['server'] / span:.2f} cores, Chromium {used['chromium'] / span:.2f} cores, this benchmark "
          f"(Python + Playwright's driver) {used['benchmark'] / span:.2f} cores; per settled slider move "
          f"{used['server'] / presses * 1e3:.0f} ms server (with the live run's training), "
          f"{used['chromium'] / presses * 1e3:.0f} ms Chromium")
    print(f"server RSS: {rss_cold:.0f} MB started, {rss_before:.0f} MB before the sessions (warm), "
          f"peak {sampler.peak:.0f} MB, {rss_after:.0f} MB 10 s after they closed "
          f"({(rss_after / rss_before - 1) * 100:+.0f}% of before), {rss_ttl:.0f} MB "
          f"{ttl + args.after_ttl:.0f} s after (once Streamlit's disconnectedSessionTTL of {ttl:.0f} s had "
          f"passed: {(rss_ttl / rss_before - 1) * 100:+.0f}%)")
    print(f"server CPU 10–15 s after every tab closed: {cpu_after / 5:.2f} cores"
          + (" — the closed tab's live run still trains" if cpu_after / 5 > 0.2 else " — idle"))
    tracebacks = log_text.count("Traceback")
    print(f"tracebacks in the server log: {tracebacks}")
    return 0 if n_errors == 0 and not live.errors and tracebacks == 0 else 1


async def cost(args) -> int:
    """``--cost N``: each page alone (one session, nothing else running in the server), N
    rotation-slider key presses, each waited for until the page settles: the CPU one move
    costs the server and Chromium, and the settle time."""
    from playwright.async_api import async_playwright

    print(f"load average before the run: {os.getloadavg()[0]:.2f} (1 min); one session per page, "
          f"{args.cost} key presses each")
    with tempfile.TemporaryDirectory() as tmp, app_server(Path(tmp) / "server.log") as (url, proc):
        tally = CpuTally(proc.pid)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for path in PAGES:
                ctx, page = await new_page(browser, Session("cost", path))
                await page.goto(url + path)
                await wait_idle(page)
                slider = page.get_by_role("slider", name="rotation (°)").first
                await slider.wait_for()
                await page.evaluate(OBSERVER)
                for key_name in ("ArrowRight", "ArrowLeft"):   # what a first move loads, loaded
                    await slider.focus()
                    await page.keyboard.press(key_name)
                    await asyncio.sleep(1.0)
                c0, settle = tally.read(), []
                for k in range(args.cost):
                    await slider.focus()
                    t0, marks = await page.evaluate(MARK)
                    await page.keyboard.press("ArrowRight" if (k // 5) % 2 == 0 else "ArrowLeft")
                    settle.append((await page.evaluate(SETTLE, [t0, marks, 300, SETTLE_CAP_MS]))[1])
                c1 = tally.read()
                done = [x for x in settle if x is not None]
                print(f"{path:12} per move: server {(c1['server'] - c0['server']) / args.cost * 1e3:5.1f} ms CPU, "
                      f"Chromium {(c1['chromium'] - c0['chromium']) / args.cost * 1e3:5.1f} ms CPU; "
                      f"settle p50 {pct(done, 0.5):.0f} ms, p95 {pct(done, 0.95):.0f} ms"
                      + (f"; {len(settle) - len(done)} not settled in 10 s" if len(done) < len(settle) else ""))
                await ctx.close()
            await browser.close()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=8, help="slider sessions (default 8), plus one live session")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long they run (default 60)")
    ap.add_argument("--after-ttl", type=float, default=15.0,
                    help="read the server's RSS this many seconds after the closed sessions' TTL (default 15)")
    ap.add_argument("--max-moves", type=int, default=400, help="slider presses per session at most (default 400)")
    ap.add_argument("--cost", type=int, default=0, metavar="N",
                    help="instead: each page alone, N key presses, the CPU one move costs the server and Chromium")
    args = ap.parse_args(argv)
    if args.cost:
        if not 1 <= args.cost <= 500:
            ap.error("--cost must be 1–500")
        return asyncio.run(cost(args))
    if not 1 <= args.sessions <= 64 or not 4 <= args.seconds <= 1800:
        ap.error("--sessions must be 1–64 and --seconds 4–1800")
    if not Path(CHROMIUM).exists():
        ap.error(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())

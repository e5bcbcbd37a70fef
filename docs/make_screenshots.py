"""Photograph every page of the app at 800 px and 1400 px wide (sidebar open), top to bottom,
into docs/screenshots/<page>_<width>.png — the views tests/browser/test_widths.py checks.

    python docs/make_screenshots.py                  (from the repo root; needs /usr/bin/chromium)
    python docs/make_screenshots.py --widths 1920 --pages compare

Each page is opened in a fresh tab on a fresh server (as a shared link would be), left to
finish and draw its charts; the window is then made as tall as the page so one image holds it
all. Images are stored with a 256-colour palette (a third of the size, no visible change).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app_ui.shell import PAGES  # noqa: E402
from tests.browser.harness import launch_chromium, streamlit_server  # noqa: E402
from tests.browser.test_widths import WIDTHS, open_page, settle  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CONTENT_HEIGHT = """() => document.querySelector('[data-testid="stMain"]')?.scrollHeight || 0"""
MAX_HEIGHT = 8000


def shoot(page, path: str, out: Path) -> None:
    from PIL import Image

    width = page.viewport_size["width"]
    height = min(MAX_HEIGHT, max(page.viewport_size["height"], page.evaluate(CONTENT_HEIGHT)))
    page.set_viewport_size({"width": width, "height": height})
    settle(page, path)  # relaid out at the new height
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out))
    Image.open(out).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    urls = [url for _, _, _, url in PAGES]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    ap.add_argument("--pages", nargs="+", default=[u or "home" for u in urls], help="url paths (home for /)")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, streamlit_server(Path(tmp) / "log") as url, \
            sync_playwright() as p:
        browser = launch_chromium(p)
        for width in args.widths:
            for name in args.pages:
                path = "/" + ("" if name == "home" else name)
                ctx, page = open_page(browser, url + path, width)
                out = OUT / f"{name}_{width}.png"
                shoot(page, path, out)
                ctx.close()
                print(f"wrote {out.relative_to(ROOT)}")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

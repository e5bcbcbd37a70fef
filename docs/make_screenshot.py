"""Regenerate docs/playground.png (the README screenshot) from a running app.

    python docs/make_screenshot.py        (from the repo root; needs /usr/bin/chromium)
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import launch_chromium, streamlit_server, wait_idle  # noqa: E402

VIEW = ("/playground?pg_class=3&pg_index=2&pg_angle=-25&pg_sx=0.75&pg_sy=0.6&pg_shear=0.3"
        "&pg_tx=0.15&pg_ty=0.1")


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, streamlit_server(Path(tmp) / "log") as url, \
            sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.goto(url + VIEW)
        wait_idle(page)
        page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                                      .every(c => c.querySelector('.main-svg image'))""")
        out = ROOT / "docs" / "playground.png"
        page.screenshot(path=str(out))
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

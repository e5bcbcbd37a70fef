"""app_ui/urls.py: the router's check of the address's query parameters (issue 18), without
Streamlit's runtime (plain dicts stand in for ``st.query_params``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from app_ui import urls  # noqa: E402
from stn_explore.explorer import playground_state as ps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HTML = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
HOSTILE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1e308", "abc", "", " ", "9" * 100_000, "A" * 100_000,
           HTML, "[x](javascript:alert(1))", "**bold**", "$x$"]


def test_values_the_app_writes_are_kept():
    good = {"pg_source": "test pattern", "pg_class": "7", "pg_index": "0", "pg_pattern": "checkerboard",
            "pg_psize": "128", "pg_kind": "tps", "pg_out_h": "4", "pg_out_w": "256", "pg_mode": "nearest",
            "pg_pad": "reflection", "pg_plotly": "true", "pg_debug": "1", "pg_angle": "30", "pg_sx": "-3",
            "pg_s": "0.05", "pg_c0x": "-1.5", "pg_tps_bend": "2",
            "pg_theta": ",".join(f"{v:.6g}" for v in [0.866025, -0.5, 0.1, 0.5, 0.866025, -1234.5]),
            "pg_tps": ",".join(f"{v:.3f}" for v in np.linspace(-1, 1, 2 * ps.N_TPS))}
    q = dict(good)
    assert urls.sanitise("playground", q) == {} and q == good
    good = {"cmp_task": "addition", "cmp_add_model": "2st-cnn_affine", "cmp_source": "draw a digit", "cmp_index": "999"}
    q = dict(good)
    assert urls.sanitise("compare", q) == {} and q == good


def test_every_slider_default_written_to_the_url_is_kept():
    for key, (_, lo, hi, step, default) in ps.SLIDERS.items():
        for v in (lo, hi, default, ps._on_step(lo + 7 * step, step, lo, hi)):
            assert urls.acceptable("playground", key, ps._url_number(v)), (key, v)


@pytest.mark.parametrize("key", [*urls.URL_KEYS["playground"], *urls.URL_KEYS["compare"]])
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: v[:12] or "empty")
def test_hostile_values_are_dropped(key, value):
    page = "playground" if key.startswith("pg_") else "compare"
    if key == "pg_debug" and len(value) <= urls.SHOWN_CHARS:
        return   # any short value switches the benchmark's timing caption on; it is never shown
    q = {key: value, "zz_unknown": "1"}
    assert urls.sanitise(page, q) == {key: value, "zz_unknown": "1"} and q == {}


@pytest.mark.parametrize(("key", "value"), [
    ("pg_index", "1.5"), ("pg_index", "1e3"), ("pg_index", "-1"), ("pg_index", "10000"), ("pg_index", "0x1"),
    ("pg_out_h", "3"), ("pg_out_w", "257"), ("pg_out_h", "28.0"), ("cmp_index", "1000"), ("cmp_index", "1.5"),
    ("pg_psize", "65"), ("pg_class", "10"), ("pg_kind", "AFFINE"), ("pg_plotly", "1"),
    ("pg_angle", "180.5"), ("pg_s", "0.01"), ("pg_tps_bend", "-0.1"), ("pg_c0x", "2.01"),
    ("pg_theta", "1,0,0,0,1"), ("pg_theta", "1,0,0,0,1,nan"), ("pg_theta", "1,0,0,0,1,1e300"),
    ("pg_tps", ",".join(["0"] * 31)), ("pg_tps", ",".join(["1.5"] * 32)),
    ("cmp_task", "RTS"), ("cmp_add_model", "st-cnn"), ("cmp_source", "upload"),
])
def test_out_of_range_or_wrong_type_values_are_dropped(key, value):
    page = "playground" if key.startswith("pg_") else "compare"
    assert not urls.acceptable(page, key, value)


def test_keys_of_another_page_and_pages_without_keys():
    assert not urls.acceptable("compare", "pg_kind", "tps")
    assert not urls.acceptable("playground", "cmp_index", "3")
    for page in ("", "learning", "colocalisation", "paper"):
        q = {"pg_kind": "tps", "x": "1"}
        assert urls.sanitise(page, q) == {"pg_kind": "tps", "x": "1"} and q == {}


def test_the_note_is_short_escaped_and_names_every_key():
    ignored = {"pg_index": "9" * 100_000, "zz_unknown": HTML, "A" * 100_000: "1", "b`ad": "[x](javascript:1)",
               "pg_kind": "**bold** _it_ $x$ <b>"}
    text = urls.note(ignored)
    assert text.startswith("Ignored in the address: `pg_index` = ")
    assert "`pg_index`" in text and "`zz_unknown`" in text and "`b'ad`" in text
    assert "9" * 40 not in text and "A" * 40 not in text and "9" * 39 + "…" in text
    assert "__pwned" not in text and "\\<script\\>" in text and re.search(r"(?<!\\)[<>]", text) is None
    assert "](" not in text and "**" not in text and " _it_ " not in text and "$x$" not in text
    # every character of a value that markdown could read is escaped
    value_part = text.split("`pg_kind` = ")[1]
    assert re.fullmatch(r"(\\[!-/:-@\[-`{-~]|[^!-/:-@\[-`{-~])*", value_part), value_part
    assert urls.shorten("a\n\tb") == "a b" and len(urls.shorten("x" * 100)) == urls.SHOWN_CHARS


def test_the_list_matches_the_widgets_bound_to_the_url():
    """Every widget key bound to the URL in the pages (``**URL`` / ``bind="query-params"`` /
    ``url_selectbox``) is in URL_KEYS, with the options the page offers."""
    bound = set()
    for path in ("app_ui/playground.py", "app_ui/compare.py", "pages/playground.py", "pages/compare.py"):
        src = (ROOT / path).read_text()
        for call in re.findall(r"\((?:[^()]|\([^()]*\))*\)", src):
            if "**URL" in call or 'bind="query-params"' in call:
                bound |= set(re.findall(r'key="([a-z_]+)"', call))
        bound |= set(re.findall(r'url_selectbox\([^,]+,[^,]+,\s*"([a-z_]+)"', src))
    assert {"pg_index", "pg_out_h", "pg_out_w", "cmp_index", "cmp_task", "cmp_add_model"} <= bound
    known = {k for keys in urls.URL_KEYS.values() for k in keys}
    assert bound <= known, bound - known
    tasks = re.search(r"^TASKS = (\(.*\))$", (ROOT / "pages/compare.py").read_text(), re.M).group(1)
    assert all(urls.acceptable("compare", "cmp_task", t) for t in eval(tasks))   # noqa: S307 (our own source)


def test_the_addition_models_match_the_compare_page():
    compare = pytest.importorskip("stn_explore.explorer.compare")
    assert all(urls.acceptable("compare", "cmp_add_model", r) for r in compare.ADDITION_ST_ROWS)
    assert not urls.acceptable("compare", "cmp_add_model", "2st-cnn_tps")

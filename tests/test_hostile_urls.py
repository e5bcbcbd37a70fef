"""Hostile URL query parameters (issue 18), through AppTest: NaN, ±inf, ±1e308, wrong types,
100 KB strings, HTML/script and unknown keys on every page. A page must not crash, must never
render the value (as HTML or at all, for the long ones), must fall back to its defaults, and
should say in a note which parameters it ignored.

The router checks every query parameter before the page runs (app_ui/urls.py, called by
app_ui/shell.py's run_router): unknown keys and values a widget could not take are removed
and named in one caption. Before it, Streamlit's int number_input (bound with
bind="query-params") did int(float(value)) and crashed on inf and on a 100,000-digit number,
read ?pg_index=1.5 as 1, and playground_state._on_step overflowed on ±1e308 (pg_s, pg_c0x,
pg_tps_bend) because it rounded before clamping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HTML = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
VALUES = {"nan": "nan", "inf": "inf", "-inf": "-inf", "1e308": "1e308", "-1e308": "-1e308", "word": "abc",
          "half": "1.5", "digits_100k": "9" * 100_000, "letters_100k": "A" * 100_000, "html": HTML}
#: the query parameters each page reads (widgets bound to the URL, and values the page parses)
KEYS = {
    "playground": ["pg_source", "pg_class", "pg_index", "pg_pattern", "pg_psize", "pg_kind", "pg_out_h", "pg_out_w",
                   "pg_mode", "pg_pad", "pg_plotly", "pg_angle", "pg_s", "pg_c0x", "pg_tps_bend", "pg_theta",
                   "pg_tps"],
    "compare": ["cmp_task", "cmp_add_model", "cmp_source", "cmp_index", "cmp_angle", "cmp_scale", "cmp_sx", "cmp_sy"],
    "colocalisation": [], "paper": [], "home": [],
}
PAGE_FILE = {"home": None, **{p: f"pages/{p}.py" for p in KEYS if p != "home"}}
TEXT_ELEMENTS = ("markdown", "caption", "info", "warning", "error", "success", "code", "latex", "title", "header",
                 "subheader", "text", "exception")

def _cases():
    for page, keys in KEYS.items():
        if not keys:   # nothing read from the URL: every value at once, as unknown keys
            yield pytest.param(page, "all", id=f"{page}-unknown-keys")
            continue
        for name in VALUES:
            yield pytest.param(page, name, id=f"{page}-{name}")


def run(page: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    for k, v in params.items():
        at.query_params[k] = v
    if PAGE_FILE[page]:
        at.switch_page(PAGE_FILE[page])
    return at.run()


#: keys for which a value of VALUES is a legitimate setting (/compare's scale slider spans 0.5–2)
VALID = {"half": ("cmp_scale",)}
#: values kept in session state rather than in widgets (/compare's live sliders are a component's)
STATE_KEYS = ("cmp_angle", "cmp_scale", "cmp_sx", "cmp_sy")


def widget_values(at: AppTest) -> dict:
    widgets = [*at.number_input, *at.slider, *at.radio, *at.selectbox, *at.toggle, *at.checkbox, *at.text_input]
    state = {k: at.session_state[k] for k in STATE_KEYS if k in at.session_state}
    return {w.key: w.value for w in widgets if w.key} | state


def shown_texts(at: AppTest) -> list[str]:
    texts = [str(getattr(el, "value", "")) for kind in TEXT_ELEMENTS for el in at.get(kind)]
    return texts + [el.proto.body for el in at.get("html")]


_defaults: dict[str, dict] = {}


def defaults(page: str) -> dict:
    """The page's widget values without query parameters (one clean run per page)."""
    if page not in _defaults:
        at = run(page, {})
        assert not at.exception, [e.value for e in at.exception]
        _defaults[page] = widget_values(at)
    return _defaults[page]


@pytest.mark.parametrize(("page", "value"), list(_cases()))
def test_hostile_query_values_fall_back_to_defaults(page, value):
    want = defaults(page)
    if value == "all":
        params = {f"zz_{name}": v for name, v in VALUES.items()}
    else:
        params = {k: VALUES[value] for k in KEYS[page]} | {f"zz_unknown_{value}": VALUES[value]}
    at = run(page, params)
    assert not at.exception, [e.value.splitlines()[0] for e in at.exception]
    for text in shown_texts(at):   # never rendered: no markup, no 100 KB echo
        assert "__pwned" not in text and "9" * 1000 not in text and "A" * 1000 not in text, text[:200]
    got = widget_values(at)
    valid = [k for k in VALID.get(value, ()) if k in KEYS[page]]   # a value such a key may take: kept
    assert {k: got.get(k) for k in want if k not in valid} == {k: v for k, v in want.items() if k not in valid}
    for k in valid:
        assert got[k] == float(VALUES[value]), k


@pytest.mark.parametrize("page", list(KEYS))
def test_ignored_query_values_get_a_note(page):
    params = {k: "nan" for k in KEYS[page]} | {"zz_unknown": "1"}
    at = run(page, params)
    assert not at.exception
    notes = " ".join(str(el.value) for kind in ("caption", "info", "warning") for el in at.get(kind))
    assert "zz_unknown" in notes and all(k in notes for k in KEYS[page] if k in defaults(page))

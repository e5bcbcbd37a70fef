"""One check of the address's query parameters for every page (issue 18: hostile URLs).

The router (:func:`app_ui.shell.run_router`) calls :func:`sanitise_query_params` before it
runs a page: every query parameter that the page does not read, or whose value its widget
could not take (not one of its options, not an integer for an integer input, NaN, ±inf,
out of range, far too long), is removed from ``st.query_params`` before any widget reads
it, so the page starts from its defaults for it, and one ``st.caption`` names what was
ignored (shortened and escaped: never rendered as markdown or HTML).

:data:`URL_KEYS` is the one list of the query parameters each page reads. A page that binds
a new widget to the URL (``bind="query-params"``) or reads ``st.query_params`` must add its
key here, or the key is dropped as unknown (tests/test_urls.py checks the list against the
pages' widgets).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, MutableMapping

from stn_explore.explorer import playground as pg
from stn_explore.explorer import playground_state as ps

Check = Callable[[str], bool]

#: a value longer than this is refused before it is parsed (the longest legitimate one, pg_tps,
#: is 32 numbers of ≤ 6 characters)
MAX_VALUE_CHARS = 400
#: names and values are shortened to this many characters in the note
SHOWN_CHARS = 40
_NOTES = "_stn_url_ignored"   # session state: page → its note
_INT = re.compile(r"-?[0-9]{1,12}")


def choice(*options) -> Check:
    """One of ``options``, as Streamlit writes them into the URL (``str(option)``)."""
    allowed = frozenset(str(o) for o in options)
    return lambda v: v in allowed


def integer(lo: int, hi: int) -> Check:
    """A whole number in ``[lo, hi]``, written as digits (not ``1.5``, ``1e3`` nor ``inf``)."""
    return lambda v: _INT.fullmatch(v) is not None and lo <= int(v) <= hi


def number(lo: float, hi: float) -> Check:
    """A finite number in ``[lo, hi]``."""
    return numbers(1, lo, hi)


def numbers(n: int, lo: float = -math.inf, hi: float = math.inf) -> Check:
    """``n`` comma-separated finite numbers, each in ``[lo, hi]``."""
    def check(v: str) -> bool:
        parts = v.split(",")
        if len(parts) != n:
            return False
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            return False
        return all(math.isfinite(x) and lo <= x <= hi for x in vals)
    return check


def boolean(v: str) -> bool:
    return v.lower() in ("true", "false")


def short_text(v: str) -> bool:
    return len(v) <= SHOWN_CHARS


#: page url_path → {query parameter: check of its value}. Kept in step with the widgets bound
#: to the URL in app_ui/playground.py, pages/playground.py (pg_plotly, pg_debug),
#: stn_explore/explorer/playground_state.py (θ sliders, pg_theta, pg_tps), app_ui/compare.py
#: and pages/compare.py. Ranges of data-dependent widgets are their widest: pg_index indexes
#: the MNIST test set (10,000 digits; a class has fewer, which the widget itself refuses),
#: cmp_index the 1,000 test images of app_ui.compare.N_SHOWN.
URL_KEYS: dict[str, dict[str, Check]] = {
    "playground": {
        "pg_source": choice("MNIST digit", "test pattern", "upload"),
        "pg_class": choice("any", *range(10)),
        "pg_index": integer(0, 9_999),
        "pg_pattern": choice(*pg.PATTERNS),
        "pg_psize": choice(32, 64, 128),
        "pg_kind": choice(*pg.KINDS),
        "pg_out_h": integer(4, 256),
        "pg_out_w": integer(4, 256),
        "pg_mode": choice("bilinear", "nearest", "bicubic"),
        "pg_pad": choice("zeros", "border", "reflection"),
        "pg_plotly": boolean,
        "pg_debug": short_text,   # benchmarks/bench_playground_latency.py
        **{key: number(lo, hi) for key, (_, lo, hi, _, _) in ps.SLIDERS.items()},
        "pg_theta": numbers(6, -1e6, 1e6),
        "pg_tps": numbers(2 * ps.N_TPS, *ps.TPS_OFFSET_RANGE[:2]),
    },
    "compare": {
        "cmp_task": choice("rts", "r", "p", "e", "cluttered", "addition"),   # pages/compare.py TASKS
        "cmp_add_model": choice("2st-fcn_affine", "2st-fcn_projective", "2st-fcn_tps", "2st-cnn_affine"),
        "cmp_source": choice("test set", "your own image", "draw a digit"),
        "cmp_index": integer(0, 999),
        # the extra distortion: the ranges of stn_explore/explorer/compare_live.py SLIDERS (not imported
        # here: it loads torch; tests/test_compare_live.py checks they agree)
        "cmp_angle": number(-180, 180),
        "cmp_scale": number(0.5, 1.5),
        "cmp_sx": number(-0.5, 0.5),
        "cmp_sy": number(-0.5, 0.5),
    },
}


def acceptable(page: str, key: str, value: str) -> bool:
    """Whether page ``page`` (its url_path; "" is home) reads ``key`` and can take ``value``."""
    check = URL_KEYS.get(page, {}).get(key)
    if check is None or len(value) > MAX_VALUE_CHARS:
        return False
    try:
        return bool(check(value))
    except (ValueError, OverflowError):
        return False


def rejected(page: str, query: Mapping[str, str]) -> dict[str, str]:
    """The query parameters (name → value) that ``page`` ignores."""
    return {k: v for k, v in query.items() if not acceptable(page, k, v)}


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """At most ``limit`` characters, on one line."""
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(text: str) -> str:
    """Shown as is by st.markdown/st.caption: every ASCII punctuation character backslash-escaped
    (so no emphasis, link, image, HTML tag, LaTeX or code)."""
    return _PUNCTUATION.sub(r"\\\1", text)


def code_span(text: str) -> str:
    """``text`` as inline code (literal: never markdown nor HTML); backticks are replaced."""
    return "`" + text.replace("`", "'") + "`"


def note(ignored: Mapping[str, str]) -> str:
    """The caption naming what was ignored: ``Ignored in the address: `pg_index` = inf, …``."""
    items = [f"{code_span(shorten(k))} = {escape_markdown(shorten(v)) or '(empty)'}" for k, v in ignored.items()]
    return "Ignored in the address: " + ", ".join(items)


def sanitise(page: str, query: MutableMapping[str, str]) -> dict[str, str]:
    """Remove from ``query`` what ``page`` ignores; returns the removed name → value. A
    parameter Streamlit holds for a bound widget cannot be removed: left to the widget."""
    ignored = rejected(page, query)
    for key in list(ignored):
        try:
            del query[key]
        except Exception:   # StreamlitAPIException: bound to a widget of an earlier run
            ignored.pop(key)
    return ignored


def _forget_initial(keys) -> None:
    """Widgets bound with ``bind="query-params"`` are seeded from Streamlit's snapshot of the
    address taken when the session's page loaded (``QueryParams._initial_query_params``, a
    private field of Streamlit 1.67), not from ``st.query_params``: drop the keys there too,
    or an int number_input still does int(float("inf")). tests/test_hostile_urls.py fails if
    a Streamlit upgrade moves it."""
    if not keys:
        return
    from streamlit.runtime.state.session_state_proxy import get_session_state

    with get_session_state().query_params() as qp:
        initial = getattr(qp, "_initial_query_params", None)
        if isinstance(initial, dict):
            for key in keys:
                initial.pop(key, None)


def sanitise_query_params(page: str) -> None:
    """The router's check: drop what ``page`` ignores from ``st.query_params`` and say so. The
    note stays on that page for the session (the page's first reruns follow at once)."""
    import streamlit as st

    ignored = sanitise(page, st.query_params)
    _forget_initial(ignored)
    notes = st.session_state.setdefault(_NOTES, {})
    if ignored:
        notes[page] = note(ignored)
    if page in notes:
        st.caption(notes[page])

"""App-wide Streamlit plumbing shared by app.py and the pages (not part of the library).

Why the guard: while a `pages/` folder exists next to app.py and no session has run app.py
yet, Streamlit serves a deep link such as /playground by running pages/playground.py
directly (its legacy pages-folder mode), without the st.navigation router, the page config
and the navigation of app.py. `ensure_router()` notices that and hands over to app.py,
which then switches to the requested page with its query parameters intact.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from .urls import sanitise_query_params

#: (file, title, icon, url_path); url_path "" is the default page
PAGES = [
    ("pages/home.py", "Home", ":material/home:", ""),
    ("pages/playground.py", "θ playground", ":material/tune:", "playground"),
    ("pages/learning.py", "How it learns", ":material/school:", "learning"),
    ("pages/compare.py", "CNN vs ST-CNN", ":material/compare:", "compare"),
    ("pages/colocalisation.py", "Co-localisation", ":material/center_focus_strong:", "colocalisation"),
    ("pages/paper.py", "Paper vs ours", ":material/table_chart:", "paper"),
]
_ROUTED = "_stn_routed"
_GOTO = "_stn_goto"


def one_torch_thread() -> None:
    """Make torch, once it is imported, run each computation on one thread (unless the user
    set ``OMP_NUM_THREADS``). The app serves many small computations (one image through two
    models per slider move) from many sessions at once; with torch's default of one thread
    per core, each small convolution waited at OpenMP barriers for threads the other sessions,
    a live run or the browsers were using: on /compare a slider move cost 88 ms of server CPU
    instead of 19 ms on the 2-core machine (issue 18). Must run before torch is imported
    (the first view of a fresh server imports no torch; see pages/playground.py). Runs that
    train on a thread (/colocalisation, /learning) set their own thread count."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_router() -> None:
    """Called by app.py: build the navigation, honour a pending deep link, run the page."""
    st.set_page_config(page_title="stn_explore — Spatial Transformer Networks", page_icon="🔀",
                       layout="wide")
    pages = {url: st.Page(file, title=title, icon=icon, url_path=url or None, default=not url)
             for file, title, icon, url in PAGES}
    nav = st.navigation(list(pages.values()))
    if get_script_run_ctx(suppress_warning=True) is not None:   # a session (not bare `python app.py`)
        _session_memory()
    goto = st.session_state.pop(_GOTO, None)
    st.session_state[_ROUTED] = True
    if goto is not None and goto[0] in pages and goto[0]:
        st.switch_page(pages[goto[0]], query_params=goto[1])
    # every page: drop the query parameters it ignores before its widgets read them (issue 18)
    sanitise_query_params(_url_path(nav, pages))
    nav.run()


def release_memory() -> bool:
    """Collect garbage and hand the C heap's free pages back to the operating system.

    Streamlit runs every script run in a new thread, and glibc gives threads their own malloc
    arenas; what a closed session's NumPy arrays and tensors freed in them stays in the server's
    resident memory (RSS) until ``malloc_trim`` returns it (issue 18: RSS after many sessions
    closed). Returns whether ``malloc_trim`` was available (glibc on Linux); elsewhere this only
    collects garbage."""
    gc.collect()
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, or no libc found
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


@st.cache_resource(scope="session", on_release=lambda _: release_memory(), show_spinner=False)
def _session_memory() -> bool:
    """A per-session marker whose release — Streamlit drops a session once its tab has been
    closed for ``server.disconnectedSessionTTL`` seconds — calls :func:`release_memory`."""
    return True


def _url_path(page, pages: dict) -> str:
    """The url_path key of :data:`PAGES` of the page st.navigation chose ("" for home)."""
    for url, p in pages.items():
        if p is page:
            return url
    return getattr(page, "url_path", "") or ""


def ensure_router(url_path: str) -> None:
    """First line of every page: if this script runs without app.py's router, go through it."""
    if st.session_state.get(_ROUTED):
        return
    st.session_state[_GOTO] = (url_path, st.query_params.to_dict())
    st.switch_page("app.py")


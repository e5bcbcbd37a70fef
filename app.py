"""stn_explore — the Streamlit entry point: a router over the pages in pages/ (see app_ui/shell.py)."""

from app_ui.shell import one_torch_thread, run_router

one_torch_thread()   # before anything imports torch
run_router()

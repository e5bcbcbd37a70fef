"""stn_explore — the Streamlit entry point: a router over the pages in pages/ (see app_ui/shell.py)."""

from app_ui.shell import run_router

run_router()

"""stn_explore — the Streamlit entry point: a router over the pages in pages/ (see app_shell.py)."""

from app_shell import run_router

run_router()

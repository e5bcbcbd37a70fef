"""Streamlit custom components of the app (components v2: inline HTML/CSS/JS, no build step)."""

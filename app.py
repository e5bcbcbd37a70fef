"""stn_explore — the Streamlit entry point: a router over the pages in pages/."""

import streamlit as st

st.set_page_config(page_title="stn_explore — Spatial Transformer Networks", page_icon="🔀",
                   layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
]
st.navigation(pages).run()

"""stn_explore.explorer — what the app's pages compute, without Streamlit: the θ playground,
the CNN vs ST-CNN comparison and the plotly figure builders (arrays in, figures out).
Imports :mod:`stn_explore.experiments` and :mod:`stn_explore.core`.
"""

"""The Streamlit side of the app (not part of the library): the router (:mod:`.shell`), the
image upload every page shares (:mod:`.inputs`) and the widget groups the pages compose
(:mod:`.playground`, :mod:`.compare`). Numerics live in ``stn_explore``; these modules only
draw widgets, cache heavy objects and call into it.
"""

"""Home: what a spatial transformer is, in three parts."""

import numpy as np
import streamlit as st

from app_ui.shell import ensure_router
from stn_explore.experiments.mnist import load_digits
from stn_explore.explorer import figures
from stn_explore.explorer import playground as pg

ensure_router("")


@st.cache_data(show_spinner=False)
def home_digit() -> tuple[np.ndarray, str]:
    d = load_digits("test")
    return d.images[0].astype(np.float32) / 255.0, d.source


st.title("Spatial Transformer Networks, explored")

text, example = st.columns([0.55, 0.45], gap="large")
with text:
    st.markdown(
        """
A **spatial transformer** (Jaderberg, Simonyan, Zisserman, Kavukcuoglu, NeurIPS 2015) is a
differentiable module that lets a network warp its own input. It has three parts:

1. **Localisation network** — looks at the input U and regresses the parameters θ of a
   transform (affine, projective, thin plate spline).
2. **Grid generator** — maps a regular grid G over the output V through T_θ to the source
   points T_θ(G) in U (normalised coordinates, output → input, eq. (1)).
3. **Sampler** — reads U at those points with a bilinear kernel (eq. (5)) to produce V.
   Everything is differentiable, so θ is learned from the task loss alone.
"""
    )
    st.page_link("pages/playground.py", label="θ playground: drag the transform, see what the network sees",
                 icon=":material/tune:")
    st.page_link("pages/compare.py", label="CNN vs ST-CNN on the same distorted digits",
                 icon=":material/compare:")
    st.page_link("pages/paper.py", label="The paper's tables beside our measured errors",
                 icon=":material/table_chart:")
    st.page_link("pages/colocalisation.py", label="Co-localisation: watch a transformer learn where the digit is",
                 icon=":material/center_focus_strong:")

with example:
    # A small live example: an attention transform (zoom + shift) on an MNIST digit.
    s = st.slider("zoom of the attention window (s)", 0.3, 1.0, 0.6, 0.05, key="home_s")
    image, source = home_digit()
    theta = pg.attention_params(s, 0.1, 0.0)
    result = pg.render(image, "attention", theta, (28, 28))
    row = st.container(horizontal=True, gap="small")  # side by side where they fit, else stacked
    row.plotly_chart(figures.grid_overlay_figure(image, result.grid, result.outline, title="U and T_θ(G)",
                                                 px=6, max_lines=14),
                     key="home_u", config={"displayModeBar": False}, width="content")
    row.plotly_chart(figures.image_figure(result.v, title="V", px=6), key="home_v",
                     config={"displayModeBar": False}, width="content")
    st.caption(f"θ = [[s, 0, 0.1], [0, s, 0]]: the window zooms by s around a point 0.1 to the right of the "
               f"centre. U: digit 0 of the {source}.")

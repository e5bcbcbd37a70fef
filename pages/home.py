"""Home: what a spatial transformer is, in three parts."""

import streamlit as st

from app_shell import ensure_router

ensure_router("")

st.title("Spatial Transformer Networks, explored")
st.markdown(
    """
A **spatial transformer** (Jaderberg, Simonyan, Zisserman, Kavukcuoglu, NeurIPS 2015) is a
differentiable module that lets a network warp its own input. It has three parts:

1. **Localisation network** — looks at the input U and regresses the parameters θ of a
   transform (affine, projective, thin plate spline).
2. **Grid generator** — maps a regular grid G over the output V through T_θ to the source
   points T_θ(G) in U (normalised coordinates, target → source, eq. (1)).
3. **Sampler** — reads U at those points with a bilinear kernel (eq. (5)) to produce V.
   Everything is differentiable, so θ is learned from the task loss alone.

More pages (θ playground, co-localisation, CNN vs ST-CNN, the paper's tables) are being built.
"""
)

"""How a spatial transformer learns: the gradient through the sampler, θ fitted live by gradient
descent, and a lab that trains a tiny ST-CNN with the choices that make or break it.

Layout only: the widget groups are app_ui/learning.py, the computations
stn_explore.explorer.learning and .learning_lab, the figures .learning_figures.
"""

from __future__ import annotations

import streamlit as st

from app_ui import learning as ui
from app_ui.shell import ensure_router
from stn_explore.explorer import learning_lab as LL

ensure_router("learning")

st.title("How a spatial transformer learns")
st.markdown(
    "A spatial transformer never sees where the object is: its localisation net learns θ from the task's loss "
    "alone, because the sampler is differentiable (the paper's eqs. (6)–(7)). Below: what that gradient looks "
    "like, what gradient descent does with it, and the training choices that decide whether it works.")

tabs = st.tabs(["Gradients through the sampler", "Fitting θ", "Failure-mode lab"], key="learn_tab",
               on_change=ui.pause)

if tabs[0].open is not False:
    with tabs[0]:
        st.markdown("U is a test digit on a 48×48 canvas, cut by U's left edge. Move the **current θ** (blue grid): "
                    "the arrows show how ∂L/∂x^s pulls each sample point to make V look like the target V*, "
                    "the table shows ∂L/∂θ (what the localisation net receives) for each padding mode.")
        ui.gradient_section()

if tabs[1].open is not False:
    with tabs[1]:
        st.markdown("Fit θ to a target by gradient descent on L = mean((V − V*)²), starting at the identity. "
                    "**▶ Play** steps live; the landscape is L over rotation × scale (shift fixed at the target's), "
                    "with the optimiser's path. Try the presets: a large rotation ends in a **local minimum**; "
                    "too high a learning rate throws the grid **off the image**, where the gradient is zero.")
        ui.fit_section()

if tabs[2].open is not False:
    with tabs[2]:
        st.markdown(
            "A tiny ST-CNN (affine transformer in front of a small CNN) learns to classify cluttered 40×40 digits "
            "live on the server's CPU. Watch where the transformer samples on four fixed images, the share of the "
            "grid **outside U** (zero output and zero gradient there) and the **spread** of the sampling regions "
            "across images (≈ 0: collapsed — the same view for every image).")
        outcomes = LL.load_outcomes()
        ui.lab_section(outcomes)
        st.subheader("Measured outcomes of the presets")
        if outcomes is None:
            st.info("Not measured yet: run `python -m stn_explore.explorer.learning_lab` (writes "
                    "`stn_explore/explorer/learning_outcomes.json`).")
        else:
            st.dataframe(LL.outcomes_table(outcomes), hide_index=True, key="learn_l_table")
            st.markdown(LL.outcomes_summary(outcomes))
            st.caption(f"Every preset trained {LL.RECIPE.iterations} iterations per seed exactly as the live run "
                       f"above, by `{outcomes['command']}` on {outcomes['measured']} ({outcomes['machine']}; "
                       f"seconds on that shared machine). Error on {LL.RECIPE.n_eval} held-out cluttered test "
                       "digits; “follows the digit”: the region's centre correlates (r ≥ 0.5) with the digit's; "
                       "“collapsed”: regions spread < 0.02 across images; “lost”: > 50% of the grid outside U.")

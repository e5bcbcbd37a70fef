"""/compare's widget groups: the two models, the digit shown, both models' views, the gallery
of disagreements and the robustness sweep. Computations are in
:mod:`stn_explore.explorer.compare`; these functions draw widgets and cache heavy objects.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from components.digit_pad import digit_pad
from stn_explore.experiments.checkpoint import default_checkpoint_dir
from stn_explore.explorer import compare, figures

from .inputs import image_input

S = st.session_state
FOLDER = default_checkpoint_dir()
#: the folder as commands show it: relative when it is below the working directory
SHOWN_FOLDER = Path(os.path.relpath(FOLDER)) if Path.cwd() in FOLDER.resolve().parents else FOLDER
N_SHOWN = 1000  # test images offered on this page: the fixed 1,000-image test set of the task (seed 0)
SWEEP_N = 500
CFG = {"displayModeBar": False}


@st.cache_resource(show_spinner="Loading checkpoints…")
def models(task: str, st_row: str | None = None):
    """((CNN, ST model), problems), shared read-only across sessions."""
    return compare.load_pair(FOLDER, task, st_row)


@st.cache_data(show_spinner="Distorting test digits…")
def test_images(task: str, config: dict):
    return compare.test_images(task, config, N_SHOWN)


@st.cache_data(show_spinner="Classifying the test digits with both models…")
def test_predictions(task: str, config: dict, st_row: str | None = None):
    images, labels, _ = test_images(task, config)
    (cnn, stcnn), _ = models(task, st_row)
    pa = compare.predict(cnn.model, images)["probs"].argmax(1)
    rb = compare.predict(stcnn.model, images)
    shares = [compare.ink_share(v) for v in rb.get("vs", [])] if task == "addition" else []
    return pa, rb["probs"].argmax(1), shares


@st.cache_data(show_spinner="Measuring what the transformer learned on the test images…")
def learned(task: str, config: dict, st_row: str | None = None) -> dict:
    (_, stcnn), _ = models(task, st_row)
    return compare.learned(stcnn.model, task, config, N_SHOWN)


def learned_panel(task: str, config: dict, st_row: str | None, name_b: str) -> None:
    """Applied vs recovered rotation, shift and scale over the test images, the IoU with the
    digit's box, and a verdict per transformer computed from the same numbers."""
    res = learned(task, config, st_row)
    st.caption(f"Over the {N_SHOWN} images of the fixed {task} test set above: where each of the {name_b}'s "
               "transformers samples (its region, the best affine fit of its grid), against the distortion "
               "that made the image. A transformer that exactly undoes the distortion puts every point on "
               "the dotted diagonal (correlation r = 1). Same figures as "
               "`python -m stn_explore.evaluate --checkpoint … --grids out.npz`.")
    for k, (rep, stats, iou) in enumerate(zip(res["reports"], res["stats"], res["iou"])):
        figs = ", ".join(f"{name} r = {rep[key]:.2f}" for name, key in (
            ("rotation", "rotation_r"), ("shift", "centre_r"), ("scale", "size_r")) if rep[key] is not None)
        head = f"transformer {k + 1}: " if len(res["reports"]) > 1 else ""
        st.markdown(f"**{head}{rep['verdict']}**" + (f" ({figs}; spread across images {rep['spread']:.3f})"
                                                    if figs else f" (spread across images {rep['spread']:.3f})"))
        try:
            fig = figures.learned_figure(res["truth"], stats, iou)
        except ValueError:
            continue  # the task's test set knows no per-image distortion (MNIST addition: two digits)
        st.plotly_chart(fig, key=f"cmp_learned_{k}", config=CFG)


def show_problems(task: str, problems: dict) -> None:
    """Why a model is missing, with the command that makes it; stops the page."""
    for row, why in problems.items():
        st.warning(why)
        st.code(compare.missing_command(task, row, SHOWN_FOLDER) + (" --resume" if "still training" in why else ""),
                language="bash")
    st.stop()


def thumb(img: np.ndarray) -> np.ndarray:
    """A shown test image: grayscale, or the two addition channels as colours."""
    return figures.two_channel_rgb(img / 255.0) if img.ndim == 3 else img


def pick(index: int) -> None:
    S["cmp_source"] = "test set"
    S["cmp_index"] = int(index)


def chosen_digit(task: str, images: np.ndarray, labels: np.ndarray, source: str):
    """The digit to show — a test image, an uploaded image or a drawing (converted the way
    MNIST was made and centred on the task's canvas) — as ``(image (1, …), label or None)``.
    Stops the page while nothing usable is chosen."""
    kind = st.radio("digit", ["test set", "your own image", "draw a digit"], key="cmp_source",
                    horizontal=True, bind="query-params")
    if task == "addition" and kind != "test set":
        st.info("MNIST addition needs two digits in two channels: pick a test image.")
        kind = "test set"
    if kind == "test set":
        c1, c2, c3 = st.columns([1, 0.5, 2], vertical_alignment="bottom")
        index = int(c1.number_input("test image", 0, len(images) - 1, 0, key="cmp_index", bind="query-params"))
        c2.button("random", icon=":material/casino:", key="cmp_random",
                  on_click=lambda: pick(np.random.default_rng().integers(len(images))))
        c3.caption(f"from the fixed {task} test set (seed 0) made from the {source}")
        return images[index:index + 1], int(labels[index])
    if kind == "your own image":
        got = image_input("cmp_upload", label="an image of one handwritten digit (PNG, JPEG, …)",
                          empty_note="Upload an image of a digit: it is converted the way MNIST was made, and shown.")
        if got is None:
            st.stop()
        raw, name = got
        o1, o2, o3 = st.columns([1, 1, 2])  # below the uploader: as uploaded, as seen, conversion
    else:
        name = "your drawing"
        o1, o2, o3 = st.columns([1.6, 0.8, 1.6])  # the pad, as seen, conversion
        with o1:
            try:
                raw = digit_pad(key="cmp_pad")
            except ValueError as exc:
                st.error(str(exc))
                st.stop()
        if raw is None:
            o3.info("Draw a digit in the black square: when you lift the pen it is converted the way "
                    "MNIST was made and both models classify it.")
            st.stop()
    try:
        digit, steps = compare.prepare_digit(raw)
    except ValueError as exc:
        st.error(f"**{name}**: {exc}")
        st.stop()
    canvas = images.shape[-1]
    shown = compare.base_images(task, digit[None], canvas)
    if kind == "your own image":
        o1.image(raw, caption=f"{name} as uploaded", width=120, clamp=True)
    o2.image(shown[0], caption=f"as the models see it ({canvas}×{canvas})", width=120)
    o3.markdown("Conversion: " + "; ".join(steps) + f"; placed at the centre of the {task} canvas.")
    return shown, None


def extra_distortion() -> tuple[float, float, tuple[float, float]]:
    """The user's extra rotation, scale and shift."""
    st.markdown("**Your extra distortion** (applied to the shown image)")
    e1, e2, e3, e4 = st.columns(4)
    angle = e1.slider("rotation (°)", -180, 180, 0, 5, key="cmp_angle")
    scale = e2.slider("scale", 0.5, 1.5, 1.0, 0.05, key="cmp_scale")
    sx = e3.slider("shift x", -0.5, 0.5, 0.0, 0.05, key="cmp_sx")
    sy = e4.slider("shift y", -0.5, 0.5, 0.0, 0.05, key="cmp_sy")
    return angle, scale, (sx, sy)


def probabilities(col, name: str, res: dict, label, key: str, what: str = "") -> None:
    p = res["probs"][0]
    verdict = "" if label is None else (" ✓" if p.argmax() == label else " ✗")
    col.plotly_chart(figures.probabilities_figure(p, true_label=label,
                                                  title=f"{name}: {what}{p.argmax()}{verdict} ({p.max():.0%})"),
                     key=key, width="content", config=CFG)


def single_view(u: np.ndarray, label, a: dict, b: dict, name_b: str) -> None:
    """The ST-CNN's grid on the input, its output V, both models' class probabilities."""
    px = 240 / max(u.shape[-2:])
    cols = st.columns([1, 1, 1.1, 1.1])
    cols[0].plotly_chart(figures.grid_overlay_figure(u, b["grid"][0], None, title="input + ST grid", px=px,
                                                     max_lines=14), key="cmp_u", width="content", config=CFG)
    cols[1].plotly_chart(figures.image_figure(b["v"][0, 0], title="ST output V", px=px), key="cmp_v",
                         width="content", config=CFG)
    probabilities(cols[2], "CNN", a, label, "cmp_pa")
    probabilities(cols[3], name_b, b, label, "cmp_pb")
    st.caption("red: the prediction" + ("" if label is None else f"; black outline: the true class ({label})"))


def addition_view(u: np.ndarray, label, a: dict, b: dict, name_b: str) -> None:
    """Two channels in, what each parallel transformer picked out, the predicted sums."""
    px = 170 / max(u.shape[-2:])
    cols = st.columns(2 + len(b["vs"]))
    for c in range(2):
        cols[c].plotly_chart(figures.image_figure(u[c], title=f"input channel {c + 1}", px=px),
                             key=f"cmp_add_in{c}", width="content", config=CFG)
    for k, (g, v) in enumerate(zip(b["grids"], b["vs"])):
        share = compare.ink_share(v)[0]
        cols[2 + k].plotly_chart(
            figures.grid_overlay_figure(figures.two_channel_rgb(u), g[0], None, title=f"transformer {k + 1}: grid",
                                        px=px, max_lines=12), key=f"cmp_add_g{k}", width="content", config=CFG)
        cols[2 + k].plotly_chart(figures.image_figure(figures.two_channel_rgb(v[0]), title=f"transformer {k + 1}: V",
                                                      px=px), key=f"cmp_add_v{k}", width="content", config=CFG)
        cols[2 + k].caption(f"ink from channel 1 / 2: {share[0]:.0%} / {share[1]:.0%}"
                            if np.isfinite(share).all() else "empty output")
    st.caption("Outputs in colour: channel 1 magenta, channel 2 green (white where both overlap). "
               "A transformer that attends to one digit shows mostly one colour.")
    g1, g2 = st.columns(2)
    probabilities(g1, "CNN", a, label, "cmp_pa", "sum ")
    probabilities(g2, name_b, b, label, "cmp_pb", "sum ")


def gallery(images: np.ndarray, labels: np.ndarray, pa: np.ndarray, pb: np.ndarray, shares: list,
            name_b: str, source: str, task: str) -> None:
    """Test images where the two models disagree (both ways), each with a 'show' button."""
    if shares:
        st.markdown("**Does each transformer attend to one digit?** Share of each transformer's output ink that "
                    f"comes from channel 1, over the {len(labels)} test images:")
        st.markdown("\n".join(f"- {line}" for line in compare.attention_summary(shares)))
    dis = compare.disagreements(labels, pa, pb)
    st.caption(f"On these {len(labels)} test images (the fixed {task} test set, seed 0, made from the {source}; "
               f"`python -m stn_explore.data export --task {task} --n {len(labels)} --seed 0 --out t.npz` writes "
               f"them, and `python -m stn_explore.evaluate --checkpoint … --npz t.npz` gives the same errors): "
               f"CNN error {np.mean(pa != labels):.1%}, "
               f"{name_b} error {np.mean(pb != labels):.1%}. Under each image: its index, then the CNN's / the "
               f"{name_b}'s prediction; 'show' puts it above.")
    for title, key in ((f"CNN wrong, {name_b} right", "a_wrong_b_right"),
                       (f"CNN right, {name_b} wrong", "a_right_b_wrong")):
        idx = dis[key][:12]
        st.markdown(f"**{title}** ({len(dis[key])})")
        if not len(idx):
            st.caption("none")
            continue
        for col, i in zip(st.columns(12), idx):
            col.image(thumb(images[i]), width=48, caption=f"#{i}: {pa[i]}/{pb[i]}")
            col.button("show", key=f"cmp_show_{key}_{i}", on_click=pick, args=(int(i),))


@st.cache_data(show_spinner=False)
def sweep_base(task: str, config: dict):
    return compare.sweep_base(task, config, SWEEP_N)


@st.cache_data(show_spinner=False, max_entries=2000)
def sweep_point(task: str, config: dict, row: str, kind: str, value: float) -> float:
    base, lab = sweep_base(task, config)
    model = models(task)[0][0 if row == "cnn" else 1].model
    return compare.sweep_point(model, base, lab, kind, value)


def sweep(task: str, config: dict) -> None:
    """Opt-in: both models' error over an extra rotation, scale or shift (classifies thousands of
    images the first time, then it is cached)."""
    if task == "addition":
        st.caption("The sweep places one undistorted digit at the canvas centre; it is not defined for "
                   "MNIST addition.")
        return
    kind = st.segmented_control("sweep the error over an extra…", list(compare.SWEEPS), default=None,
                                key="cmp_sweep")
    if not kind:
        return
    values, xlabel = compare.SWEEPS[kind]
    st.caption(f"Error of both models on {SWEEP_N} MNIST test digits placed undistorted at the centre of the "
               f"{task} canvas, after an extra {kind}; the shaded band is the range the training distortions "
               f"covered. Results are cached.")
    bar = st.progress(0.0, text="computing the sweep…")
    errors = {"CNN": [], "ST-CNN": []}
    for i, v in enumerate(values):
        errors["CNN"].append(sweep_point(task, config, "cnn", kind, float(v)))
        errors["ST-CNN"].append(sweep_point(task, config, "st-cnn", kind, float(v)))
        bar.progress((i + 1) / len(values), text=f"computing the sweep… {i + 1}/{len(values)}")
    bar.empty()
    st.plotly_chart(figures.sweep_figure(values, errors, xlabel=xlabel,
                                         shade=compare.training_range(task, kind, config)),
                    key="cmp_sweep_fig", config=CFG)

"""CNN vs ST-CNN side by side on the same distorted digit, with the transformer's view.

Thin page: widgets → stn_explore.compare → stn_explore.figures.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app_shell import ensure_router
from components.digit_pad import digit_pad
from stn_explore.explorer import compare, figures
from stn_explore.explorer import playground as pg
from stn_explore.experiments import distortions as D
from stn_explore.experiments.checkpoint import CheckpointError
from stn_explore.experiments.data import make_task_set
from stn_explore.experiments.results import row_title
from stn_explore.experiments.mnist import load_digits

ensure_router("compare")

S = st.session_state
FOLDER = "checkpoints"
TASKS = ("rts", "r", "p", "e", "cluttered", "addition")
N_SHOWN = 1000  # test images offered on this page (the first of the fixed 10,000-image test set)


@st.cache_resource(show_spinner="Loading checkpoints…")
def models(task: str, st_row: str | None = None):
    """((CNN, ST model), problems) for a task, shared read-only across sessions. A model is
    None when its checkpoint is missing, unreadable or still training; problems says why."""
    out, problems = [], {}
    for row in compare.pair_for(task, st_row):
        path = compare.checkpoint_path(FOLDER, task, row)
        loaded = None
        if not path.is_file():
            problems[row] = f"Missing checkpoint `{path}`. Make it with:"
        else:
            try:
                loaded = compare.load_classifier(path)
            except CheckpointError as exc:
                problems[row] = f"`{path}` cannot be used ({exc}). Remake it with:"
            else:
                if not compare.is_finished(loaded.checkpoint):
                    problems[row] = (f"`{path}` is still training (epoch {loaded.checkpoint['epoch']}/"
                                     f"{loaded.checkpoint['train_config']['epochs']}). Continue it with:")
                    loaded = None
        out.append(loaded)
    return tuple(out), problems


@st.cache_data(show_spinner="Distorting test digits…")
def test_images(task: str, config: dict):
    cfg = D.config_from_dict(task, config)
    digits = load_digits("test")
    arrays, meta = make_task_set(task, "test", N_SHOWN, 0, cfg, digits)
    return arrays["images"], arrays["labels"], meta["source"], meta["is_sample"]


@st.cache_data(show_spinner="Classifying the test digits with both models…")
def test_predictions(task: str, config: dict, st_row: str | None = None):
    images, labels, _, _ = test_images(task, config)
    (cnn, stcnn), _ = models(task, st_row)
    pa = compare.predict(cnn.model, images)["probs"].argmax(1)
    rb = compare.predict(stcnn.model, images)
    shares = [compare.ink_share(v) for v in rb.get("vs", [])] if task == "addition" else []
    return pa, rb["probs"].argmax(1), shares


def thumb(img: np.ndarray) -> np.ndarray:
    """A shown test image: grayscale, or the two addition channels as colours."""
    return figures.two_channel_rgb(img / 255.0) if img.ndim == 3 else img


def pick(index: int) -> None:
    S["cmp_source"] = "test set"
    S["cmp_index"] = int(index)


st.title("CNN vs ST-CNN")
st.caption("The same distorted test digit through both models; the ST-CNN's spatial transformer "
           "shows where it looks (T_θ(G) on the input) and what it passes on (V).")

available = [t for t in TASKS if all(m is not None for m in models(t)[0])]
# plain task ids as options keep shared URLs stable (?cmp_task=rts)
task = st.selectbox("distortion task", TASKS, key="cmp_task", bind="query-params",
                    help="rts, r, p, e: distorted MNIST (Table 1); cluttered: 60×60 cluttered MNIST; "
                         "addition: two RTS digits as two channels, the label is their sum (Table 4)")
st_row = None
if task == "addition":
    st_row = st.selectbox("model with two parallel transformers", compare.ADDITION_ST_ROWS,
                          key="cmp_add_model", bind="query-params",
                          help="each transformer sees both channels; their outputs are stacked and "
                               "classified into the sum 0–18")
st.caption("Trained pairs available for: " + (", ".join(D.TASK_TITLES[t] for t in available) or "none yet"))
(cnn, stcnn), problems = models(task, st_row)
name_b = "ST-CNN" if st_row is None else row_title(st_row)
if problems:
    for row, why in problems.items():
        st.warning(why)
        st.code(compare.missing_command(task, row, FOLDER) + (" --resume" if "still training" in why else ""),
                language="bash")
    st.stop()

config = stcnn.checkpoint["data"]["config"]
images, labels, source, _ = test_images(task, config)
source_kind = st.radio("digit", ["test set", "your own image", "draw a digit"], key="cmp_source",
                       horizontal=True, bind="query-params")
if task == "addition" and source_kind != "test set":
    st.info("MNIST addition needs two digits in two channels: pick a test image.")
    source_kind = "test set"
if source_kind == "test set":
    c1, c2, c3 = st.columns([1, 0.5, 2], vertical_alignment="bottom")
    index = c1.number_input("test image", 0, len(images) - 1, 0, key="cmp_index", bind="query-params")
    c2.button("random", icon=":material/casino:", key="cmp_random",
              on_click=lambda: pick(np.random.default_rng().integers(len(images))))
    c3.caption(f"from the fixed {task} test set (seed 0) made from the MNIST test split — {source}")
    shown, shown_label = images[int(index):int(index) + 1], int(labels[int(index)])
else:
    if source_kind == "your own image":
        up = st.file_uploader("an image of one handwritten digit (PNG, JPEG, …)", key="cmp_upload")
        if up is None:
            st.info("Upload an image of a digit: it is converted the way MNIST was made, and shown.")
            st.stop()
        name = up.name
        try:
            raw, _ = pg.load_image_bytes(up.getvalue())
        except ValueError as exc:
            st.error(f"**{name}**: {exc}")
            st.stop()
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
    shown, shown_label = compare.base_images(task, digit[None], canvas), None
    if source_kind == "your own image":
        o1.image(raw, caption=f"{name} as uploaded", width=120, clamp=True)
    o2.image(shown[0], caption=f"as the models see it ({canvas}×{canvas})", width=120)
    o3.markdown("Conversion: " + "; ".join(steps) + f"; placed at the centre of the {task} canvas.")


def addition_view(u: np.ndarray, label, a: dict, b: dict) -> None:
    """Two channels in, what each parallel transformer picked out, the predicted sums."""
    px = 170 / max(u.shape[-2:])
    cfg = {"displayModeBar": False}
    cols = st.columns(2 + len(b["vs"]))
    for c in range(2):
        cols[c].plotly_chart(figures.image_figure(u[c], title=f"input channel {c + 1}", px=px),
                             key=f"cmp_add_in{c}", width="content", config=cfg)
    for k, (g, v) in enumerate(zip(b["grids"], b["vs"])):
        share = compare.ink_share(v)[0]
        cols[2 + k].plotly_chart(
            figures.grid_overlay_figure(figures.two_channel_rgb(u), g[0], None, title=f"transformer {k + 1}: grid",
                                        px=px, max_lines=12), key=f"cmp_add_g{k}", width="content", config=cfg)
        cols[2 + k].plotly_chart(figures.image_figure(figures.two_channel_rgb(v[0]), title=f"transformer {k + 1}: V",
                                                      px=px), key=f"cmp_add_v{k}", width="content", config=cfg)
        cols[2 + k].caption(f"ink from channel 1 / 2: {share[0]:.0%} / {share[1]:.0%}"
                            if np.isfinite(share).all() else "empty output")
    st.caption("Outputs in colour: channel 1 magenta, channel 2 green (white where both overlap). "
               "A transformer that attends to one digit shows mostly one colour.")
    g1, g2 = st.columns(2)
    for col, name, res, key in ((g1, "CNN", a, "cmp_pa"), (g2, name_b, b, "cmp_pb")):
        p = res["probs"][0]
        verdict = "" if label is None else (" ✓" if p.argmax() == label else " ✗")
        col.plotly_chart(figures.probabilities_figure(p, true_label=label,
                                                      title=f"{name}: sum {p.argmax()}{verdict} ({p.max():.0%})"),
                         key=key, width="content", config=cfg)


@st.fragment
def view() -> None:
    st.markdown("**Your extra distortion** (applied to the shown image)")
    e1, e2, e3, e4 = st.columns(4)
    angle = e1.slider("rotation (°)", -180, 180, 0, 5, key="cmp_angle")
    scale = e2.slider("scale", 0.5, 1.5, 1.0, 0.05, key="cmp_scale")
    sx = e3.slider("shift x", -0.5, 0.5, 0.0, 0.05, key="cmp_sx")
    sy = e4.slider("shift y", -0.5, 0.5, 0.0, 0.05, key="cmp_sy")
    img = compare.extra_distortion(shown, angle, scale, (sx, sy))
    label = shown_label
    a = compare.predict(cnn.model, img)
    b = compare.predict(stcnn.model, img)
    u = img[0] / 255.0
    if task == "addition":
        addition_view(u, label, a, b)
        return
    px = 240 / max(u.shape[-2:])
    cols = st.columns([1, 1, 1.1, 1.1])
    cols[0].plotly_chart(figures.grid_overlay_figure(u, b["grid"][0], None, title="input + ST grid", px=px,
                                                     max_lines=14), key="cmp_u", width="content",
                         config={"displayModeBar": False})
    cols[1].plotly_chart(figures.image_figure(b["v"][0, 0], title="ST output V", px=px), key="cmp_v",
                         width="content", config={"displayModeBar": False})
    for col, name, res, key in ((cols[2], "CNN", a, "cmp_pa"), (cols[3], name_b, b, "cmp_pb")):
        p = res["probs"][0]
        verdict = "" if label is None else (" ✓" if p.argmax() == label else " ✗")
        col.plotly_chart(figures.probabilities_figure(p, true_label=label,
                                                      title=f"{name}: {p.argmax()}{verdict} ({p.max():.0%})"),
                         key=key, width="content", config={"displayModeBar": False})
    st.caption("red: the prediction" + ("" if label is None else
                                        f"; black outline: the true class ({label})"))


view()

st.subheader("Where they disagree")
pa, pb, shares = test_predictions(task, config, st_row)
if shares:
    st.markdown("**Does each transformer attend to one digit?** Share of each transformer's output ink that "
                f"comes from channel 1, over the {len(labels)} test images:")
    st.markdown("\n".join(f"- transformer {k + 1}: median {np.nanmedian(sh[:, 0]):.0%}; "
                          f"> 80% from channel 1 on {np.mean(sh[:, 0] > 0.8):.0%} of images, "
                          f"> 80% from channel 2 on {np.mean(sh[:, 1] > 0.8):.0%}" for k, sh in enumerate(shares)))
dis = compare.disagreements(labels, pa, pb)
st.caption(f"On these {len(labels)} test images: CNN error {np.mean(pa != labels):.1%}, "
           f"{name_b} error {np.mean(pb != labels):.1%}. Under each image: its index, then the CNN's / the "
           f"{name_b}'s prediction; 'show' puts it above.")
for title, key in ((f"CNN wrong, {name_b} right", "a_wrong_b_right"),
                   (f"CNN right, {name_b} wrong", "a_right_b_wrong")):
    idx = dis[key][:12]
    st.markdown(f"**{title}** ({len(dis[key])})")
    if not len(idx):
        st.caption("none")
        continue
    cols = st.columns(12)
    for col, i in zip(cols, idx):
        col.image(thumb(images[i]), width=48, caption=f"#{i}: {pa[i]}/{pb[i]}")
        col.button("show", key=f"cmp_show_{key}_{i}", on_click=pick, args=(int(i),))

st.subheader("Robustness sweep")
SWEEP_N = 500


@st.cache_data(show_spinner=False)
def sweep_base(task: str, config: dict):
    d = load_digits("test")
    canvas = D.image_shape(task, D.config_from_dict(task, config))[-1]
    return compare.base_images(task, d.images[:SWEEP_N], canvas), d.labels[:SWEEP_N]


@st.cache_data(show_spinner=False, max_entries=2000)
def sweep_point(task: str, config: dict, row: str, kind: str, value: float) -> float:
    base, lab = sweep_base(task, config)
    model = models(task)[0][0 if row == "cnn" else 1].model
    return compare.sweep_point(model, base, lab, kind, value)


# opt-in: a sweep classifies thousands of images the first time (then it is cached)
kind = None
if task == "addition":
    st.caption("The sweep places one undistorted digit at the canvas centre; it is not defined for "
               "MNIST addition.")
else:
    kind = st.segmented_control("sweep the error over an extra…", list(compare.SWEEPS), default=None,
                                key="cmp_sweep")
if kind:
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
                    key="cmp_sweep_fig", config={"displayModeBar": False})

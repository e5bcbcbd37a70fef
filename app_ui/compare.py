"""/compare's widget groups: the two models, the digit shown, both models' views, the gallery
of disagreements and the robustness sweep. Computations are in
:mod:`stn_explore.explorer.compare`; these functions draw widgets and cache heavy objects.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from components.compare_live import compare_live, digest, float_payload, image_payload, points_payload
from components.digit_pad import digit_pad
from stn_explore.experiments.checkpoint import default_checkpoint_dir
from stn_explore.explorer import compare, figures
from stn_explore.explorer import compare_live as live

from .inputs import image_input

S = st.session_state
FOLDER = default_checkpoint_dir()
#: the folder as commands show it: relative when it is below the working directory
SHOWN_FOLDER = Path(os.path.relpath(FOLDER)) if Path.cwd() in FOLDER.resolve().parents else FOLDER
N_SHOWN = 1000  # test images offered on this page: the fixed 1,000-image test set of the task (seed 0)
CFG = {"displayModeBar": False}
#: screen sizes (px) of /compare's cards: images, probability bars, gallery thumbnails. Cards sit
#: in wrapping rows, so four of them fit one row at 1400 px and two at 800 px (sidebar open).
#: (Streamlit draws no plotly chart narrower than 150 px: smaller cards would clip theirs)
IMG_PX, ADD_IMG_PX, ADD_BARS_W, THUMB_W = 200, 142, 300, 80


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
               "that made the image (darker: more images). A transformer that exactly undoes the "
               "distortion puts every image on the dotted diagonal (correlation r = 1). Same figures as "
               "`python -m stn_explore.evaluate --checkpoint … --grids out.npz`.")
    for k, (rep, stats, iou) in enumerate(zip(res["reports"], res["stats"], res["iou"])):
        figs = ", ".join(f"{name} r = {rep[key]:.2f}" for name, key in (
            ("rotation", "rotation_r"), ("shift", "centre_r"), ("scale", "size_r")) if rep[key] is not None)
        head = f"transformer {k + 1}: " if len(res["reports"]) > 1 else ""
        st.markdown(f"**{head}{rep['verdict']}**" + (f" ({figs}; spread across images {rep['spread']:.3f})"
                                                    if figs else f" (spread across images {rep['spread']:.3f})"))
        try:
            figs = figures.learned_figures(res["truth"], stats, iou)
        except ValueError:
            continue  # the task's test set knows no per-image distortion (MNIST addition: two digits)
        row = st.container(horizontal=True, gap="small", key=f"cmp_learned_{k}")
        for j, fig in enumerate(figs):
            row.plotly_chart(fig, key=f"cmp_learned_{k}_{j}", width="content", config=CFG)


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


def url_selectbox(label: str, options, key: str, format_func, **kwargs):
    """A selectbox that lists display names but keeps the plain option in the URL (``?key=rts``,
    not ``?key=RTS``): ``bind="query-params"`` would write the displayed name there and break
    shared links. Read from the URL once per session, written back on every run; the default
    option leaves the URL, as with ``bind``."""
    if key not in S:
        wanted = st.query_params.get(key)
        S[key] = wanted if wanted in options else options[0]
    value = st.selectbox(label, options, key=key, format_func=format_func, **kwargs)
    if value == options[0]:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = value
    return value


def reset_distortion() -> None:
    live.reset(S)


def pick(index: int, show: bool = False) -> None:
    """Show test image ``index``. From the gallery (``show``) it is shown as it was classified
    there — without the extra distortion — and the page scrolls to it."""
    S["cmp_source"] = "test set"
    S["cmp_index"] = int(index)
    if show:
        reset_distortion()
        S["cmp_scroll"] = S.get("cmp_scroll", 0) + 1


def scroll_to_view() -> None:
    """After a gallery 'show': bring the view (container key ``cmp_view``) on screen."""
    n = S.get("cmp_scroll")
    if not n or S.get("cmp_scrolled") == n:
        return
    S["cmp_scrolled"] = n
    st.html(f"""<script>/* show #{n} */ (function () {{
        let tries = 0;
        const go = () => {{ const el = document.querySelector(".st-key-cmp_view");
            if (el) {{ el.style.scrollMarginTop = "4.5rem"; el.scrollIntoView({{block: "start", behavior: "instant"}}); }}
            else if (tries++ < 50) setTimeout(go, 100); }};
        go(); }})();</script>""", unsafe_allow_javascript=True)


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
        row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
        # no value=: "random" and "show" set it through the session state (0, the minimum, by default)
        index = int(row.number_input("test image", 0, len(images) - 1, key="cmp_index", bind="query-params",
                                     width=160))
        row.button("random", icon=":material/casino:", key="cmp_random",
                   on_click=lambda: pick(np.random.default_rng().integers(len(images))))
        st.caption(f"from the fixed {task} test set (seed 0) made from the {source}")
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


def distortion_note(angle: float, scale: float, shift: tuple[float, float]) -> str | None:
    """What is on, in words, or None when the extra distortion is off."""
    parts = ([f"rotation {angle:g}°"] if angle else []) + ([f"scale {scale:.2f}"] if scale != 1 else []) \
        + ([f"shift ({shift[0]:+.2f}, {shift[1]:+.2f})"] if any(shift) else [])
    return ", ".join(parts) or None


def distortion_notice(angle: float, scale: float, shift: tuple[float, float]) -> None:
    """While the extra distortion is on: a notice saying so, and a reset button."""
    note = distortion_note(angle, scale, shift)
    if note:
        n1, n2 = st.columns([4, 1], vertical_alignment="center")
        n1.warning(f"Extra distortion on: {note}. The predictions below are for the distorted image.",
                   icon=":material/rotate_right:")
        n2.button("reset", key="cmp_reset", icon=":material/restart_alt:", on_click=reset_distortion)


@st.cache_resource(show_spinner=False)
def exported(task: str, st_row: str | None = None) -> dict:
    """Both models of a pair as the browser runs them (``compare_live.encode``), their key, and
    why the browser cannot run them (None when it can); shared read-only across sessions."""
    (cnn, stcnn), _ = models(task, st_row)
    try:
        a, b = (live.encode(live.export_model(m.model)) for m in (cnn, stcnn))
    except ValueError as exc:
        return {"a": None, "b": None, "why": f"the browser cannot run these models: {exc}",
                "key": f"{task}:{st_row}:server"}
    return {"a": a, "b": b, "why": None, "key": digest(task, str(st_row), a["weights"], b["weights"])}


def _need_models() -> None:
    S.pop("cmp_live_sent", None)


def live_view(task: str, st_row: str | None, shown: np.ndarray, label, cnn, stcnn, name_b: str) -> None:
    """The single-image view: the sliders, the distorted input with the ST's grid, V and both
    models' probabilities in one component that previews every slider move in the browser; on
    release the server's result (computed here with stn_explore) is drawn. MNIST addition
    (``addition``): both input channels, each parallel transformer's grid and V (in colour)
    with its ink from each channel, and the predicted sums."""
    live.read_url(S, st.query_params)
    angle, scale, shift = live.values(S)
    distortion_notice(angle, scale, shift)
    img = compare.extra_distortion(shown, angle, scale, shift)
    a, b = compare.predict(cnn.model, img), compare.predict(stcnn.model, img)
    ex = exported(task, st_row)
    send = S.get("cmp_live_sent") != ex["key"]
    S["cmp_live_sent"] = ex["key"]
    values = {key: float(S[key]) for key in live.SLIDERS}
    server = {"values": values, "u": image_payload(img[0]), "probs": [a["probs"][0].tolist(), b["probs"][0].tolist()],
              "v": float_payload(b["v"][0, 0]) if "v" in b else None,
              "theta": live.theta_from_grid(b["grid"][0]).ravel().tolist() if "grid" in b else None}
    addition = None
    if task == "addition":
        grids = [g[0] for g in b.get("grids", [])]
        server.update(v=float_payload(b["v"][0]) if "v" in b else None,
                      theta=None, grids=[points_payload(g) for g in grids],
                      vs=[float_payload(v[0]) for v in b.get("vs", [])],
                      thetas=live.server_thetas(stcnn.model, grids),
                      shares=[[None if not np.isfinite(x) else float(x) for x in compare.ink_share(v)[0]]
                              for v in b.get("vs", [])])
        server["theta"] = server["thetas"][0] if server["thetas"] else None
        addition = {"input": "input", "channels": ["channel 1", "channel 2"], "transformer": "transformer {k}",
                    "grid": "where it samples", "v": "its output V", "what": "sum ", "px": ADD_IMG_PX,
                    "bars_w": ADD_BARS_W, "max_lines": 12,
                    "note": "Outputs in colour: channel 1 magenta, channel 2 green (white where both overlap). "
                            "A transformer that attends to one digit shows mostly one colour."}
    models_data = {"key": ex["key"], "why": ex["why"], "a": ex["a"] if send else None, "b": ex["b"] if send else None}
    compare_live(key="cmp_live", image=shown[0], values=values, sliders=live.controls(S), ack=S.get(live.ACK, 0),
                 label=label, names=("CNN", name_b), server=server, models=models_data,
                 st_out=tuple(b["v"].shape[-2:]) if "v" in b else None, px=IMG_PX,
                 on_change=lambda: live.apply_live(S, (S.get("cmp_live") or {}).get("params")),
                 on_need=_need_models, addition=addition)
    st.caption("red: the prediction" + ("" if label is None else f"; black outline: the true class ({label})")
               + ". While you drag a slider your browser distorts the digit and runs both models itself; "
               "on release the server recomputes everything with stn_explore and its result is shown.")
    live.sync_url(S, st.query_params)


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
        row = st.container(horizontal=True, gap="small", vertical_alignment="bottom", key=f"cmp_gallery_{key}")
        for i in idx:
            c = row.container(width=THUMB_W, gap="small")
            c.image(thumb(images[i]), width=48)
            c.caption(f"#{i}  \n{pa[i]} / {pb[i]}")  # always two lines: the buttons stay in line
            c.button("show", key=f"cmp_show_{key}_{i}", on_click=pick, args=(int(i), True), width="stretch",
                     help=f"show test image #{i} above, without your extra distortion")


@st.cache_data(show_spinner=False)
def sweep_base(task: str, config: dict):
    return compare.sweep_base(task, config, compare.SWEEP_N)


@st.cache_data(show_spinner=False)
def digits_md5() -> str:
    from stn_explore.experiments.mnist import load_digits

    return load_digits("test").content_md5()["images"]


@st.cache_data(show_spinner=False)
def stored_sweeps(mtime: float) -> dict:
    import json

    path = FOLDER / compare.SWEEPS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


@st.cache_data(show_spinner=False)
def sweep_identity(task: str, mtimes: tuple) -> dict:
    return compare.sweep_identity(FOLDER, task, digits_md5())


@st.cache_resource
def measured_sweeps() -> dict:
    """Sweeps not in sweeps.json (another checkpoint, other digits), measured once per
    checkpoint pair and kept for every session: ``{(task, kind, identity, values): errors}``."""
    return {}


def measured_sweep(task: str, config: dict, kind: str, identity: dict, values: tuple) -> dict:
    import json

    key = (task, kind, json.dumps(identity, sort_keys=True), values)
    store = measured_sweeps()
    if key not in store:
        base, lab = sweep_base(task, config)
        (cnn, stcnn), _ = models(task)
        bar = st.progress(0.0, text="measuring the sweep…")
        store[key] = compare.sweep_curves(
            {"CNN": cnn.model, "ST-CNN": stcnn.model}, base, lab, kind, np.array(values),
            on_point=lambda i, n: bar.progress(i / n, text=f"measuring the sweep… {i}/{n}"))
        bar.empty()
    return store[key]


def sweep(task: str, config: dict) -> None:
    """Opt-in: both models' error over an extra rotation, scale or shift — read from
    checkpoints/sweeps.json while it matches the checkpoints and digits, else measured once."""
    if task == "addition":
        st.caption("The sweep places one undistorted digit at the canvas centre; it is not defined for "
                   "MNIST addition.")
        return
    kind = st.segmented_control("sweep the error over an extra…", list(compare.SWEEPS), default=None,
                                key="cmp_sweep")
    if not kind:
        return
    values, xlabel = compare.SWEEPS[kind]
    paths = [compare.checkpoint_path(FOLDER, task, row) for row in compare.PAIR]
    identity = sweep_identity(task, tuple(p.stat().st_mtime for p in paths))
    file = FOLDER / compare.SWEEPS_FILE
    errors = compare.find_sweep(stored_sweeps(file.stat().st_mtime if file.is_file() else 0.0), task, kind, identity)
    how = (f"stored in `{SHOWN_FOLDER / compare.SWEEPS_FILE}` for exactly these checkpoints and digits by "
           "`python -m stn_explore.explorer.compare --sweeps`" if errors is not None else
           f"measured now (not in `{SHOWN_FOLDER / compare.SWEEPS_FILE}` for these checkpoints; "
           "`python -m stn_explore.explorer.compare --sweeps` stores every sweep) and kept while the server runs")
    if errors is None:
        errors = measured_sweep(task, config, kind, identity, tuple(float(v) for v in values))
    st.caption(f"Error of both models on the first {compare.SWEEP_N} MNIST test digits placed undistorted at the "
               f"centre of the {task} canvas, after an extra {kind}; the shaded band is the range the training "
               f"distortions covered. Curves {how}.")
    st.plotly_chart(figures.sweep_figure(values, errors, xlabel=xlabel,
                                         shade=compare.training_range(task, kind, config)),
                    key="cmp_sweep_fig", config=CFG)

"""The θ playground's θ-control and URL state, without Streamlit.

Every function takes the page's state as plain mappings — ``state`` (``st.session_state``
in the app, a ``dict`` in tests) and ``query`` (``st.query_params``: string values) — so
the rules that keep the sliders, the editable θ, the drag editor and a shared URL in
agreement are tested here with dicts, and the page only draws widgets.

The θ controls (sliders, editable θ, presets, handles) live in one browser component
(``components/warp_editor``): it previews every move itself and sends its whole state on
release; :func:`apply_editor` makes that the page's state. Their values are plain session
keys (not Streamlit widgets), mirrored to the URL by :func:`sync_url` and read back from it
once per session by :func:`read_url`. Keys are page-prefixed (``pg_``). The affine sliders
show a decomposition of θ (:func:`stn_explore.explorer.playground.decompose_affine`); a θ
that the sliders cannot show exactly (edited, or dragged with the handles) is kept as
``pg_theta_exact`` (and in the URL as ``pg_theta``) until a slider moves.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from . import playground as pg

State = MutableMapping
#: key: (label, min, max, step, default) of the affine sliders
AFFINE = {
    "pg_angle": ("rotation (°)", -180.0, 180.0, 1.0, 0.0),
    "pg_sx": ("scale x", -3.0, 3.0, 0.05, 1.0),
    "pg_sy": ("scale y", -3.0, 3.0, 0.05, 1.0),
    "pg_shear": ("shear", -2.0, 2.0, 0.05, 0.0),
    "pg_tx": ("translate x", -2.0, 2.0, 0.05, 0.0),
    "pg_ty": ("translate y", -2.0, 2.0, 0.05, 0.0),
}
#: decomposition name → slider key
SLIDER_OF = {"angle": "pg_angle", "scale_x": "pg_sx", "scale_y": "pg_sy", "shear": "pg_shear",
             "tx": "pg_tx", "ty": "pg_ty"}
#: attention sliders: key: (label, min, max, step, default)
ATTENTION = {"pg_s": ("s (crop size)", 0.05, 2.0, 0.01, 1.0), "pg_atx": ("tx", -1.5, 1.5, 0.01, 0.0),
             "pg_aty": ("ty", -1.5, 1.5, 0.01, 0.0)}
CORNER_NAMES = ("top-left", "top-right", "bottom-right", "bottom-left")
CORNER_DEFAULT = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))
CORNER_RANGE = (-2.0, 2.0)
#: projective sliders: where each corner of the output frame samples the input
PROJECTIVE = {f"pg_c{i}{a}": (f"{name} {a}", *CORNER_RANGE, 0.01, CORNER_DEFAULT[i][j])
              for i, name in enumerate(CORNER_NAMES) for j, a in enumerate("xy")}
#: TPS: one slider scales every control point's offset (0 = identity, 1 = as placed)
TPS = {"pg_tps_bend": ("bending strength", 0.0, 2.0, 0.05, 1.0)}
N_TPS = 16
#: the TPS dx/dy sliders of the selected point: (min, max, step)
TPS_OFFSET_RANGE = (-1.0, 1.0, 0.01)
#: every θ slider of every kind, by key (all of them live in the URL)
SLIDERS = {**AFFINE, **ATTENTION, **PROJECTIVE, **TPS}
KIND_SLIDERS = {"affine": AFFINE, "attention": ATTENTION, "projective": PROJECTIVE, "tps": TPS}
#: said where the slider is (issue 23 item 5; CONVENTIONS.md "Angles")
NOTES = {"pg_angle": "A positive angle turns the sampling grid clockwise on U and the content of V "
                     "counter-clockwise: θ maps output → input, and y points down."}


def _floats(raw: str | None, n: int) -> np.ndarray | None:
    """``n`` finite floats from a comma-separated URL value, else None."""
    try:
        vals = np.array([float(v) for v in (raw or "").split(",")], dtype=np.float64)
    except ValueError:
        return None
    return vals if vals.size == n and np.isfinite(vals).all() else None


def _on_step(v: float, step: float, lo: float, hi: float) -> float:
    """``v`` clamped and rounded to the slider's step, without float noise (0.3, not
    0.30000000000000004: the value goes into the shared URL). Clamped first, so that a huge
    value (±1e308 from a URL) cannot overflow ``v / step``; clamped again after rounding."""
    v = float(np.clip(v, lo, hi))
    return float(round(float(np.clip(round(v / step) * step, lo, hi)), 6))


def set_slider(state: State, key: str, value: float) -> None:
    """Store a slider value, on its step and within its range."""
    _, lo, hi, step, _ = SLIDERS[key]
    state[key] = _on_step(float(value), step, lo, hi)


def slider(state: State, key: str) -> float:
    return float(state.get(key, SLIDERS[key][4]))


# ----------------------------------------------------------------------------- URL
def _url_number(v: float) -> str:
    return f"{v:g}"


def read_url(state: State, query: MutableMapping) -> None:
    """Once per session: the θ sliders, an exact θ (``pg_theta``) and the TPS offsets
    (``pg_tps``) from a shared URL; unreadable or non-finite values are ignored, others are
    put on their slider's step and range."""
    if state.get("pg_url_read"):
        return
    state["pg_url_read"] = True
    for key in SLIDERS:
        raw = query.get(key)
        vals = _floats(raw, 1) if raw is not None else None
        if vals is not None:
            set_slider(state, key, vals[0])
    theta_from_url(state, query)
    tps_offsets(state, query)


def sync_url(state: State, query: MutableMapping) -> None:
    """Mirror the θ sliders into the URL: a value that differs from its default is written
    (``pg_angle=30``), a default one removed; unchanged parameters are not rewritten."""
    for key, (_, _, _, _, default) in SLIDERS.items():
        v = slider(state, key)
        if v != default:
            text = _url_number(v)
            if query.get(key) != text:
                query[key] = text
        elif key in query:
            del query[key]


# ----------------------------------------------------------------------------- affine
def slider_values(state: State) -> tuple:
    """The six affine slider values, in :data:`AFFINE` order."""
    return tuple(slider(state, k) for k in AFFINE)


def _show_on_sliders(state: State, theta: np.ndarray) -> str | None:
    """Put θ's decomposition on the sliders (rounded to their steps, clamped); returns why θ
    has none, or None."""
    try:
        vals = pg.decompose_affine(theta)
    except ValueError as exc:
        return str(exc)
    for name, key in SLIDER_OF.items():
        set_slider(state, key, vals[name])
    return None


def keep_exact_theta(state: State, theta: np.ndarray) -> None:
    """θ in force is exactly ``theta`` until a slider moves."""
    state["pg_theta_exact"] = np.asarray(theta, dtype=np.float64).reshape(2, 3)
    state["pg_theta_snapshot"] = slider_values(state)


def set_exact_theta(state: State, theta: np.ndarray) -> None:
    """θ was edited (or dragged with the handles): keep that exact θ and show its
    decomposition on the sliders; a θ without one (singular) is kept and reported."""
    t = np.asarray(theta, dtype=np.float64).reshape(2, 3)
    why = _show_on_sliders(state, t)
    if why is None:
        state.pop("pg_theta_error", None)
    else:
        state["pg_theta_error"] = f"This θ cannot be shown on the sliders: {why}."
    keep_exact_theta(state, t)


def drop_exact_theta(state: State) -> None:
    for key in ("pg_theta_exact", "pg_theta_snapshot", "pg_theta_error"):
        state.pop(key, None)


def theta_from_url(state: State, query: MutableMapping) -> None:
    """A shared URL may carry an exact θ (``pg_theta`` = 6 numbers) next to its slider values;
    read once per session."""
    if "pg_theta_exact" in state or "pg_theta_url_read" in state:
        return
    state["pg_theta_url_read"] = True
    t = _floats(query.get("pg_theta"), 6)
    if t is not None:
        keep_exact_theta(state, t)


def current_theta(state: State, query: MutableMapping) -> np.ndarray:
    """θ ``(2, 3)`` in force: the exact matrix if the sliders have not moved since, else θ
    from the sliders. An exact θ is mirrored to the URL as ``pg_theta``."""
    theta_from_url(state, query)
    if state.get("pg_theta_exact") is not None and state.get("pg_theta_snapshot") == slider_values(state):
        text = ",".join(f"{v:.6g}" for v in state["pg_theta_exact"].ravel())
        if query.get("pg_theta") != text:
            query["pg_theta"] = text
        return state["pg_theta_exact"]
    drop_exact_theta(state)
    if "pg_theta" in query:
        del query["pg_theta"]
    return pg.affine_params(*slider_values(state))


def apply_preset(state: State, name: str) -> None:
    """Set the affine sliders to a named preset of :data:`playground.PRESETS`."""
    for pname, key in SLIDER_OF.items():
        set_slider(state, key, pg.PRESETS[name][pname])
    drop_exact_theta(state)


# ----------------------------------------------------------------------------- attention, projective
def attention(state: State) -> np.ndarray:
    return pg.attention_params(*(slider(state, k) for k in ATTENTION))


def corners(state: State) -> np.ndarray:
    """The projective corner sliders as ``(4, 2)`` (TL, TR, BR, BL)."""
    return np.array([[slider(state, f"pg_c{i}{a}") for a in "xy"] for i in range(4)], dtype=np.float64)


def corners_reset(state: State) -> None:
    for key, spec in PROJECTIVE.items():
        state[key] = spec[4]


# ----------------------------------------------------------------------------- TPS
def tps_offsets(state: State, query: MutableMapping) -> np.ndarray:
    """Offsets ``(16, 2)`` of the TPS control points from their targets, before the bending
    strength scales them (from the URL's ``pg_tps`` on first use)."""
    if "pg_tps_offsets" not in state:
        vals = _floats(query.get("pg_tps"), 2 * N_TPS)
        state["pg_tps_offsets"] = np.zeros((N_TPS, 2)) if vals is None else np.clip(vals.reshape(N_TPS, 2), -1, 1)
    return state["pg_tps_offsets"]


def store_tps_offsets(state: State, query: MutableMapping, off: np.ndarray) -> None:
    off = np.round(np.clip(np.asarray(off, dtype=np.float64).reshape(N_TPS, 2), -1, 1), 3) + 0.0
    state["pg_tps_offsets"] = off
    if np.abs(off).max() > 0:
        query["pg_tps"] = ",".join(f"{v:.3f}" for v in off.ravel())
    elif "pg_tps" in query:
        del query["pg_tps"]


def tps_source(state: State, query: MutableMapping) -> np.ndarray:
    """TPS source points ``(16, 2)``: the targets moved by the offsets × bending strength."""
    return pg.tps_params(tps_offsets(state, query) * slider(state, "pg_tps_bend"))


def tps_randomise(state: State, query: MutableMapping) -> None:
    state["pg_tps_seed"] = state.get("pg_tps_seed", 0) + 1
    store_tps_offsets(state, query, pg.random_tps_offsets(state["pg_tps_seed"]))
    state["pg_tps_bend"] = TPS["pg_tps_bend"][4]


def tps_reset(state: State, query: MutableMapping) -> None:
    store_tps_offsets(state, query, np.zeros((N_TPS, 2)))
    state["pg_tps_bend"] = TPS["pg_tps_bend"][4]


# ----------------------------------------------------------------------------- the θ component
def params_of(state: State, query: MutableMapping, kind: str) -> np.ndarray:
    """The transform's parameters of ``kind`` from the state (θ, (s, tx, ty), corners → H,
    TPS source points). Raises ``ValueError`` for corners that define no homography."""
    if kind == "affine":
        return current_theta(state, query)
    if kind == "attention":
        return attention(state)
    if kind == "projective":
        return pg.projective_params(corners(state))
    return tps_source(state, query)


def editor_values(state: State, query: MutableMapping, kind: str) -> np.ndarray:
    """What the editor's handles manipulate, without torch: θ, (s, tx, ty), the corners (not
    the homography) or the TPS source points."""
    if kind == "affine":
        return current_theta(state, query)
    if kind == "attention":
        return attention(state)
    if kind == "projective":
        return corners(state)
    return tps_source(state, query)


def controls(state: State, query: MutableMapping, kind: str) -> dict:
    """What the component draws as θ controls for ``kind``: the sliders (key, label, range,
    step, value, note), the presets (affine), whether θ is exact, the TPS offsets."""
    sliders = [{"key": k, "label": label, "min": lo, "max": hi, "step": step, "value": slider(state, k),
                "default": d, "note": NOTES.get(k)}
               for k, (label, lo, hi, step, d) in KIND_SLIDERS[kind].items()]
    out = {"sliders": sliders, "presets": None, "exact": False, "tps": None}
    if kind == "affine":
        out["presets"] = {name: {SLIDER_OF[p]: v for p, v in vals.items()} for name, vals in pg.PRESETS.items()}
        out["exact"] = state.get("pg_theta_exact") is not None
    if kind == "tps":
        out["tps"] = {"offsets": tps_offsets(state, query).tolist(), "k": int(state.get("pg_tps_k", 0)),
                      "range": TPS_OFFSET_RANGE}
    return out


def apply_editor(state: State, query: MutableMapping) -> None:
    """The component sent its state (a slider or a handle released, a key pressed, a preset
    clicked, θ edited): ``{"kind", "values", "sliders", "exact", "tps", "nonce"}`` becomes the
    page's state, rounded and clamped to the sliders' ranges. ``values`` are what the handles
    move (:func:`editor_values`); ``sliders`` the slider values by key; ``exact`` (affine)
    says that θ = ``values`` rather than θ from the sliders. Without ``sliders`` (a bare
    handle release), ``values`` rule. Non-finite values are ignored. The nonce is kept as
    ``pg_ack``: the component adopts the server's state only once it has seen its last edit."""
    got = (state.get("pg_editor") or {}).get("params")
    if not got:
        return
    if "nonce" in got:
        state["pg_ack"] = int(got["nonce"])
    kind, values = got["kind"], np.asarray(got["values"], dtype=np.float64)
    sliders = {k: float(v) for k, v in (got.get("sliders") or {}).items() if k in SLIDERS}
    if not np.isfinite(values).all() or not np.isfinite(list(sliders.values())).all():
        return
    if kind == "affine":
        if sliders and not got.get("exact", False):
            for key, v in sliders.items():
                set_slider(state, key, v)
            drop_exact_theta(state)
        else:
            set_exact_theta(state, values)
    elif kind == "attention":
        new = sliders or dict(zip(ATTENTION, values))
        for key, v in new.items():
            set_slider(state, key, v)
    elif kind == "projective":
        new = sliders or {f"pg_c{i}{a}": v for i, xy in enumerate(values.reshape(4, 2)) for a, v in zip("xy", xy)}
        for key, v in new.items():
            set_slider(state, key, v)
    elif kind == "tps":
        tps = got.get("tps")
        if tps is not None:
            off = np.asarray(tps["offsets"], dtype=np.float64)
            if off.size != 2 * N_TPS or not np.isfinite(off).all():
                return
            store_tps_offsets(state, query, off)
            state["pg_tps_k"] = int(np.clip(int(tps.get("k", 0)), 0, N_TPS - 1))
            if "pg_tps_bend" in sliders:
                set_slider(state, "pg_tps_bend", sliders["pg_tps_bend"])
        else:
            store_tps_offsets(state, query, values.reshape(-1, 2) - pg.tps_params(np.zeros((N_TPS, 2))))
            state["pg_tps_bend"] = TPS["pg_tps_bend"][4]


# ----------------------------------------------------------------------------- input
def class_pool(labels: np.ndarray, cls: str) -> np.ndarray:
    """Indices of the digits offered for a class choice (``"any"`` or ``"0"``…``"9"``)."""
    return np.arange(len(labels)) if cls == "any" else np.flatnonzero(labels == int(cls))


def random_digit(state: State, labels: np.ndarray, rng: np.random.Generator | None = None) -> None:
    """Pick a random index within the chosen class."""
    n = len(class_pool(labels, state.get("pg_class", "any")))
    state["pg_index"] = int((rng or np.random.default_rng()).integers(n))

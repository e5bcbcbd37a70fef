"""The θ playground's widget and URL state, without Streamlit.

Every function takes the page's state as plain mappings — ``state`` (``st.session_state``
in the app, a ``dict`` in tests) and ``query`` (``st.query_params``: string values) — so
the rules that keep the sliders, the editable θ, the drag editor and a shared URL in
agreement are tested here with dicts, and the page only draws widgets.

Keys are page-prefixed (``pg_``). The affine sliders show a decomposition of θ
(:func:`stn_explore.explorer.playground.decompose_affine`); an edited θ that the sliders
cannot show exactly is kept as ``pg_theta_exact`` (and in the URL as ``pg_theta``) until a
slider moves.
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
N_TPS = 16


def _floats(raw: str | None, n: int) -> np.ndarray | None:
    """``n`` finite floats from a comma-separated URL value, else None."""
    try:
        vals = np.array([float(v) for v in (raw or "").split(",")], dtype=np.float64)
    except ValueError:
        return None
    return vals if vals.size == n and np.isfinite(vals).all() else None


# ----------------------------------------------------------------------------- affine
def slider_values(state: State) -> tuple:
    """The six affine slider values, in :data:`AFFINE` order."""
    return tuple(float(state.get(k, AFFINE[k][4])) for k in AFFINE)


def slider_tag(state: State) -> str:
    """A short tag of the slider values. The θ inputs are keyed by it: moving a slider makes
    fresh θ inputs showing the new θ, instead of pushing values into live widgets through the
    session state (which a browser can miss when fast slider reruns are coalesced)."""
    return "%08x" % (hash(slider_values(state)) & 0xFFFFFFFF)


def theta_keys(tag: str) -> list[list[str]]:
    """Widget keys of the 2×3 editable θ inputs for a slider tag."""
    return [[f"pg_t{r}{c}_{tag}" for c in range(3)] for r in range(2)]


def _on_step(v: float, step: float, lo: float, hi: float) -> float:
    """``v`` rounded to the slider's step and clamped, without float noise (0.3, not
    0.30000000000000004: the value goes into the shared URL)."""
    return float(round(float(np.clip(round(v / step) * step, lo, hi)), 6))


def _show_on_sliders(state: State, theta: np.ndarray) -> str | None:
    """Put θ's decomposition on the sliders (rounded to their steps, clamped); returns why θ
    has none, or None."""
    try:
        vals = pg.decompose_affine(theta)
    except ValueError as exc:
        return str(exc)
    for name, key in SLIDER_OF.items():
        _, lo, hi, step, _ = AFFINE[key]
        state[key] = _on_step(vals[name], step, lo, hi)
    return None


def keep_exact_theta(state: State, theta: np.ndarray) -> None:
    """θ in force is exactly ``theta`` until a slider moves."""
    state["pg_theta_exact"] = np.asarray(theta, dtype=np.float64).reshape(2, 3)
    state["pg_theta_snapshot"] = slider_values(state)


def theta_to_sliders(state: State, tag: str) -> None:
    """The θ inputs were edited: keep that exact θ and show its decomposition on the sliders."""
    t = np.array([[state[k] for k in row] for row in theta_keys(tag)], dtype=np.float64)
    why = _show_on_sliders(state, t)
    if why is None:
        state.pop("pg_theta_error", None)
    else:
        state["pg_theta_error"] = f"This θ cannot be shown on the sliders: {why}."
    keep_exact_theta(state, t)


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
    """θ ``(2, 3)`` in force: the edited matrix if the sliders have not moved since, else θ
    from the sliders. Derived in the script flow (not in slider callbacks, which Streamlit may
    skip when it coalesces fast reruns). An exact θ is mirrored to the URL as ``pg_theta``."""
    theta_from_url(state, query)
    if state.get("pg_theta_exact") is not None and state.get("pg_theta_snapshot") == slider_values(state):
        query["pg_theta"] = ",".join(f"{v:.6g}" for v in state["pg_theta_exact"].ravel())
        return state["pg_theta_exact"]
    state.pop("pg_theta_exact", None)
    state.pop("pg_theta_error", None)
    query.pop("pg_theta", None)
    return pg.affine_params(*slider_values(state))


def apply_preset(state: State, name: str) -> None:
    """Set the affine sliders to a named preset of :data:`playground.PRESETS`."""
    for pname, key in SLIDER_OF.items():
        state[key] = float(pg.PRESETS[name][pname])


# ----------------------------------------------------------------------------- projective
def corners(state: State) -> np.ndarray:
    """The projective corner sliders as ``(4, 2)`` (TL, TR, BR, BL)."""
    return np.array([[state.get(f"pg_c{i}{a}", CORNER_DEFAULT[i][j]) for j, a in enumerate("xy")]
                     for i in range(4)], dtype=np.float64)


def corners_reset(state: State) -> None:
    for i, (x, y) in enumerate(CORNER_DEFAULT):
        state[f"pg_c{i}x"], state[f"pg_c{i}y"] = x, y


# ----------------------------------------------------------------------------- TPS
def tps_offsets(state: State, query: MutableMapping) -> np.ndarray:
    """Offsets ``(16, 2)`` of the TPS source points from their targets (from the URL's
    ``pg_tps`` on first use)."""
    if "pg_tps_offsets" not in state:
        vals = _floats(query.get("pg_tps"), 2 * N_TPS)
        state["pg_tps_offsets"] = np.zeros((N_TPS, 2)) if vals is None else np.clip(vals.reshape(N_TPS, 2), -1, 1)
    return state["pg_tps_offsets"]


def store_tps_offsets(state: State, query: MutableMapping, off: np.ndarray) -> None:
    state["pg_tps_offsets"] = off
    if np.abs(off).max() > 0:
        query["pg_tps"] = ",".join(f"{v:.3f}" for v in off.ravel())
    else:
        query.pop("pg_tps", None)


def tps_sync_point(state: State, query: MutableMapping, k: int) -> None:
    """Show point ``k``'s offset on the dx/dy sliders (before they are drawn)."""
    off = tps_offsets(state, query)
    state["pg_tps_dx"], state["pg_tps_dy"] = float(round(off[k, 0], 2)), float(round(off[k, 1], 2))
    state["pg_tps_shown"] = k


def tps_move_point(state: State, query: MutableMapping, k: int, dx: float, dy: float) -> np.ndarray:
    """The dx/dy sliders of point ``k`` read ``(dx, dy)``: store it if it moved; the offsets."""
    off = tps_offsets(state, query)
    if (off[k] != (dx, dy)).any():
        off = off.copy()
        off[k] = (dx, dy)
        store_tps_offsets(state, query, off)
    return off


def tps_randomise(state: State, query: MutableMapping) -> None:
    state["pg_tps_seed"] = state.get("pg_tps_seed", 0) + 1
    store_tps_offsets(state, query, np.round(pg.random_tps_offsets(state["pg_tps_seed"]), 3))
    tps_sync_point(state, query, state.get("pg_tps_k", 0))


def tps_reset(state: State, query: MutableMapping) -> None:
    store_tps_offsets(state, query, np.zeros((N_TPS, 2)))
    tps_sync_point(state, query, state.get("pg_tps_k", 0))


# ----------------------------------------------------------------------------- drag editor
def editor_values(state: State, kind: str, params: np.ndarray) -> np.ndarray:
    """What the drag editor's handles manipulate: the corners for projective, else the
    transform's parameters."""
    return corners(state) if kind == "projective" else params


def apply_editor(state: State, query: MutableMapping) -> None:
    """The editor released a drag (or a key move): its ``{"kind", "values"}`` becomes the
    page's state, rounded and clamped to the sliders' ranges. Non-finite values are ignored."""
    got = (state.get("pg_editor") or {}).get("params")
    if not got:
        return
    kind, values = got["kind"], np.asarray(got["values"], dtype=np.float64)
    if not np.isfinite(values).all():
        return
    if kind == "affine":
        _show_on_sliders(state, values.reshape(2, 3))
        keep_exact_theta(state, values)
    elif kind == "attention":
        for (key, (_, lo, hi, _, _)), v in zip(ATTENTION.items(), values):
            state[key] = float(np.clip(round(v, 2), lo, hi))
    elif kind == "projective":
        for i, (x, y) in enumerate(values.reshape(4, 2)):
            state[f"pg_c{i}x"], state[f"pg_c{i}y"] = (float(np.clip(round(v, 2), *CORNER_RANGE)) for v in (x, y))
    elif kind == "tps":
        store_tps_offsets(state, query, np.clip(values.reshape(-1, 2) - pg.tps_params(np.zeros((N_TPS, 2))), -1, 1))
        tps_sync_point(state, query, state.get("pg_tps_k", 0))


# ----------------------------------------------------------------------------- input
def class_pool(labels: np.ndarray, cls: str) -> np.ndarray:
    """Indices of the digits offered for a class choice (``"any"`` or ``"0"``…``"9"``)."""
    return np.arange(len(labels)) if cls == "any" else np.flatnonzero(labels == int(cls))


def random_digit(state: State, labels: np.ndarray, rng: np.random.Generator | None = None) -> None:
    """Pick a random index within the chosen class."""
    n = len(class_pool(labels, state.get("pg_class", "any")))
    state["pg_index"] = int((rng or np.random.default_rng()).integers(n))

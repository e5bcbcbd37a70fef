"""The playground's state rules on plain dicts (no Streamlit): sliders ↔ θ ↔ URL, presets,
the θ component's edits and their acknowledgement, TPS offsets, random digits, the first view
without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stn_explore.explorer import playground as pg
from stn_explore.explorer import playground_state as ps


def defaults() -> dict:
    return {k: v[4] for k, v in ps.AFFINE.items()}


def test_current_theta_follows_the_sliders_and_clears_the_url():
    s, q = defaults(), {"pg_theta": "stale"}
    s["pg_theta_url_read"] = True
    s["pg_tx"] = 0.5
    np.testing.assert_allclose(ps.current_theta(s, q), [[1, 0, 0.5], [0, 1, 0]])
    assert "pg_theta" not in q


def test_an_edited_theta_is_kept_exactly_until_a_slider_moves():
    s, q = defaults(), {}
    theta = np.array([[0.9, 0.1234, 0.05], [-0.2, 1.1, 0.0]])
    ps.set_exact_theta(s, theta)
    np.testing.assert_array_equal(ps.current_theta(s, q), theta)  # exact, not the rounded sliders
    assert np.allclose([float(v) for v in q["pg_theta"].split(",")], theta.ravel(), atol=1e-6)
    assert s["pg_angle"] == pytest.approx(pg.decompose_affine(theta)["angle"], abs=0.5)  # shown on the sliders
    s["pg_angle"] += 1  # a slider moves: the sliders rule again
    assert not np.allclose(ps.current_theta(s, q), theta) and "pg_theta" not in q


def test_singular_theta_is_reported_not_shown_on_sliders():
    s = defaults()
    ps.set_exact_theta(s, np.zeros((2, 3)))
    assert s["pg_theta_error"].startswith("This θ cannot be shown on the sliders")
    assert s["pg_angle"] == 0.0


@pytest.mark.parametrize("raw, read", [("1,0,0.25,0,1,0", True), ("nan,0,0,0,1,0", False), ("1,2", False),
                                       ("<script>", False), ("1e308,0,0,0,1,0", True)])
def test_theta_from_a_shared_url(raw, read):
    s, q = defaults(), {"pg_theta": raw}
    theta = ps.current_theta(s, q)
    if read:
        np.testing.assert_array_equal(theta.ravel(), [float(v) for v in raw.split(",")])
    else:
        np.testing.assert_array_equal(theta, pg.affine_params())
        assert "pg_theta" not in q


def test_slider_values_round_trip_through_the_url():
    # the θ sliders are not Streamlit widgets (they live in the component): sync_url writes them,
    # read_url reads them back once per session, on their step and within their range
    s, q = {}, {}
    for key, value in (("pg_angle", 30.0), ("pg_tx", 0.3), ("pg_s", 0.5), ("pg_c0x", -0.75), ("pg_tps_bend", 1.5)):
        ps.set_slider(s, key, value)
    ps.sync_url(s, q)
    assert q == {"pg_angle": "30", "pg_tx": "0.3", "pg_s": "0.5", "pg_c0x": "-0.75", "pg_tps_bend": "1.5"}
    s2 = {}
    ps.read_url(s2, dict(q))
    assert all(ps.slider(s2, k) == ps.slider(s, k) for k in ps.SLIDERS)
    s["pg_angle"] = 0.0  # back to its default: the parameter leaves the URL
    ps.sync_url(s, q)
    assert "pg_angle" not in q
    bad = {}
    ps.read_url(bad, {"pg_angle": "nan", "pg_sx": "abc", "pg_tx": "99", "pg_s": "0.123"})
    assert "pg_angle" not in bad and "pg_sx" not in bad  # unreadable: defaults
    assert (bad["pg_tx"], bad["pg_s"]) == (2.0, 0.12)  # clamped, on the step
    ps.read_url(bad, {"pg_tx": "1"})  # once per session
    assert bad["pg_tx"] == 2.0


def test_presets_set_every_slider_and_drop_an_exact_theta():
    s = defaults()
    ps.set_exact_theta(s, np.array([[0.9, 0.1, 0.0], [0.0, 1.0, 0.0]]))
    for name, values in pg.PRESETS.items():
        ps.apply_preset(s, name)
        assert all(s[key] == values[p] for p, key in ps.SLIDER_OF.items())
        assert "pg_theta_exact" not in s


def test_editor_release_of_each_kind():
    s, q = defaults(), {}
    theta = pg.affine_params(30.0, 0.8, 0.8, 0.0, 0.1, -0.2)
    s["pg_editor"] = {"params": {"kind": "affine", "values": theta.ravel().tolist()}}
    ps.apply_editor(s, q)
    assert s["pg_angle"] == pytest.approx(30.0) and s["pg_sx"] == pytest.approx(0.8)
    np.testing.assert_allclose(ps.current_theta(s, q), theta)
    s["pg_editor"] = {"params": {"kind": "attention", "values": [5.0, 0.123, -9.0]}}
    ps.apply_editor(s, q)
    assert (s["pg_s"], s["pg_atx"], s["pg_aty"]) == (2.0, 0.12, -1.5)  # rounded and clamped
    s["pg_editor"] = {"params": {"kind": "projective", "values": [-0.9, -1, 3, -1, 1, 1, -1, 1]}}
    ps.apply_editor(s, q)
    np.testing.assert_allclose(ps.corners(s), [[-0.9, -1], [2, -1], [1, 1], [-1, 1]])
    src = pg.tps_params(np.zeros((16, 2)))
    src[5] += (0.3, -0.2)
    s["pg_editor"] = {"params": {"kind": "tps", "values": src.ravel().tolist()}}
    ps.apply_editor(s, q)
    np.testing.assert_allclose(s["pg_tps_offsets"][5], [0.3, -0.2])
    assert "pg_tps" in q
    before = dict(s)
    s["pg_editor"] = {"params": {"kind": "affine", "values": [np.nan] * 6}}
    ps.apply_editor(s, q)  # non-finite values are ignored
    assert {k: v for k, v in s.items() if k != "pg_editor"} == {k: v for k, v in before.items() if k != "pg_editor"}


def test_tps_offsets_round_trip_through_the_url():
    s, q = {}, {}
    off = np.zeros((16, 2))
    off[3] = (0.25, -0.5)
    s["pg_editor"] = {"params": {"kind": "tps", "values": [], "sliders": {"pg_tps_bend": 0.5},
                                 "tps": {"offsets": off.tolist(), "k": 3}, "nonce": 1}}
    ps.apply_editor(s, q)
    s2 = {}
    np.testing.assert_allclose(ps.tps_offsets(s2, dict(q))[3], [0.25, -0.5])
    # the bending strength scales every offset
    np.testing.assert_allclose(ps.tps_source(s, q)[3] - pg.tps_params(np.zeros((16, 2)))[3], [0.125, -0.25])
    assert s["pg_tps_k"] == 3
    ps.tps_reset(s, q)
    assert "pg_tps" not in q and s["pg_tps_bend"] == 1.0
    bad = {}
    assert not ps.tps_offsets(bad, {"pg_tps": "inf," * 31 + "1"}).any()  # rejected, defaults


def test_component_edits_of_each_kind_and_the_ack():
    # what the component sends when a slider is released or a key pressed: the slider values by key
    s, q = defaults(), {}
    ps.set_exact_theta(s, np.array([[0.9, 0.1, 0.0], [0.0, 1.0, 0.0]]))
    sliders = {**{k: v[4] for k, v in ps.AFFINE.items()}, "pg_angle": 12.0, "pg_tx": 0.30000000000000004}
    s["pg_editor"] = {"params": {"kind": "affine", "values": pg.affine_params(12, tx=0.3).tolist(),
                                 "sliders": sliders, "exact": False, "nonce": 7}}
    ps.apply_editor(s, q)
    assert s["pg_ack"] == 7 and "pg_theta_exact" not in s
    assert (repr(s["pg_angle"]), repr(s["pg_tx"])) == ("12.0", "0.3")
    np.testing.assert_allclose(ps.current_theta(s, q), pg.affine_params(12, tx=0.3))
    # a dragged handle or an edited θ: exact θ, its decomposition on the sliders
    theta = pg.affine_params(-20, 0.7, 0.8, 0.1, 0.2, -0.1) + np.array([[0, 0, 0.0012], [0, 0, 0]])
    s["pg_editor"] = {"params": {"kind": "affine", "values": theta.tolist(), "sliders": sliders, "exact": True,
                                 "nonce": 8}}
    ps.apply_editor(s, q)
    np.testing.assert_array_equal(ps.current_theta(s, q), theta)
    assert s["pg_angle"] == -20.0 and s["pg_ack"] == 8
    s["pg_editor"] = {"params": {"kind": "attention", "values": [0.5, 0.1, 0.2],
                                 "sliders": {"pg_s": 0.5, "pg_atx": 0.1, "pg_aty": 9.0}, "nonce": 9}}
    ps.apply_editor(s, q)
    assert (s["pg_s"], s["pg_atx"], s["pg_aty"]) == (0.5, 0.1, 1.5)
    corners = {k: v[4] for k, v in ps.PROJECTIVE.items()} | {"pg_c0x": 2.0}
    s["pg_editor"] = {"params": {"kind": "projective", "values": [], "sliders": corners, "nonce": 10}}
    ps.apply_editor(s, q)
    np.testing.assert_allclose(ps.corners(s)[0], [2.0, -1.0])
    s["pg_editor"] = {"params": {"kind": "attention", "values": [1, 0, 0], "sliders": {"pg_s": float("nan")},
                                 "nonce": 11}}
    ps.apply_editor(s, q)  # non-finite: ignored, but acknowledged (the browser must not wait for it)
    assert s["pg_s"] == 0.5 and s["pg_ack"] == 11


def test_controls_say_which_way_a_positive_angle_turns():
    # issue 23 item 5: said where the slider is (CONVENTIONS.md "Angles", pinned by test_geometry)
    c = ps.controls({}, {}, "affine")
    rotation = next(sp for sp in c["sliders"] if sp["key"] == "pg_angle")
    assert "clockwise on U" in rotation["note"] and "counter-clockwise" in rotation["note"]
    assert set(c["presets"]) == set(pg.PRESETS)
    assert [sp["key"] for sp in ps.controls({}, {}, "projective")["sliders"]] == list(ps.PROJECTIVE)
    tps = ps.controls({}, {}, "tps")
    assert [sp["key"] for sp in tps["sliders"]] == ["pg_tps_bend"] and len(tps["tps"]["offsets"]) == 16


def test_the_first_view_needs_no_torch():
    # cold start: the page draws its first view before torch loads (pages/playground.py)
    code = ("import sys; import stn_explore.explorer.playground_state as ps, stn_explore.experiments.mnist; "
            "s, q = {}, {}; ps.read_url(s, q); [ps.editor_values(s, q, k) for k in ('affine', 'attention', "
            "'projective', 'tps')]; ps.controls(s, q, 'affine'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "False"


def test_numpy_affine_and_tps_params_equal_the_core():
    import torch

    from stn_explore.core.geometry import control_points, theta_from_params

    rng = np.random.default_rng(0)
    for a, sx, sy, k, tx, ty in rng.uniform(-2, 2, (20, 6)):
        ref = theta_from_params(float(a * 90), (float(sx), float(sy)), float(k), (float(tx), float(ty)))
        np.testing.assert_allclose(pg.affine_params(a * 90, sx, sy, k, tx, ty), ref.double().numpy(), atol=1e-6)
    np.testing.assert_allclose(pg.tps_params(np.zeros((16, 2))), control_points(4, dtype=torch.float64).numpy(),
                               atol=1e-15)


def test_random_digit_stays_in_the_class():
    labels = np.array([1, 2, 2, 3, 2])
    s = {"pg_class": "2"}
    for seed in range(20):
        ps.random_digit(s, labels, np.random.default_rng(seed))
        assert 0 <= s["pg_index"] < 3
    np.testing.assert_array_equal(ps.class_pool(labels, "2"), [1, 2, 4])


def test_slider_values_written_by_the_state_rules_carry_no_float_noise():
    # the values go into the shared URL: pg_tx=0.3, not 0.30000000000000004
    s, q = defaults(), {}
    theta = pg.affine_params(0.0, 1.0, 1.0, 0.0, 0.3, 0.7)
    s["pg_editor"] = {"params": {"kind": "affine", "values": theta.ravel().tolist()}}
    ps.apply_editor(s, q)
    assert (repr(s["pg_tx"]), repr(s["pg_ty"])) == ("0.3", "0.7")
    assert all(len(repr(s[k])) <= 8 for k in ps.AFFINE)


@pytest.mark.parametrize("value", [1e308, -1e308, 1.7976931348623157e308, 1e300, -1e300])
def test_huge_slider_values_are_clamped_before_rounding(value):
    # issue 18: round(1e308 / 0.01) overflowed (inf) before the clamp; clamp first
    for key, (_, lo, hi, step, _) in ps.SLIDERS.items():
        s = {}
        ps.set_slider(s, key, value)
        assert s[key] == (hi if value > 0 else lo), key
    s, q = {}, {"pg_s": "1e308", "pg_c0x": "-1e308", "pg_tps_bend": "1e308"}
    ps.read_url(s, q)
    assert (s["pg_s"], s["pg_c0x"], s["pg_tps_bend"]) == (2.0, -2.0, 2.0)

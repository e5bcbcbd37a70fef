"""The playground's state rules on plain dicts (no Streamlit): sliders ↔ θ ↔ URL, presets,
the drag editor's release, TPS offsets, random digits."""

from __future__ import annotations

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
    tag = ps.slider_tag(s)
    theta = np.array([[0.9, 0.1234, 0.05], [-0.2, 1.1, 0.0]])
    for r, row in enumerate(ps.theta_keys(tag)):
        for c, key in enumerate(row):
            s[key] = theta[r, c]
    ps.theta_to_sliders(s, tag)
    np.testing.assert_array_equal(ps.current_theta(s, q), theta)  # exact, not the rounded sliders
    assert np.allclose([float(v) for v in q["pg_theta"].split(",")], theta.ravel(), atol=1e-6)
    s["pg_angle"] += 1  # a slider moves: the sliders rule again
    assert not np.allclose(ps.current_theta(s, q), theta) and "pg_theta" not in q


def test_singular_theta_is_reported_not_shown_on_sliders():
    s = defaults()
    tag = ps.slider_tag(s)
    for row in ps.theta_keys(tag):
        for key in row:
            s[key] = 0.0
    ps.theta_to_sliders(s, tag)
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


def test_presets_set_every_slider():
    s = defaults()
    for name, values in pg.PRESETS.items():
        ps.apply_preset(s, name)
        assert all(s[key] == values[p] for p, key in ps.SLIDER_OF.items())


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
    ps.tps_move_point(s, q, 3, 0.25, -0.5)
    s2 = {}
    np.testing.assert_allclose(ps.tps_offsets(s2, dict(q))[3], [0.25, -0.5])
    ps.tps_reset(s, q)
    assert "pg_tps" not in q and s["pg_tps_dx"] == 0.0
    bad = {}
    assert not ps.tps_offsets(bad, {"pg_tps": "inf," * 31 + "1"}).any()  # rejected, defaults


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

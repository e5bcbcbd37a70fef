"""Streamlit AppTest: every page renders without an exception."""

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 60  # importing torch alone takes seconds on a cold machine
ROOT = Path(__file__).resolve().parents[1]


def test_home_renders_without_exception():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "Spatial Transformer" in at.title[0].value
    assert any("Localisation network" in m.value for m in at.markdown)

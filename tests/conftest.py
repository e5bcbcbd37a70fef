"""Shared fixtures: tiny IDX data made in the test, and the real MNIST folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from stn_explore.experiments.mnist import Digits, write_idx

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


# Read once, before the autouse fixture hides it from every test.
_REAL_DATA_DIR = os.environ.get("STN_DATA_DIR")


@pytest.fixture(autouse=True)
def _isolated_data_env(monkeypatch, tmp_path_factory):
    """No test sees the developer's STN_DATA_DIR, STN_CHECKPOINT_DIR or download cache unless
    it asks for them."""
    monkeypatch.delenv("STN_DATA_DIR", raising=False)
    monkeypatch.delenv("STN_CHECKPOINT_DIR", raising=False)
    monkeypatch.setenv("STN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def mnist_dir() -> Path:
    """The real MNIST IDX folder ($STN_DATA_DIR or ../shared/data/mnist); skip if absent."""
    for cand in (_REAL_DATA_DIR, SHARED_MNIST):
        if cand and (Path(cand) / "t10k-images-idx3-ubyte.gz").is_file():
            return Path(cand)
    pytest.skip("full MNIST not available (set STN_DATA_DIR or provide ../shared/data/mnist)")


def synthetic_digits(n: int, seed: int = 0) -> Digits:
    """Digit-like images: a bright bar whose position encodes the class, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = (rng.random((n, 28, 28)) * 40).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, 4:24, 4 + 2 * y:6 + 2 * y] = 255
    return Digits(images, labels.astype(np.int64), "synthetic")


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    """A folder of tiny train/test IDX files (gz) in torchvision's names."""
    for split, prefix, n, seed in (("train", "train", 200, 1), ("test", "t10k", 60, 2)):
        d = synthetic_digits(n, seed)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", d.images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", d.labels.astype(np.uint8))
    return tmp_path


@pytest.fixture
def fresh_streamlit_caches():
    """st.cache_* outlive an AppTest in this process: clear them around a test that changes
    what the cached functions would return."""
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()

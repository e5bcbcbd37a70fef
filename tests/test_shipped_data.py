"""The MNIST data shipped with stn_explore: the offline default is the real test split, no test
digit is among any training digits, the files are md5-checked, and checkpoints evaluated on
the shipped digits are recognised as evaluated on the same digits as recorded."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from stn_explore.experiments import evaluate, mnist
from stn_explore.experiments.mnist import (
    MNIST_TEST_CONTENT_MD5,
    SHIPPED,
    SHIPPED_DIR,
    DataSourceError,
    Digits,
    load_digits,
    load_shipped,
    read_idx,
    write_idx,
)

from .conftest import ROOT, synthetic_digits

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def digit_hashes(images: np.ndarray) -> list[str]:
    """sha1 of the 784 bytes of each 28×28 uint8 digit."""
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    return [hashlib.sha1(img.tobytes()).hexdigest() for img in images]


def shared_digits(test: np.ndarray, train: np.ndarray) -> list[int]:
    """Indices of the test digits whose exact pixels also occur among the training digits."""
    seen = set(digit_hashes(train))
    return [i for i, h in enumerate(digit_hashes(test)) if h in seen]


# ----------------------------------------------------------------------------- the offline default
def test_offline_test_split_is_the_original_mnist_test_split():
    test = load_digits("test")   # conftest hides STN_DATA_DIR and the download cache
    assert mnist.choose_source("test").kind == "shipped"
    assert test.source == "MNIST test split, 10,000 held-out digits (shipped with stn_explore)"
    assert not test.is_sample and len(test) == 10000
    assert test.images.dtype == np.uint8 and test.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(test.labels), TEST_COUNTS)
    # the same digits, in the same order, as the original t10k files (their md5s)
    assert test.content_md5() == MNIST_TEST_CONTENT_MD5


def test_offline_training_sample_is_balanced_and_marked_as_a_sample():
    train = load_digits("train")
    assert train.source == "MNIST training sample (5,000 digits shipped with stn_explore)"
    assert train.is_sample and len(train) == 5000
    np.testing.assert_array_equal(np.bincount(train.labels), [500] * 10)
    # a caller that changes its copy does not change the next load
    train.images[:] = 0
    assert load_digits("train").images.any()


# ----------------------------------------------------------------------------- no leak
def test_leak_check_finds_a_planted_training_digit():
    """The helper the leak tests rely on does detect a test digit among training digits."""
    test, train = synthetic_digits(50, seed=1).images, synthetic_digits(80, seed=2).images
    assert shared_digits(test, train) == []
    planted = np.concatenate([train, test[[7, 31]]])
    assert shared_digits(test, planted) == [7, 31]


def test_no_shipped_test_digit_is_in_the_shipped_training_sample():
    assert shared_digits(load_digits("test").images, load_digits("train").images) == []


def test_no_shipped_test_digit_is_in_the_checkpoints_training_digits(mnist_dir):
    """The committed checkpoints were trained on the training split at STN_DATA_DIR (the shared
    10,000-digit folder); skipped where it is absent."""
    trained_on = load_digits("train", root=mnist_dir)
    assert shared_digits(load_digits("test").images, trained_on.images) == []


def test_shipped_test_split_equals_the_t10k_files(mnist_dir):
    shipped, full = load_digits("test"), load_digits("test", root=mnist_dir)
    np.testing.assert_array_equal(shipped.images, full.images)
    np.testing.assert_array_equal(shipped.labels, full.labels)


def test_training_sample_is_the_documented_choice(mnist_dir):
    """mnist_data/README.md: the first 500 digits of each class of the shared train-* files,
    kept in file order."""
    full = load_digits("train", root=mnist_dir)
    keep = np.sort(np.concatenate([np.flatnonzero(full.labels == c)[:500] for c in range(10)]))
    sample = load_digits("train")
    np.testing.assert_array_equal(sample.images, full.images[keep])
    np.testing.assert_array_equal(sample.labels, full.labels[keep])


# ----------------------------------------------------------------------------- the files
def test_a_corrupted_shipped_file_is_refused_naming_the_file(tmp_path):
    copy = tmp_path / "mnist_data"
    shutil.copytree(SHIPPED_DIR, copy)
    assert len(load_shipped("test", folder=copy)) == 10000   # an intact copy loads
    damaged = tmp_path / "damaged"
    shutil.copytree(SHIPPED_DIR, damaged)
    name = "t10k-images-idx3-ubyte.gz"
    data = bytearray((damaged / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / name).write_bytes(bytes(data))
    with pytest.raises(DataSourceError, match=re.escape(str(damaged / name)) + r".*md5"):
        load_shipped("test", folder=damaged)
    (damaged / "train5k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataSourceError, match=r"train5k-labels-idx1-ubyte\.gz is missing"):
        load_shipped("train", folder=damaged)


def test_shipped_files_are_small_and_documented():
    readme = (SHIPPED_DIR / "README.md").read_text()
    total = 0
    for split, spec in SHIPPED.items():
        for name, md5 in spec["files"].items():
            path = SHIPPED_DIR / name
            assert hashlib.md5(path.read_bytes()).hexdigest() == md5
            assert name in readme and md5 in readme
            total += path.stat().st_size
    assert total <= 4_000_000
    assert "CC BY-SA 3.0" in readme and "Yann LeCun" in readme and "Corinna Cortes" in readme
    for md5 in MNIST_TEST_CONTENT_MD5.values():
        assert md5 in readme


def test_requirements_do_not_pull_in_mlxtend():
    lines = [ln.split("#")[0].strip().lower() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    assert not [ln for ln in lines if ln.startswith("mlxtend")]
    sources = [p for p in (ROOT / "stn_explore").rglob("*.py") if "mlxtend" in p.read_text()]
    assert sources == []


# ----------------------------------------------------------------------------- checkpoints
def _info(source: str, digits: Digits, md5: dict | None = None) -> dict:
    info = {"test_source": source, "n_test_digits": len(digits)}
    if md5 is not None:
        info["test_md5"] = md5
    return info


def test_same_digits_from_another_folder_are_recognised_by_content(tmp_path):
    d = synthetic_digits(40, seed=3)
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        write_idx(folder / "t10k-images-idx3-ubyte.gz", d.images)
        write_idx(folder / "t10k-labels-idx1-ubyte.gz", d.labels.astype(np.uint8))
    current = load_digits("test", root=b)
    # an old checkpoint (no md5): the recorded folder's files are hashed
    same, note = evaluate.compare_test_digits(_info(f"local IDX files in {a}", d), current)
    assert same is True and note.startswith("note: same test digits") and str(a) in note
    # a new checkpoint: the recorded md5 decides, wherever the files are now
    same, note = evaluate.compare_test_digits(_info("local IDX files in /gone", d, d.content_md5()), current)
    assert same is True and "same test digits" in note
    # identical source strings and digits: nothing to say
    assert evaluate.compare_test_digits(_info(current.source, d, d.content_md5()), current) == (True, "")


def test_different_or_unknown_digits_are_flagged(tmp_path):
    d, other = synthetic_digits(40, seed=3), synthetic_digits(40, seed=4)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", other.images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", other.labels.astype(np.uint8))
    current = load_digits("test", root=tmp_path)
    same, note = evaluate.compare_test_digits(_info("somewhere", d, d.content_md5()), current)
    assert same is False and "different test digits" in note and "will differ" in note
    same, note = evaluate.compare_test_digits(_info(f"local IDX files in {tmp_path / 'gone'}", d), current)
    assert same is None and "cannot be checked" in note and "not on this machine" in note


def test_committed_checkpoint_is_evaluated_on_the_same_test_digits_offline():
    """Without STN_DATA_DIR the committed checkpoints see the shipped test split: the same
    digits they were evaluated on (confirmed by content where the recorded folder is here)."""
    from stn_explore.experiments.checkpoint import load_checkpoint

    path = ROOT / "checkpoints" / "rts_cnn.pt"
    if not path.is_file():
        pytest.skip("no committed checkpoints/rts_cnn.pt")
    info = load_checkpoint(path)["data"]
    same, note = evaluate.compare_test_digits(info, load_digits("test"))
    if evaluate.recorded_test_digits(info)[0] is None:   # the recorded folder is not on this machine
        assert same is None and "original MNIST test split" in note
    else:
        assert same is True and "same test digits" in note and "different" not in note


def test_new_checkpoints_record_the_digits_by_content(tmp_path, idx_dir):
    from stn_explore.experiments import train

    cfg = train.TrainConfig(task="rts", model="cnn", epochs=1, batch_size=32, n_test=20, n_train=40)
    res = train.train(cfg, tmp_path / "m.pt", data_dir=idx_dir, progress=False, log=lambda m: None)
    test = load_digits("test", root=idx_dir)
    assert res["data"]["test_md5"] == test.content_md5()
    assert res["data"]["train_source"].startswith("first 40 of the ") and res["data"]["is_sample"]
    # copied elsewhere, the same digits are still recognised
    moved = tmp_path / "moved"
    shutil.copytree(idx_dir, moved)
    same, note = evaluate.compare_test_digits(res["data"], load_digits("test", root=moved))
    assert same is True and "same test digits" in note


def test_idx_content_md5_matches_the_file_md5(tmp_path):
    """content_md5 is the md5 of the digits written as uncompressed IDX files."""
    d = synthetic_digits(12)
    write_idx(tmp_path / "i", d.images)
    write_idx(tmp_path / "l", d.labels.astype(np.uint8))
    md5 = d.content_md5()
    assert md5["images"] == hashlib.md5((tmp_path / "i").read_bytes()).hexdigest()
    assert md5["labels"] == hashlib.md5((tmp_path / "l").read_bytes()).hexdigest()
    np.testing.assert_array_equal(read_idx(tmp_path / "i"), d.images)


def test_files_in_the_package_data_folder_are_all_listed():
    listed = {n for spec in SHIPPED.values() for n in spec["files"]} | {"README.md"}
    assert {p.name for p in Path(SHIPPED_DIR).iterdir()} == listed

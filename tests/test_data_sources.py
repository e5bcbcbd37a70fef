"""MNIST sources: local IDX files, a loopback download, the shipped data, the sources CLI, the
real data. (The shipped files themselves: tests/test_shipped_data.py.)"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from stn_explore.experiments import data as data_mod
from stn_explore.experiments import mnist
from stn_explore.experiments.mnist import DataSourceError, load_digits, read_idx, write_idx

from .conftest import synthetic_digits


# ----------------------------------------------------------------------------- IDX / local
def test_idx_round_trip_gz_and_raw(tmp_path):
    a = synthetic_digits(7).images
    write_idx(tmp_path / "x.gz", a)
    write_idx(tmp_path / "x", a)
    assert (tmp_path / "x.gz").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), a)


def test_truncated_idx_raises(tmp_path):
    write_idx(tmp_path / "x", synthetic_digits(5).images)
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[:-10])
    with pytest.raises(DataSourceError, match="promises"):
        read_idx(tmp_path / "x")
    (tmp_path / "y").write_bytes(b"not an idx file at all")
    with pytest.raises(DataSourceError, match="magic"):
        read_idx(tmp_path / "y")


def test_load_local_folder_by_argument_and_env(idx_dir, monkeypatch):
    d = load_digits("train", root=idx_dir)
    assert d.images.shape == (200, 28, 28) and d.images.dtype == np.uint8
    assert d.labels.dtype == np.int64 and d.labels.shape == (200,)
    assert str(idx_dir) in d.source and not d.is_sample
    assert d.source == f"200 digits of the MNIST training split from local IDX files in {idx_dir}"
    np.testing.assert_array_equal(d.images, synthetic_digits(200, 1).images)
    monkeypatch.setenv("STN_DATA_DIR", str(idx_dir))
    t = load_digits("test")
    assert len(t) == 60 and "local IDX" in t.source


def test_torchvision_layout_and_raw_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    d = synthetic_digits(12)
    write_idx(raw / "t10k-images-idx3-ubyte", d.images)
    write_idx(raw / "t10k-labels-idx1-ubyte", d.labels.astype(np.uint8))
    got = load_digits("test", root=tmp_path)
    np.testing.assert_array_equal(got.labels, d.labels)


def test_explicit_folder_without_files_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    with pytest.raises(DataSourceError, match="no mnist train files"):
        load_digits("train", root=tmp_path)
    monkeypatch.setenv("STN_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataSourceError, match="STN_DATA_DIR"):
        load_digits("test")


def test_fashion_mnist_loads_through_the_same_path(tmp_path):
    d = synthetic_digits(9)
    write_idx(tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz", d.images)
    write_idx(tmp_path / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte.gz", d.labels.astype(np.uint8))
    got = load_digits("train", root=tmp_path, dataset="fashion-mnist")
    np.testing.assert_array_equal(got.images, d.images)
    # no shipped fallback exists for Fashion-MNIST: a clear error instead
    with pytest.raises(DataSourceError, match="download"):
        load_digits("train", dataset="fashion-mnist")


def test_bad_split_and_dataset_names():
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")
    with pytest.raises(ValueError, match="dataset"):
        load_digits("train", dataset="kmnist")


# ----------------------------------------------------------------------------- shipped data, order
def test_shipped_data_is_the_offline_default():
    tr, te = load_digits("train"), load_digits("test")
    assert te.source == mnist.SHIPPED_TEST_SOURCE and len(te) == 10000 and not te.is_sample
    assert tr.source == mnist.SHIPPED_TRAIN_SOURCE and len(tr) == 5000 and tr.is_sample
    assert tr.images.dtype == np.uint8 and tr.images.shape[1:] == (28, 28)
    np.testing.assert_array_equal(load_digits("test").images, te.images)   # deterministic


def test_shipped_data_can_be_refused():
    with pytest.raises(DataSourceError, match="no mnist data found"):
        load_digits("train", allow_shipped=False)


def test_a_named_folder_and_the_cache_come_before_the_shipped_data(idx_dir, monkeypatch):
    assert mnist.choose_source("test").kind == "shipped"
    # files downloaded earlier win over the shipped data
    cached = mnist.cache_dir()
    cached.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (cached / name).write_bytes((idx_dir / name).read_bytes())
    assert mnist.choose_source("test").kind == "cache"
    got = load_digits("test")
    assert len(got) == 60 and got.source == f"60 digits of the MNIST test split from downloaded files in {cached}"
    assert mnist.choose_source("train").kind == "shipped"   # per split: no cached train files
    # a named folder wins over both, and names why
    monkeypatch.setenv("STN_DATA_DIR", str(idx_dir))
    choice = mnist.choose_source("test")
    assert choice.kind == "folder" and "STN_DATA_DIR" in choice.why
    assert mnist.choose_source("test", root=idx_dir).why.startswith("the folder named by --data-dir")


def test_sources_cli_names_each_split_source_and_why(idx_dir, capsys, monkeypatch):
    assert data_mod.main(["sources"]) == 0
    out = capsys.readouterr().out
    for step in ("1. a folder of IDX files named by --data-dir or STN_DATA_DIR", "2. files downloaded earlier",
                 "3. a download of the standard files with --download", "4. the data shipped with stn_explore"):
        assert step in out
    assert "train:  5,000 digits, MNIST training sample (5,000 digits shipped with stn_explore)" in out
    assert "test : 10,000 digits, MNIST test split, 10,000 held-out digits (shipped with stn_explore)" in out
    assert out.count("why: no folder named") == 2
    monkeypatch.setenv("STN_DATA_DIR", str(idx_dir))
    assert data_mod.main(["sources"]) == 0
    out = capsys.readouterr().out
    assert f"test :     60 digits, 60 digits of the MNIST test split from local IDX files in {idx_dir}" in out
    assert out.count("why: the folder named by STN_DATA_DIR") == 2
    # a named folder without the files is an error, not a fallback to the shipped data
    assert data_mod.main(["sources", "--data-dir", str(idx_dir / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no mnist train files" in err and "--data-dir" in err


# ----------------------------------------------------------------------------- loopback download
class _Server:
    """A local HTTP server on 127.0.0.1 serving ``files`` {name: bytes}; names starting
    with "cut/" announce the full length but close the connection half-way."""

    def __init__(self, files: dict[str, bytes]):
        files_ = files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name = self.path.lstrip("/")
                if name not in files_:
                    self.send_error(404)
                    return
                body = files_[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name.startswith("cut/"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _idx_gz(array: np.ndarray) -> bytes:
    import struct

    a = np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    return gzip.compress(raw, mtime=0)


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def test_download_verifies_and_loads(tmp_path, monkeypatch):
    d = synthetic_digits(30)
    files = {"train-images-idx3-ubyte.gz": _idx_gz(d.images),
             "train-labels-idx1-ubyte.gz": _idx_gz(d.labels),
             "t10k-images-idx3-ubyte.gz": _idx_gz(d.images[:10]),
             "t10k-labels-idx1-ubyte.gz": _idx_gz(d.labels[:10])}
    monkeypatch.setitem(mnist.DATASETS["mnist"], "md5", {k: _md5(v) for k, v in files.items()})
    with _Server(files) as srv:
        got = load_digits("train", download=True, mirrors=[srv.url + "/"])
    np.testing.assert_array_equal(got.images, d.images)
    assert "downloaded" in got.source
    # the next call finds the verified files in the cache without the network
    again = load_digits("test")
    assert len(again) == 10 and "downloaded" in again.source
    assert not list(mnist.cache_dir().glob("*.part"))


def test_download_bad_checksum_leaves_nothing(tmp_path):
    body = _idx_gz(synthetic_digits(5).images)
    dest = tmp_path / "dl" / "x.gz"
    with _Server({"x.gz": body}) as srv:
        with pytest.raises(DataSourceError, match="md5 mismatch"):
            mnist.download_file(srv.url + "/x.gz", dest, md5="0" * 32, progress=False)
        assert not dest.exists() and list(dest.parent.iterdir()) == []
        # the right checksum succeeds
        mnist.download_file(srv.url + "/x.gz", dest, md5=_md5(body), progress=False)
    assert dest.read_bytes() == body


def test_interrupted_transfer_leaves_no_partial_file(tmp_path):
    body = _idx_gz(synthetic_digits(50).images)
    dest = tmp_path / "dl" / "x.gz"
    with _Server({"cut/x.gz": body}) as srv:
        with pytest.raises(DataSourceError):
            mnist.download_file(srv.url + "/cut/x.gz", dest, md5=_md5(body), progress=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_download_tries_next_mirror_and_reports_all_errors(tmp_path, monkeypatch):
    files = {n: _idx_gz(np.zeros((2, 28, 28) if "images" in n else (2,))) for n in
             ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")}
    monkeypatch.setitem(mnist.DATASETS["mnist"], "md5",
                        {**mnist.DATASETS["mnist"]["md5"], **{k: _md5(v) for k, v in files.items()}})
    with _Server(files) as srv:
        folder = mnist.download_dataset("mnist", tmp_path, mirrors=[srv.url + "/missing/", srv.url + "/"],
                                        splits=["train"], progress=False)
        assert (folder / "train-images-idx3-ubyte.gz").is_file()
        with pytest.raises(DataSourceError, match="any mirror"):
            mnist.download_dataset("mnist", tmp_path / "b", mirrors=[srv.url + "/missing/"],
                                   splits=["test"], progress=False)


# ----------------------------------------------------------------------------- the real data
def test_real_mnist_test_split(mnist_dir):
    d = load_digits("test", root=mnist_dir)
    assert len(d) == 10000
    np.testing.assert_array_equal(np.bincount(d.labels),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    raw = gzip.decompress(Path(mnist_dir, "t10k-images-idx3-ubyte.gz").read_bytes())
    assert _md5(raw) == "2646ac647ad5339dbf082846283269ea"


def test_real_mnist_train_digits(mnist_dir):
    d = load_digits("train", root=mnist_dir)
    assert len(d) == 10000
    np.testing.assert_array_equal(np.bincount(d.labels),
                                  [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])

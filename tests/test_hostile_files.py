"""Hostile checkpoints and data files (issue 18): pickles that would run code, truncated and
damaged files, checkpoints of another architecture or kind, npz and IDX files that break their
contract. The CLIs refuse each with exit status 2 and one line naming the file and the problem
(no traceback); the loaders the app uses raise CheckpointError / ValueError; no payload runs."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from stn_explore.experiments import colocalisation as C
from stn_explore.experiments import colocalise, data, evaluate, train
from stn_explore.experiments.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from stn_explore.experiments.mnist import DataSourceError, load_digits, write_idx
from stn_explore.experiments.models import load_model

from .conftest import synthetic_digits

ROOT = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickled by a full unpickler, this creates the file named ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models train ~20× faster on one thread than on two contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _idx_folder(folder: Path, n_train: int = 40, n_test: int = 30, labels=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        d = synthetic_digits(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", d.images)
        lab = d.labels if labels is None else np.full(n, labels)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", lab.astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A real classifier checkpoint (3 SGD steps), a real co-localisation checkpoint (4
    iterations), their data folder, and an exported npz of the classifier's task."""
    root = tmp_path_factory.mktemp("hostile")
    folder = _idx_folder(root / "mnist")
    cfg = train.TrainConfig(task="rts", model="st-cnn", epochs=1, batch_size=8, n_train=24, n_test=20, seed=3)
    train.train(cfg, root / "cls.pt", data_dir=folder, progress=False, log=lambda m: None)
    ccfg = C.ColocConfig(digit=3, noise=0, iterations=4, batch_size=4, record_every=2, n_panel=3, n_eval=6,
                         save_every=2, seed=1, shrink_iterations=2, lr_drop=3)
    C.train(ccfg, train_digits=synthetic_digits(60, 1), test_digits=synthetic_digits(40, 2),
            out=root / "coloc.pt", progress=False, log=lambda m: None)
    arrays, meta = data.make_task_set("rts", "test", 12, 0, digits=load_digits("test", root=folder))
    data.save_npz(root / "rts.npz", arrays, meta)
    return {"root": root, "mnist": folder, "cls": root / "cls.pt", "coloc": root / "coloc.pt",
            "npz": root / "rts.npz", "arrays": arrays, "meta": meta}


def cli_error(capsys, rc: int, *words: str) -> str:
    """Assert a CLI refusal: status 2 and one line ``error: …`` holding ``words``."""
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    return err


# ----------------------------------------------------------------------------- pickles
def _evil_files(folder: Path, marker: Path) -> dict[str, Path]:
    good = {"format": 1, "kind": "classifier", "model_args": {}, "state_dict": {}}
    out = {}
    out["zip.pt"] = folder / "zip.pt"
    torch.save({**good, "payload": Payload(marker)}, out["zip.pt"])
    out["legacy.pt"] = folder / "legacy.pt"
    torch.save({**good, "payload": Payload(marker)}, out["legacy.pt"], _use_new_zipfile_serialization=False)
    out["raw.pkl"] = folder / "raw.pkl"
    out["raw.pkl"].write_bytes(pickle.dumps(Payload(marker)))
    return out


def test_pickled_payloads_never_run_in_any_loader_or_cli(tmp_path, files, capsys):
    marker = tmp_path / "PWNED"
    evil = _evil_files(tmp_path, marker)
    for name, path in evil.items():
        with pytest.raises(CheckpointError, match=str(path.name)):
            load_checkpoint(path)
        with pytest.raises(CheckpointError):
            C.load_run(path)
        cli_error(capsys, evaluate.main(["--checkpoint", str(path)]), str(path))
        cli_error(capsys, colocalise.main(["--digit", "3", "--out", str(path), "--resume", "--no-progress"]),
                  str(path))
        cli_error(capsys, train.main(["--out", str(path), "--resume", "--epochs", "1", "--no-progress"]), str(path))
    np.save(tmp_path / "obj.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "obj.npz", "w") as z:
        z.write(tmp_path / "obj.npy", "images.npy")
        z.writestr("labels.npy", _npy(np.zeros(1, np.int64)))
    with pytest.raises(ValueError, match=r"obj\.npz.*Python objects"):
        data.load_npz(tmp_path / "obj.npz")
    cli_error(capsys, evaluate.main(["--checkpoint", str(files["cls"]), "--npz", str(tmp_path / "obj.npz")]),
              "obj.npz", "Python objects")
    assert not marker.exists()
    # the payload is live: a full unpickler does run it
    pickle.loads((tmp_path / "raw.pkl").read_bytes()).close()
    assert marker.exists()


def test_a_pickle_given_to_the_real_command_runs_nothing(tmp_path):
    marker = tmp_path / "PWNED"
    path = _evil_files(tmp_path, marker)["zip.pt"]
    res = subprocess.run([sys.executable, "-m", "stn_explore.evaluate", "--checkpoint", str(path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2 and not marker.exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "pickled Python objects" in lines[0] and str(path) in lines[0], res.stderr
    # torch's own refusal came through before: terminal escape codes and "This file can still be
    # loaded", with the advice to load it with weights_only=False, which would run the payload
    assert "\x1b" not in res.stderr and "can still be loaded" not in res.stderr and "weights_only=False" not in res.stderr


# ----------------------------------------------------------------------------- checkpoints
def _variants(files, folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (hostile checkpoint file, a word of the refusal)."""
    cls = torch.load(files["cls"], weights_only=True)
    coloc = torch.load(files["coloc"], weights_only=True)
    raw = files["cls"].read_bytes()
    out = {}

    def put(name, obj, words):
        p = folder / f"{name}.pt"
        if isinstance(obj, bytes):
            p.write_bytes(obj)
        else:
            torch.save(obj, p)
        out[name] = (p, words)

    put("empty", b"", "damaged")
    put("half", raw[: len(raw) // 2], "damaged")
    put("head", raw[:100], "damaged")
    put("legacy_half", _legacy(cls)[:300], "damaged")
    put("flipped", raw[:60] + bytes(b ^ 0x5A for b in raw[60:90]) + raw[90:], "")
    put("other_arch", {**cls, "model_args": {**cls["model_args"], "name": "cnn"}}, "another architecture")
    put("other_size", {**cls, "model_args": {**cls["model_args"], "input_size": [60, 60]}}, "another architecture")
    put("bad_args", {**cls, "model_args": {**cls["model_args"], "wings": 2}}, "describe no model")
    put("bad_type", {**cls, "model_args": {**cls["model_args"], "input_size": "big"}}, "describe no model")
    nan = {k: v.clone() for k, v in cls["state_dict"].items()}
    next(v for v in nan.values() if v.is_floating_point()).fill_(float("nan"))
    put("nan_weights", {**cls, "state_dict": nan}, "NaN")
    put("no_data", {k: v for k, v in cls.items() if k != "data"}, "'data'")
    put("unknown_kind", {**cls, "kind": "gan"}, "unknown checkpoint kind")
    put("coloc_bad_config", {**coloc, "config": {**coloc["config"], "digit": 12}}, "digit")
    put("coloc_bad_rng", {**coloc, "rng": torch.zeros(3, dtype=torch.uint8)}, "rng")
    put("coloc_other_arch", {**coloc, "model_args": {**coloc["model_args"], "localiser": "regress"}},
        "another architecture")
    put("kindless_other_arch", {k: v for k, v in {**cls, "model_args": {**cls["model_args"], "name": "fcn"}}.items()
                                if k != "kind"}, "another architecture")
    return out


def _legacy(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def test_damaged_and_foreign_checkpoints_are_refused_by_every_cli(tmp_path, files, capsys):
    for name, (path, words) in _variants(files, tmp_path).items():
        coloc_kind = name.startswith("coloc")
        cli_error(capsys, evaluate.main(["--checkpoint", str(path)]), str(path), words)
        rc = train.main(["--out", str(path), "--resume", "--task", "rts", "--epochs", "2", "--n-train", "24",
                         "--n-test", "20", "--batch-size", "8", "--seed", "3", "--data-dir", str(files["mnist"]),
                         "--no-progress"])
        cli_error(capsys, rc, str(path), "colocalisation checkpoint" if coloc_kind else words)
        rc = colocalise.main(["--digit", "3", "--out", str(path), "--resume", "--no-progress", "--retries", "0"])
        cli_error(capsys, rc, str(path), words if coloc_kind or words in ("damaged", "") else "")


def test_damaged_and_foreign_checkpoints_are_refused_by_the_apps_loaders(tmp_path, files):
    from stn_explore.explorer.compare import load_classifier

    for name, (path, words) in _variants(files, tmp_path).items():
        with pytest.raises(CheckpointError, match=words or None) as exc:
            (C.load_run if name.startswith("coloc") else load_classifier)(path)
        if not name.startswith("kindless"):   # the page names the file of a checkpoint without a kind
            assert str(path) in str(exc.value)
    # the other kind, each way
    with pytest.raises(CheckpointError, match=r"cls\.pt is a classifier checkpoint, not a colocalisation one"):
        C.load_run(files["cls"])
    with pytest.raises(CheckpointError, match="not a classifier"):
        load_classifier(files["coloc"])


def test_a_checkpoint_of_another_kind_is_refused_by_resume(files, capsys):
    rc = train.main(["--out", str(files["coloc"]), "--resume", "--epochs", "2", "--no-progress"])
    cli_error(capsys, rc, "coloc.pt", "colocalisation checkpoint, not a classifier")
    rc = colocalise.main(["--digit", "3", "--out", str(files["cls"]), "--resume", "--no-progress"])
    cli_error(capsys, rc, "cls.pt", "not a co-localisation checkpoint")


def test_good_files_still_load(files):
    assert load_model(load_checkpoint(files["cls"])).args.name == "st-cnn"
    assert C.load_run(files["coloc"])["iteration"] == 4
    arrays, meta = data.load_npz(files["npz"])
    assert arrays["images"].shape == (12, 42, 42) and meta["task"] == "rts"


def test_every_shipped_checkpoint_passes_the_checks():
    shipped = sorted((ROOT / "checkpoints").glob("*.pt"))
    for path in shipped:
        load_checkpoint(path)


# ----------------------------------------------------------------------------- npz files
def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _npz_variants(files, folder: Path) -> dict[str, tuple[Path, str]]:
    a = files["arrays"]
    im, lab = a["images"], a["labels"]
    good = files["npz"].read_bytes()
    out = {}

    def put(name, words, raw=None, **arrays):
        p = folder / f"{name}.npz"
        if raw is not None:
            p.write_bytes(raw)
        else:
            np.savez(p, **arrays)
        out[name] = (p, words)

    put("no_images", "missing array 'images'", labels=lab)
    put("no_labels", "missing array 'labels'", images=im)
    put("float_images", "uint8", images=im.astype(np.float32) / 255, labels=lab)
    put("nan_images", "uint8", images=np.full(im.shape, np.nan, np.float32), labels=lab)
    put("float_labels", "integers", images=im, labels=lab.astype(np.float64))
    put("flat_images", "shape", images=im.reshape(len(im), -1), labels=lab)
    put("column_labels", "labels have shape", images=im, labels=lab[:, None])
    put("short_labels", "labels have shape", images=im, labels=lab[:-1])
    put("empty", "no images", images=im[:0], labels=lab[:0])
    put("negative_labels", "≥ 0", images=im, labels=lab - 20)
    put("labels_10", "10 classes", images=im, labels=lab + 10)
    put("other_size", "the model expects", images=np.zeros((4, 28, 28), np.uint8), labels=lab[:4])
    put("bad_meta", "'meta'", images=im, labels=lab, meta=np.array("{not json"))
    put("list_meta", "'meta'", images=im, labels=lab, meta=np.array("[1, 2]"))
    put("truncated", "damaged", raw=good[: len(good) // 2])
    put("cut_member", "damaged", raw=good[: len(good) - 200])
    put("garbage", "not an .npz", raw=b"garbage, not a zip")
    put("npy", "not an .npz", raw=_npy(im))
    put("zero_bytes", "not an .npz", raw=b"")
    return out


def test_bad_npz_files_are_refused_by_evaluate_naming_the_file(tmp_path, files, capsys):
    for name, (path, words) in _npz_variants(files, tmp_path).items():
        rc = evaluate.main(["--checkpoint", str(files["cls"]), "--npz", str(path)])
        cli_error(capsys, rc, str(path), words)


def test_bad_coloc_sets_are_refused(tmp_path, files, capsys):
    held = C.held_out_set(synthetic_digits(40, 2), 3, 0, 0)
    im, lab, boxes = held["images"], held["labels"], held["boxes"]
    cases = {"no_boxes": ({"images": im, "labels": lab}, "boxes"),
             "nan_boxes": ({"images": im, "labels": lab, "boxes": np.full(boxes.shape, np.nan, np.float32)}, "NaN"),
             "three_boxes": ({"images": im, "labels": lab, "boxes": boxes[:, :3]}, "boxes are"),
             "small_canvas": ({"images": im[:, :42, :42], "labels": lab, "boxes": boxes}, "(N, 84, 84)")}
    for name, (arrays, words) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        rc = evaluate.main(["--checkpoint", str(files["coloc"]), "--npz", str(tmp_path / f"{name}.npz")])
        cli_error(capsys, rc, f"{name}.npz", words)


def test_an_npz_zip_bomb_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_NPZ_BYTES", 4 << 20, raising=False)
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:   # 8 MB of zeros, a few kB on disk
        z.writestr("images.npy", _npy(np.zeros((8, 1024, 1024), np.uint8)))
        z.writestr("labels.npy", _npy(np.zeros(8, np.int64)))
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"bomb\.npz: its arrays would take"):
        data.load_npz(path)


# ----------------------------------------------------------------------------- IDX files
def test_idx_folders_with_bad_labels_or_no_digits_are_refused_by_train(tmp_path, capsys):
    args = ["--task", "rts", "--epochs", "1", "--n-test", "10", "--batch-size", "8", "--no-progress",
            "--out", str(tmp_path / "m.pt")]
    bad = _idx_folder(tmp_path / "labels200", labels=200)
    cli_error(capsys, train.main(args + ["--data-dir", str(bad)]), "labels200", "0–9, found 200")
    empty = _idx_folder(tmp_path / "empty", n_train=0)
    cli_error(capsys, train.main(args + ["--data-dir", str(empty)]), "empty", "no digits")
    assert not (tmp_path / "m.pt").exists()


def test_an_idx_gzip_bomb_is_refused_from_its_header(tmp_path):
    """A header promising 3 GB, followed by 64 MB of zeros (64 kB compressed): refused after
    reading the header, without decompressing the rest (the whole file was read into memory
    before its size was checked)."""
    import tracemalloc

    from stn_explore.experiments.mnist import read_idx

    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000, 28, 28))
        for _ in range(64):
            fh.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataSourceError, match=r"header promises 3,?136,?000,?000 bytes"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"read {peak / 2**20:.0f} MB to refuse it"


def test_the_checked_files_keep_their_contract(files):
    # load_npz hands back int64 labels whatever integer type was stored
    p = files["root"] / "u8.npz"
    np.savez(p, images=files["arrays"]["images"], labels=files["arrays"]["labels"].astype(np.uint8))
    assert data.load_npz(p)[0]["labels"].dtype == np.int64
    save_checkpoint(files["root"] / "again.pt", torch.load(files["cls"], weights_only=True))
    assert load_checkpoint(files["root"] / "again.pt")["epoch"] == 1

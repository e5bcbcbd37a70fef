"""Data for the experiments: MNIST from every source, distorted by the paper's recipes.

Command line (run ``python -m stn_explore.data --help``)::

    python -m stn_explore.data sources                 # which MNIST source would be used
    python -m stn_explore.data download                # fetch the standard files (md5-checked)
    python -m stn_explore.data export --task rts --split test --n 10000 --seed 0 --out rts_test.npz

The ``.npz`` layout is a public contract: ``images`` uint8 ``(N, H, W)`` (``(N, C, H, W)``
for multi-channel tasks), ``labels`` int64 ``(N,)``, ``boxes`` float32 ``(N, 4)`` =
``x0, y0, x1, y1`` in pixels where the task has them, every sampled parameter as
``param_<name>``, and ``meta`` (a JSON string: task, config, split, seed, source — the
digits it was made from, in words — and ``is_sample``, true when those digits are a small
sample of a split, such as the 5,000-digit training sample shipped with stn_explore).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import distortions as D
from .io import atomic_write_bytes
from .mnist import (
    DATASETS,
    SPLITS,
    DataSourceError,
    Digits,
    cache_dir,
    choose_source,
    download_dataset,
    load_digits,
    read_idx,
    write_idx,
)

__all__ = ["Digits", "DataSourceError", "load_digits", "download_dataset", "read_idx", "write_idx",
           "make_task_set", "save_npz", "load_npz", "check_npz", "NPZ_KEYS"]

NPZ_KEYS = ("images", "labels", "boxes", "meta")


def make_task_set(task: str, split: str = "test", n: int = 10000, seed: int = 0, cfg=None,
                  digits: Digits | None = None, **load_kw) -> tuple[dict, dict]:
    """A fixed, seeded set of ``n`` distorted images drawn from one MNIST split only.

    Returns ``(arrays, meta)``; the same arguments give byte-identical arrays.
    """
    task = D.check_task(task)
    cfg = cfg or D.default_config(task)
    digits = digits if digits is not None else load_digits(split, **load_kw)
    arrays = D.make_fixed_set(task, digits.images, digits.labels, n, seed, cfg)
    meta = {"task": task, "config": D.config_to_dict(cfg), "split": split, "seed": seed, "n": n,
            "source": digits.source, "is_sample": digits.is_sample, "format": 1}
    return arrays, meta


def make_coloc_class_set(digits: Digits, split: str, digit: int, noise: int = 0, seed: int = 0,
                         n: int = 0) -> tuple[dict, dict]:
    """Co-localisation images of one digit class: the same images (and boxes) that
    :func:`stn_explore.experiments.colocalisation.held_out_set` gives a run with ``eval_seed=seed`` —
    every digit of the class in ``digits`` once (or the first ``n``). Returns ``(arrays, meta)``."""
    from .colocalisation import coloc_config, held_out_set

    arrays = held_out_set(digits, digit, noise, seed, n)
    meta = {"task": "coloc", "config": D.config_to_dict(coloc_config(noise)), "split": split,
            "seed": seed, "n": int(len(arrays["images"])), "digit": int(digit),
            "source": digits.source, "is_sample": digits.is_sample, "format": 1}
    return arrays, meta


def save_npz(path: str | os.PathLike, arrays: dict, meta: dict) -> Path:
    """Write arrays + meta to ``path`` atomically (temporary file, then rename)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    return atomic_write_bytes(path, buf.getvalue())


#: an archive whose arrays would take more memory than this once decompressed is refused
#: before anything is read (a zip bomb); the largest exported set, 10,000 cluttered 60×60
#: images, is 36 MB
MAX_NPZ_BYTES = 2 << 30


def load_npz(path: str | os.PathLike) -> tuple[dict, dict]:
    """Read a file written by :func:`save_npz` (or any npz with ``images`` and ``labels``).

    Raises ``ValueError`` naming the file and the problem for anything else: not an npz (zip)
    archive, damaged or truncated, an array of Python objects (never unpickled:
    ``allow_pickle=False``), arrays that would decompress beyond :data:`MAX_NPZ_BYTES`, a
    ``meta`` that is not a JSON object, or arrays that break the contract (:func:`check_npz`).
    ``labels`` come back as int64.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    arrays, key = {}, None
    with fh:   # opened here: np.load leaks its own handle when the zip turns out damaged
        if fh.read(4)[:2] != b"PK":
            raise ValueError(f"{path}: not an .npz file (a zip archive of .npy arrays, as written by "
                             f"python -m stn_explore.data export)")
        fh.seek(0)
        try:
            with np.load(fh, allow_pickle=False) as z:
                declared = sum(info.file_size for info in z.zip.infolist())
                if declared > MAX_NPZ_BYTES:
                    raise _NpzError(f"{path}: its arrays would take {declared / 2**30:.1f} GiB once "
                                    f"decompressed (limit {MAX_NPZ_BYTES / 2**30:.0f} GiB)")
                for key in z.files:
                    arrays[key] = z[key]
        except _NpzError:
            raise
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise ValueError(f"{path}: array {key!r} holds Python objects (pickled data), which are "
                                 f"never loaded") from None
            raise ValueError(f"{path}: damaged array {key!r} ({exc})") from None
        except Exception as exc:  # noqa: BLE001 — a damaged zip makes zipfile/zlib/numpy raise many types
            where = f" in array {key!r}" if key else ""
            raise ValueError(f"{path}: damaged or truncated .npz file{where} ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]})") from None
    meta = arrays.pop("meta", None)
    if meta is None:
        meta = {}
    else:
        try:
            meta = json.loads(str(meta.item())) if meta.ndim == 0 and meta.dtype.kind == "U" else None
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: 'meta' is not a JSON object (the npz contract: a JSON string)")
    return check_npz(arrays, path), meta


class _NpzError(ValueError):
    pass


def check_npz(arrays: dict, path="the arrays") -> dict:
    """The npz contract, checked: ``images`` uint8 ``(N, H, W)`` or ``(N, C, H, W)`` with N ≥ 1,
    ``labels`` integers ≥ 0 ``(N,)``, ``boxes`` (where present) finite floats ``(N, 4)``.
    Returns ``arrays`` with the labels as int64; raises ``ValueError`` naming ``path``.
    Whether the labels and sizes suit a model is for its caller to check."""
    for key in ("images", "labels"):
        if key not in arrays:
            raise ValueError(f"{path}: missing array {key!r} (the npz contract needs images and labels)")
    images, labels = arrays["images"], arrays["labels"]
    if images.dtype != np.uint8:
        raise ValueError(f"{path}: images are {images.dtype}, the npz contract says uint8 (0–255)")
    if images.ndim not in (3, 4) or 0 in images.shape[1:]:
        raise ValueError(f"{path}: images have shape {images.shape}; expected (N, H, W) or (N, C, H, W)")
    if len(images) == 0:
        raise ValueError(f"{path}: holds no images")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: labels are {labels.dtype}, expected integers")
    if labels.shape != (len(images),):
        raise ValueError(f"{path}: labels have shape {labels.shape} for {len(images)} images; expected "
                         f"({len(images)},)")
    if labels.min() < 0:
        raise ValueError(f"{path}: labels must be ≥ 0, found {labels.min()}")
    if "boxes" in arrays:
        boxes = arrays["boxes"]
        if boxes.dtype.kind != "f" or boxes.shape != (len(images), 4):
            raise ValueError(f"{path}: boxes are {boxes.dtype} {boxes.shape}; expected floats ({len(images)}, 4)")
        if not np.isfinite(boxes).all():
            raise ValueError(f"{path}: boxes hold NaN or infinite values")
    return {**arrays, "labels": labels.astype(np.int64)}


# ----------------------------------------------------------------------------- CLI
def source_order(dataset: str = "mnist") -> str:
    """The order in which :func:`load_digits` tries the sources, in words (for the CLI)."""
    return ("Sources, tried in this order (the first that applies is used):\n"
            "  1. a folder of IDX files named by --data-dir or STN_DATA_DIR (an error if the files "
            "are not there: never a silent fallback);\n"
            f"  2. files downloaded earlier into {cache_dir(dataset)} (set STN_CACHE_DIR to move it);\n"
            "  3. a download of the standard files with --download (md5-checked, with a progress "
            "bar, renamed into place only once verified);\n"
            "  4. the data shipped with stn_explore (MNIST only): for 'test' the complete, original "
            "MNIST test split (10,000 held-out digits), for 'train' a 5,000-digit training sample "
            "(500 per class, disjoint from the test split).")


def _add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None,
                   help="folder with the standard IDX files (default: $STN_DATA_DIR, then the "
                        "download cache, then the MNIST data shipped with stn_explore)")
    p.add_argument("--dataset", default="mnist", choices=tuple(DATASETS),
                   help="digit dataset in IDX format (default: mnist)")
    p.add_argument("--download", action="store_true",
                   help="download the standard files if no local copy exists (md5-checked)")
    p.add_argument("--mirror", action="append", default=None,
                   help="base URL to download from instead of the default mirrors (repeatable)")


def _load(args, split: str) -> Digits:
    return load_digits(split, root=args.data_dir, dataset=args.dataset, download=args.download,
                       mirrors=args.mirror)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m stn_explore.data",
        description="MNIST sources and the paper's distorted datasets.\n\n"
                    + source_order() + "\n\nTasks: "
                    + ", ".join(f"{t} ({D.TASK_TITLES[t]})" for t in D.TASKS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sources", help="show which source each split loads from")
    _add_source_args(p)
    p = sub.add_parser("download", help="download the standard files into the cache (or --data-dir)")
    p.add_argument("--data-dir", default=None, help="where to put the files (default: the cache folder)")
    p.add_argument("--dataset", default="mnist", choices=tuple(DATASETS))
    p.add_argument("--mirror", action="append", default=None, help="base URL (repeatable)")
    p = sub.add_parser("export", help="write a fixed, seeded distorted set to an .npz file")
    p.add_argument("--task", required=True, type=str.lower, choices=D.TASKS)
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--n", type=int, default=10000, help="number of images (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=int, default=None, metavar="K",
                   help="clutter patches for coloc/cluttered (coloc default 0 = clean; 16 = noisy)")
    p.add_argument("--digit", type=int, default=None, choices=range(10), metavar="D",
                   help="coloc only: one digit class, exactly the held-out images a co-localisation "
                        "run with eval seed --seed is measured on (at most --n of them)")
    p.add_argument("--out", required=True, help="output .npz path")
    _add_source_args(p)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sources":
            print(source_order(args.dataset))
            for split in SPLITS:
                why = choose_source(split, args.data_dir, args.dataset, args.download).why
                d = _load(args, split)
                print(f"{split:5s}: {len(d):6,d} digits, {d.source}\n       why: {why}")
        elif args.command == "download":
            folder = download_dataset(args.dataset, args.data_dir, mirrors=args.mirror)
            print(f"{args.dataset} files verified in {folder}")
        elif args.command == "export":
            if args.n < 1:
                raise ValueError("--n must be >= 1")
            cfg = D.default_config(args.task)
            if args.noise is not None:
                if args.task not in ("coloc", "cluttered"):
                    raise ValueError("--noise applies to the coloc and cluttered tasks only")
                cfg = D.with_overrides(cfg, n_clutter=args.noise)
            if args.digit is not None and args.task != "coloc":
                raise ValueError("--digit applies to the coloc task only")
            t0 = time.perf_counter()
            digits = _load(args, args.split)
            print(f"reading {len(digits):,} digits: {digits.source}", file=sys.stderr)
            if args.digit is not None:
                arrays, meta = make_coloc_class_set(digits, args.split, args.digit, args.noise or 0,
                                                    args.seed, args.n)
            else:
                arrays, meta = make_task_set(args.task, args.split, args.n, args.seed, cfg, digits)
            save_npz(args.out, arrays, meta)
            print(f"wrote {args.out}: images {arrays['images'].shape} in "
                  f"{time.perf_counter() - t0:.1f} s, made from the {digits.source}")
    except (DataSourceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

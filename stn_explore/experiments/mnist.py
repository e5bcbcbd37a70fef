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
  4. the offline default, the MNIST data shipped inside this package (``mnist_data/``,
     md5-checked when loaded; provenance and licence in ``mnist_data/README.md``):
     ``"test"`` is the complete, original MNIST test split (10,000 held-out digits, the same
     digits as the standard t10k files), ``"train"`` a 5,000-digit sample of the training
     split (500 per class, disjoint from the test split; ``is_sample=True``).

:func:`choose_source` tells which source a split would come from, and why.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .io import atomic_write_bytes, atomic_writer

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

#: Number of digits in each split of the standard files (MNIST and Fashion-MNIST alike).
SPLIT_SIZES = {"train": 60000, "test": 10000}

#: The MNIST data shipped inside the package (provenance, licence, md5s: ``mnist_data/README.md``).
SHIPPED_DIR = Path(__file__).resolve().with_name("mnist_data")
SHIPPED_TEST_SOURCE = "MNIST test split, 10,000 held-out digits (shipped with stn_explore)"
SHIPPED_TRAIN_SOURCE = "MNIST training sample (5,000 digits shipped with stn_explore)"
#: Per split: the shipped gzip IDX files (images, labels) with the md5 of each file as shipped.
SHIPPED = {
    "test": {"files": {"t10k-images-idx3-ubyte.gz": "4bec579dddc777a073fb1950567b8fe4",
                       "t10k-labels-idx1-ubyte.gz": "1faefaf4d5c525d57b71ff59bd22c34f"},
             "source": SHIPPED_TEST_SOURCE, "is_sample": False},
    "train": {"files": {"train5k-images-idx3-ubyte.gz": "73cd860fb6addc00de7bd800819990c5",
                        "train5k-labels-idx1-ubyte.gz": "6190921468e1a766c450e6d78d23d636"},
              "source": SHIPPED_TRAIN_SOURCE, "is_sample": True},
}
#: :meth:`Digits.content_md5` of the complete, original MNIST test split, from any source: the
#: md5s of the uncompressed original ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte``.
MNIST_TEST_CONTENT_MD5 = {"images": "2646ac647ad5339dbf082846283269ea",
                          "labels": "27ae3e4e09519cfbb04c329615203637"}


class DataSourceError(RuntimeError):
    """No usable data source, or a source that is broken (bad checksum, bad file)."""


@dataclass(frozen=True)
class Digits:
    """Images ``uint8 (N, 28, 28)``, labels ``int64 (N,)`` and where they came from.

    ``source`` names the digits for people (e.g. :data:`SHIPPED_TEST_SOURCE`, or "full MNIST
    test split (10,000 digits) from local IDX files in <folder>"); ``is_sample`` is True when
    they are a small sample of a split (the shipped 5,000-digit training sample).
    """

    images: np.ndarray
    labels: np.ndarray
    source: str
    is_sample: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    def content_md5(self) -> dict[str, str]:
        """md5 of the images and of the labels, each as an uncompressed IDX file: the same for
        the same digits in the same order from any source (a folder, a download, the shipped
        files); :data:`MNIST_TEST_CONTENT_MD5` for the original MNIST test split."""
        return {"images": _idx_md5(self.images), "labels": _idx_md5(self.labels.astype(np.uint8))}


def _idx_md5(array: np.ndarray) -> str:
    """md5 of ``array`` (uint8) encoded as an uncompressed IDX file."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    digest = hashlib.md5(bytes([0, 0, 0x08, array.ndim]), usedforsecurity=False)
    digest.update(struct.pack(f">{array.ndim}I", *array.shape))
    digest.update(array.data)
    return digest.hexdigest()


def split_label(split: str, n: int, dataset: str = "mnist") -> str:
    """Words for ``n`` digits of a split: "full MNIST test split (10,000 digits)", or
    "10,000 digits of the MNIST training split" when it is not the standard size."""
    name = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(dataset, dataset)
    words = "training" if split == "train" else split
    if n == SPLIT_SIZES[split]:
        return f"full {name} {words} split ({n:,} digits)"
    return f"{n:,} digits of the {name} {words} split"


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
#: an IDX file whose header promises more data than this is refused before it is read (the
#: largest standard file, MNIST's 60,000 training images, holds 47 MB)
MAX_IDX_BYTES = 1 << 30


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a ``uint8`` array.

    Raises :class:`DataSourceError` on a truncated or malformed file, or one whose header
    promises more than :data:`MAX_IDX_BYTES` (nothing beyond the header is read then, so a
    small gzip file cannot make it fill the memory).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            magic = fh.read(4)
            if len(magic) < 4 or magic[:3] != b"\x00\x00\x08":
                raise DataSourceError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
            ndim = magic[3]
            dims = fh.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataSourceError(f"{path}: truncated IDX header")
            shape = struct.unpack(f">{ndim}I", dims)
            expected = int(np.prod(shape, dtype=np.int64))
            if expected > MAX_IDX_BYTES:
                raise DataSourceError(f"{path}: IDX header promises {expected:,} bytes for shape {shape}, more "
                                      f"than the {MAX_IDX_BYTES:,} this reader accepts")
            data = fh.read(expected + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataSourceError(f"{path}: cannot read ({exc})") from exc
    if len(data) != expected:
        raise DataSourceError(f"{path}: IDX header promises {expected} bytes of data for shape "
                              f"{shape}, file has {len(data) if len(data) <= expected else 'more'}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()


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


def _folder_files(folder: Path, split: str, dataset: str) -> tuple[Path, Path] | None:
    """Paths of the images and labels files of ``split`` in ``folder``, or None if either is missing."""
    sub = DATASETS[dataset]["folder"]
    paths = tuple(_find_file(folder, name, sub) for name in file_names(split))
    return None if None in paths else paths


def _load_folder(folder: Path, split: str, dataset: str) -> tuple[np.ndarray, np.ndarray] | None:
    paths = _folder_files(folder, split, dataset)
    if paths is None:
        return None
    return _checked_pair(folder, read_idx(paths[0]), read_idx(paths[1]))


def _checked_pair(where, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels as int64)`` after checking shapes (N, 28, 28) and (N,)."""
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise DataSourceError(f"{where}: unexpected shapes images {images.shape}, labels {labels.shape}")
    if len(images) != len(labels):
        raise DataSourceError(f"{where}: {len(images)} images but {len(labels)} labels")
    if not len(labels):
        raise DataSourceError(f"{where}: holds no digits")
    if labels.max() > 9:
        raise DataSourceError(f"{where}: labels must be digits 0–9, found {labels.max()}")
    return images, labels.astype(np.int64)


# ----------------------------------------------------------------------------- download
def download_file(url: str, dest: Path, md5: str | None, *, timeout: float = 60.0,
                  progress: bool = True) -> Path:
    """Download ``url`` to ``dest``: streamed into a temporary file beside it, md5-checked,
    then renamed. Nothing is left at ``dest`` (or beside it) unless the file verified.

    Raises :class:`DataSourceError` on a network error, a short transfer or a bad checksum.
    """
    from tqdm.auto import tqdm

    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        # an error inside the block discards the temporary file; dest appears only if verified
        with atomic_writer(dest) as out, urllib.request.urlopen(url, timeout=timeout) as resp:
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
        return dest
    except (urllib.error.URLError, OSError, EOFError) as exc:
        # http.client.IncompleteRead is not an OSError; handled below with the same message
        raise DataSourceError(f"{url}: download failed ({exc})") from exc
    except Exception as exc:
        if isinstance(exc, DataSourceError):
            raise
        raise DataSourceError(f"{url}: download failed ({exc!r})") from exc


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


# ----------------------------------------------------------------------------- shipped data
def load_shipped(split: str, folder: str | os.PathLike = SHIPPED_DIR) -> Digits:
    """The MNIST data shipped with stn_explore: ``"test"`` = the complete, original MNIST test
    split (10,000 digits), ``"train"`` = a 5,000-digit training sample (500 per class).

    Each file's md5 is checked against :data:`SHIPPED` the first time it is read in a process
    (``folder`` exists for tests: a copy of the shipped folder). Raises
    :class:`DataSourceError` naming the file if one is missing or its md5 differs.
    """
    file_names(split)  # validates split
    images, labels = _read_shipped(str(Path(folder)), split)
    spec = SHIPPED[split]
    return Digits(images.copy(), labels.copy(), spec["source"], is_sample=spec["is_sample"])


@lru_cache(maxsize=4)
def _read_shipped(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    paths = []
    for name, md5 in SHIPPED[split]["files"].items():
        path = Path(folder) / name
        if not path.is_file():
            raise DataSourceError(f"{path} is missing: the MNIST data shipped with stn_explore is "
                                  "incomplete; reinstall stn_explore, or set STN_DATA_DIR to a folder "
                                  "of MNIST IDX files")
        got = _md5(path)
        if got != md5:
            raise DataSourceError(f"{path}: md5 {got} does not match the shipped file's {md5} — the "
                                  "file is damaged or was replaced; reinstall stn_explore, or set "
                                  "STN_DATA_DIR to a folder of MNIST IDX files")
        paths.append(path)
    return _checked_pair(paths[0], read_idx(paths[0]), read_idx(paths[1]))


# ----------------------------------------------------------------------------- choosing a source
@dataclass(frozen=True)
class SourceChoice:
    """Where :func:`load_digits` reads a split from: ``kind`` is ``"folder"`` (named by
    ``root=``/``--data-dir`` or ``STN_DATA_DIR``), ``"cache"`` (downloaded earlier),
    ``"download"`` or ``"shipped"``; ``why`` says why this source, in words."""

    kind: str
    folder: Path
    why: str


def choose_source(split: str = "train", root: str | os.PathLike | None = None,
                  dataset: str = "mnist", download: bool = False,
                  allow_shipped: bool = True) -> SourceChoice:
    """The source :func:`load_digits` uses for ``split`` with these arguments (nothing is read
    or downloaded). Raises :class:`DataSourceError` if there is none."""
    file_names(split)
    spec = _spec(dataset)
    if root is not None:
        return SourceChoice("folder", Path(root).expanduser(), "the folder named by --data-dir (root=)")
    if os.environ.get("STN_DATA_DIR"):
        return SourceChoice("folder", Path(os.environ["STN_DATA_DIR"]).expanduser(),
                            "the folder named by STN_DATA_DIR")
    cached = cache_dir(dataset)
    if _folder_files(cached, split, dataset) is not None:
        return SourceChoice("cache", cached, f"no folder named (--data-dir, STN_DATA_DIR); files "
                                             f"downloaded earlier are in {cached}")
    if download:
        return SourceChoice("download", cached, f"no folder named and nothing downloaded in {cached}; "
                                                "--download fetches the standard files (md5-checked)")
    if dataset == "mnist" and allow_shipped:
        what = "test split" if split == "test" else "training sample"
        return SourceChoice("shipped", SHIPPED_DIR,
                            f"no folder named (--data-dir, STN_DATA_DIR), nothing downloaded in {cached}, "
                            f"no --download: the {what} shipped with stn_explore")
    raise DataSourceError(f"no {dataset} data found: pass root=/path/to/idx/files, set "
                          f"STN_DATA_DIR, or download it (download=True / --download; "
                          f"{spec['mirrors'][0]})")


def folder_of(source: str) -> Path | None:
    """The folder a :attr:`Digits.source` string names (local or downloaded IDX files), or
    None (the shipped data, or a string in another form)."""
    m = re.search(r"(?:local IDX files|downloaded files) in (.+)$", source)
    return Path(m.group(1)) if m else None


# ----------------------------------------------------------------------------- entry point
def load_digits(split: str = "train", root: str | os.PathLike | None = None,
                dataset: str = "mnist", download: bool = False,
                mirrors: Sequence[str] | None = None, allow_shipped: bool = True) -> Digits:
    """Load a split of MNIST (or Fashion-MNIST) from the first available source
    (:func:`choose_source`; the order is in this module's docstring).

    Args:
        split: ``"train"`` or ``"test"``.
        root: folder of IDX files; default ``$STN_DATA_DIR``. If given (either way) and the
            files are not there, raises :class:`DataSourceError` (no silent fallback).
        dataset: ``"mnist"`` or ``"fashion-mnist"`` (same IDX layout).
        download: fetch the standard files into the cache folder if no local copy exists.
        allow_shipped: fall back to the MNIST data shipped with stn_explore (:func:`load_shipped`).
    Returns:
        :class:`Digits` with ``images uint8 (N, 28, 28)``, ``labels int64 (N,)``, ``source``.
    """
    choice = choose_source(split, root, dataset, download, allow_shipped)
    if choice.kind == "shipped":
        log.info("no local MNIST files: using %s", SHIPPED[split]["source"])
        return load_shipped(split)
    if choice.kind == "download":
        download_dataset(dataset, choice.folder, mirrors=mirrors)
    found = _load_folder(choice.folder, split, dataset)
    if found is None:
        names = ", ".join(n + "[.gz]" for n in file_names(split))
        raise DataSourceError(f"no {dataset} {split} files ({names}) in {choice.folder}, {choice.why}; "
                              "fix the path or unset it")
    how = "local IDX files" if choice.kind == "folder" else "downloaded files"
    return Digits(*found, source=f"{split_label(split, len(found[1]), dataset)} from {how} in {choice.folder}")

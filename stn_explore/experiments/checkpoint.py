"""Self-describing checkpoints: only tensors and plain values, written atomically, loaded
with ``torch.load(..., weights_only=True)``.

A checkpoint is a dict::

    format        1
    kind          "classifier" | "colocalisation"
    version       stn_explore version that wrote it
    model_args    plain dict → models.build_model(model_args)
    state_dict    the model's tensors
    optimizer     the optimiser's state (for exact --resume); absent once compacted
    compact       only in compacted checkpoints (see :func:`compact`)
    train_config  plain dict of the training options
    data          task, distortion config, seeds, data source, sample flag, sizes
    history       list of per-epoch dicts (loss, train/test error, lr, seconds)
    epoch         epochs completed
    test_error    % error on the fixed test set after the last epoch
"""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from .io import atomic_writer

FORMAT = 1


class CheckpointError(ValueError):
    """A file that is not a loadable stn_explore checkpoint."""


def save_checkpoint(path: str | os.PathLike, ckpt: dict) -> Path:
    """``torch.save`` through :func:`~stn_explore.experiments.io.atomic_writer` (a synced
    temporary file beside ``path``, then an atomic rename): a crash mid-write never leaves a
    truncated checkpoint behind."""
    path = Path(path)
    with atomic_writer(path) as fh:
        torch.save(ckpt, fh)
    return path


def cpu_state(obj):
    """``obj`` (a state dict, an optimiser's, nested dicts and lists) with every tensor on the
    CPU, so a checkpoint written on a GPU loads anywhere; CPU tensors are kept as they are."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: cpu_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_state(v) for v in obj)
    return obj


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code can run).

    Raises :class:`CheckpointError` with a clear message if the file is missing, holds
    pickled Python objects, or lacks the keys of the format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path}: it contains pickled Python objects, which "
            f"weights_only=True does not execute (stn_explore checkpoints hold only tensors and "
            f"plain values). Details: {str(exc).splitlines()[0]}") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(ckpt, dict) or "model_args" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not an stn_explore checkpoint (no model_args/state_dict)")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format {ckpt.get('format')!r}")
    return ckpt


def is_compact(ckpt: dict) -> bool:
    return bool(ckpt.get("compact"))


def compact(ckpt: dict) -> dict:
    """A finished run made small for shipping: the optimiser state is dropped and floating
    point weights are stored as float16 (they load into float32 models unchanged). Roughly
    a quarter of the size. The caller must re-measure ``test_error`` on the rounded weights;
    the float32 error is kept in ``compact["test_error_float32"]``. A compacted run can still
    be resumed, with the momentum restarting from zero."""
    out = dict(ckpt)
    out.pop("optimizer", None)
    out["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    out["compact"] = {"dtype": "float16", "test_error_float32": ckpt.get("test_error")}
    return out


@contextlib.contextmanager
def training_lock(path: str | os.PathLike):
    """Hold ``<path>.lock`` while a run writes ``path``: a second process (or thread) training
    the same file is refused with :class:`CheckpointError`, as two writers would interleave
    epochs. Yields the lock file's path.

    The lock is the operating system's lock on the open lock file (``filelock``: ``flock`` on
    POSIX, ``LockFileEx`` on Windows), not the file's existence: it is released when its
    holder exits, however it exits (a killed run leaves no stale lock), and no pid is read, so
    none can be misread or reused. The empty lock file may stay behind after the run; it
    holds nothing (git ignores ``*.lock``).
    """
    lock_path = Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise CheckpointError(f"{path} is being trained by another process, which holds the lock "
                              f"{lock_path}; wait for it to finish or stop it") from None
    try:
        yield lock_path
    finally:
        lock.release()


def default_checkpoint_dir() -> Path:
    """Where checkpoints are read and written when no folder or file is given:

    1. ``$STN_CHECKPOINT_DIR`` if set;
    2. else, running from a source checkout, its ``checkpoints/`` folder (beside the
       ``stn_explore`` package), whatever the current directory;
    3. else ``./checkpoints`` (an installed package has no folder of its own to write to).

    Read at every call, so a change of the variable takes effect at once.
    """
    env = os.environ.get("STN_CHECKPOINT_DIR")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "checkpoints"  # stn_explore/experiments/ → root
    return checkout if checkout.is_dir() else Path("checkpoints")

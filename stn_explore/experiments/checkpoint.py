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
import tempfile
from pathlib import Path

import torch

from .io import default_mode

FORMAT = 1


class CheckpointError(ValueError):
    """A file that is not a loadable stn_explore checkpoint."""


def save_checkpoint(path: str | os.PathLike, ckpt: dict) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then an atomic rename: a crash
    mid-write never leaves a truncated checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def training_lock(path: str | os.PathLike):
    """Hold ``<path>.lock`` while a run writes ``path``: a second process training the same
    file is refused with a clear message (two writers would interleave epochs). A lock left
    by a process that no longer exists is taken over."""
    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                raise CheckpointError(f"{path} is being trained by another process (pid {pid}); "
                                      f"wait for it or stop it (its lock: {lock})") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    else:
        raise CheckpointError(f"cannot take the lock {lock}")
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)

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
import glob
import os
import pickle
from pathlib import Path

import numpy as np
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


KINDS = ("classifier", "colocalisation")


def load_checkpoint(path: str | os.PathLike, map_location="cpu", kind: str | None = None) -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code can run).

    Raises :class:`CheckpointError`, naming the file and the problem, if the file is missing,
    damaged or truncated, holds pickled Python objects, lacks the keys of the format, or — for
    a checkpoint that records its ``kind`` — does not describe a model of this version (see
    :func:`check_checkpoint`: model arguments, weights of another architecture, non-finite
    weights). With ``kind``, a checkpoint of another kind is refused too (a file without a
    recorded kind counts as a classifier, as the first checkpoints were), and so is one that
    lacks what a whole training run holds (``check_checkpoint(whole_run=True)``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise CheckpointError(f"cannot read checkpoint {path}: the file is damaged or truncated "
                                  f"({_one_line(exc)})") from None
        raise CheckpointError(
            f"refusing to load {path}: it contains pickled Python objects, which "
            f"weights_only=True does not execute (stn_explore checkpoints hold only tensors and "
            f"plain values). Details: {_unpickler_reason(exc)}") from None
    except Exception as exc:  # noqa: BLE001 — a damaged file makes the deserialiser raise almost anything
        raise CheckpointError(f"cannot read checkpoint {path}: the file is damaged, truncated or not a "
                              f"checkpoint ({type(exc).__name__}: {_one_line(exc)})") from None
    if not isinstance(ckpt, dict) or "model_args" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not an stn_explore checkpoint (no model_args/state_dict)")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format {ckpt.get('format')!r}")
    if "kind" in ckpt or kind is not None:
        recorded = ckpt.get("kind", "classifier")
        if recorded not in KINDS:
            raise CheckpointError(f"{path}: unknown checkpoint kind {recorded!r} (expected one of {KINDS})")
        if kind is not None and recorded != kind:
            raise CheckpointError(f"{path} is a {recorded} checkpoint, not a {kind} one")
        check_checkpoint(ckpt, path, whole_run=kind is not None)
    return ckpt


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _unpickler_reason(exc: BaseException) -> str:
    """The line of torch's weights-only refusal that says what was refused (its other lines
    suggest loading the file with ``weights_only=False``, which would run the code)."""
    for line in str(exc).splitlines():
        if "Unsupported" in line or "WeightsUnpickler error" in line:
            return _one_line(line.strip().removeprefix("WeightsUnpickler error: ").split(". Please use")[0])
    return "the unpickler refused an object"


#: what each kind of checkpoint must hold beyond model_args/state_dict (key → type)
_REQUIRED = {
    "classifier": {"train_config": dict, "data": dict, "epoch": int},
    "colocalisation": {"config": dict, "data": dict, "recording": dict, "iteration": int},
}
#: … and what a whole training run holds, required when a caller asks for its kind (``--resume``,
#: ``--compact``, evaluation on the run's own test set)
_RUN = {"classifier": {"history": list}, "colocalisation": {}}
#: optional keys: checked when present
_OPTIONAL = {"history": list, "optimizer": dict, "final": (dict, type(None)), "attempts": list}
RUN_DATA = ("task", "config", "n_test", "test_seed")
_RECORDING = ("iteration", "loss", "accuracy", "mean_iou", "panel_quads", "panel_images", "panel_boxes")


def check_checkpoint(ckpt: dict, path, whole_run: bool = False) -> None:
    """Refuse (:class:`CheckpointError` naming ``path``) a checkpoint dict that this version
    cannot use: an unknown kind, a missing or mistyped key, model arguments that build no model,
    weights of another architecture, non-finite weights. With ``whole_run``, also what only a
    whole training run holds (a classifier's history and the recipe of its test set)."""
    kind = ckpt.get("kind", "classifier")
    if kind not in KINDS:
        raise CheckpointError(f"{path}: unknown checkpoint kind {kind!r} (expected one of {KINDS})")
    need = {**_REQUIRED[kind], **(_RUN[kind] if whole_run else {})}
    for key, typ in [*need.items(), *((k, t) for k, t in _OPTIONAL.items() if k in ckpt and k not in need)]:
        if not isinstance(ckpt.get(key), typ) or isinstance(ckpt.get(key), bool):
            raise CheckpointError(f"{path}: a {kind} checkpoint needs {key!r} of another type, "
                                  f"found {type(ckpt.get(key)).__name__}")
    if not isinstance(ckpt["model_args"], dict):
        raise CheckpointError(f"{path}: model_args is a {type(ckpt['model_args']).__name__}, not a dict")
    try:
        if kind == "classifier":
            from .models import build_model

            missing = [k for k in RUN_DATA if k not in ckpt["data"]]
            if whole_run and missing:
                raise CheckpointError(f"{path}: its 'data' lacks {missing}")
            try:  # shapes only: on the meta device nothing is allocated or initialised
                with torch.device("meta"):
                    model = build_model(ckpt["model_args"])
            except (NotImplementedError, RuntimeError):
                model = build_model(ckpt["model_args"])
        else:
            from .colocalisation.curriculum import ColocConfig
            from .colocalisation.model import ColocArgs, ColocNet

            ColocConfig(**ckpt["config"]).check()
            rec = ckpt["recording"]
            if any(not isinstance(rec.get(k), torch.Tensor) for k in _RECORDING):
                raise CheckpointError(f"{path}: its recording lacks some of {_RECORDING}")
            rng = ckpt.get("rng")
            if rng is not None and (not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8
                                    or rng.numel() != torch.Generator().get_state().numel()):
                raise CheckpointError(f"{path}: 'rng' is not the state of a torch random generator")
            pending = ckpt.get("pending_losses", [])
            if not isinstance(pending, list) or not all(
                    isinstance(p, list) and all(isinstance(x, float) for x in p) for p in pending):
                raise CheckpointError(f"{path}: 'pending_losses' is not a list of lists of floats")
            model = ColocNet(ColocArgs.from_dict(ckpt["model_args"]))
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path}: its {kind} settings describe no model of this version "
                              f"({type(exc).__name__}: {_one_line(exc)})") from None
    check_weights(model, ckpt["state_dict"], path)


def check_weights(model: torch.nn.Module, state: dict, path="the checkpoint") -> None:
    """Refuse (:class:`CheckpointError`) weights ``state`` that do not fit ``model`` — missing
    or extra tensors, other shapes: a checkpoint of another architecture — or that are not
    finite."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path}: state_dict is not a dict of named tensors")
    want = model.state_dict()
    missing, extra = sorted(want.keys() - state.keys()), sorted(state.keys() - want.keys())
    if missing or extra:
        raise CheckpointError(f"{path}: its weights belong to another architecture than its model_args "
                              f"describe (missing {_few(missing)}, unexpected {_few(extra)})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(want[k].shape):
            raise CheckpointError(f"{path}: its weights belong to another architecture than its model_args "
                                  f"describe ({k} is {tuple(v.shape)}, the model has {tuple(want[k].shape)})")
        if v.is_floating_point() and not _finite(v):
            raise CheckpointError(f"{path}: weight {k} holds NaN or infinite values")


def _finite(t: torch.Tensor) -> bool:
    """Whether every value of a floating-point tensor is finite (through numpy: on a busy CPU
    torch's threaded isfinite is ~15× slower for the many small tensors of a checkpoint)."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return bool(np.isfinite(t.numpy()).all())


def _few(keys: list) -> str:
    return "none" if not keys else ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


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

    Once the lock is taken, the temporary files of ``path`` that an earlier holder killed in
    the middle of a save left behind (``<name>.<random>.part``, see
    :func:`~stn_explore.experiments.io.atomic_writer`) are removed: only a holder of this
    lock writes ``path``, so none of them can still be in use.
    """
    path = Path(path)
    lock_path = Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise CheckpointError(f"{path} is being trained by another process, which holds the lock "
                              f"{lock_path}; wait for it to finish or stop it") from None
    try:
        for stale in path.parent.glob(glob.escape(path.name) + ".*.part"):
            stale.unlink(missing_ok=True)
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

"""Data-parallel training across processes with PyTorch's own engine: ``torch.distributed``
and :class:`~torch.nn.parallel.DistributedDataParallel`, launched by ``torchrun``.

``torchrun`` starts one process (a *rank*) per device and tells each where it stands in the
environment variables ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (its rank on this machine);
:func:`session` reads them, joins the process group — ``gloo`` on CPUs, ``nccl`` on CUDA
GPUs — and leaves it when the run ends, however it ends. Started without ``torchrun`` (or
with one process) a session is the plain single-process run: no group, no wrapper, nothing
changes.

The conventions of the training CLIs under ``torchrun``:

* rank 0 alone writes: checkpoints, log lines, progress bars; it alone holds the training
  lock of the output file;
* a step that one rank can fail while the others succeed (taking the lock, reading the
  checkpoint to resume, loading or downloading data) is *agreed*: every rank learns of the
  failure and raises the same error (:meth:`Context.check`), so no rank waits for ever on
  one that has given up; the CLIs then exit with status 2 and ``torchrun`` with non-zero;
* data that only one copy should fetch is fetched by local rank 0 of each machine first,
  while the others wait (:meth:`Context.local_first`), then read by the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A ``--device`` that this machine cannot give (the CLIs exit with status 2)."""


def env_ranks() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment; ``(0, 1, 0)`` without it."""
    def get(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            raise DeviceError(f"environment variable {name}={os.environ[name]!r} is not an integer") from None

    return get("RANK", 0), get("WORLD_SIZE", 1), get("LOCAL_RANK", 0)


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → the CUDA device of this local rank when torch sees one, else the CPU;
    ``cuda`` without a CUDA device raises :class:`DeviceError`."""
    if name not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise DeviceError(f"--device cuda: torch sees no CUDA device (torch {torch.__version__}, {build}); "
                          "use --device cpu, or --device auto to take a GPU only when there is one")
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise DeviceError(f"LOCAL_RANK {local_rank} but this machine has {n} CUDA device(s): start at most "
                          f"{n} processes per machine (torchrun --nproc_per_node {n})")
    return torch.device("cuda", local_rank)


def _portable(err: BaseException | None) -> BaseException | None:
    """``err`` if it survives pickling (to travel to the other ranks), else a RuntimeError
    with its message."""
    if err is None:
        return None
    try:
        return pickle.loads(pickle.dumps(err))
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


@dataclass
class Context:
    """Where this process stands: its ``rank`` of ``world_size``, its ``local_rank`` on this
    machine and its ``device``. The default is the single process on the CPU, for which
    every method below is the plain, non-collective operation."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, values) -> list[float]:
        """Element-wise sum of a list of numbers over the ranks (float64)."""
        values = [float(v) for v in values]
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any."""
        return bool(self.sum([bool(flag)])[0]) if self.distributed else bool(flag)

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (pickled; for small things: configs, a checkpoint)."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list | None:
        """Every rank's ``obj``, in rank order, on rank 0 (None on the others)."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    # ------------------------------------------------------------------ agreement
    def check(self, err: BaseException | None = None) -> None:
        """Collective: if any rank passes an error, every rank raises the error of the lowest
        such rank (the failing rank its own, the others a copy); ``err.stn_rank`` names the
        rank it came from."""
        if not self.distributed:
            if err is not None:
                raise err
            return
        errs = [None] * self.world_size
        dist.all_gather_object(errs, _portable(err))
        for r, e in enumerate(errs):
            if e is not None:
                e = err if r == self.rank else e
                e.stn_rank = r
                raise e

    def agreed(self, exc: BaseException) -> BaseException:
        """``exc``, marked as raised by every rank alike (so only rank 0 reports it)."""
        if self.distributed:
            exc.stn_rank = 0
        return exc

    def require_same(self, value, message: str) -> None:
        """Collective: raise ``ValueError(message)`` on every rank unless all ranks pass an
        equal ``value`` (e.g. the digest of the data they read)."""
        if not self.distributed:
            return
        values = self.gather(value)
        self.check(ValueError(message) if self.is_main and any(v != values[0] for v in values) else None)

    def on_main(self, fn):
        """``fn()`` on rank 0 only, its failure agreed (:meth:`check`); its result on rank 0,
        None on the others."""
        if not self.distributed:
            return fn()
        result, err = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as exc:
                err = exc
        self.check(err)
        return result

    def from_main(self, fn):
        """``fn()`` on rank 0, its result broadcast to every rank (failure agreed)."""
        return self.broadcast(self.on_main(fn))

    def local_first(self, fn):
        """``fn()`` on every rank, local rank 0 of each machine first (a download happens once
        per machine; the others find the files it fetched), failures agreed."""
        if not self.distributed:
            return fn()
        result = None
        for turn in (True, False):
            err = None
            if (self.local_rank == 0) == turn:
                try:
                    result = fn()
                except Exception as exc:
                    err = exc
            self.check(err)
        return result

    # ------------------------------------------------------------------ models
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients are
        averaged over the ranks in ``backward``); the model itself on a single process."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def shard(self, n: int) -> slice:
        """This rank's contiguous block of ``n`` items (the first ``n % world_size`` ranks get
        one more; a rank may get none when ``n < world_size``)."""
        q, r = divmod(n, self.world_size)
        start = self.rank * q + min(self.rank, r)
        return slice(start, start + q + (self.rank < r))


@contextlib.contextmanager
def session(device: str = "auto"):
    """The :class:`Context` of this process for the duration of a run.

    Under ``torchrun`` with ``WORLD_SIZE`` > 1: joins the process group (``nccl`` when the
    device is CUDA, else ``gloo``; the address and port come from torchrun) and destroys it on
    exit, error or not. A group already set up by the caller is used and left alone. Without
    torchrun: the single-process context, nothing set up.
    """
    rank, world, local_rank = env_ranks()
    dev = resolve_device(device, local_rank)
    if world <= 1:
        yield Context(device=dev)
        return
    own = not dist.is_initialized()
    if own:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                device_id=dev if dev.type == "cuda" else None)
    finished = False
    try:
        yield Context(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=dev)
        finished = True
    finally:
        if own:
            if finished:   # every process done talking before the group goes: gloo otherwise
                dist.barrier()   # now and then aborted one at exit ("terminate called without an active exception")
            dist.destroy_process_group()


def add_device_args(ap: argparse.ArgumentParser, module: str, batch: str, amp: bool = True) -> None:
    """The "devices and distributed" options of a training CLI (``python -m <module>``);
    ``batch`` says what ``--batch-size`` means under torchrun."""
    import textwrap

    g = ap.add_argument_group("devices and distributed", textwrap.fill(
        f"Started by torchrun (torchrun --standalone --nproc_per_node N -m {module} ...), N processes train one "
        "model together with PyTorch's DistributedDataParallel: one per GPU (nccl), or several on CPUs (gloo); "
        f"on one machine or several. {batch} Only the first process writes the checkpoint, the log and the "
        'progress bar. See the README, "Training at scale".', 78))
    g.add_argument("--device", choices=DEVICES, default="auto",
                   help="auto (default): a CUDA GPU when torch sees one, else the CPU; under torchrun each "
                        "process takes the GPU numbered by its LOCAL_RANK")
    if amp:
        g.add_argument("--amp", action="store_true",
                       help="mixed precision on CUDA (float16 autocast with gradient scaling, channels-last "
                            "memory); ignored, with a note, on the CPU. Checkpoints keep float32 weights and load "
                            "on the CPU")


def report_error(exc: BaseException) -> bool:
    """Whether this process should print ``exc``: always on a single process; under torchrun
    rank 0 prints an error that every rank raised (agreed, :meth:`Context.check`), and a rank
    prints only what it alone raised."""
    rank = env_ranks()[0]
    return rank == 0 or getattr(exc, "stn_rank", None) is None


def error_line(exc: BaseException) -> str:
    """``error: …`` for the CLIs, naming the rank when the error came from another."""
    r = getattr(exc, "stn_rank", None)
    return f"error{f' (rank {r})' if r else ''}: {exc}"


def run_cli(device: str, body, *, errors: tuple, interrupted: str) -> int:
    """A training CLI's run: ``body(ctx)`` in a :func:`session`, returning its exit status.

    An error of the ``errors`` types is printed as ``error: …`` (by rank 0 alone when every
    rank raised it) and gives status 2; the ranks that raised an agreed error then wait for
    each other before leaving, because torchrun stops every process as soon as one exits with
    an error — rank 0 might otherwise be stopped before it has said why. Ctrl-C prints
    ``interrupted`` (rank 0) and gives 130.
    """
    import sys

    try:
        with session(device) as ctx:
            try:
                return body(ctx)
            except errors as exc:
                if report_error(exc):
                    print(error_line(exc), file=sys.stderr, flush=True)
                if getattr(exc, "stn_rank", None) is not None:
                    ctx.barrier()
                return 2
    except errors as exc:  # setting the session up: e.g. --device cuda without a GPU
        print(error_line(exc), file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        if env_ranks()[0] == 0:
            print(f"\n{interrupted}", file=sys.stderr)
        return 130

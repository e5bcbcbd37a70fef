"""Atomic file writes, the one helper every writer in stn_explore uses (checkpoints, IDX and
``.npz`` files, downloads, the results tables).

Convention: the bytes go to a temporary file ``<name>.<random>.part`` in the target's folder,
are flushed and ``fsync``-ed, the file gets its final mode, ``os.replace`` puts it in place, and
the folder is ``fsync``-ed (where the platform allows) so that the rename survives a power
cut. Readers see the old file or the whole new one, never a partial write; if the writer
fails, the target is untouched and the temporary file is removed.

Mode of the written file: an existing target keeps its mode; a new one gets
:func:`default_mode`. The process umask is never changed (``os.umask`` is the only way to
*read* it portably, and it sets it too, which races with other threads of a server).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file to write the new content of ``path`` into; it replaces ``path``
    atomically when the ``with`` block ends normally. If the block raises, ``path`` is left
    as it was and the temporary file is removed. Missing parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _final_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (see :func:`atomic_writer`)."""
    with atomic_writer(path) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def default_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 less the process umask.

    The umask is read without changing it, from ``/proc/self/status`` (Linux ≥ 4.7); where
    that is not available the result is 0o644 (what the usual umask 022 gives)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


def _final_mode(path: Path) -> int:
    """The permission bits of the existing ``path`` (a rewrite keeps them), else
    :func:`default_mode`."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return default_mode()


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable. Skipped where a folder cannot be opened or
    synced (Windows; some network filesystems refuse ``fsync`` on a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

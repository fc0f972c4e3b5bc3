"""Atomic file writes: a temporary file in the target's directory, fsynced, then renamed."""

from __future__ import annotations

import contextlib
import os
import tempfile


def _default_mode(path: str) -> int:
    # mkstemp creates 0600 files; give the checkpoint the mode a plain open() would have.
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write(path, write) -> None:
    """Call ``write(fh)`` on a temporary file next to ``path``, then rename it onto ``path``.

    The data is flushed and fsynced before ``os.replace``, so a crash or an exception leaves
    either the previous file or the complete new one, and never a temporary file behind.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    # Makes the rename itself durable on POSIX; directories cannot be opened on Windows.
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

"""Hand a pickled batch from a DataLoader worker to the main process through shared memory.

A worker pickles with protocol 5: each large contiguous buffer (a NumPy array's data, so the
data of every tensor too) is left out of the pickle and written into one POSIX shared-memory
block instead. Only the small pickle and the block's layout travel through the result pipe.
The main process maps the block, unlinks its name at once and unpickles from the mapping.

Block names are chosen by the main process, one per task, so that it can always unlink the
blocks it has not received: at shutdown, after the workers have stopped, it unlinks every name
whose result never arrived (a block that was never created is simply not found). The blocks
are not registered with multiprocessing's resource tracker, which would otherwise warn about
(and unlink) blocks that one process creates and another process unlinks.

Where POSIX shared memory is unavailable (Windows) batches travel inside the pickle.
"""

from __future__ import annotations

import mmap
import os
import pickle
import secrets
import sys

try:
    import _posixshmem
except ImportError:  # pragma: no cover - Windows
    _posixshmem = None

AVAILABLE = _posixshmem is not None
MIN_BYTES = 64 * 1024  # buffers smaller than this stay inside the pickle
_ALIGN = 64  # each buffer starts at a multiple of this offset in the block
_LINUX = sys.platform.startswith("linux")
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def name_prefix() -> str:
    """A prefix for this iterator's block names, unique across processes (short for macOS)."""
    return f"/em{os.getpid():x}_{secrets.token_hex(3)}_"


def unlink(name: str) -> None:
    """Remove a block's name; a block that does not exist (any more) is not an error."""
    try:
        _posixshmem.shm_unlink(name)
    except FileNotFoundError:
        pass


def _write_block(name: str, views, offsets, total: int) -> None:
    fd = _posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, total)
        if _LINUX:  # write(2) avoids faulting in every page of a fresh mapping
            for view, offset in zip(views, offsets):
                done = 0
                while done < view.nbytes:
                    done += os.pwrite(fd, view[done:], offset + done)
        else:  # macOS shared memory objects support only mmap
            with mmap.mmap(fd, total) as block:
                for view, offset in zip(views, offsets):
                    block[offset : offset + view.nbytes] = view
    except BaseException:
        unlink(name)
        raise
    finally:
        os.close(fd)


def dumps(obj, name: str | None):
    """``(payload, layout)`` for ``obj``; ``layout`` is None when no block ``name`` was made.

    Pickling errors propagate, and no block exists then. If the block cannot be written (for
    instance /dev/shm is full) everything goes into the pickle instead.
    """
    if name is None or not AVAILABLE:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), None
    views = []

    def out_of_band(buf: pickle.PickleBuffer) -> bool:
        try:
            view = buf.raw()
        except BufferError:  # not contiguous: let the pickler deal with it in-band
            return True
        if view.nbytes < MIN_BYTES:
            return True
        views.append(view)
        return False

    payload = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
    if not views:
        return payload, None
    offsets, total = [], 0
    for view in views:
        total = -(-total // _ALIGN) * _ALIGN
        offsets.append(total)
        total += view.nbytes
    spans = tuple((offset, view.nbytes) for offset, view in zip(offsets, views))
    try:
        _write_block(name, views, offsets, total)
    except OSError:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), None
    finally:
        for view in views:
            view.release()
    return payload, (total, spans)


def loads(payload: bytes, name: str | None, layout):
    """Unpickle what ``dumps`` made; the block called ``name`` is unlinked whatever happens."""
    if layout is None:
        return pickle.loads(payload)
    total, spans = layout
    try:
        fd = _posixshmem.shm_open(name, os.O_RDWR, 0)
        try:
            block = mmap.mmap(fd, total, flags=mmap.MAP_SHARED | _POPULATE)
        finally:
            os.close(fd)
    finally:
        unlink(name)
    # Arrays made from the block keep the mapping alive; it is unmapped when they are freed.
    view = memoryview(block)
    return pickle.loads(payload, buffers=[view[o : o + n] for o, n in spans])

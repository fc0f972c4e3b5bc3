"""What runs inside a DataLoader worker process: seeding, fetching batches, reporting errors.

The parent sends ``(task_id, indices, block_name)`` on the worker's index queue; the worker
answers ``(block_name, payload, layout)`` on the shared result queue, where the payload is the
pickled ``(task_id, batch)`` (or an ``ExceptionWrapper`` in place of the batch) and the large
arrays of the batch went into the shared-memory block described by ``layout`` (see ``_shm``).
Pickling happens here rather than in the queue's feeder thread so that a batch that cannot be
pickled becomes an error the parent sees, not a lost message.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import random
import sys
import traceback
from dataclasses import dataclass

import numpy as np

from . import _shm

STATUS_CHECK_INTERVAL = 5.0  # seconds between liveness checks while waiting on a queue


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker: id, num_workers, seed, dataset."""

    __initialized = False

    def __init__(self, **kwargs) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.__keys = tuple(kwargs)
        self.__initialized = True

    def __setattr__(self, key, value) -> None:
        if self.__initialized:
            raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")
        super().__setattr__(key, value)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__keys)
        return f"{type(self).__name__}({items})"


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker, its ``WorkerInfo``; in the main process, ``None``.

    ``info.dataset`` is this worker's own copy of the dataset, so an ``IterableDataset``
    can use ``info.id`` and ``info.num_workers`` to read only its share of the stream.

    >>> import ember
    >>> ember.data.get_worker_info() is None
    True
    """
    return _worker_info


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    worker_id: int


@dataclass(frozen=True)
class _ResumeIteration:
    """Sent to persistent workers at the start of a new epoch; echoed back as acknowledgement."""


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process with its traceback text."""

    def __init__(self, exc_info=None, where: str = "in background") -> None:
        exc_info = exc_info or sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where
        try:
            pickle.dumps(self.exc_type)
        except Exception:  # noqa: BLE001 - a local exception class cannot cross processes
            self.exc_type = RuntimeError

    def reraise(self):
        """Raise an exception of the original type whose message holds the worker traceback."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:  # noqa: BLE001 - exception types whose __init__ takes other args
            raise RuntimeError(msg) from None
        raise exc


class _KeyErrorMessage(str):
    """KeyError quotes its argument when printed; this keeps the traceback readable."""

    def __repr__(self) -> str:
        return self


class _MapFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last) -> None:
        self.dataset, self.auto_collation, self.collate_fn = dataset, auto_collation, collate_fn

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return self.collate_fn(getitems(index))
        return self.collate_fn([self.dataset[i] for i in index])


class _IterableFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last) -> None:
        self.auto_collation, self.collate_fn, self.drop_last = auto_collation, collate_fn, drop_last
        self.dataset_iter = iter(dataset)
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.dataset_iter))
        data = []
        for _ in index:
            try:
                data.append(next(self.dataset_iter))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def create_fetcher(iterable: bool, dataset, auto_collation, collate_fn, drop_last):
    """The object whose ``fetch(index)`` turns sampler output into a collated batch."""
    cls = _IterableFetcher if iterable else _MapFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)


def numpy_seed(base_seed: int, worker_id: int) -> np.ndarray:
    """Four 32-bit words for ``np.random.seed``, mixed from the base seed and worker id."""
    words = [worker_id, base_seed & 0xFFFFFFFF, (base_seed >> 32) & 0xFFFFFFFF]
    return np.random.SeedSequence(words).generate_state(4)


def _seed_worker(seed: int, base_seed: int, worker_id: int) -> None:
    from ..backend.random import manual_seed

    random.seed(seed)
    manual_seed(seed)
    np.random.seed(numpy_seed(base_seed, worker_id))
    # A forked child has none of the parent's threads: a thread pool object inherited from
    # the parent would wait forever on them, so drop it and let the child start its own.
    parallel = sys.modules.get("ember.kernels.cpu.parallel")
    if parallel is not None and getattr(parallel, "_pool", None) is not None:
        parallel._pool = None


def _encode(task_id, data, worker_id: int, name: str | None):
    """``(payload, layout)``: the pickled result, its large arrays in block ``name`` if any."""
    try:
        return _shm.dumps((task_id, data), name)
    except Exception:  # noqa: BLE001 - report anything that cannot be pickled to the parent
        err = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
        return pickle.dumps((task_id, err), protocol=pickle.HIGHEST_PROTOCOL), None


@dataclass
class WorkerArgs:
    """Everything a worker needs, sent once when the process starts."""

    iterable: bool
    dataset: object
    auto_collation: bool
    collate_fn: object
    drop_last: bool
    base_seed: int
    init_fn: object
    worker_id: int
    num_workers: int
    max_in_flight: int  # tasks the parent may have sent and not yet received back


def _setup(a: WorkerArgs):
    """Seed, publish WorkerInfo, run worker_init_fn; returns (fetcher, init_error)."""
    global _worker_info
    seed = a.base_seed + a.worker_id
    _seed_worker(seed, a.base_seed, a.worker_id)
    _worker_info = WorkerInfo(
        id=a.worker_id, num_workers=a.num_workers, seed=seed, dataset=a.dataset
    )
    try:
        if a.init_fn is not None:
            a.init_fn(a.worker_id)
        fetcher = create_fetcher(a.iterable, a.dataset, a.auto_collation, a.collate_fn, a.drop_last)
        return fetcher, None
    except Exception:  # noqa: BLE001 - sent to the parent with the first task
        return None, ExceptionWrapper(where=f"in DataLoader worker process {a.worker_id}")


def _fetch(fetcher, index, a: WorkerArgs):
    """(batch or error, whether an iterable dataset has run out)."""
    try:
        return fetcher.fetch(index), False
    except Exception as e:  # noqa: BLE001 - every failure goes back to the parent
        if isinstance(e, StopIteration) and a.iterable:
            return _IterableDatasetStopIteration(a.worker_id), True
        return ExceptionWrapper(where=f"in DataLoader worker process {a.worker_id}"), False


def worker_loop(a: WorkerArgs, index_queue, result_queue, done_event) -> None:
    """Serve index batches until told to stop (``None``) or the parent process dies."""
    # Blocks written lately; if the parent dies without reading them, nobody else unlinks them.
    written = collections.deque(maxlen=a.max_in_flight)
    parent = os.getppid()
    try:
        fetcher, init_error = _setup(a)
        ended = False
        while os.getppid() == parent:
            try:
                msg = index_queue.get(timeout=STATUS_CHECK_INTERVAL)
            except queue.Empty:
                continue
            if isinstance(msg, _ResumeIteration):
                result_queue.put((None, pickle.dumps((msg, None)), None))
                ended = False
                fetcher = create_fetcher(
                    a.iterable, a.dataset, a.auto_collation, a.collate_fn, a.drop_last
                )
                continue
            if msg is None:
                break
            if done_event.is_set() or ended:
                continue
            task_id, index, name = msg
            if init_error is not None:
                data, init_error = init_error, None
            else:
                data, ended = _fetch(fetcher, index, a)
            payload, layout = _encode(task_id, data, a.worker_id, name)
            if layout is not None:
                written.append(name)
            result_queue.put((name, payload, layout))
            del data, msg, index, payload
    except KeyboardInterrupt:
        pass
    if os.getppid() != parent:
        for name in written:
            _shm.unlink(name)
    if done_event.is_set():
        result_queue.cancel_join_thread()
        result_queue.close()

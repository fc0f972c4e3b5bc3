"""The DataLoader iterator that feeds worker processes and yields their batches in order.

Task ids count up in sampler order. Each task goes to the next live worker, round-robin, with
at most ``prefetch_factor * num_workers`` tasks outstanding; results that arrive early wait in
``_task_info`` (the reorder buffer) until their turn. Shutdown sets an event, sends ``None`` to
every worker, joins each with a timeout and terminates whatever is still alive.

Each task carries the name of the shared-memory block its batch's arrays may come back in
(see ``_shm``). The names sent whose results have not arrived yet are kept in ``_blocks``; once
the workers have stopped, whatever of those exists is unlinked, so no block outlives the
iterator: not on early exit from a loop, nor after a worker error or a worker's death.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing
import queue
import sys

from . import _shm
from ._worker import (
    STATUS_CHECK_INTERVAL,
    ExceptionWrapper,
    WorkerArgs,
    _IterableDatasetStopIteration,
    _ResumeIteration,
    worker_loop,
)
from .dataloader import _BaseDataLoaderIter

_exiting = [False]
# Index queues of live iterators, held from module scope: an iterator kept alive by a traceback
# is collected as part of a reference cycle, and the queues' own finalizers (weakref callbacks,
# which the garbage collector runs before __del__) would otherwise stop their feeder threads
# before the iterator's __del__ could send the workers their stop message.
_live_queues: dict[int, list] = {}
# (workers, names of blocks not yet received) of live iterators, for the sweep at exit.
_live_blocks: dict[int, tuple[list, set]] = {}


@atexit.register
def _mark_exiting() -> None:
    # At interpreter exit multiprocessing terminates daemonic workers itself; iterators being
    # collected then must not block on queues whose feeder threads may already be gone.
    _exiting[0] = True
    # Runs before multiprocessing's own exit handler (registered earlier): stop the workers
    # that may still write blocks, as that handler would, then unlink what they left behind.
    for workers, blocks in list(_live_blocks.values()):
        if blocks:
            _stop_and_sweep(workers, blocks)
    _live_blocks.clear()


def _stop_and_sweep(workers, blocks: set) -> None:
    for w in workers:
        if w.is_alive():
            w.terminate()
    for w in workers:
        w.join(timeout=STATUS_CHECK_INTERVAL)
    for name in blocks:
        _shm.unlink(name)
    blocks.clear()


def _default_context():
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    """Batches built by ``num_workers`` processes, yielded in sampler order."""

    def __init__(self, loader) -> None:
        super().__init__(loader)
        self._prefetch_factor = loader.prefetch_factor
        self._in_order = loader.in_order
        if self._prefetch_factor <= 0:
            raise AssertionError(
                "prefetch_factor must be greater than 0 for MultiProcessingDataLoaderIter, "
                f"got prefetch_factor={self._prefetch_factor}"
            )
        ctx = loader.multiprocessing_context or _default_context()
        self._shutdown = False
        self._workers, self._index_queues = [], []
        self._workers_status = [True] * self._num_workers  # _reset sets it again per epoch
        self._result_queue = ctx.Queue()
        _live_queues[id(self)] = self._index_queues
        self._block_prefix = _shm.name_prefix() if _shm.AVAILABLE else None
        self._block_ids = itertools.count()
        self._blocks = set()  # names sent with tasks whose results have not arrived
        _live_blocks[id(self)] = (self._workers, self._blocks)
        self._done_event = ctx.Event()
        try:
            for i in range(self._num_workers):
                self._start_worker(ctx, loader, i)
        except BaseException:
            self._shutdown_workers()
            raise
        self._reset(loader, first_iter=True)

    def _start_worker(self, ctx, loader, worker_id: int) -> None:
        args = WorkerArgs(
            iterable=self._iterable,
            dataset=self._dataset,
            auto_collation=self._auto_collation,
            collate_fn=self._collate_fn,
            drop_last=self._drop_last,
            base_seed=self._base_seed,
            init_fn=loader.worker_init_fn,
            worker_id=worker_id,
            num_workers=self._num_workers,
            max_in_flight=self._prefetch_factor * self._num_workers,
        )
        index_queue = ctx.Queue()
        index_queue.cancel_join_thread()
        w = ctx.Process(
            target=worker_loop,
            args=(args, index_queue, self._result_queue, self._done_event),
            daemon=True,
        )
        w.start()
        self._index_queues.append(index_queue)
        self._workers.append(w)

    def _reset(self, loader, first_iter=False) -> None:
        super()._reset(loader, first_iter)
        self._send_idx = 0  # id of the next task to send
        self._rcvd_idx = 0  # id of the next task to yield
        self._task_info = {}  # task id -> (worker_id,) while pending, (worker_id, data) when in
        self._tasks_outstanding = 0
        self._workers_status = [True] * self._num_workers
        self._workers_num_tasks = [0] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        if not first_iter:
            for q in self._index_queues:
                q.put(_ResumeIteration())
            # Results left over from a loop that broke early arrive before each worker's ack.
            pending = self._num_workers
            while pending > 0:
                task_id, _ = self._get_data()
                if isinstance(task_id, _ResumeIteration):
                    pending -= 1
            # Every task sent before has now been answered or skipped (without a block).
            self._blocks.clear()
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _try_get_data(self, timeout=STATUS_CHECK_INTERVAL):
        try:
            name, payload, layout = self._result_queue.get(timeout=timeout)
        except queue.Empty as e:
            dead = [
                w
                for i, w in enumerate(self._workers)
                if self._workers_status[i] and not w.is_alive()
            ]
            for w in dead:
                self._mark_worker_as_unavailable(self._workers.index(w))
            if dead:
                pids = ", ".join(str(w.pid) for w in dead)
                raise RuntimeError(f"DataLoader worker (pid(s) {pids}) exited unexpectedly") from e
            return False, None
        self._blocks.discard(name)
        return True, self._decode(payload, name, layout)

    @staticmethod
    def _decode(payload, name, layout):
        try:
            return _shm.loads(payload, name, layout)
        except Exception as e:  # noqa: BLE001 - e.g. a class the main process cannot import
            raise RuntimeError(
                f"DataLoader could not unpickle a batch sent by a worker process: {e!r}"
            ) from e

    def _get_data(self):
        if self._timeout > 0:
            ok, data = self._try_get_data(self._timeout)
            if ok:
                return data
            raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
        while True:
            ok, data = self._try_get_data()
            if ok:
                return data

    def _advance_to_pending(self) -> bool:
        """Skip tasks owned by finished workers; False when nothing is left to yield."""
        while self._rcvd_idx < self._send_idx:
            info = self._task_info.get(self._rcvd_idx)
            if info:
                if len(info) == 2 or self._workers_status[info[0]]:
                    return True
                del self._task_info[self._rcvd_idx]
            self._rcvd_idx += 1
        return False

    def _next_data(self):
        while True:
            if not self._advance_to_pending():
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._rcvd_idx]) == 2:
                worker_id, data = self._task_info.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                return self._process_data(data, worker_id)
            task_id, data = self._get_data()
            self._tasks_outstanding -= 1
            if isinstance(data, _IterableDatasetStopIteration):
                if self._persistent_workers:
                    self._workers_status[data.worker_id] = False
                else:
                    self._mark_worker_as_unavailable(data.worker_id)
                self._try_put_index()
                continue
            if task_id == self._rcvd_idx or not self._in_order:
                worker_id = self._task_info.pop(task_id)[0]
                if task_id == self._rcvd_idx:
                    self._rcvd_idx += 1
                return self._process_data(data, worker_id)
            self._task_info[task_id] += (data,)

    def _pick_worker(self):
        max_tasks = self._prefetch_factor * self._num_workers
        for _ in range(self._num_workers):
            w = next(self._worker_cycle)
            if not self._workers_status[w]:
                continue
            if self._in_order or self._workers_num_tasks[w] < max_tasks // sum(
                self._workers_status
            ):
                return w
        return None

    def _try_put_index(self) -> None:
        try:
            index = self._next_index()
        except StopIteration:
            return
        w = self._pick_worker()
        if w is None:
            return
        name = None
        if self._block_prefix is not None:
            name = f"{self._block_prefix}{next(self._block_ids):x}"
            self._blocks.add(name)
        self._index_queues[w].put((self._send_idx, index, name))
        self._task_info[self._send_idx] = (w,)
        self._workers_num_tasks[w] += 1
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _process_data(self, data, worker_id: int):
        self._workers_num_tasks[worker_id] -= 1
        self._try_put_index()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    def _mark_worker_as_unavailable(self, worker_id: int) -> None:
        self._index_queues[worker_id].put(None)
        self._workers_status[worker_id] = False

    def _shutdown_workers(self) -> None:
        if self._shutdown or _exiting[0]:
            return
        self._shutdown = True
        try:
            self._done_event.set()
            for i, q in enumerate(self._index_queues):
                if self._persistent_workers or self._workers_status[i]:
                    q.put(None)
                    self._workers_status[i] = False
            for w in self._workers:
                w.join(timeout=STATUS_CHECK_INTERVAL)
            for q in self._index_queues:
                q.cancel_join_thread()
                q.close()
            self._result_queue.cancel_join_thread()
            self._result_queue.close()
        finally:
            _live_queues.pop(id(self), None)
            _live_blocks.pop(id(self), None)
            _stop_and_sweep(self._workers, self._blocks)

    def __del__(self) -> None:
        try:
            self._shutdown_workers()
        except Exception:  # noqa: BLE001 - nothing useful to do while being collected
            pass

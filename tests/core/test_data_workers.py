"""DataLoader with worker processes: order, seeding, errors, shutdown, persistence."""

import gc
import multiprocessing
import os
import pickle
import random
import subprocess
import sys
import time

import numpy as np
import pytest

import ember
from ember.data import DataLoader, IterableDataset, TensorDataset, get_worker_info

_OFFSET = [0]  # set by worker_init_fn inside workers


class Squares:
    """Map-style: sample i is (i, i*i, pid) and fails at ``bad``."""

    def __init__(self, n=12, bad=None):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"bad sample {i}")
        return np.array([i, i * i + _OFFSET[0]]), os.getpid()


class Seeds:
    """Each sample reports the worker's id, seed and one draw from every seeded RNG."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        info = get_worker_info()
        draws = [random.random(), float(np.random.rand()), ember.rand(1).item()]
        return {"id": info.id, "seed": info.seed, "n": info.num_workers, "draws": draws}


class Stream(IterableDataset):
    def __init__(self, n, shard):
        self.n, self.shard = n, shard

    def __iter__(self):
        info = get_worker_info()
        if not self.shard or info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


class Slow:
    def __len__(self):
        return 2

    def __getitem__(self, i):
        time.sleep(1.0)
        return i


def _add_offset(worker_id):
    _OFFSET[0] = 1000 * (worker_id + 1)


def _no_children():
    gc.collect()
    for _ in range(50):  # reaping is asynchronous on some systems
        if not multiprocessing.active_children():
            return True
        time.sleep(0.05)
    return False


def _batches(loader):
    return [b[0].tolist() for b in loader]


def test_order_matches_single_process_and_shuffle_is_repeatable():
    ds = Squares(23)
    plain = _batches(DataLoader(ds, batch_size=4))
    assert _batches(DataLoader(ds, batch_size=4, num_workers=2)) == plain
    ember.manual_seed(7)
    single = _batches(DataLoader(ds, batch_size=4, shuffle=True))
    ember.manual_seed(7)
    multi = _batches(DataLoader(ds, batch_size=4, shuffle=True, num_workers=2, prefetch_factor=3))
    assert multi == single and multi != plain
    assert _no_children()


def test_worker_seeds_distinct_and_repeatable():
    def run():
        g = ember.Generator().manual_seed(42)
        return list(DataLoader(Seeds(), batch_size=None, num_workers=2, generator=g))

    first, second = run(), run()
    assert first == second
    by_id = {s["id"]: s for s in first}
    assert set(by_id) == {0, 1} and by_id[0]["n"] == 2
    assert by_id[1]["seed"] == by_id[0]["seed"] + 1
    for k in range(3):  # every RNG differs between the two workers
        assert by_id[0]["draws"][k] != by_id[1]["draws"][k]
    g = ember.Generator().manual_seed(43)
    other = list(DataLoader(Seeds(), batch_size=None, num_workers=2, generator=g))
    assert other[0]["seed"] != first[0]["seed"]


def test_worker_init_fn_runs_in_each_worker():
    loader = DataLoader(Squares(4), batch_size=1, num_workers=2, worker_init_fn=_add_offset)
    values = [b[0][0, 1].item() - i * i for i, b in enumerate(loader)]
    assert values == [1000, 2000, 1000, 2000]  # tasks go round-robin to workers 0, 1
    assert _OFFSET[0] == 0  # the main process is untouched


def test_worker_error_reraised_with_traceback():
    loader = DataLoader(Squares(8, bad=5), batch_size=2, num_workers=2)
    with pytest.raises(ValueError) as info:
        for _ in loader:
            pass
    msg = str(info.value)
    assert "Caught ValueError in DataLoader worker process 0." in msg
    assert "Original Traceback (most recent call last):" in msg
    assert "bad sample 5" in msg and "__getitem__" in msg
    del info
    assert _no_children()


def test_break_and_exception_in_loop_leave_no_children():
    for _ in DataLoader(Squares(40), batch_size=2, num_workers=2):
        break
    assert _no_children()
    with pytest.raises(KeyError):
        for _ in DataLoader(Squares(40), batch_size=2, num_workers=2):
            raise KeyError("user code failed")
    assert _no_children()
    it = iter(DataLoader(Squares(40), batch_size=2, num_workers=2))
    next(it)
    del it
    assert _no_children()


def test_persistent_workers_reused_across_epochs():
    loader = DataLoader(Squares(10), batch_size=2, num_workers=2, persistent_workers=True)
    pids1 = {int(p) for b in loader for p in b[1]}
    for _ in loader:  # a broken epoch must not leak batches into the next one
        break
    batches = list(loader)
    pids2 = {int(p) for b in batches for p in b[1]}
    assert len(pids1) == 2 and pids1 == pids2
    assert [b[0][:, 0].tolist() for b in batches] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert {p.pid for p in multiprocessing.active_children()} >= pids1
    del loader, batches
    assert _no_children()


def test_iterable_dataset_with_workers():
    dup = DataLoader(Stream(5, shard=False), batch_size=2, num_workers=2)
    assert sorted(sum((b.tolist() for b in dup), [])) == sorted(list(range(5)) * 2)
    sharded = DataLoader(Stream(7, shard=True), batch_size=2, num_workers=2)
    assert sorted(sum((b.tolist() for b in sharded), [])) == list(range(7))
    assert _no_children()


def test_timeout_raises():
    loader = DataLoader(Slow(), num_workers=1, timeout=0.2)
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.2 seconds"):
        next(iter(loader))
    assert _no_children()


def test_unpicklable_batch_and_failing_init_are_reported():
    loader = DataLoader(list(range(2)), num_workers=1, collate_fn=lambda b: lambda: b)
    with pytest.raises(Exception, match="Caught .* in DataLoader worker process 0"):
        next(iter(loader))

    def bad_init(worker_id):
        raise OSError(f"init failed in {worker_id}")

    loader = DataLoader(list(range(2)), num_workers=1, worker_init_fn=bad_init)
    with pytest.raises(OSError, match="init failed in 0"):
        list(loader)
    assert _no_children()


def test_spawn_context():
    ds = TensorDataset(ember.arange(6))
    loader = DataLoader(ds, batch_size=4, num_workers=1, multiprocessing_context="spawn")
    assert [b[0].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5]]


class Gelu:
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return ember.nn.functional.gelu(ember.ones(512, 512)).sum().item()


def test_threaded_kernels_work_in_forked_workers():
    # The parent's CPU thread pool is started first; a forked worker must not wait on it.
    ember.nn.functional.gelu(ember.ones(512, 512))
    loader = DataLoader(Gelu(), batch_size=None, num_workers=1, timeout=20)
    assert len(list(loader)) == 2


# Shared-memory handover: batches' large arrays travel in /dev/shm blocks named em<pid>_...


_SHM = "/dev/shm"
needs_shm = pytest.mark.skipif(not os.path.isdir(_SHM), reason="needs /dev/shm")


def _blocks():
    """This process's DataLoader blocks in /dev/shm."""
    return {n for n in os.listdir(_SHM) if n.startswith(f"em{os.getpid():x}_")}


def _wait_for(cond, tries=100):
    for _ in range(tries):
        if cond():
            return True
        time.sleep(0.02)
    return False


class Images:
    """Sample i: a 3x64x64 float32 image (larger than the in-pickle limit) and a label."""

    def __init__(self, n=24, bad=None):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"bad sample {i}")
        return np.random.default_rng(i).standard_normal((3, 64, 64), dtype=np.float32), i


def _raw_collate(samples):
    """NumPy arrays of several dtypes and layouts, plus things that are not arrays."""
    x = np.stack([s[0] for s in samples])
    return {
        "x": x,
        "x64": x.astype(np.float64),
        "fortran": np.asfortranarray(x[:, 0]),
        "strided": x[:, :, ::2, 1::3],
        "nan": np.where(x > 1, np.float32("nan"), -0.0),
        "i": np.array([s[1] for s in samples]),
        "mask": x > 0,
        "empty": np.zeros((0, 70000)),
        "name": "batch",
    }


def test_shm_round_trip_and_unlink():
    from ember.data import _shm

    if not _shm.AVAILABLE:
        pytest.skip("no POSIX shared memory")
    obj = _raw_collate([Images()[i] for i in range(4)])
    name = _shm.name_prefix() + "t"
    try:
        payload, layout = _shm.dumps(obj, name)
        assert layout is not None and len(payload) < obj["x"].nbytes  # large arrays left it
        out = _shm.loads(payload, name, layout)
        with pytest.raises(FileNotFoundError):
            _shm.loads(payload, name, layout)  # the name is gone once read
    finally:
        _shm.unlink(name)
    assert out.keys() == obj.keys() and out["name"] == "batch"
    for k in obj:
        if k != "name":
            assert out[k].dtype == obj[k].dtype and out[k].shape == obj[k].shape
            assert out[k].tobytes() == obj[k].tobytes()
    assert out["fortran"].flags.f_contiguous and out["x"].flags.writeable
    assert _shm.dumps([1, "a"], name) == (pickle.dumps([1, "a"], protocol=5), None)


@pytest.mark.parametrize("collate", [None, _raw_collate])
def test_worker_batches_bitwise_equal_to_single_process(collate):
    ds = Images(22)
    opts = {"batch_size": 4, "shuffle": True, "collate_fn": collate}
    ember.manual_seed(3)
    single = list(DataLoader(ds, **opts))
    ember.manual_seed(3)
    multi = list(DataLoader(ds, num_workers=2, **opts))
    assert len(multi) == len(single) == 6
    for a, b in zip(single, multi):
        if collate is None:
            a, b = dict(enumerate(a)), dict(enumerate(b))
            assert all(isinstance(v, ember.Tensor) for v in b.values())
        assert a.keys() == b.keys()
        for k in a:
            u, v = np.asarray(a[k]), np.asarray(b[k])
            assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
    assert _no_children()


@needs_shm
def test_no_blocks_left_after_epoch_break_or_error():
    before = _blocks()
    assert len(list(DataLoader(Images(), batch_size=4, num_workers=2))) == 6
    assert _blocks() == before
    for _ in DataLoader(Images(), batch_size=4, num_workers=2):
        break  # unread prefetched batches are waiting in the pipe
    assert _no_children() and _blocks() == before
    loader = DataLoader(Images(), batch_size=4, num_workers=2, persistent_workers=True)
    for _ in loader:
        break
    assert len(list(loader)) == 6  # the broken epoch's batches are read and dropped
    assert _blocks() == before
    for _ in loader:
        break
    del loader
    assert _no_children() and _blocks() == before
    with pytest.raises(ValueError, match="bad sample 9"):
        for _ in DataLoader(Images(bad=9), batch_size=4, num_workers=2):
            pass
    assert _no_children() and _blocks() == before


@needs_shm
def test_no_blocks_left_after_workers_die():
    before = _blocks()
    it = iter(DataLoader(Images(), batch_size=4, num_workers=2))
    next(it)
    # Batches written ahead by the workers wait unread in their blocks; then the workers die.
    assert _wait_for(lambda: len(_blocks() - before) >= 2)
    for w in it._workers:
        os.kill(w.pid, 9)
        w.join()
    del it
    assert _no_children() and _blocks() == before


_EXIT_SCRIPT = """
import os, sys, time
import numpy as np
import ember

class Images:
    def __len__(self):
        return 40
    def __getitem__(self, i):
        return np.zeros((3, 64, 64), np.float32)

loader = ember.data.DataLoader(Images(), batch_size=4, num_workers=2, persistent_workers=True)
it = iter(loader)
next(it)
time.sleep(0.5)  # the workers write their prefetched batches, which are never read
print(f"em{os.getpid():x}_")
"""


@needs_shm
def test_no_blocks_left_when_interpreter_exits_mid_epoch():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    prefix = done.stdout.strip()
    assert prefix.startswith("em")
    assert not [n for n in os.listdir(_SHM) if n.startswith(prefix)]
    assert done.stderr == ""  # no resource_tracker warnings about leaked shared memory

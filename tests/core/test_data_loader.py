"""DataLoader in the main process: batching, shuffling, samplers, validation, len()."""

import multiprocessing

import numpy as np
import pytest

import ember
from ember.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
)


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def _rows(loader):
    return [b.tolist() for b in loader]


def test_default_batching_and_len():
    ds = list(range(7))
    loader = DataLoader(ds, batch_size=3)
    assert _rows(loader) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(loader) == 3
    loader = DataLoader(ds, batch_size=3, drop_last=True)
    assert _rows(loader) == [[0, 1, 2], [3, 4, 5]] and len(loader) == 2
    assert _rows(DataLoader(ds)) == [[i] for i in ds]


def test_tensor_dataset_batches():
    x = ember.arange(10, dtype=ember.float32).reshape(5, 2)
    y = ember.arange(5)
    batches = list(DataLoader(TensorDataset(x, y), batch_size=2))
    assert len(batches) == 3
    xb, yb = batches[0]
    assert xb.shape == (2, 2) and xb.dtype == ember.float32 and yb.tolist() == [0, 1]


def test_no_auto_batching_converts():
    ds = [np.array([i, i]) for i in range(3)]
    out = list(DataLoader(ds, batch_size=None))
    assert [t.tolist() for t in out] == [[0, 0], [1, 1], [2, 2]]
    assert len(DataLoader(ds, batch_size=None)) == 3


def test_shuffle_repeatable_under_manual_seed():
    ds = list(range(20))
    ember.manual_seed(5)
    loader = DataLoader(ds, batch_size=4, shuffle=True)
    epoch1, epoch2 = _rows(loader), _rows(loader)
    assert sorted(sum(epoch1, [])) == ds and epoch1 != epoch2
    ember.manual_seed(5)
    assert _rows(loader) == epoch1 and _rows(loader) == epoch2


def test_shuffle_with_generator():
    ds = list(range(20))
    g = ember.Generator().manual_seed(9)
    first = _rows(DataLoader(ds, batch_size=5, shuffle=True, generator=g))
    g.manual_seed(9)
    ember.manual_seed(123)  # the default generator plays no part
    assert _rows(DataLoader(ds, batch_size=5, shuffle=True, generator=g)) == first


def test_custom_sampler_and_batch_sampler():
    ds = list(range(6))
    assert _rows(DataLoader(ds, batch_size=2, sampler=[5, 4, 3])) == [[5, 4], [3]]
    bs = BatchSampler(SequentialSampler(ds), 4, drop_last=False)
    loader = DataLoader(ds, batch_sampler=bs)
    assert _rows(loader) == [[0, 1, 2, 3], [4, 5]] and len(loader) == 2
    assert loader.batch_size is None


def test_collate_fn_and_getitems():
    class Batched:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            raise AssertionError("__getitems__ should be used")

        def __getitems__(self, idx):
            return [i * 10 for i in idx]

    loader = DataLoader(Batched(), batch_size=2, collate_fn=lambda b: tuple(b))
    assert list(loader) == [(0, 10), (20, 30), (40,)]


def test_iterable_dataset_single_process():
    loader = DataLoader(Stream(5), batch_size=2)
    assert _rows(loader) == [[0, 1], [2, 3], [4]] and len(loader) == 3
    assert len(DataLoader(Stream(5), batch_size=2, drop_last=True)) == 2
    assert _rows(DataLoader(Stream(5), batch_size=2, drop_last=True)) == [[0, 1], [2, 3]]
    assert list(DataLoader(Stream(3), batch_size=None)) == [0, 1, 2]  # ints stay ints


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_workers": -1}, ValueError, "num_workers option should be non-negative"),
        ({"timeout": -1}, ValueError, "timeout option should be non-negative"),
        ({"prefetch_factor": 2}, ValueError, "prefetch_factor option could only be specified"),
        ({"num_workers": 1, "prefetch_factor": -1}, ValueError, "should be non-negative"),
        ({"persistent_workers": True}, ValueError, "persistent_workers option needs"),
        ({"shuffle": True, "sampler": [0]}, ValueError, "mutually exclusive with shuffle"),
        ({"batch_sampler": [[0]], "batch_size": 2}, ValueError, "batch_sampler option is"),
        ({"batch_sampler": [[0]], "drop_last": True}, ValueError, "batch_sampler option is"),
        ({"batch_size": None, "drop_last": True}, ValueError, "batch_size=None option"),
        ({"multiprocessing_context": "fork"}, ValueError, "num_workers=0"),
        ({"num_workers": 1, "multiprocessing_context": "nope"}, ValueError, "'nope'"),
        ({"num_workers": 1, "multiprocessing_context": 3}, TypeError, "context=3"),
        ({"batch_size": 0}, ValueError, "batch_size=0"),
    ],
)
def test_argument_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        DataLoader(list(range(4)), **kwargs)


def test_iterable_dataset_rejects_sampling_options():
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        DataLoader(Stream(3), sampler=[0])
    with pytest.raises(ValueError, match="expected unspecified batch_sampler option"):
        DataLoader(Stream(3), batch_sampler=[[0]])
    DataLoader(Stream(3), shuffle=False)


def test_frozen_attributes_and_context_object():
    loader = DataLoader(list(range(3)))
    with pytest.raises(ValueError, match="batch_size attribute should not be set after DataLoader"):
        loader.batch_size = 4
    loader.num_workers = 0  # not frozen, as in PyTorch
    ctx = multiprocessing.get_context("spawn")
    loader = DataLoader([0], num_workers=1, multiprocessing_context=ctx)
    assert loader.multiprocessing_context is ctx
    fork = DataLoader([0], num_workers=1, multiprocessing_context="fork")
    assert fork.multiprocessing_context.get_start_method() == "fork"


def test_timeout_needs_workers():
    with pytest.raises(AssertionError, match="timeout == 0"):
        iter(DataLoader([0], timeout=1))


def test_pin_memory_warns_without_gpu():
    if ember.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.warns(UserWarning, match="pin_memory"):
        assert _rows(DataLoader([1, 2], batch_size=2, pin_memory=True)) == [[1, 2]]


def test_matches_torch_sequential_batches():
    torch = pytest.importorskip("torch")
    data = [(np.full(3, i, np.float32), i) for i in range(7)]
    ours = list(DataLoader(data, batch_size=3))
    theirs = list(torch.utils.data.DataLoader(data, batch_size=3))
    assert len(ours) == len(theirs) == 3
    for (xa, ya), (xb, yb) in zip(ours, theirs):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        assert ya.tolist() == yb.tolist() and str(ya.dtype) == "ember.int64"

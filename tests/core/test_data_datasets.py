"""Datasets, random_split, samplers and collation in ember.data (compared to torch's)."""

import collections

import numpy as np
import pytest

import ember
from ember.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    StackDataset,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    random_split,
)

Point = collections.namedtuple("Point", ["x", "y"])


def test_utils_data_alias():
    assert ember.utils.data is ember.data
    from ember.utils.data import DataLoader

    assert DataLoader is ember.data.DataLoader


def test_dataset_base_and_add():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="__iter__"):
        iter(IterableDataset())

    class Two(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return i

    both = Two() + Two()
    assert isinstance(both, ConcatDataset)
    assert [both[i] for i in range(4)] == [0, 1, 0, 1]


def test_tensor_dataset():
    x, y = ember.arange(6).reshape(3, 2), ember.tensor([7, 8, 9])
    ds = TensorDataset(x, y)
    assert len(ds) == 3
    a, b = ds[1]
    assert a.tolist() == [2, 3] and b.item() == 8
    with pytest.raises(AssertionError, match="Size mismatch"):
        TensorDataset(x, ember.zeros(4))


def test_stack_dataset():
    assert StackDataset([1, 2], [3, 4])[0] == (1, 3)
    assert StackDataset(a=[1, 2], b=[3, 4])[1] == {"a": 2, "b": 4}
    with pytest.raises(ValueError, match="size mismatch"):
        StackDataset([1], [1, 2])


def test_concat_dataset_indexing():
    ds = ConcatDataset([[0, 1, 2], [3], [4, 5]])
    assert ds.cumulative_sizes == [3, 4, 6]
    assert len(ds) == 6
    assert [ds[i] for i in range(6)] == [0, 1, 2, 3, 4, 5]
    assert ds[-1] == 5 and ds[-6] == 0
    with pytest.raises(ValueError, match="absolute value of index"):
        ds[-7]
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(AssertionError, match="empty"):
        ConcatDataset([])
    with pytest.raises(AssertionError, match="IterableDataset"):
        ConcatDataset([ChainDataset([])])


def test_chain_dataset():
    assert list(ChainDataset([range(2), [5]])) == [0, 1, 5]
    assert len(ChainDataset([range(2), [5]])) == 3


def test_subset():
    sub = Subset(list("abcdef"), [5, 0, 2])
    assert len(sub) == 3
    assert [sub[i] for i in range(3)] == ["f", "a", "c"]
    assert sub.__getitems__([0, 2]) == ["f", "c"]


def test_random_split_lengths_disjoint_and_repeatable():
    g = ember.Generator().manual_seed(3)
    parts = random_split(range(10), [3, 7], generator=g)
    assert [len(p) for p in parts] == [3, 7]
    seen = [i for p in parts for i in p.indices]
    assert sorted(seen) == list(range(10))
    again = random_split(range(10), [3, 7], generator=ember.Generator().manual_seed(3))
    assert [p.indices for p in again] == [p.indices for p in parts]


def test_random_split_fractions_round_robin_remainder():
    parts = random_split(range(10), [0.33, 0.33, 0.34])
    # floor gives 3, 3, 3; the one left over goes to the first split, as in PyTorch
    assert [len(p) for p in parts] == [4, 3, 3]
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(range(2), [1.0, 0.0])
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])


def test_random_split_uses_default_generator():
    ember.manual_seed(11)
    a = random_split(range(8), [4, 4])[0].indices
    ember.manual_seed(11)
    assert random_split(range(8), [4, 4])[0].indices == a


def test_sequential_and_batch_sampler():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert len(SequentialSampler(range(4))) == 4
    bs = BatchSampler(range(7), 3, drop_last=False)
    assert list(bs) == [[0, 1, 2], [3, 4, 5], [6]] and len(bs) == 3
    bs = BatchSampler(range(7), 3, drop_last=True)
    assert list(bs) == [[0, 1, 2], [3, 4, 5]] and len(bs) == 2
    with pytest.raises(ValueError, match="batch_size=0"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last=1"):
        BatchSampler(range(3), 2, 1)


def test_random_sampler_permutation_and_repeat():
    g = ember.Generator().manual_seed(0)
    s = RandomSampler(range(20), generator=g)
    first, second = list(s), list(s)
    assert sorted(first) == list(range(20)) and sorted(second) == list(range(20))
    assert first != second  # a new permutation each pass
    g.manual_seed(0)
    assert list(s) == first
    ember.manual_seed(4)
    a = list(RandomSampler(range(20)))
    ember.manual_seed(4)
    assert list(RandomSampler(range(20))) == a


def test_random_sampler_num_samples_and_replacement():
    s = RandomSampler(range(5), num_samples=12)
    out = list(s)
    assert len(out) == len(s) == 12
    assert sorted(out[:10]) == sorted(list(range(5)) * 2)  # whole permutations first
    r = list(RandomSampler(range(3), replacement=True, num_samples=100))
    assert len(r) == 100 and set(r) == {0, 1, 2}
    with pytest.raises(ValueError, match="num_samples=0"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement=1"):
        RandomSampler(range(3), replacement=1)


def test_subset_random_sampler():
    idx = [4, 9, 2, 7]
    out = list(SubsetRandomSampler(idx, generator=ember.Generator().manual_seed(1)))
    assert sorted(out) == sorted(idx) and len(SubsetRandomSampler(idx)) == 4


def test_weighted_random_sampler_frequencies():
    w = [1.0, 3.0, 0.0, 6.0]
    s = WeightedRandomSampler(w, 20000, generator=ember.Generator().manual_seed(0))
    counts = np.bincount(list(s), minlength=4) / 20000
    assert counts[2] == 0
    np.testing.assert_allclose(counts, [0.1, 0.3, 0.0, 0.6], atol=0.015)  # ~4 sigma
    assert s.weights.dtype == ember.float64 and len(s) == 20000


def test_weighted_random_sampler_without_replacement_and_errors():
    out = list(WeightedRandomSampler([1, 1, 1, 0], 3, replacement=False))
    assert sorted(out) == [0, 1, 2]
    with pytest.raises(RuntimeError, match="without replacement"):
        list(WeightedRandomSampler([1, 0], 2, replacement=False))
    with pytest.raises(ValueError, match="num_samples=0"):
        WeightedRandomSampler([1.0], 0)
    with pytest.raises(ValueError, match="replacement=0"):
        WeightedRandomSampler([1.0], 1, replacement=0)
    with pytest.raises(ValueError, match=r"1d sequence.*\(2, 2\)"):
        WeightedRandomSampler([[1.0, 2.0], [3.0, 4.0]], 1)
    with pytest.raises(RuntimeError, match="< 0"):
        list(WeightedRandomSampler([1.0, -1.0], 1))


def test_collate_types_and_dtypes():
    out = default_collate([ember.tensor([1.0, 2.0]), ember.tensor([3.0, 4.0])])
    assert out.shape == (2, 2) and out.dtype == ember.float32
    assert default_collate([np.zeros(3, np.float32)] * 2).dtype == ember.float32
    assert default_collate([1, 2]).dtype == ember.int64
    assert default_collate([1.5, 2.0]).dtype == ember.float64
    assert default_collate([True, False]).tolist() == [True, False]
    assert default_collate([np.float32(1), np.float32(2)]).dtype == ember.float32
    assert default_collate(["a", "b"]) == ["a", "b"]
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3] and p.y.dtype == ember.float64
    pairs = default_collate([(ember.ones(2), 0), (ember.zeros(2), 1)])
    assert isinstance(pairs, list) and pairs[0].shape == (2, 2) and pairs[1].tolist() == [0, 1]
    nested = default_collate([{"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": "y"}])
    assert [t.tolist() for t in nested["a"]] == [[1, 3], [2, 4]] and nested["b"] == ["x", "y"]


def test_collate_errors():
    with pytest.raises(TypeError, match="found <class 'object'>"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([ember.zeros(2), ember.zeros(3)])


def test_collate_keeps_autograd():
    a = ember.ones(2, requires_grad=True)
    out = default_collate([a, a * 2])
    out.sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]


def test_default_convert():
    out = default_convert({"a": np.array([1, 2]), "b": "s", "c": (np.float32(1.5), 3)})
    assert out["a"].tolist() == [1, 2] and out["b"] == "s"
    assert isinstance(out["c"], list) and out["c"][0].dtype == ember.float32 and out["c"][1] == 3
    assert default_convert(Point(np.array(0), 1)).x.item() == 0
    strings = np.array(["a"])
    assert default_convert(strings) is strings


def _samples():
    return [
        {"img": np.full((2, 2), i, np.float32), "label": i, "w": i / 2, "name": f"s{i}"}
        for i in range(3)
    ] + [
        {"img": np.ones((2, 2), np.float32), "label": 9, "w": 0.5, "name": "z"},
    ]


def test_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    ours, theirs = default_collate(_samples()), torch_collate(_samples())
    assert set(ours) == set(theirs)
    for key in ("img", "label", "w"):
        assert str(ours[key].dtype).split(".")[1] == str(theirs[key].dtype).split(".")[1]
        np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy())
    assert ours["name"] == theirs["name"]
    batch = [(1, Point(2, "a")), (3, Point(4, "b"))]
    mine, ref = default_collate(batch), torch_collate(batch)
    assert type(mine) is type(ref) and type(mine[1]) is type(ref[1])
    assert mine[1].y == ref[1].y
    assert torch.equal(torch.as_tensor(mine[1].x.numpy()), ref[1].x)

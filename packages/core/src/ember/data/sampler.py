"""Samplers: which dataset indices a DataLoader visits, in which order, in which batches."""

from __future__ import annotations

import numpy as np

from ..backend.random import Generator, rng


class Sampler:
    """Base class of samplers: subclasses define ``__iter__`` over indices (and ``__len__``)."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self):
        raise NotImplementedError


def _fresh_generator(generator):
    """``generator``, or a new one seeded from ember's default generator (one draw)."""
    if generator is not None:
        return generator
    seed = int(rng(None).integers(0, np.iinfo(np.int64).max, dtype=np.int64))
    return Generator().manual_seed(seed)


class SequentialSampler(Sampler):
    """Indices ``0 .. len(data_source) - 1`` in order.

    >>> import ember
    >>> list(ember.data.SequentialSampler(range(3)))
    [0, 1, 2]
    """

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Indices in random order: a fresh permutation per pass, or draws with replacement.

    Without a ``generator`` each pass seeds itself from ember's default generator, so
    ``ember.manual_seed`` makes the order repeatable.

    >>> import ember
    >>> g = ember.Generator().manual_seed(0)
    >>> sorted(ember.data.RandomSampler(range(5), generator=g))
    [0, 1, 2, 3, 4]
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        n = self.num_samples
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={n}"
            )

    @property
    def num_samples(self) -> int:
        """How many indices one pass yields (``len(data_source)`` unless given)."""
        if self._num_samples is None:
            return len(self.data_source)
        return self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        gen = rng(_fresh_generator(self.generator))
        count = self.num_samples
        if self.replacement:
            for start in range(0, count, 32):  # draw lazily in small blocks, as PyTorch does
                yield from gen.integers(0, n, size=min(32, count - start)).tolist()
            return
        for _ in range(count // n):
            yield from gen.permutation(n).tolist()
        if count % n:
            yield from gen.permutation(n)[: count % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order, drawn afresh each pass.

    >>> import ember
    >>> g = ember.Generator().manual_seed(0)
    >>> sorted(ember.data.SubsetRandomSampler([7, 3, 5], generator=g))
    [3, 5, 7]
    """

    def __init__(self, indices, generator=None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in rng(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """Indices drawn with probability proportional to ``weights``.

    >>> import ember
    >>> g = ember.Generator().manual_seed(0)
    >>> list(ember.data.WeightedRandomSampler([0.0, 1.0, 0.0], 3, generator=g))
    [1, 1, 1]
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None) -> None:
        from ..creation import as_tensor

        n = num_samples
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={n}"
            )
        if not isinstance(replacement, bool):
            raise ValueError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(
                f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}"
            )
        self.weights = as_tensor(w)
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def _probabilities(self) -> np.ndarray:
        w = np.asarray(self.weights, dtype=np.float64)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise RuntimeError(
                "WeightedRandomSampler: invalid multinomial distribution "
                "(encountering probability entry < 0, inf or nan)"
            )
        total = w.sum()
        if total <= 0:
            raise RuntimeError(
                "WeightedRandomSampler: invalid multinomial distribution "
                "(sum of probabilities <= 0)"
            )
        if not self.replacement and self.num_samples > np.count_nonzero(w):
            raise RuntimeError(
                f"WeightedRandomSampler: cannot sample num_samples={self.num_samples} > "
                f"{np.count_nonzero(w)} nonzero weights without replacement"
            )
        return w / total

    def __iter__(self):
        p = self._probabilities()
        picks = rng(self.generator).choice(len(p), self.num_samples, self.replacement, p)
        yield from picks.tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Group another sampler's indices into lists of ``batch_size``.

    >>> import ember
    >>> list(ember.data.BatchSampler(range(5), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    >>> list(ember.data.BatchSampler(range(5), batch_size=2, drop_last=True))
    [[0, 1], [2, 3]]
    """

    def __init__(self, sampler, batch_size, drop_last) -> None:
        bad = not isinstance(batch_size, int) or isinstance(batch_size, bool)
        if bad or batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return -(-len(self.sampler) // self.batch_size)

"""The default random generator and ``ember.Generator``: seeded NumPy PCG64 streams."""

from __future__ import annotations

import numpy as np


class Generator:
    """A source of random numbers (``torch.Generator``): ``manual_seed`` makes it repeatable."""

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = 67280421310721
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        """Reset this generator to the stream that ``seed`` names; returns self."""
        seed = int(seed)
        self._seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed & ((1 << 64) - 1)))
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy and return the seed used."""
        s = int(np.random.SeedSequence().entropy) & ((1 << 63) - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with."""
        return self._seed

    def get_state(self) -> dict:
        """The generator's state, for ``set_state``."""
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        """Restore a state returned by ``get_state``."""
        self._rng.bit_generator.state = state

    @property
    def numpy(self) -> np.random.Generator:
        """The NumPy generator behind this one."""
        return self._rng


default_generator = Generator()


def rng(generator: Generator | None = None) -> np.random.Generator:
    """The NumPy generator to draw from: ``generator``'s, or the default one."""
    return (generator or default_generator)._rng


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (and CUDA's, when CuPy is loaded); returns it."""
    import sys

    default_generator.manual_seed(seed)
    cupy = sys.modules.get("cupy")
    if cupy is not None:  # pragma: no cover - GPU machines only
        try:
            cupy.random.seed(int(seed) & 0xFFFFFFFF)
        except Exception:  # noqa: BLE001 - no device present is not an error for seeding
            pass
    return default_generator


def initial_seed() -> int:
    """The seed the default generator was last seeded with."""
    return default_generator.initial_seed()

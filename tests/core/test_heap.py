"""ember.backend.heap: freed arrays are reused from the heap, not re-faulted from fresh pages.

Each check runs in a fresh interpreter, because the glibc settings are process-wide and fixed
at import."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the heap settings are glibc's mallopt parameters",
)

# 20 times, make eight 4 MiB arrays, write every page, then drop them all (as a training step
# makes and frees its intermediates), and report the page faults the loop took.
_PROBE = textwrap.dedent(
    """
    import resource
    import numpy as np
    import ember
    from ember.backend import heap

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def step():
        arrays = [np.ones(1 << 20, np.float32) for _ in range(8)]
        for a in arrays:
            a += 1.0

    for _ in range(3):
        step()
    before = faults()
    for _ in range(20):
        step()
    print(heap.is_tuned(), faults() - before)
    """
)


def _run(env_value):
    env = dict(os.environ)
    env.pop("EMBER_HEAP_CACHE", None)
    if env_value is not None:
        env["EMBER_HEAP_CACHE"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    tuned, faults = out.stdout.split()
    return tuned == "True", int(faults)


@glibc
def test_import_keeps_freed_arrays_in_the_heap():
    tuned, faults = _run(None)
    assert tuned
    # 160 arrays of 1,024 pages each: reused memory takes (almost) no faults
    assert faults < 2_000


@glibc
def test_opt_out_keeps_glibc_defaults():
    tuned, faults = _run("0")
    assert not tuned
    if faults < 5_000:  # e.g. transparent huge pages for every mapping: little to compare
        pytest.skip(f"glibc's defaults took only {faults} faults on this kernel")
    # glibc trims the freed 32 MiB each time: the pages fault again on every step
    _, tuned_faults = _run(None)
    assert tuned_faults * 10 < faults


def test_release_free_memory_returns_a_flag():
    from ember.backend import heap

    assert isinstance(heap.release_free_memory(), bool)

"""Run every benchmark: each bench/bench_*.py module's main(), in name order.

Usage: python bench/run_all.py [NAME ...]   (NAME filters by substring, e.g. "conv")
"""

import importlib
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv):
    names = sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))
    if argv:
        names = [name for name in names if any(pattern in name for pattern in argv)]
    if not names:
        print("no benchmarks")
        return 0
    sys.path.insert(0, str(BENCH_DIR))
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

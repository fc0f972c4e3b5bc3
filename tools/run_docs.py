"""Check that the documentation is true: run the guides' code and the docstrings' examples.

1. Every ```python block of each docs/*.md guide runs, in order, in one fresh module per guide
   (a later block sees an earlier block's names), with a fresh temporary directory as the
   working directory. Blocks fenced as ```python no-run are skipped.
2. The doctests of every module under packages/*/src run (ELLIPSIS | NORMALIZE_WHITESPACE).
   A package that is not installed in this environment, and a module that needs a missing
   optional dependency (CuPy, the cuDNN frontend), are skipped with a note.

Usage: python tools/run_docs.py [GUIDE.md ...]   (default: every docs/*.md)
Exits non-zero on the first failing guide block (naming file and line), or on any failed doctest.
"""

import contextlib
import doctest
import importlib
import os
import sys
import tempfile
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL_MODULES = {"cupy", "cupyx", "cupy_backends", "cudnn", "nvidia"}
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def is_closing(line, fence):
    stripped = line.strip()
    return stripped.startswith(fence) and not stripped.strip("`")


def python_blocks(text):
    """Yield (first code line number, code) for each runnable ```python block of markdown text."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if not stripped.startswith("```"):
            i += 1
            continue
        indent = len(lines[i]) - len(stripped)
        fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
        info = stripped[len(fence) :].split()
        start = i + 1
        i = start
        while i < len(lines) and not is_closing(lines[i], fence):
            i += 1
        if info[:1] == ["python"] and "no-run" not in info[1:]:
            body = [line[indent:] if line[:indent].isspace() else line for line in lines[start:i]]
            yield start + 1, "\n".join(body) + "\n"
        i += 1


@contextlib.contextmanager
def temporary_cwd(prefix):
    """Work in a fresh empty directory, so files that examples write land nowhere lasting."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix=prefix + "_") as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(cwd)


def run_guide(path):
    """Run one guide's blocks in sequence; return the number run, or exit on a failure."""
    name = "docs_" + "".join(c if c.isalnum() else "_" for c in path.stem)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # so pickling, dataclasses and worker processes find its classes
    count = 0
    try:
        with temporary_cwd(name):
            for lineno, code in python_blocks(path.read_text(encoding="utf-8")):
                # pad with blank lines so tracebacks report the guide's own line numbers
                source = "\n" * (lineno - 1) + code
                try:
                    exec(compile(source, str(path), "exec"), module.__dict__)
                except BaseException:
                    traceback.print_exc()
                    where = f"{os.path.relpath(path, ROOT)}, the python block at line {lineno}"
                    sys.exit(f"docs: FAILED {where}")
                count += 1
    finally:
        del sys.modules[name]
    return count


def module_names(package_dir):
    """Yield the dotted name of every module of one package directory."""
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__main__":  # importing it would run the command line
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            yield ".".join(parts)


def run_doctests():
    """Run the doctests of every importable module; return (attempted, failed)."""
    attempted = failed = 0
    for package_dir in sorted(p.parent for p in ROOT.glob("packages/*/src/*/__init__.py")):
        top = package_dir.name
        try:
            importlib.import_module(top)
        except ModuleNotFoundError as error:
            if error.name != top:
                raise
            print(f"docs: note: {top} is not installed here, its doctests are skipped")
            continue
        for name in module_names(package_dir):
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as error:
                if (error.name or "").split(".")[0] not in OPTIONAL_MODULES:
                    raise
                print(f"docs: note: skipped {name}: optional {error.name} is not installed")
                continue
            with temporary_cwd("doctest"):
                result = doctest.testmod(module, optionflags=DOCTEST_FLAGS)
            attempted += result.attempted
            failed += result.failed
    return attempted, failed


def main(argv):
    guides = [Path(arg).resolve() for arg in argv] or sorted((ROOT / "docs").glob("*.md"))
    blocks = sum(run_guide(guide) for guide in guides)
    attempted, failed = run_doctests()
    if failed:
        sys.exit(f"docs: {failed} of {attempted} doctests FAILED")
    print(f"docs: {len(guides)} guides, {blocks} blocks, {attempted} doctests passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

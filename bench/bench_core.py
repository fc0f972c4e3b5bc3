"""CPU benchmarks of the core against PyTorch, in one process: per-op overhead, an MLP step,
a small conv net step and a 4-layer GPT step. Prints ratios ember/torch (lower is better)."""

from __future__ import annotations

import numpy as np
import torch
from _timing import compare, host_line, print_table
from models import Flat, convnet, copy_weights, gpt, mlp

import ember

TARGETS = {
    "per-op overhead (40-op chain fwd+bwd)": 3.0,
    "MLP step 784-512-512-10 b128": 1.3,
    "conv net step 32x32 b32": 2.0,
    "GPT step 4L d256 T128 b8": 1.3,
}


def _op_chain(lib, x):
    def run():
        y = x
        for _ in range(8):
            y = (y * 1.01 + 0.1).tanh() - y.sigmoid() * 0.5
        y.sum().backward()
        x.grad = None

    return run


def bench_ops():
    xe = ember.randn(16, requires_grad=True)
    xt = torch.randn(16, requires_grad=True)
    row = compare(
        "per-op overhead (40-op chain fwd+bwd)",
        _op_chain(ember, xe),
        _op_chain(torch, xt),
        repeat=200,
    )
    n_ops = 8 * 5 + 1
    row["per-op ember us"] = row["ember_ms"] * 1e3 / n_ops
    row["per-op torch us"] = row["torch_ms"] * 1e3 / n_ops
    return row


def _train_step(lib, model, opt, x, y):
    loss_fn = lib.nn.CrossEntropyLoss()

    def run():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    return run


def _pair(name, build, x_np, y_np, make_opt, repeat):
    torch.manual_seed(0)
    tm = build(torch)
    em = build(ember)
    copy_weights(tm, em)
    xt, yt = torch.from_numpy(x_np), torch.from_numpy(y_np)
    xe, ye = ember.from_numpy(x_np), ember.from_numpy(y_np)
    return compare(
        name,
        _train_step(ember, em, make_opt(ember, em), xe, ye),
        _train_step(torch, tm, make_opt(torch, tm), xt, yt),
        repeat=repeat,
    )


def _sgd(lib, m):
    return lib.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)


def _adamw(lib, m):
    return lib.optim.AdamW(m.parameters(), lr=3e-4)


def bench_models():
    rs = np.random.default_rng(0)
    rows = [
        _pair(
            "MLP step 784-512-512-10 b128",
            mlp,
            rs.standard_normal((128, 784), np.float32),
            rs.integers(0, 10, 128),
            _sgd,
            20,
        ),
        _pair(
            "conv net step 32x32 b32",
            convnet,
            rs.standard_normal((32, 3, 32, 32), np.float32),
            rs.integers(0, 10, 32),
            _sgd,
            10,
        ),
    ]
    idx = rs.integers(0, 1024, (8, 128))
    tgt = rs.integers(0, 1024, (8 * 128,))

    def build(lib):
        return Flat(lib, gpt(lib))

    rows.append(_pair("GPT step 4L d256 T128 b8", build, idx, tgt, _adamw, 10))
    return rows


def main():
    print(
        f"ember {ember.__version__}, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(host_line())
    rows = [bench_ops(), *bench_models()]
    print_table(rows, TARGETS)
    op = rows[0]
    print(f"per-op: ember {op['per-op ember us']:.1f} us, torch {op['per-op torch us']:.1f} us")


if __name__ == "__main__":
    main()

"""ember.jit.passes: every pass keeps the outputs and shrinks the graph."""

import numpy as np

import ember
import ember.jit
from ember import nn
from ember.jit import TracedModule, passes


def _run(graph, x):
    return TracedModule(graph)(x).detach().numpy()


def _ops(graph):
    return [n.op for n in graph.nodes]


def test_dce_drops_unused_nodes():
    def f(x):
        (x * 3).exp()  # computed, never used
        return x + 1

    g = ember.jit.trace(f, ember.randn(2, 3)).graph
    assert _ops(g) == ["Mul", "Exp", "Add"]
    x = ember.randn(4, 3)
    out = passes.dce(g)
    assert _ops(out) == ["Add"]
    np.testing.assert_allclose(_run(out, x), _run(g, x))


def test_constant_fold_evaluates_parameter_only_nodes():
    w = ember.randn(3)

    def f(x):
        return x * (w.exp() + 1.0)

    g = ember.jit.trace(f, ember.randn(2, 3)).graph
    out = passes.constant_fold(g)
    assert _ops(out) == ["Mul"]
    x = ember.randn(5, 3)
    np.testing.assert_allclose(_run(out, x), _run(g, x), rtol=1e-6)


def test_cse_merges_repeated_work():
    g = ember.jit.trace(lambda x: x.tanh() + x.tanh(), ember.randn(2, 3)).graph
    out = passes.cse(g)
    assert _ops(out) == ["Tanh", "Add"]
    x = ember.randn(2, 3)
    np.testing.assert_allclose(_run(out, x), _run(g, x))


def test_fold_batchnorm_into_conv():
    ember.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).eval()
    net[1].running_mean.copy_(ember.randn(3))
    net[1].running_var.copy_(ember.rand(3) + 0.5)
    net[1].weight.data.copy_(ember.randn(3))
    g = ember.jit.trace(net, ember.randn(2, 2, 6, 6)).graph
    out = passes.fold_batchnorm(g)
    assert _ops(out) == ["Conv2d", "Add", "Relu"]
    x = ember.randn(3, 2, 6, 6)
    np.testing.assert_allclose(_run(out, x), _run(g, x), atol=1e-5)


def test_conv_without_bn_or_bias_is_left_alone():
    net = nn.Conv2d(1, 2, 3, bias=False)
    g = ember.jit.trace(net, ember.randn(2, 1, 5, 5)).graph
    assert _ops(passes.fold_batchnorm(g)) == ["Conv2d"]


def test_optimize_keeps_outputs_and_saves(tmp_path):
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(18, 2))
    net.eval()
    fast = ember.jit.optimize_for_inference(ember.jit.trace(net, ember.randn(2, 1, 5, 5)))
    fast.save(tmp_path / "f.ejit")
    x = ember.randn(4, 1, 5, 5)
    want = net(x).detach().numpy()
    np.testing.assert_allclose(ember.jit.load(tmp_path / "f.ejit")(x).numpy(), want, atol=1e-5)

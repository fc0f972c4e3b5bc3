"""Parameter, the containers (Sequential, ModuleList, ModuleDict, ParameterList,
ParameterDict) and nn.utils (gradient clipping, parameter/vector conversion)."""

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import ember
import ember.nn as nn


def test_parameter_repr_and_behaviour():
    p = nn.Parameter(ember.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert isinstance(p, ember.Tensor)
    q = nn.Parameter(ember.tensor([1.0]), requires_grad=False)
    assert not q.requires_grad
    y = (p * 2 + p @ p) * ember.tensor([1.0, 1.0])
    y.sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [2 + 2 * 2, 2 + 2 * 4])
    assert nn.Parameter().shape == (0,)
    with pytest.raises(TypeError, match="expected data to be a Tensor"):
        nn.Parameter([1.0])
    p.my_flag = True  # Parameters accept attributes
    c = copy.deepcopy(p)
    assert isinstance(c, nn.Parameter) and c.my_flag and c._data is not p._data
    r = pickle.loads(pickle.dumps(p))
    assert isinstance(r, nn.Parameter) and r.requires_grad


# ---- containers --------------------------------------------------------------------------


def test_sequential_container_ops():
    a, b, c = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and list(s) == [a, b, c]
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub._modules) == ["1", "2"]  # keys kept
    s.append(nn.Tanh())
    s.insert(0, nn.Identity())
    assert [type(m).__name__ for m in s] == ["Identity", "Linear", "ReLU", "Linear", "Tanh"]
    del s[0]
    assert list(s._modules) == ["0", "1", "2", "3"] and s[0] is a
    s.extend([nn.Sigmoid()])
    assert s.pop(-1).__class__ is nn.Sigmoid
    s[3] = nn.Identity()
    assert isinstance(s[3], nn.Identity)
    with pytest.raises(IndexError, match="index 10 is out of range"):
        s[10]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert named.fc is named[0]
    x = ember.randn(4, 2)
    np.testing.assert_allclose(named(x).detach().numpy(), named.act(named.fc(x)).detach().numpy())
    assert len(nn.Sequential(nn.ReLU()) + nn.Sequential(nn.Tanh())) == 2


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    ml.append(nn.Sigmoid())
    ml.extend([nn.Identity()])
    ml.insert(1, nn.ELU())
    assert [type(m).__name__ for m in ml] == ["ReLU", "ELU", "Tanh", "Sigmoid", "Identity"]
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2", "3"]
    ml += [nn.ReLU()]
    assert len(ml) == 5
    with pytest.raises(TypeError, match="iterable"):
        ml.extend(3)
    md = nn.ModuleDict({"b": nn.ReLU(), "a": nn.Tanh()})
    assert list(md.keys()) == ["b", "a"] and "a" in md and len(md) == 2
    md.update([("c", nn.Identity())])
    assert md.pop("b").__class__ is nn.ReLU and list(md) == ["a", "c"]
    with pytest.raises(ValueError, match="has length 1"):
        md.update([("x",)])


def test_parameter_list_and_dict():
    pl = nn.ParameterList([ember.zeros(2), nn.Parameter(ember.ones(3))])
    assert all(isinstance(p, nn.Parameter) for p in pl) and len(pl) == 2
    pl.append(ember.ones(1))
    assert [n for n, _ in pl.named_parameters()] == ["0", "1", "2"]
    assert pl[-1].shape == (1,) and len(pl[:2]) == 2
    pd = nn.ParameterDict({"b": ember.zeros(1), "a": ember.ones(2)})
    assert list(pd.keys()) == ["a", "b"]  # plain dicts are sorted, as PyTorch
    pd["c"] = ember.ones(3)
    assert isinstance(pd["c"], nn.Parameter) and "c" in pd
    assert [n for n, _ in pd.named_parameters()] == ["a", "b", "c"]
    assert pd.pop("a").shape == (2,) and list(pd) == ["b", "c"]
    with pytest.raises(TypeError, match="not a string"):
        pd[1] = ember.ones(1)


# ---- utils -------------------------------------------------------------------------------


def test_clip_grad_norm_and_value():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    gs = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (5,)]]
    for norm_type in (2.0, 1.0, float("inf")):
        ps = [nn.Parameter(ember.zeros(*g.shape)) for g in gs]
        tps = [torch.zeros(*g.shape, requires_grad=True) for g in gs]
        for p, tp, g in zip(ps, tps, gs):
            p.grad, tp.grad = ember.tensor(g), torch.tensor(g)
        total = nn.utils.clip_grad_norm_(ps, 0.5, norm_type)
        ttotal = torch.nn.utils.clip_grad_norm_(tps, 0.5, norm_type)
        np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-5)
        for p, tp in zip(ps, tps):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-7)
    p = nn.Parameter(ember.zeros(3))
    p.grad = ember.tensor([-2.0, 0.5, 3.0])
    nn.utils.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), [-1.0, 0.5, 1.0])
    p.grad = ember.tensor([float("nan"), 1.0, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_([], 1.0).item() == 0.0


def test_parameters_to_vector_round_trip():
    m = nn.Linear(3, 2)
    v = nn.utils.parameters_to_vector(m.parameters())
    assert v.shape == (8,)
    nn.utils.vector_to_parameters(ember.arange(8.0), m.parameters())
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m.bias.detach().numpy(), [6.0, 7.0])
    with pytest.raises(TypeError, match="expected ember.Tensor"):
        nn.utils.vector_to_parameters([1.0], m.parameters())

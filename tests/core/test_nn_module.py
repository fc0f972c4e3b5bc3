"""Module mechanics: registration, iteration, state_dict/load_state_dict, hooks, modes,
dtype conversion, repr, containers and Parameter."""

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import ember
import ember.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.register_buffer("scale", ember.ones(1))
        self.register_buffer("cache", ember.zeros(2), persistent=False)
        self.gain = nn.Parameter(ember.ones(4))

    def forward(self, x):
        return self.bn(self.conv(x)) * self.gain.reshape(1, -1, 1, 1) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(Block(), nn.ReLU())
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Linear(4, 3)})
        self.extra = nn.ModuleList([nn.LayerNorm(4), nn.Embedding(5, 4, padding_idx=0)])
        self.plist = nn.ParameterList([nn.Parameter(ember.zeros(2))])
        self.pdict = nn.ParameterDict({"z": nn.Parameter(ember.zeros(3))})

    def forward(self, x):
        h = self.stem(x).mean((2, 3))
        return self.heads["a"](self.extra[0](h))


def _torch_net(torch):
    tnn = torch.nn

    class TBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.bn = tnn.BatchNorm2d(4)
            self.register_buffer("scale", torch.ones(1))
            self.register_buffer("cache", torch.zeros(2), persistent=False)
            self.gain = tnn.Parameter(torch.ones(4))

        def forward(self, x):
            return self.bn(self.conv(x)) * self.gain.reshape(1, -1, 1, 1) * self.scale

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = tnn.Sequential(TBlock(), tnn.ReLU())
            self.heads = tnn.ModuleDict({"a": tnn.Linear(4, 2), "b": tnn.Linear(4, 3)})
            self.extra = tnn.ModuleList([tnn.LayerNorm(4), tnn.Embedding(5, 4, padding_idx=0)])
            self.plist = tnn.ParameterList([tnn.Parameter(torch.zeros(2))])
            self.pdict = tnn.ParameterDict({"z": tnn.Parameter(torch.zeros(3))})

    return TNet()


# ---- registration ------------------------------------------------------------------------


def test_registration_by_assignment():
    m = Block()
    assert set(m._parameters) == {"gain"}
    assert set(m._buffers) == {"scale", "cache"}
    assert set(m._modules) == {"conv", "bn"}
    assert isinstance(m.gain, nn.Parameter) and m.gain.requires_grad
    m.gain = None
    assert m._parameters["gain"] is None and m.gain is None
    with pytest.raises(TypeError, match="parameter 'gain'"):
        m.gain = ember.ones(4)
    m.scale = ember.zeros(1)
    assert m._buffers["scale"].item() == 0
    with pytest.raises(TypeError, match="buffer 'scale'"):
        m.scale = 3
    with pytest.raises(TypeError, match="child module 'conv'"):
        m.conv = 3
    del m.conv
    assert "conv" not in m._modules
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'conv'"):
        m.conv  # noqa: B018


def test_reassigning_a_name_moves_it_between_stores():
    m = nn.Module()
    m.x = nn.Parameter(ember.ones(1))
    with pytest.raises(TypeError, match="as parameter 'x'"):
        m.x = nn.Linear(1, 1)  # as PyTorch: a parameter slot takes Parameters or None
    m.y = nn.Linear(1, 1)
    m.y = nn.Parameter(ember.ones(2))
    assert "y" not in m._modules and m.y.shape == (2,)
    m.z = 3
    m.z = nn.Linear(1, 1)
    assert "z" not in m.__dict__ and "z" in m._modules


def test_assignment_before_init_and_bad_names():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(ember.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()
    m = nn.Module()
    with pytest.raises(KeyError, match=r'contain "\.", got: a\.b'):
        m.register_buffer("a.b", ember.ones(1))
    with pytest.raises(KeyError, match="empty string"):
        m.register_parameter("", None)
    with pytest.raises(TypeError, match="buffer name should be a string"):
        m.register_buffer(1, None)
    m.foo = 1
    with pytest.raises(KeyError, match="attribute 'foo' already exists"):
        m.register_buffer("foo", ember.ones(1))
    with pytest.raises(TypeError, match="not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(TypeError, match="cannot assign 'ember"):
        m.register_parameter("p", ember.ones(1))
    p = nn.Parameter(ember.ones(1), requires_grad=False)
    p.mul_(ember.ones(1, requires_grad=True))  # in place: p now has a grad_fn
    with pytest.raises(ValueError, match="non-leaf"):
        m.register_parameter("p", p)


def test_unexpected_init_arguments():
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        nn.Module(foo=1)


# ---- iteration ---------------------------------------------------------------------------


def test_named_parameters_dedupes_shared_and_prefixes():
    a = nn.Linear(2, 2)
    m = nn.Sequential(a, nn.ReLU(), a)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias"]
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4
    assert [n for n, _ in m.named_parameters(prefix="net")] == ["net.0.weight", "net.0.bias"]
    assert list(m.parameters(recurse=False)) == []
    shared = nn.Module()
    shared.l1, shared.l2 = nn.Linear(2, 2), nn.Linear(2, 2)
    shared.l2.weight = shared.l1.weight
    assert [n for n, _ in shared.named_parameters()] == ["l1.weight", "l1.bias", "l2.bias"]


def test_modules_children_and_buffers():
    net = Net()
    names = [n for n, _ in net.named_modules()]
    assert names[:5] == ["", "stem", "stem.0", "stem.0.conv", "stem.0.bn"]
    assert [n for n, _ in net.named_children()] == ["stem", "heads", "extra", "plist", "pdict"]
    bufs = [n for n, _ in net.named_buffers()]
    assert "stem.0.cache" in bufs and "stem.0.bn.num_batches_tracked" in bufs
    a = nn.ReLU()
    seq = nn.Sequential(a, a)
    assert len(list(seq.modules())) == 2
    assert len(list(seq.named_modules(remove_duplicate=False))) == 3


def test_get_submodule_parameter_buffer():
    net = Net()
    assert net.get_submodule("stem.0.bn") is net.stem[0].bn
    assert net.get_submodule("") is net
    assert net.get_parameter("heads.a.weight") is net.heads["a"].weight
    assert net.get_buffer("stem.0.bn.running_mean") is net.stem[0].bn.running_mean
    with pytest.raises(AttributeError, match="has no attribute `nope`"):
        net.get_submodule("stem.nope")
    with pytest.raises(AttributeError, match="`weight` is not an nn.Module"):
        net.get_submodule("stem.0.conv.weight.conv")
    with pytest.raises(AttributeError, match="is not an nn.Parameter"):
        net.get_parameter("stem.0.scale")
    with pytest.raises(AttributeError, match="is not a buffer"):
        net.get_buffer("stem.0.gain")


def test_dir_lists_members():
    d = dir(Block())
    for name in ("conv", "bn", "gain", "scale", "forward", "training"):
        assert name in d


# ---- state_dict --------------------------------------------------------------------------


def test_state_dict_keys_match_pytorch():
    torch = pytest.importorskip("torch")
    assert list(Net().state_dict()) == list(_torch_net(torch).state_dict())


def test_state_dict_is_detached_and_shares_memory():
    m = nn.Linear(3, 2)
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict)
    w = sd["weight"]
    assert not w.requires_grad and not isinstance(w, nn.Parameter)
    with ember.no_grad():
        m.weight.fill_(7.0)
    assert float(w[0, 0]) == 7.0
    assert m.state_dict(keep_vars=True)["weight"] is m.weight
    assert list(m.state_dict(prefix="lin.")) == ["lin.weight", "lin.bias"]


def test_non_persistent_buffers_are_not_saved():
    sd = Block().state_dict()
    assert "cache" not in sd and "scale" in sd


def test_load_state_dict_round_trip():
    a, b = Net(), Net()
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    for (_, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())


def test_load_state_dict_copies_in_place_and_bumps_version():
    m = nn.Linear(2, 2)
    w = m.weight
    v = w._version
    m.load_state_dict({"weight": ember.ones(2, 2), "bias": ember.zeros(2)})
    assert m.weight is w and w._version > v
    np.testing.assert_array_equal(w.detach().numpy(), np.ones((2, 2), np.float32))


def test_load_state_dict_strict_reports_missing_and_unexpected():
    m = nn.Linear(2, 2)
    before = m.weight.detach().clone()
    sd = {"weight": ember.ones(2, 2), "extra": ember.ones(1)}
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(sd)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for Linear" in msg
    assert 'Missing key(s) in state_dict: "bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra"' in msg
    assert ember.equal(m.weight, before)  # strict failure changes nothing
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["extra"]
    assert res == (["bias"], ["extra"])
    assert float(m.weight.sum()) == 4.0


def test_load_state_dict_shape_mismatch_is_atomic():
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sd = {k: v + 1 for k, v in net.state_dict().items()}
    sd["1.weight"] = ember.ones(5, 4)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd, strict=False)
    msg = str(err.value)
    assert "size mismatch for 1.weight" in msg
    assert "[5, 4]" in msg and "[2, 4]" in msg
    for k, v in net.state_dict().items():  # "0.*" come first, yet are untouched
        assert ember.equal(v, before[k]), k


def test_load_state_dict_rejects_non_mapping_and_non_tensor():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="dict-like"):
        m.load_state_dict([1, 2])
    with pytest.raises(RuntimeError, match='parameter named "bias"'):
        m.load_state_dict({"weight": ember.ones(2, 2), "bias": [1.0, 2.0]})


def test_load_state_dict_assign_replaces_tensors():
    m = nn.Linear(2, 2)
    new_w = ember.ones(2, 2)
    m.load_state_dict({"weight": new_w, "bias": ember.zeros(2)}, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    assert m.weight._data is new_w._data


def test_batchnorm_old_checkpoint_without_num_batches_tracked():
    bn = nn.BatchNorm2d(3)
    sd = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    bn.load_state_dict(sd)  # plain dict: no version metadata, PyTorch fills the buffer in
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        sd2 = bn.state_dict()
        del sd2["num_batches_tracked"]
        bn.load_state_dict(sd2)  # version-2 metadata: the key is required


def test_load_pytorch_state_dict_and_match_outputs():
    torch = pytest.importorskip("torch")
    tnet = _torch_net(torch).eval()
    net = Net().eval()
    net.load_state_dict({k: ember.tensor(v.numpy()) for k, v in tnet.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    with torch.no_grad():
        t = tnet.stem(torch.from_numpy(x)).mean((2, 3))
        ref = tnet.heads["a"](tnet.extra[0](t)).numpy()
    out = net(ember.tensor(x)).detach().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_extra_state_round_trip():
    class WithExtra(nn.Module):
        def __init__(self):
            super().__init__()
            self.note = "a"

        def get_extra_state(self):
            return {"note": self.note}

        def set_extra_state(self, state):
            self.note = state["note"]

    a, b = WithExtra(), WithExtra()
    a.note = "hello"
    sd = a.state_dict()
    assert list(sd) == ["_extra_state"]
    b.load_state_dict(sd)
    assert b.note == "hello"


# ---- forward and hooks -------------------------------------------------------------------


def test_forward_missing_raises():
    with pytest.raises(NotImplementedError, match=r"Module \[Module\] is missing the required"):
        nn.Module()(1)


def test_forward_hooks_and_removal():
    m = nn.Identity()
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] + 1,))
    h2 = m.register_forward_hook(lambda mod, args, out: out * 10)
    h3 = m.register_forward_hook(lambda mod, args, out: calls.append(("late", out.item())))
    hook = lambda mod, args, out: calls.append(("first", out.item()))  # noqa: E731
    m.register_forward_hook(hook, prepend=True)
    assert m(ember.tensor(1.0)).item() == 20.0
    assert calls == [("first", 2.0), ("late", 20.0)]
    h1.remove()
    h2.remove()
    h3.remove()
    h2.remove()  # removing twice is fine
    assert m(ember.tensor(1.0)).item() == 1.0


def test_hooks_with_kwargs_and_context_manager():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()

    def pre(mod, args, kwargs):
        return args, {"factor": 3.0}

    def post(mod, args, kwargs, out):
        assert kwargs == {"factor": 3.0}
        return out + 1

    with m.register_forward_pre_hook(pre, with_kwargs=True):
        with m.register_forward_hook(post, with_kwargs=True):
            assert m(ember.tensor(2.0)).item() == 7.0
    assert m(ember.tensor(2.0)).item() == 2.0
    bad = m.register_forward_pre_hook(lambda mod, a, k: 5, with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        m(ember.tensor(1.0))
    bad.remove()


def test_always_call_hook_runs_on_exception():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    seen = []
    m = Boom()
    m.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    with pytest.raises(ValueError):
        m(1)
    assert seen == [None]


# ---- modes, grads, conversion ------------------------------------------------------------


def test_train_eval_recurse():
    net = Net()
    net.eval()
    assert all(not m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="boolean"):
        net.train("no")


def test_requires_grad_and_zero_grad():
    m = nn.Linear(3, 2)
    m(ember.randn(4, 3)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is not None and float(m.weight.grad.abs().sum()) == 0.0
    m.zero_grad()
    assert m.weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_to_dtype_keeps_parameter_objects():
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    w = m[0].weight
    m[0](ember.randn(2, 3)).sum().backward()
    assert m.double() is m
    assert m[0].weight is w and w.dtype == ember.float64 and w.grad.dtype == ember.float64
    assert isinstance(m[0].weight, nn.Parameter) and w.requires_grad
    assert m[1].running_mean.dtype == ember.float64
    assert m[1].num_batches_tracked.dtype == ember.int64
    m.to(ember.float32)
    assert w.dtype == ember.float32
    m.half()
    assert w.dtype == ember.float16
    m.float().to("cpu")
    assert w.dtype == ember.float32
    with pytest.raises(TypeError, match="floating point"):
        m.to(ember.int64)
    out = m(ember.randn(4, 3))
    assert out.dtype == ember.float32


def test_apply_visits_children_first():
    order = []
    net = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    net.apply(lambda mod: order.append(type(mod).__name__))
    assert order == ["Linear", "ReLU", "Sequential", "Sequential"]


def test_deepcopy_and_pickle_module():
    net = Net()
    net2 = copy.deepcopy(net)
    assert net2.heads["a"].weight is not net.heads["a"].weight
    assert isinstance(net2.heads["a"].weight, nn.Parameter)
    assert ember.equal(net2.heads["a"].weight, net.heads["a"].weight)
    net3 = pickle.loads(pickle.dumps(net))
    assert isinstance(net3.heads["a"].weight, nn.Parameter)
    assert list(net3.state_dict()) == list(net.state_dict())


# ---- repr --------------------------------------------------------------------------------


def test_repr_matches_pytorch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    t = tnn.Sequential(
        tnn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        tnn.BatchNorm2d(8),
        tnn.ReLU(inplace=True),
        tnn.MaxPool2d(2),
        tnn.Dropout(0.2),
        tnn.Flatten(),
        tnn.ModuleList([tnn.Linear(4, 4) for _ in range(3)]),
        tnn.GELU(approximate="tanh"),
        tnn.LayerNorm(4),
        tnn.Embedding(10, 4, padding_idx=1),
        tnn.LeakyReLU(0.2),
        tnn.AdaptiveAvgPool2d((1, 1)),
        tnn.Softmax(dim=1),
    )
    e = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Dropout(0.2),
        nn.Flatten(),
        nn.ModuleList([nn.Linear(4, 4) for _ in range(3)]),
        nn.GELU(approximate="tanh"),
        nn.LayerNorm(4),
        nn.Embedding(10, 4, padding_idx=1),
        nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Softmax(dim=1),
    )
    assert repr(e) == repr(t)

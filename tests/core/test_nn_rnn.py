"""RNN, LSTM, GRU and their cells against PyTorch (float64, identical weights): outputs, final
states, input/state gradients and parameter gradients; plus init, errors and a gradcheck."""

import math
import warnings

import numpy as np
import pytest

import ember
from ember import nn

torch = pytest.importorskip("torch")

RS = np.random.default_rng(99)
T, N, I, HID = 5, 3, 4, 6


def _pair(name, *args, **kwargs):
    torch.manual_seed(0)
    tmod = getattr(torch.nn, name)(*args, **kwargs, dtype=torch.float64)
    emod = getattr(nn, name)(*args, **kwargs).double()
    sd = {k: v.detach().numpy().copy() for k, v in tmod.state_dict().items()}
    assert list(emod.state_dict()) == list(sd)
    assert [n for n, _ in emod.named_parameters()] == [n for n, _ in tmod.named_parameters()]
    emod.load_state_dict({k: ember.tensor(v) for k, v in sd.items()})
    return tmod, emod


def _tensors(*arrays):
    tt = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    et = [None if a is None else ember.tensor(a, requires_grad=True) for a in arrays]
    return tt, et


def _flat(out):
    if isinstance(out, tuple | list):
        return [x for o in out for x in _flat(o)]
    return [out]


def _close(e, t, tol=1e-10):
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def _compare(tmod, emod, tin, ein, call):
    tout, eout = _flat(call(tmod, *tin)), _flat(call(emod, *ein))
    assert len(tout) == len(eout)
    for e, t in zip(eout, tout):
        assert tuple(e.shape) == tuple(t.shape)
        _close(e, t)
    ws = [RS.standard_normal(tuple(t.shape)) for t in tout]
    sum((t * torch.tensor(w)).sum() for t, w in zip(tout, ws)).backward()
    sum((e * ember.tensor(w)).sum() for e, w in zip(eout, ws)).backward()
    for e, t in zip(ein, tin):
        if t is not None:
            _close(e.grad, t.grad)
    eparams = dict(emod.named_parameters())
    for name, p in tmod.named_parameters():
        _close(eparams[name].grad, p.grad)


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_two_layers_bidirectional_with_states(batch_first):
    tm, em = _pair("LSTM", I, HID, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = RS.standard_normal((N, T, I) if batch_first else (T, N, I))
    h0, c0 = RS.standard_normal((4, N, HID)), RS.standard_normal((4, N, HID))
    tin, ein = _tensors(x, h0, c0)
    _compare(tm, em, tin, ein, lambda m, x, h, c: m(x, (h, c)))


@pytest.mark.parametrize("batch_first", [False, True])
def test_gru_two_layers_bidirectional_with_state(batch_first):
    tm, em = _pair("GRU", I, HID, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = RS.standard_normal((N, T, I) if batch_first else (T, N, I))
    tin, ein = _tensors(x, RS.standard_normal((4, N, HID)))
    _compare(tm, em, tin, ein, lambda m, x, h: m(x, h))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_default_state_no_bias(nonlinearity):
    tm, em = _pair("RNN", I, HID, num_layers=2, nonlinearity=nonlinearity, bias=False)
    tin, ein = _tensors(RS.standard_normal((T, N, I)))
    _compare(tm, em, tin, ein, lambda m, x: m(x))


def test_lstm_projection_and_unbatched():
    tm, em = _pair("LSTM", I, HID, num_layers=2, proj_size=3, bidirectional=True)
    x = RS.standard_normal((T, I))
    tin, ein = _tensors(x, RS.standard_normal((4, 3)), RS.standard_normal((4, HID)))
    _compare(tm, em, tin, ein, lambda m, x, h, c: m(x, (h, c)))


def test_gru_unbatched_default_state():
    tm, em = _pair("GRU", I, HID)
    tin, ein = _tensors(RS.standard_normal((T, I)))
    _compare(tm, em, tin, ein, lambda m, x: m(x))


def test_eval_mode_dropout_between_layers():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tm, em = _pair("LSTM", I, HID, num_layers=3, dropout=0.5)
    tm.eval()
    em.eval()
    tin, ein = _tensors(RS.standard_normal((T, N, I)))
    _compare(tm, em, tin, ein, lambda m, x: m(x))
    em.train()
    a = em(ein[0])[0].detach().numpy()
    b = em(ein[0])[0].detach().numpy()
    assert not np.allclose(a, b)  # training mode drops between layers


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells(name):
    tm, em = _pair(name, I, HID)
    x, h, c = RS.standard_normal((N, I)), RS.standard_normal((N, HID)), RS.standard_normal((N, HID))
    if name == "LSTMCell":
        tin, ein = _tensors(x, h, c)
        _compare(tm, em, tin, ein, lambda m, x, h, c: m(x, (h, c)))
    else:
        tin, ein = _tensors(x, h)
        _compare(tm, em, tin, ein, lambda m, x, h: m(x, h))
    tin, ein = _tensors(x[0])  # unbatched, zero state
    _compare(tm, em, tin, ein, lambda m, x: m(x))


def test_init_ranges_and_repr():
    lstm = nn.LSTM(3, 16, num_layers=2, bidirectional=True)
    bound = 1 / math.sqrt(16)
    for name, p in lstm.named_parameters():
        v = p.detach().numpy()
        assert np.abs(v).max() <= bound and v.std() > 0.3 * bound, name
    assert lstm.weight_ih_l1_reverse.shape == (64, 32)
    assert "bidirectional=True" in repr(lstm)
    assert len(lstm.all_weights) == 4


def test_errors():
    lstm = nn.LSTM(I, HID, num_layers=2)
    with pytest.raises(RuntimeError, match="input_size"):
        lstm(ember.randn(T, N, I + 1))
    with pytest.raises(ValueError, match="2D or 3D"):
        lstm(ember.randn(1, T, N, I))
    with pytest.raises(RuntimeError, match="hidden\\[0\\]"):
        lstm(ember.randn(T, N, I), (ember.zeros(1, N, HID), ember.zeros(2, N, HID)))
    with pytest.raises(RuntimeError, match="3-D"):
        lstm(ember.randn(T, N, I), (ember.zeros(2, HID), ember.zeros(2, HID)))
    with pytest.raises(ValueError, match="dtype"):
        lstm(ember.randn(T, N, I, dtype=ember.float64))
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(I, HID, dropout=1.5)
    with pytest.warns(UserWarning, match="num_layers"):
        nn.GRU(I, HID, dropout=0.2)
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(I, HID, proj_size=HID)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.RNN(I, 0)
    with pytest.raises(RuntimeError, match="hidden"):
        nn.GRU(I, HID)(ember.randn(T, N, I), ember.zeros(1, N + 1, HID))


def test_lstm_gradcheck():
    lstm = nn.LSTM(2, 2, bidirectional=True).double()
    x = ember.randn(3, 1, 2, dtype=ember.float64, requires_grad=True)
    h0 = ember.randn(2, 1, 2, dtype=ember.float64, requires_grad=True)
    c0 = ember.randn(2, 1, 2, dtype=ember.float64, requires_grad=True)

    def f(x, h0, c0):
        out, (h, c) = lstm(x, (h0, c0))
        return out, h, c

    assert ember.autograd.gradcheck(f, (x, h0, c0))


def test_long_sequence_backward_shapes():
    gru = nn.GRU(I, HID, batch_first=True)
    x = ember.randn(2, 64, I, requires_grad=True)
    out, h = gru(x)
    out.sum().backward()
    assert x.grad.shape == (2, 64, I) and gru.weight_hh_l0.grad.shape == (3 * HID, HID)


def test_fused_cell_ops_second_order():
    from ember.ops.recurrent import gru_pointwise, lstm_pointwise, unbind_pieces

    def r(*shape):
        return ember.randn(*shape, dtype=ember.float64, requires_grad=True)

    gates, c = r(2, 8), r(2, 2)
    assert ember.autograd.gradcheck(lstm_pointwise, (gates, c))
    assert ember.autograd.gradgradcheck(lstm_pointwise, (gates, c))
    xw, hw, h = r(2, 6), r(2, 6), r(2, 2)
    assert ember.autograd.gradcheck(gru_pointwise, (xw, hw, h))
    assert ember.autograd.gradgradcheck(gru_pointwise, (xw, hw, h))
    seq = r(3, 2)
    assert ember.autograd.gradgradcheck(lambda s: unbind_pieces(s, 0)[::2], (seq,))

"""MultiheadAttention and the Transformer modules against PyTorch (float64, identical weights):
outputs, input gradients and parameter gradients, masks of both kinds, both norm placements."""

import numpy as np
import pytest

import ember
from ember import nn

torch = pytest.importorskip("torch")

RS = np.random.default_rng(1234)
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched")


def _load(tmod, emod):
    """Copy torch's weights into the ember module; their state_dict keys must be equal."""
    sd = {k: v.detach().numpy().copy() for k, v in tmod.state_dict().items()}
    assert list(emod.state_dict()) == list(sd)
    emod.load_state_dict({k: ember.tensor(v) for k, v in sd.items()})


def _inputs(*arrays, grad=True):
    """The same arrays as torch and ember tensors (floats require grad)."""
    tt, et = [], []
    for a in arrays:
        if a is None:
            tt.append(None)
            et.append(None)
            continue
        g = grad and a.dtype == np.float64
        tt.append(torch.tensor(a, requires_grad=g))
        et.append(ember.tensor(a, requires_grad=g))
    return tt, et


def _close(e, t, tol=1e-9):
    assert e is not None and t is not None
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def _compare(tmod, emod, tin, ein, fn):
    """Run ``fn(mod, *inputs)`` on both; compare outputs, input grads and parameter grads."""
    tout = [o for o in _flat(fn(tmod, *tin)) if o is not None]
    eout = [o for o in _flat(fn(emod, *ein)) if o is not None]
    assert len(tout) == len(eout)
    for e, t in zip(eout, tout):
        assert tuple(e.shape) == tuple(t.shape)
        _close(e, t)
    weights = [RS.standard_normal(tuple(t.shape)) for t in tout]
    sum((t * torch.tensor(w)).sum() for t, w in zip(tout, weights) if t.requires_grad).backward()
    sum((e * ember.tensor(w)).sum() for e, w in zip(eout, weights) if e.requires_grad).backward()
    for e, t in zip(ein, tin):
        if t is not None and t.requires_grad:
            _close(e.grad, t.grad)
    eparams = dict(emod.named_parameters())
    for name, p in tmod.named_parameters():
        if p.grad is None:
            assert eparams[name].grad is None or not eparams[name].grad.numpy().any()
        else:
            _close(eparams[name].grad, p.grad)


def _flat(out):
    if isinstance(out, tuple | list):
        return [x for o in out for x in _flat(o)]
    return [out]


def _pair(tcls, ecls, *args, **kwargs):
    torch.manual_seed(0)
    tmod = tcls(*args, **kwargs, dtype=torch.float64)
    emod = ecls(*args, **kwargs).double()
    _load(tmod, emod)
    return tmod, emod


def _bool_mask(*shape):
    m = RS.random(shape) < 0.3
    m[..., 0] = False  # every query keeps at least one key: no all -inf rows
    return m


# ---- MultiheadAttention ----------------------------------------------------------------

E, H, L, S, N = 8, 2, 4, 5, 3


def _mha_call(need_weights=True, average=True, is_causal=False):
    def call(mod, q, k, v, kpm, am):
        return mod(
            q,
            k,
            v,
            key_padding_mask=kpm,
            need_weights=need_weights,
            attn_mask=am,
            average_attn_weights=average,
            is_causal=is_causal,
        )

    return call


def test_mha_self_attention_no_mask():
    tm, em = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H)
    x = RS.standard_normal((L, N, E))
    (tx,), (ex,) = _inputs(x)

    def call(mod, x):
        return mod(x, x, x)

    _compare(tm, em, [tx], [ex], call)


@pytest.mark.parametrize("average", [True, False])
def test_mha_batch_first_bool_mask(average):
    tm, em = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, batch_first=True)
    x = RS.standard_normal((N, L, E))
    tin, ein = _inputs(x, _bool_mask(L, L))

    def call(mod, x, am):
        return mod(x, x, x, attn_mask=am, average_attn_weights=average)

    _compare(tm, em, tin, ein, call)


def test_mha_cross_attention_float_mask_3d_and_padding():
    tm, em = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H)
    q, k, v = (RS.standard_normal((n, N, E)) for n in (L, S, S))
    kpm = _bool_mask(N, S)
    am = RS.standard_normal((N * H, L, S))
    tin, ein = _inputs(q, k, v, kpm, am)
    _compare(tm, em, tin, ein, _mha_call(average=False))


def test_mha_key_is_value_float_padding_mask():
    tm, em = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, batch_first=True)
    q, mem = RS.standard_normal((N, L, E)), RS.standard_normal((N, S, E))
    kpm = np.where(_bool_mask(N, S), -1e9, 0.0)
    tin, ein = _inputs(q, mem, kpm)
    tin[2].requires_grad_(False)
    ein[2].requires_grad_(False)

    def call(mod, q, mem, kpm):
        return mod(q, mem, mem, key_padding_mask=kpm)

    _compare(tm, em, tin, ein, call)


def test_mha_kdim_vdim_separate_projections():
    tm, em = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, kdim=3, vdim=6)
    assert em.in_proj_weight is None and em.q_proj_weight.shape == (E, E)
    q, k, v = (RS.standard_normal(s) for s in ((L, N, E), (S, N, 3), (S, N, 6)))
    tin, ein = _inputs(q, k, v, _bool_mask(N, S), _bool_mask(L, S))
    _compare(tm, em, tin, ein, _mha_call())


def test_mha_bias_kv_zero_attn():
    tm, em = _pair(
        torch.nn.MultiheadAttention,
        nn.MultiheadAttention,
        E,
        H,
        add_bias_kv=True,
        add_zero_attn=True,
    )
    q, k = RS.standard_normal((L, N, E)), RS.standard_normal((S, N, E))
    tin, ein = _inputs(q, k, k.copy(), _bool_mask(N, S), _bool_mask(L, S))
    _compare(tm, em, tin, ein, _mha_call(average=False))


def test_mha_no_bias_unbatched_3d_mask():
    tm, em = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, bias=False)
    assert em.in_proj_bias is None and em.out_proj.bias is None
    q, k = RS.standard_normal((L, E)), RS.standard_normal((S, E))
    tin, ein = _inputs(q, k, k.copy(), _bool_mask(S), RS.standard_normal((H, L, S)))
    _compare(tm, em, tin, ein, _mha_call())


def test_mha_causal_hint_without_weights():
    tm, em = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H)
    x = RS.standard_normal((L, N, E))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    emask = nn.Transformer.generate_square_subsequent_mask(L, dtype=ember.float64)
    _close(emask, mask)
    (tx,), (ex,) = _inputs(x)

    def call(mod, x):
        m = mask if mod is tm else emask
        return mod(x, x, x, attn_mask=m, need_weights=False, is_causal=True)

    out = call(em, ex)
    assert out[1] is None
    _compare(tm, em, [tx], [ex], call)


def test_mha_eval_ignores_dropout_and_train_drops():
    tm, em = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, dropout=0.5)
    tm.eval()
    em.eval()
    x = RS.standard_normal((L, N, E))
    (tx,), (ex,) = _inputs(x)
    _compare(tm, em, [tx], [ex], lambda m, x: m(x, x, x))
    em.train()
    _, w = em(ex, ex, ex, average_attn_weights=False)
    assert (w.detach().numpy() == 0).any()  # dropped weights are returned after dropout


def test_mha_init_and_errors():
    mha = nn.MultiheadAttention(12, 3)
    w = mha.in_proj_weight.detach().numpy()
    bound = np.sqrt(6.0 / (12 + 36))  # xavier_uniform_ on (3E, E)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert not mha.in_proj_bias.detach().numpy().any()
    assert not mha.out_proj.bias.detach().numpy().any()
    with pytest.raises(AssertionError):
        nn.MultiheadAttention(10, 3)
    x = ember.randn(L, N, 12)
    with pytest.raises(RuntimeError, match="attn_mask"):
        mha(x, x, x, attn_mask=ember.zeros(L, L + 1))
    with pytest.raises(AssertionError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=ember.zeros(N, L, dtype=ember.int64))
    with pytest.raises(RuntimeError, match="is_causal"):
        mha(x, x, x, is_causal=True)


def test_mha_gradcheck():
    mha = nn.MultiheadAttention(4, 2, add_bias_kv=True).double()
    q = ember.randn(2, 1, 4, dtype=ember.float64, requires_grad=True)
    k = ember.randn(3, 1, 4, dtype=ember.float64, requires_grad=True)
    kpm = ember.tensor([[False, True, False]])
    assert ember.autograd.gradcheck(lambda q, k: mha(q, k, k, key_padding_mask=kpm)[0], (q, k))


# ---- encoder and decoder layers --------------------------------------------------------


def _layer_pair(tcls, ecls, norm_first, activation, batch_first):
    kw = dict(
        dim_feedforward=16,
        dropout=0.1,
        norm_first=norm_first,
        batch_first=batch_first,
        activation=activation,
    )
    tm, em = _pair(tcls, ecls, E, H, **kw)
    tm.eval()
    em.eval()
    return tm, em


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer(norm_first, activation):
    tm, em = _layer_pair(
        torch.nn.TransformerEncoderLayer, nn.TransformerEncoderLayer, norm_first, activation, True
    )
    x = RS.standard_normal((N, L, E))
    causal = np.triu(np.ones((L, L), bool), 1)
    tin, ein = _inputs(x, causal, _bool_mask(N, L))

    def call(mod, x, m, kpm):
        return mod(x, src_mask=m, src_key_padding_mask=kpm)

    _compare(tm, em, tin, ein, call)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer(norm_first):
    tm, em = _layer_pair(
        torch.nn.TransformerDecoderLayer, nn.TransformerDecoderLayer, norm_first, "gelu", False
    )
    tgt, mem = RS.standard_normal((L, N, E)), RS.standard_normal((S, N, E))
    tmask = np.triu(np.full((L, L), -np.inf), 1)
    tin, ein = _inputs(tgt, mem, tmask, _bool_mask(N, L), _bool_mask(N, S))
    tin[2].requires_grad_(False)
    ein[2].requires_grad_(False)

    def call(mod, tgt, mem, tmask, tkpm, mkpm):
        return mod(
            tgt, mem, tgt_mask=tmask, tgt_key_padding_mask=tkpm, memory_key_padding_mask=mkpm
        )

    _compare(tm, em, tin, ein, call)


def test_encoder_stack_keys_and_outputs():
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(E, H, 16, dropout=0.0, dtype=torch.float64)
    tm = torch.nn.TransformerEncoder(
        tl, 2, norm=torch.nn.LayerNorm(E, dtype=torch.float64), enable_nested_tensor=False
    )
    el = nn.TransformerEncoderLayer(E, H, 16, dropout=0.0)
    em = nn.TransformerEncoder(el, 2, norm=nn.LayerNorm(E)).double()
    assert em.layers[0] is not el and em.layers[0].linear1 is not em.layers[1].linear1
    _load(tm, em)
    assert "layers.1.self_attn.in_proj_weight" in em.state_dict()
    x = RS.standard_normal((L, N, E))
    tin, ein = _inputs(x, _bool_mask(N, L))
    _compare(tm, em, tin, ein, lambda m, x, kpm: m(x, src_key_padding_mask=kpm))


def test_decoder_stack_and_full_transformer():
    kw = dict(
        d_model=E,
        nhead=H,
        num_encoder_layers=2,
        num_decoder_layers=1,
        dim_feedforward=16,
        dropout=0.0,
        batch_first=True,
    )
    tm, em = _pair(torch.nn.Transformer, nn.Transformer, **kw)
    src, tgt = RS.standard_normal((N, S, E)), RS.standard_normal((N, L, E))
    tin, ein = _inputs(src, tgt)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    emask = nn.Transformer.generate_square_subsequent_mask(L, dtype=ember.float64)

    def call(mod, src, tgt):
        return mod(src, tgt, tgt_mask=tmask if mod is tm else emask)

    _compare(tm, em, tin, ein, call)
    with pytest.raises(RuntimeError, match="batch number"):
        em(ein[0], ember.randn(N + 1, L, E, dtype=ember.float64))


def test_unbatched_encoder_layer_and_bad_activation():
    tm, em = _layer_pair(
        torch.nn.TransformerEncoderLayer, nn.TransformerEncoderLayer, False, "relu", False
    )
    (tx,), (ex,) = _inputs(RS.standard_normal((L, E)))
    _compare(tm, em, [tx], [ex], lambda m, x: m(x))
    with pytest.raises(RuntimeError, match="relu/gelu"):
        nn.TransformerEncoderLayer(E, H, activation="tanh")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_fully_padded_sequence_matches_torch():
    # need_weights=False (inside the layers) gives zero attention for a row with no key left,
    # as PyTorch's fused path does; need_weights=True gives NaN there, as PyTorch does.
    tm, em = _layer_pair(
        torch.nn.TransformerEncoderLayer, nn.TransformerEncoderLayer, False, "relu", False
    )
    kpm = _bool_mask(N, L)
    kpm[1] = True
    tin, ein = _inputs(RS.standard_normal((L, N, E)), kpm)
    _compare(tm, em, tin, ein, lambda m, x, kpm: m(x, src_key_padding_mask=kpm))
    out, _ = em.self_attn(ein[0], ein[0], ein[0], key_padding_mask=ein[1])
    assert np.isnan(out.detach().numpy()[:, 1]).all()

"""Shape ops through the op harness: views (view/reshape/permute/expand/squeeze ...), joins and
splits (cat/stack/split/chunk), and copies (flip/roll/repeat/tile/pad/tril/triu/diag)."""

import numpy as np
import pytest
from harness import OpCase, op_tests

import ember

_X = (2, 3, 4)


def _np_pad(x, pads, mode, value=0.0):
    widths = [(0, 0)] * x.ndim
    for i in range(len(pads) // 2):
        widths[x.ndim - 1 - i] = (pads[2 * i], pads[2 * i + 1])
    if mode == "constant":
        return np.pad(x, widths, constant_values=value)
    return np.pad(
        x, widths, mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    )


def _chunks(x, n, axis):
    size = -(-x.shape[axis] // n)
    return tuple(np.split(x, range(size, x.shape[axis], size), axis))


VIEWS = [
    OpCase("view", lambda m, x: x.view(4, 6), lambda x: x.reshape(4, 6), (_X,)),
    OpCase("view_infer", lambda m, x: x.view(-1, 4), lambda x: x.reshape(-1, 4), (_X,)),
    OpCase("view_tuple", lambda m, x: x.view((3, 8)), lambda x: x.reshape(3, 8), (_X,)),
    OpCase("reshape", lambda m, x: x.reshape(6, -1), lambda x: x.reshape(6, -1), (_X,)),
    OpCase("reshape_func", lambda m, x: m.reshape(x, (24,)), lambda x: x.reshape(24), (_X,)),
    OpCase(
        "reshape_of_transposed",
        lambda m, x: x.transpose(0, 2).reshape(4, 6),
        lambda x: x.transpose(2, 1, 0).reshape(4, 6),
        (_X,),
    ),
    OpCase("reshape_0dim", lambda m, x: x.reshape(1, 1), lambda x: x.reshape(1, 1), ((),)),
    OpCase("flatten", lambda m, x: x.flatten(), lambda x: x.reshape(-1), (_X,)),
    OpCase("flatten_range", lambda m, x: m.flatten(x, 1), lambda x: x.reshape(2, 12), (_X,)),
    OpCase("flatten_mid", lambda m, x: x.flatten(0, 1), lambda x: x.reshape(6, 4), (_X,)),
    OpCase(
        "unflatten", lambda m, x: x.unflatten(2, (2, 2)), lambda x: x.reshape(2, 3, 2, 2), (_X,)
    ),
    OpCase(
        "unflatten_infer",
        lambda m, x: m.unflatten(x, -1, (-1, 2)),
        lambda x: x.reshape(2, 3, 2, 2),
        (_X,),
    ),
    OpCase("squeeze_all", lambda m, x: x.squeeze(), np.squeeze, ((2, 1, 3, 1),)),
    OpCase("squeeze_dim", lambda m, x: x.squeeze(1), lambda x: x.squeeze(1), ((2, 1, 3, 1),)),
    OpCase("squeeze_dim_noop", lambda m, x: m.squeeze(x, 0), lambda x: x, ((2, 1, 3),)),
    OpCase(
        "squeeze_dims", lambda m, x: x.squeeze((1, 3)), lambda x: x.squeeze((1, 3)), ((2, 1, 3, 1),)
    ),
    OpCase("unsqueeze", lambda m, x: x.unsqueeze(1), lambda x: np.expand_dims(x, 1), (_X,)),
    OpCase("unsqueeze_neg", lambda m, x: m.unsqueeze(x, -1), lambda x: x[..., None], (_X,)),
    OpCase("permute", lambda m, x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), (_X,)),
    OpCase(
        "permute_func", lambda m, x: m.permute(x, (1, 2, 0)), lambda x: x.transpose(1, 2, 0), (_X,)
    ),
    OpCase("transpose", lambda m, x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2), (_X,)),
    OpCase(
        "transpose_neg", lambda m, x: m.transpose(x, -1, -2), lambda x: x.swapaxes(-1, -2), (_X,)
    ),
    OpCase("T", lambda m, x: x.T, lambda x: x.T, ((3, 4),)),
    OpCase("mT", lambda m, x: x.mT, lambda x: x.swapaxes(-1, -2), (_X,)),
    OpCase("t", lambda m, x: x.t(), lambda x: x.T, ((3, 4),)),
    OpCase("movedim", lambda m, x: m.movedim(x, 0, -1), lambda x: np.moveaxis(x, 0, -1), (_X,)),
    OpCase(
        "movedim_multi",
        lambda m, x: x.movedim((0, 1), (2, 0)),
        lambda x: np.moveaxis(x, (0, 1), (2, 0)),
        (_X,),
    ),
    OpCase(
        "expand", lambda m, x: x.expand(2, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4)), ((3, 1),)
    ),
    OpCase(
        "expand_keep",
        lambda m, x: x.expand(5, -1, 4),
        lambda x: np.broadcast_to(x, (5, 3, 4)),
        ((3, 1),),
    ),
    OpCase(
        "expand_as",
        lambda m, x, y: x.expand_as(y),
        lambda x, y: np.broadcast_to(x, y.shape),
        ((1, 4), (3, 4)),
    ),
    OpCase(
        "broadcast_to",
        lambda m, x: m.broadcast_to(x, (2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 3, 4)),
        ((4,),),
    ),
    OpCase("narrow", lambda m, x: x.narrow(2, 1, 2), lambda x: x[:, :, 1:3], (_X,)),
    OpCase("narrow_func", lambda m, x: m.narrow(x, 0, 1, 1), lambda x: x[1:2], (_X,)),
    OpCase("clone", lambda m, x: x.clone(), lambda x: x, (_X,)),
    OpCase(
        "contiguous", lambda m, x: x.transpose(0, 1).contiguous(), lambda x: x.swapaxes(0, 1), (_X,)
    ),
    OpCase(
        "contiguous_channels_last",
        lambda m, x: x.contiguous(memory_format=m.channels_last) * 2.0,
        lambda x: x * 2.0,
        ((2, 3, 4, 5),),
    ),
    OpCase(
        "clone_channels_last_3d",
        lambda m, x: x.clone(memory_format=m.channels_last_3d),
        lambda x: x,
        ((2, 3, 2, 3, 2),),
    ),
]

JOINS = [
    OpCase(
        "cat", lambda m, x, y: m.cat([x, y]), lambda x, y: np.concatenate([x, y]), ((2, 3), (4, 3))
    ),
    OpCase(
        "cat_dim",
        lambda m, x, y, z: m.cat((x, y, z), dim=-1),
        lambda x, y, z: np.concatenate([x, y, z], -1),
        ((2, 1), (2, 3), (2, 2)),
    ),
    OpCase(
        "cat_same_input",
        lambda m, x: m.cat([x, x], 1),
        lambda x: np.concatenate([x, x], 1),
        ((2, 3),),
    ),
    OpCase(
        "concat",
        lambda m, x, y: m.concat([x, y], 1),
        lambda x, y: np.concatenate([x, y], 1),
        ((2, 3), (2, 2)),
    ),
    OpCase(
        "stack", lambda m, x, y: m.stack([x, y]), lambda x, y: np.stack([x, y]), ((2, 3), (2, 3))
    ),
    OpCase(
        "stack_dim",
        lambda m, x, y, z: m.stack([x, y, z], dim=-1),
        lambda x, y, z: np.stack([x, y, z], -1),
        ((2, 3), (2, 3), (2, 3)),
    ),
    OpCase(
        "hstack", lambda m, x, y: m.hstack([x, y]), lambda x, y: np.hstack([x, y]), ((2, 3), (2, 1))
    ),
    OpCase(
        "hstack_1d", lambda m, x, y: m.hstack([x, y]), lambda x, y: np.hstack([x, y]), ((3,), (2,))
    ),
    OpCase(
        "vstack", lambda m, x, y: m.vstack([x, y]), lambda x, y: np.vstack([x, y]), ((2, 3), (3,))
    ),
    OpCase(
        "split_int", lambda m, x: x.split(2, 1), lambda x: tuple(np.split(x, [2], 1)), ((2, 3, 2),)
    ),
    OpCase(
        "split_sizes",
        lambda m, x: m.split(x, [1, 3], dim=-1),
        lambda x: tuple(np.split(x, [1], -1)),
        (_X,),
    ),
    OpCase("chunk", lambda m, x: x.chunk(2, 2), lambda x: _chunks(x, 2, 2), (_X,)),
    OpCase("chunk_uneven", lambda m, x: m.chunk(x, 3, 0), lambda x: _chunks(x, 3, 0), ((5, 2),)),
    OpCase("chunk_fewer", lambda m, x: x.chunk(4, 1), lambda x: _chunks(x, 4, 1), (_X,)),
    OpCase("unbind", lambda m, x: x.unbind(1), lambda x: tuple(np.moveaxis(x, 1, 0)), (_X,)),
    OpCase("unbind_func", lambda m, x: m.unbind(x), lambda x: tuple(x), ((3, 2),)),
]

COPIES = [
    OpCase("flip", lambda m, x: x.flip(0), lambda x: np.flip(x, 0), (_X,)),
    OpCase("flip_dims", lambda m, x: m.flip(x, (0, -1)), lambda x: np.flip(x, (0, -1)), (_X,)),
    OpCase("flip_varargs", lambda m, x: x.flip(0, -1), lambda x: np.flip(x, (0, -1)), (_X,)),
    OpCase("roll", lambda m, x: x.roll(1, 2), lambda x: np.roll(x, 1, 2), (_X,)),
    OpCase("roll_neg", lambda m, x: m.roll(x, -2, 1), lambda x: np.roll(x, -2, 1), (_X,)),
    OpCase(
        "roll_multi",
        lambda m, x: x.roll((1, -1), (0, 2)),
        lambda x: np.roll(x, (1, -1), (0, 2)),
        (_X,),
    ),
    OpCase("roll_flat", lambda m, x: m.roll(x, 5), lambda x: np.roll(x, 5), (_X,)),
    OpCase("repeat", lambda m, x: x.repeat(2, 3), lambda x: np.tile(x, (2, 3)), ((2, 3),)),
    OpCase(
        "repeat_more_dims",
        lambda m, x: x.repeat(2, 1, 2),
        lambda x: np.tile(x, (2, 1, 2)),
        ((2, 3),),
    ),
    OpCase("tile", lambda m, x: x.tile((2,)), lambda x: np.tile(x, (1, 2)), ((2, 3),)),
    OpCase(
        "tile_func", lambda m, x: m.tile(x, (2, 1, 2)), lambda x: np.tile(x, (2, 1, 2)), ((2, 3),)
    ),
    OpCase(
        "pad_constant",
        lambda m, x: m.F.pad(x, (1, 2)),
        lambda x: _np_pad(x, (1, 2), "constant"),
        (_X,),
    ),
    OpCase(
        "pad_constant_value",
        lambda m, x: m.F.pad(x, (1, 0, 0, 2), value=1.5),
        lambda x: _np_pad(x, (1, 0, 0, 2), "constant", 1.5),
        (_X,),
    ),
    OpCase(
        "pad_negative",
        lambda m, x: m.F.pad(x, (-1, 1, 0, -1)),
        lambda x: _np_pad(x[:, :-1, 1:], (0, 1), "constant"),
        (_X,),
    ),
    OpCase(
        "pad_reflect",
        lambda m, x: m.F.pad(x, (2, 1), mode="reflect"),
        lambda x: _np_pad(x, (2, 1), "reflect"),
        (_X,),
    ),
    OpCase(
        "pad_reflect_2d",
        lambda m, x: m.F.pad(x, (1, 1, 2, 0), mode="reflect"),
        lambda x: _np_pad(x, (1, 1, 2, 0), "reflect"),
        ((1, 2, 3, 4),),
    ),
    OpCase(
        "pad_replicate",
        lambda m, x: m.F.pad(x, (2, 1), mode="replicate"),
        lambda x: _np_pad(x, (2, 1), "replicate"),
        (_X,),
    ),
    OpCase(
        "pad_replicate_2d",
        lambda m, x: m.F.pad(x, (1, 2, 1, 0), mode="replicate"),
        lambda x: _np_pad(x, (1, 2, 1, 0), "replicate"),
        ((1, 2, 3, 4),),
    ),
    OpCase(
        "pad_circular",
        lambda m, x: m.F.pad(x, (1, 2), mode="circular"),
        lambda x: _np_pad(x, (1, 2), "circular"),
        (_X,),
    ),
    OpCase(
        "pad_circular_2d",
        lambda m, x: m.F.pad(x, (1, 1, 2, 1), mode="circular"),
        lambda x: _np_pad(x, (1, 1, 2, 1), "circular"),
        ((1, 2, 3, 4),),
    ),
    OpCase("tril", lambda m, x: x.tril(), np.tril, ((4, 4),)),
    OpCase("tril_k", lambda m, x: m.tril(x, -1), lambda x: np.tril(x, -1), ((3, 5),)),
    OpCase("tril_batched", lambda m, x: m.tril(x, 1), lambda x: np.tril(x, 1), ((2, 3, 3),)),
    OpCase("triu", lambda m, x: x.triu(), np.triu, ((4, 4),)),
    OpCase("triu_k", lambda m, x: m.triu(x, 1), lambda x: np.triu(x, 1), ((5, 3),)),
    OpCase("triu_batched_neg", lambda m, x: m.triu(x, -1), lambda x: np.triu(x, -1), ((2, 3, 4),)),
    OpCase("diag_vec", lambda m, x: m.diag(x), np.diag, ((3,),)),
    OpCase("diag_vec_k", lambda m, x: x.diag(1), lambda x: np.diag(x, 1), ((3,),)),
    OpCase("diag_vec_neg_k", lambda m, x: m.diag(x, -2), lambda x: np.diag(x, -2), ((2,),)),
    OpCase("diag_mat", lambda m, x: m.diag(x), np.diag, ((3, 3),)),
    OpCase("diag_wide", lambda m, x: m.diag(x), np.diag, ((2, 4),)),
    OpCase("diag_tall_k", lambda m, x: m.diag(x, -1), lambda x: np.diag(x, -1), ((4, 2),)),
    OpCase("diag_wide_k", lambda m, x: x.diag(2), lambda x: np.diag(x, 2), ((3, 5),)),
]

CASES = VIEWS + JOINS + COPIES

test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


# ---- views share memory and version counters; copies do not ---------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.view(6, 4),
        lambda x: x.reshape(4, 6),
        lambda x: x.transpose(0, 1),
        lambda x: x.permute(2, 1, 0),
        lambda x: x[0],
        lambda x: x[:, 1:],
        lambda x: x[..., None],
        lambda x: x.unsqueeze(0),
        lambda x: x.squeeze(),
        lambda x: x.flatten(),
        lambda x: x.narrow(1, 0, 2),
        lambda x: x.split(1)[1],
        lambda x: x.chunk(2, 2)[0],
        lambda x: x.unbind(0)[1],
        lambda x: x[:, :1].expand(2, 3, 4),
        lambda x: x.T,
        lambda x: x.mT,
        lambda x: x.movedim(0, 2),
        lambda x: x.unflatten(2, (2, 2)),
        lambda x: x.detach(),
    ],
)
def test_views_share_memory_and_version(make):
    x = ember.zeros(2, 3, 4)
    v = make(x)
    assert np.shares_memory(v.numpy(), x.numpy())
    before = v._version
    x.add_(1.0)
    assert v._version == before + 1
    assert float(v.sum()) == v.numel()


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.flip(0),
        lambda x: x.roll(1, 0),
        lambda x: x.repeat(1, 1, 1),
        lambda x: x.clone(),
        lambda x: x[[0, 1]],
        lambda x: x[x > 0],
        lambda x: ember.cat([x, x]),
        lambda x: ember.stack([x]),
        lambda x: x.tril(),
    ],
)
def test_copies_do_not_share_memory(make):
    x = ember.ones(2, 3, 4)
    c = make(x)
    assert not np.shares_memory(c.numpy(), x.numpy())


def test_view_of_non_contiguous_raises_and_reshape_copies():
    x = ember.zeros(2, 3).t()
    with pytest.raises(RuntimeError, match="view"):
        x.view(6)
    y = x.reshape(6)
    assert not np.shares_memory(y.numpy(), x.numpy())


def test_reshape_bad_size_raises():
    with pytest.raises(RuntimeError, match="invalid for input of size 6"):
        ember.zeros(2, 3).reshape(4, 2)


def test_expand_bad_size_raises():
    with pytest.raises(RuntimeError, match="expanded size"):
        ember.zeros(2, 3).expand(3, 3)


def test_cat_errors_name_the_op_and_sizes():
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        ember.cat([ember.zeros(2, 3), ember.zeros(2, 4)])
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        ember.cat([ember.zeros(2, 3), ember.zeros(3)])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        ember.stack([ember.zeros(2), ember.zeros(3)])


def test_cat_promotes_dtypes():
    out = ember.cat([ember.tensor([1, 2]), ember.tensor([0.5])])
    assert out.dtype == ember.float32
    assert out.tolist() == [1.0, 2.0, 0.5]


def test_cat_skips_legacy_empty_1d():
    out = ember.cat([ember.zeros(0), ember.ones(2, 3)])
    assert out.shape == (2, 3)


def test_permute_errors():
    with pytest.raises(RuntimeError):
        ember.zeros(2, 3).permute(0)
    with pytest.raises(RuntimeError):
        ember.zeros(2, 3).permute(0, 0)


def test_split_sizes_must_sum():
    with pytest.raises(RuntimeError, match="split_with_sizes"):
        ember.zeros(5).split([2, 2])


def test_shape_is_size_and_size_method():
    x = ember.zeros(2, 3)
    assert x.shape == (2, 3) and isinstance(x.shape, ember.Size)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-2) == 2
    assert repr(x.shape) == "ember.Size([2, 3])"


def test_t_transposes_matrices_keeps_vectors_and_refuses_more_dims():
    m = ember.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(m.t().numpy(), np.arange(6.0).reshape(2, 3).T)
    assert m.t()._data.base is not None  # a view, as in PyTorch
    v = ember.arange(3.0)
    np.testing.assert_array_equal(v.t().numpy(), [0.0, 1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"t\(\).*3D"):
        ember.ones(2, 3, 4).t()

"""ember.save / ember.load with ember's own format (safetensors + JSON structure)."""

import json
import os
import struct
from collections import OrderedDict

import ml_dtypes
import numpy as np
import pytest

import ember
from ember.serialization import atomic

DTYPES = [
    ember.bool,
    ember.uint8,
    ember.int8,
    ember.int16,
    ember.int32,
    ember.int64,
    ember.float16,
    ember.bfloat16,
    ember.float32,
    ember.float64,
]


def _same(a, b):
    assert isinstance(b, ember.Tensor)
    assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(a.numpy().astype(np.float64), b.numpy().astype(np.float64))


def _sample(dtype, shape):
    values = (np.arange(int(np.prod(shape))) % 7 - 3).reshape(shape)
    return ember.tensor(values.astype(np.float64)).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (5,), (2, 3, 4)], ids=str)
def test_round_trip_every_dtype_and_shape(tmp_path, dtype, shape):
    t = _sample(dtype, shape)
    ember.save({"t": t}, tmp_path / "a.safetensors")
    _same(t, ember.load(tmp_path / "a.safetensors")["t"])


def test_nested_structure_with_int_and_tuple_keys(tmp_path):
    obj = {
        "model": OrderedDict([("w", ember.randn(3, 2)), ("b", ember.zeros(2))]),
        "state": {0: {"step": 4, "buf": ember.ones(2)}, (1, "x"): [1.5, None, True, "s"]},
        "nums": (1, 2.0, float("inf"), float("-inf"), 2**70, -(2**40)),
        "flags": {True: "t", None: "n", 2.5: "f"},
        "size": ember.Size([2, 3]),
        "dtype": ember.bfloat16,
        "empty": [[], (), {}],
    }
    path = tmp_path / "nested.safetensors"
    ember.save(obj, path)
    back = ember.load(path)
    assert type(back["model"]) is OrderedDict and list(back["model"]) == ["w", "b"]
    _same(obj["model"]["w"], back["model"]["w"])
    assert back["state"][0]["step"] == 4 and (1, "x") in back["state"]
    assert back["state"][(1, "x")] == [1.5, None, True, "s"]
    assert back["nums"] == obj["nums"] and isinstance(back["nums"][1], float)
    assert back["flags"] == obj["flags"]
    assert back["size"] == (2, 3) and isinstance(back["size"], ember.Size)
    assert back["dtype"] is ember.bfloat16 and back["empty"] == [[], (), {}]


def test_nan_and_non_contiguous_and_repeated_tensor(tmp_path):
    base = ember.arange(12.0).reshape(3, 4)
    view = base.T
    ember.save({"v": view, "again": view, "nan": float("nan")}, tmp_path / "v.safetensors")
    back = ember.load(tmp_path / "v.safetensors")
    _same(view, back["v"])
    assert back["v"].is_contiguous() and back["again"] is back["v"]
    assert np.isnan(back["nan"])


def test_views_are_saved_as_independent_copies(tmp_path):
    base = ember.arange(6.0)
    ember.save({"base": base, "part": base[2:4]}, tmp_path / "s.safetensors")
    back = ember.load(tmp_path / "s.safetensors")
    back["part"].add_(100.0)
    assert back["base"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_requires_grad_round_trips(tmp_path):
    p = ember.nn.Parameter(ember.ones(2))
    ember.save([p, ember.ones(2)], tmp_path / "p.safetensors")
    a, b = ember.load(tmp_path / "p.safetensors")
    assert a.requires_grad and not b.requires_grad


def test_scalars_and_file_objects(tmp_path):
    path = tmp_path / "n.bin"
    with open(path, "wb") as fh:
        ember.save(3, fh)
    with open(path, "rb") as fh:
        assert ember.load(fh) == 3
    ember.save(ember.tensor(2.5), str(path))
    assert ember.load(str(path)).item() == 2.5


def test_model_state_dict_round_trip_gives_identical_outputs(tmp_path):
    def net():
        return ember.nn.Sequential(
            ember.nn.Conv2d(3, 4, 3), ember.nn.BatchNorm2d(4), ember.nn.Flatten(),
            ember.nn.Linear(4 * 4 * 4, 2),
        )  # fmt: skip

    a = net()
    a.train()
    a(ember.randn(2, 3, 6, 6))  # move the running statistics
    a.eval()
    ember.save(a.state_dict(), tmp_path / "model.safetensors")
    b = net().eval()
    b.load_state_dict(ember.load(tmp_path / "model.safetensors"))
    x = ember.randn(2, 3, 6, 6)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    assert b.state_dict()["1.num_batches_tracked"].dtype == ember.int64


def test_optimizer_state_dict_round_trip(tmp_path):
    model = ember.nn.Linear(3, 2)
    opt = ember.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    for _ in range(2):
        opt.zero_grad()
        model(ember.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    sd = opt.state_dict()
    ember.save({"model": model.state_dict(), "optim": sd, "epoch": 3}, tmp_path / "ck.st")
    back = ember.load(tmp_path / "ck.st")
    assert back["epoch"] == 3 and back["optim"]["param_groups"] == sd["param_groups"]
    assert set(back["optim"]["state"]) == {0, 1}
    for i in (0, 1):
        for k, v in sd["state"][i].items():
            _same(v, back["optim"]["state"][i][k])
    opt2 = ember.optim.Adam(ember.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back["optim"])
    assert opt2.param_groups[0]["betas"] == (0.8, 0.9)


def test_flat_dict_is_plain_safetensors(tmp_path):
    path = tmp_path / "flat.safetensors"
    ember.save({"a": ember.ones(2, dtype=ember.float16), "b": ember.tensor([1, 2])}, path)
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0
    header = json.loads(raw[8 : 8 + n])
    assert header["a"] == {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}
    assert header["b"] == {"dtype": "I64", "shape": [2], "data_offsets": [4, 20]}
    assert all(isinstance(v, str) for v in header["__metadata__"].values())
    assert len(raw) == 8 + n + 20


def _handmade_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, (code, arr) in tensors.items():
        blob = arr.astype(arr.dtype.newbyteorder("<")).tobytes() if arr.size else b""
        header[name] = {"dtype": code, "shape": list(arr.shape)}
        header[name]["data_offsets"] = [offset, offset + len(blob)]
        offset += len(blob)
        blobs.append(blob)
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def test_handmade_safetensors_file_loads(tmp_path):
    path = tmp_path / "hand.safetensors"
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    bf = np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16)
    mask = np.array([True, False, True])
    tensors = {"w": ("F32", w), "bf": ("BF16", bf), "mask": ("BOOL", mask)}
    _handmade_safetensors(path, tensors, {"format": "pt"})
    back = ember.load(path)
    assert type(back) is dict and list(back) == ["w", "bf", "mask"]
    np.testing.assert_array_equal(back["w"].numpy(), w)
    assert back["bf"].dtype == ember.bfloat16 and back["bf"].tolist() == [1.5, -2.0]
    assert back["mask"].tolist() == [True, False, True]


def test_safetensors_with_bad_offsets_or_dtype_is_rejected(tmp_path):
    path = tmp_path / "bad.safetensors"
    raw = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(8))
    with pytest.raises(ValueError, match="'x'"):
        ember.load(path)
    raw = json.dumps({"x": {"dtype": "U16", "shape": [1], "data_offsets": [0, 2]}}).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(2))
    with pytest.raises(TypeError, match="U16"):
        ember.load(path)


def test_unsupported_objects_raise_and_leave_the_file(tmp_path):
    path = tmp_path / "keep.safetensors"
    ember.save({"a": ember.ones(1)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="set"):
        ember.save({"a": {1, 2}}, path)
    with pytest.raises(ValueError, match="format"):
        ember.save({}, path, format="pickle")
    assert path.read_bytes() == before


def test_failed_save_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    ember.save({"w": ember.ones(3)}, path)
    before = path.read_bytes()

    def crash(fd):
        raise OSError("disk on fire")

    monkeypatch.setattr(atomic.os, "fsync", crash)
    with pytest.raises(OSError, match="disk on fire"):
        ember.save({"w": ember.zeros(1000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_failure_while_writing_data_is_atomic(tmp_path, monkeypatch):
    from ember.serialization import safetensors_io

    path = tmp_path / "ckpt.pth"
    ember.save({"w": ember.ones(3)}, path, format="torch")
    before = path.read_bytes()

    def half_then_fail(fh, arrays, metadata=None):
        fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors_io, "write", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        ember.save({"w": ember.zeros(3)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.pth"]


def test_map_location(tmp_path):
    ember.save({"a": ember.ones(2)}, tmp_path / "m.st")
    for where in (None, "cpu", ember.device("cpu"), {"cpu": "cpu"}):
        assert ember.load(tmp_path / "m.st", map_location=where)["a"].device == ember.device("cpu")
    with pytest.raises(TypeError, match="map_location"):
        ember.load(tmp_path / "m.st", map_location=3)


def test_unknown_format_is_rejected(tmp_path):
    (tmp_path / "junk").write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(ValueError, match="unrecognized file format"):
        ember.load(tmp_path / "junk")

"""Reading PyTorch-format checkpoints without torch, and refusing pickles that would run code.

Every file here is crafted by hand (opcode by opcode), so these tests need no torch.
"""

import io
import pickle
import struct
import zipfile

import numpy as np
import pytest

import ember
from ember.serialization import ForbiddenGlobalError

MAGIC = 0x1950A86A20F9469CFC6C


def _str(s):
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _call(module, name, arg):
    """A protocol-2 pickle of ``module.name(arg)``."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"(" + _str(arg) + b"tR."


def _stack_global_call(module, name, arg):
    """The protocol-4 form: STACK_GLOBAL takes the names from the stack."""
    return b"\x80\x04" + _str(module) + _str(name) + b"\x93(" + _str(arg) + b"tR."


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))  # an arbitrary callable, pickled by Python itself


def _zip(pkl, folder="archive"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{folder}/data.pkl", pkl)
        zf.writestr(f"{folder}/version", "3\n")
    return buf.getvalue()


def _legacy(pkl, storages=b""):
    head = pickle.dumps(MAGIC, 2) + pickle.dumps(1001, 2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2)
    return head + pkl + storages


def _payloads(sentinel):
    p = str(sentinel)
    yield "os.system", _call("os", "system", f"touch {p}")
    yield "posix.system", _stack_global_call("posix", "system", f"touch {p}")
    yield "builtins.eval", _call("builtins", "eval", f"open({p!r}, 'w')")
    yield "subprocess.Popen", _call("subprocess", "Popen", f"touch {p}")
    yield "io.open", pickle.dumps(_Evil(p), 2)


@pytest.mark.parametrize("container", ["zip", "legacy", "zip-other-folder"])
def test_malicious_pickles_are_refused_without_running(tmp_path, container):
    sentinel = tmp_path / "pwned"
    for name, pkl in _payloads(sentinel):
        if container == "legacy":
            raw = _legacy(pkl)
        else:
            raw = _zip(pkl, "archive" if container == "zip" else "resnet18-f37072fd")
        path = tmp_path / "evil.pth"
        path.write_bytes(raw)
        with pytest.raises(ForbiddenGlobalError, match=name.replace(".", r"\.")) as info:
            ember.load(path, weights_only=False)
        assert isinstance(info.value, pickle.UnpicklingError)
        assert "nothing from the file was executed" in str(info.value)
        assert not sentinel.exists(), name


def test_malicious_legacy_header_is_refused(tmp_path):
    sentinel = tmp_path / "pwned"
    (tmp_path / "evil.pt").write_bytes(_call("os", "system", f"touch {sentinel}"))
    with pytest.raises(ForbiddenGlobalError, match=r"os\.system"):
        ember.load(tmp_path / "evil.pt")
    assert not sentinel.exists()


def _rebuild(storage_id, offset, size, stride):
    """Opcodes for _rebuild_tensor_v2(persistent storage, offset, size, stride, False, {})."""
    tup = lambda xs: b"(" + b"".join(b"K" + bytes([x]) for x in xs) + b"t"  # noqa: E731
    return (
        b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage_id + b"Q" + b"K" + bytes([offset])
        + tup(size) + tup(stride) + b"\x89ccollections\nOrderedDict\n)RtR"
    )  # fmt: skip


def _storage_id(kind, key, numel, legacy=False):
    tail = b"N" if legacy else b""
    return (
        b"(" + _str("storage") + f"ctorch\n{kind}\n".encode() + _str(key) + _str("cpu")
        + b"K" + bytes([numel]) + tail + b"t"
    )  # fmt: skip


def test_handmade_legacy_file_with_shared_storage_loads(tmp_path):
    data = np.arange(6, dtype=np.float32)
    sid = _storage_id("FloatStorage", "140", 6, legacy=True)
    pkl = b"\x80\x02}(" + _str("t") + _rebuild(sid, 0, (2, 3), (3, 1))
    pkl += _str("col") + _rebuild(sid, 1, (2,), (3,)) + b"u."
    storages = pickle.dumps(["140"], 2) + struct.pack("<q", 6) + data.tobytes()
    (tmp_path / "old.pt").write_bytes(_legacy(pkl, storages))
    back = ember.load(tmp_path / "old.pt")
    assert back["t"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["col"].tolist() == [1.0, 4.0] and back["col"].is_contiguous()


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    pkl = b"\x80\x02" + _rebuild(_storage_id("FloatStorage", "0", 4), 0, (3,), (2,)) + b"."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/data/0", np.zeros(4, np.float32).tobytes())
    (tmp_path / "oob.pth").write_bytes(buf.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="reaches element 4"):
        ember.load(tmp_path / "oob.pth")


def test_torch_format_round_trip_through_ember(tmp_path):
    sd = {
        "w": ember.randn(3, 4).T,
        "n": ember.tensor(7),
        "bf": ember.ones(2, dtype=ember.bfloat16),
        "p": ember.nn.Parameter(ember.ones(2)),
        "groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1]}],
        "state": {0: {"step": 2**40, "x": -(2**70)}},
        "empty": ember.zeros(0, 3),
    }
    ember.save(sd, tmp_path / "x.pth", format="torch")
    back = ember.load(tmp_path / "x.pth")
    for k in ("w", "n", "bf", "empty"):
        assert back[k].dtype == sd[k].dtype and back[k].shape == sd[k].shape
        np.testing.assert_array_equal(back[k].float().numpy(), sd[k].float().numpy())
    assert back["p"].requires_grad and back["groups"] == sd["groups"]
    assert back["state"] == sd["state"]


def test_truncated_storage_is_reported(tmp_path):
    ember.save({"w": ember.ones(4)}, tmp_path / "a.pth", format="torch")
    with (
        zipfile.ZipFile(tmp_path / "a.pth") as src,
        zipfile.ZipFile(tmp_path / "b.pth", "w") as dst,
    ):
        for name in src.namelist():
            raw = src.read(name)
            dst.writestr(name, raw[:6] if name.endswith("data/0") else raw)
    with pytest.raises(pickle.UnpicklingError, match="holds 6 bytes"):
        ember.load(tmp_path / "b.pth")


def test_cuda_location_without_cuda_needs_map_location(tmp_path):
    if ember.cuda.is_available():
        pytest.skip("CUDA is available here")
    pkl = b"\x80\x02" + _rebuild(_storage_id("FloatStorage", "0", 2), 0, (2,), (1,)) + b"."
    pkl = pkl.replace(_str("cpu"), _str("cuda:0"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/data/0", np.ones(2, np.float32).tobytes())
    (tmp_path / "gpu.pth").write_bytes(buf.getvalue())
    with pytest.raises(RuntimeError, match="map_location='cpu'"):
        ember.load(tmp_path / "gpu.pth")
    assert ember.load(tmp_path / "gpu.pth", map_location="cpu").tolist() == [1.0, 1.0]

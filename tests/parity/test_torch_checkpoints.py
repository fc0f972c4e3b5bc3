"""PyTorch checkpoints load in ember with torch unimportable, and ember's torch-format files
load in torch.load(weights_only=True)."""

import os
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

import ember

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter where `import torch` fails, then compares with saved .npy files.
_NO_TORCH_LOADER = textwrap.dedent(
    """
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
    sys.meta_path.insert(0, _NoTorch())
    import numpy as np, ember
    ckpt, ref = sys.argv[1], np.load(sys.argv[2])
    sd = ember.load(ckpt)
    assert "torch" not in sys.modules
    for key, want in ref.items():
        got = sd[key]
        assert got.is_contiguous(), key
        assert list(got.shape) == list(want.shape), (key, got.shape, want.shape)
        np.testing.assert_array_equal(got.float().numpy(), want, err_msg=key)
    print("ok", len(ref))
    """
)


def _state_dict():
    torch.manual_seed(0)
    base = torch.randn(6, 8)
    sd = OrderedDict()
    sd["conv1.weight"] = torch.randn(4, 3, 3, 3)
    sd["bn1.weight"] = torch.rand(4)
    sd["bn1.bias"] = torch.randn(4)
    sd["bn1.running_mean"] = torch.randn(4)
    sd["bn1.running_var"] = torch.rand(4)
    sd["bn1.num_batches_tracked"] = torch.tensor(17)
    sd["layer1.0.conv1.weight"] = torch.randn(4, 4, 1, 1)
    sd["fc.weight"] = base.t()  # non-contiguous view
    sd["fc.bias"] = base[2, 1:7]  # offset view of the same storage
    sd["half"] = torch.randn(3, 2).half()
    sd["bf16"] = torch.randn(5).bfloat16()
    sd["mask"] = torch.tensor([True, False])
    sd["ids"] = torch.arange(4, dtype=torch.int32)
    sd["empty"] = torch.zeros(0, 3)
    return sd


def _reference(sd, path):
    np.savez(path, **{k: v.float().numpy() for k, v in sd.items()})


def _load_without_torch(ckpt, ref):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "packages" / "core" / "src"))
    cmd = [sys.executable, "-c", _NO_TORCH_LOADER, str(ckpt), str(ref)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_zip_checkpoint_loads_without_torch(tmp_path):
    sd = _state_dict()
    torch.save(sd, tmp_path / "model.pth")
    _reference(sd, tmp_path / "ref.npz")
    _load_without_torch(tmp_path / "model.pth", tmp_path / "ref.npz")


def test_legacy_checkpoint_loads_without_torch(tmp_path):
    sd = _state_dict()
    torch.save(sd, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    _reference(sd, tmp_path / "ref.npz")
    _load_without_torch(tmp_path / "old.pth", tmp_path / "ref.npz")


def test_dtypes_parameters_and_structure_match_torch(tmp_path):
    obj = {"sd": _state_dict(), "p": torch.nn.Parameter(torch.ones(2)), "epoch": 3}
    obj["optim"] = {"state": {0: {"step": torch.tensor(2.0)}}, "param_groups": [{"lr": 0.1}]}
    for legacy in (False, True):
        path = tmp_path / f"obj{legacy}.pt"
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
        back = ember.load(path)
        assert type(back["sd"]) is OrderedDict and list(back["sd"]) == list(obj["sd"])
        for k, v in obj["sd"].items():
            assert back["sd"][k].dtype.name == str(v.dtype).removeprefix("torch.")
        assert back["p"].requires_grad and back["epoch"] == 3
        assert back["optim"]["state"][0]["step"].item() == 2.0


def test_ember_torch_format_loads_in_torch(tmp_path):
    ember.manual_seed(0)
    sd = OrderedDict()
    sd["w"] = ember.randn(4, 3).T
    sd["n"] = ember.tensor(5)
    sd["half"] = ember.randn(2, 2).half()
    sd["bf"] = ember.randn(3).to(ember.bfloat16)
    sd["u8"] = ember.tensor([1, 255]).to(ember.uint8)
    sd["mask"] = ember.tensor([True, False])
    sd["empty"] = ember.zeros(2, 0)
    obj = {"model": sd, "optim": {"state": {0: {"step": 3}}, "groups": [(0.9, 0.99)]}, "e": 2.5}
    ember.save(obj, tmp_path / "e.pth", format="torch")
    back = torch.load(tmp_path / "e.pth", weights_only=True)
    assert type(back["model"]) is OrderedDict and list(back["model"]) == list(sd)
    for k, v in sd.items():
        t = back["model"][k]
        assert str(t.dtype) == f"torch.{v.dtype.name}" and tuple(t.shape) == tuple(v.shape)
        np.testing.assert_array_equal(t.float().numpy(), v.float().numpy())
    assert back["optim"] == {"state": {0: {"step": 3}}, "groups": [(0.9, 0.99)]}
    assert back["e"] == 2.5


def test_ember_state_dict_loads_into_torch_module(tmp_path):
    model = ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.BatchNorm1d(4))
    ember.save(model.state_dict(), tmp_path / "m.pth", format="torch")
    ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ref.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True))
    np.testing.assert_array_equal(ref[0].weight.detach().numpy(), model[0].weight.detach().numpy())

"""Weights enums: complete meta, torchvision's URLs, eval presets, and loading paths (a local
file, a cache file with a bad hash, offline mode, a local 127.0.0.1 server)."""

import functools
import http.server
import io
import os
import threading

import numpy as np
import pytest
from PIL import Image

import ember
from ember_vision import models, weights
from ember_vision.models._api import build

ENUMS = [getattr(weights, n) for n in weights.__all__ if n.endswith("_Weights")]
# torchvision's eval crop/resize per file (resize 232 marks its V2 recipe)
V2_FILES = {
    "resnet50-11ad3fa6.pth",
    "resnet101-cd907fc2.pth",
    "resnet152-f82ba261.pth",
    "resnext50_32x4d-1a0047aa.pth",
    "wide_resnet50_2-9ba9bcbe.pth",
}


def test_every_enum_member_has_complete_meta():
    assert len(ENUMS) == 15
    for enum in ENUMS:
        assert "DEFAULT" in enum.__members__
        for member in enum:
            meta = member.meta
            assert member.url.startswith("https://download.pytorch.org/models/")
            assert len(member.sha256) == 8 and int(member.sha256, 16) >= 0
            assert len(meta["categories"]) == 1000
            assert meta["categories"][0] == "tench" and meta["categories"][1] == "goldfish"
            assert isinstance(meta["num_params"], int) and meta["num_params"] > 10**7
            acc = meta["_metrics"]["ImageNet-1K"]
            assert 60 < acc["acc@1"] < acc["acc@5"] < 100
            assert meta["recipe"].startswith("https://github.com/pytorch/vision/")
            preset = member.transforms()
            assert preset.crop_size == [224]
            name = os.path.basename(member.url)
            assert preset.resize_size == [232 if name in V2_FILES else 256]


def test_known_urls_and_defaults():
    assert (
        weights.ResNet18_Weights.IMAGENET1K_V1.url
        == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    )
    assert weights.ResNet50_Weights.DEFAULT is weights.ResNet50_Weights.IMAGENET1K_V2
    assert weights.VGG16_BN_Weights.DEFAULT.url.endswith("/vgg16_bn-6c64b313.pth")
    assert weights.ResNet18_Weights.DEFAULT.meta["_metrics"]["ImageNet-1K"]["acc@1"] == 69.758


def test_get_weight_and_verify():
    assert models.get_weight("ResNet50_Weights.DEFAULT") is weights.ResNet50_Weights.IMAGENET1K_V2
    assert models.get_weight("VGG11_Weights.IMAGENET1K_V1") is weights.VGG11_Weights.DEFAULT
    assert models.get_model_weights("resnet18") is weights.ResNet18_Weights
    with pytest.raises(ValueError):
        models.get_weight("ResNet50_Weights.NOPE")
    with pytest.raises(ValueError):
        models.get_weight("Nope_Weights.DEFAULT")
    with pytest.raises(TypeError):
        weights.ResNet18_Weights.verify(weights.VGG11_Weights.DEFAULT)


def test_preset_matches_hand_computed_values():
    # a 300x400 (w x h) constant image: resize shorter side to 256 -> 256x341, crop 224
    img = Image.new("RGB", (300, 400), (255, 128, 0))
    out = weights.ResNet18_Weights.DEFAULT.transforms()(img).numpy()
    assert out.shape == (3, 224, 224)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (np.array([255, 128, 0]) / 255.0 - mean) / std
    np.testing.assert_allclose(out[:, 100, 100], expected, rtol=1e-5)


def test_local_file_weights_and_num_classes_rule(tmp_path):
    ember.manual_seed(0)
    src = models.resnet18(num_classes=2)
    path = tmp_path / "mine.pth"
    ember.save(src.state_dict(), str(path))
    loaded = models.resnet18(weights=str(path), num_classes=2)
    np.testing.assert_array_equal(loaded.fc.weight.detach().numpy(), src.fc.weight.detach().numpy())
    with pytest.raises(ValueError, match="num_classes"):
        models.resnet18(weights="DEFAULT", num_classes=2)
    with pytest.raises(ValueError, match="neither"):
        models.resnet18(weights=str(tmp_path / "missing.pth"))


def test_cached_file_with_bad_hash_and_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    monkeypatch.setenv("EMBER_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="resnet18-f37072fd.pth"):
        models.resnet18(weights="DEFAULT")
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "resnet18-f37072fd.pth").write_bytes(b"not the real checkpoint")
    with pytest.raises(RuntimeError, match="invalid hash"):
        models.resnet18(weights=weights.ResNet18_Weights.IMAGENET1K_V1)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_from_local_server_checks_hash(tmp_path, monkeypatch):
    import hashlib

    ember.manual_seed(1)
    src = models.resnet18(num_classes=1000)
    buf = io.BytesIO()
    ember.save(src.state_dict(), buf)
    data = buf.getvalue()
    name = f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    served = tmp_path / "srv"
    served.mkdir()
    (served / name).write_bytes(data)
    handler = functools.partial(_Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EMBER_OFFLINE", raising=False)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{name}"
        member = weights.Weights(url, None, {"categories": weights.imagenet_categories()})

        class Local_Weights(weights.WeightsEnum):
            IMAGENET1K_V1 = member
            DEFAULT = IMAGENET1K_V1

        model = build(
            lambda n: models.ResNet(models.BasicBlock, [2, 2, 2, 2], num_classes=n),
            Local_Weights,
            "DEFAULT",
            False,
            1000,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (tmp_path / "home" / "hub" / "checkpoints" / name).exists()
    np.testing.assert_array_equal(
        model.conv1.weight.detach().numpy(), src.conv1.weight.detach().numpy()
    )

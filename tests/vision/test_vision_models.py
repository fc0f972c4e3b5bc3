"""Every registered model builds, matches torchvision's state_dict (keys and shapes, from a
fixture torchvision wrote) and published parameter count, and runs forward + backward."""

import gzip
import json
import lzma
import os

import numpy as np
import pytest

import ember
from ember_vision import models

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")

# torchvision's published num_params (its weights meta), an independent reference
NUM_PARAMS = {
    "resnet18": 11689512,
    "resnet34": 21797672,
    "resnet50": 25557032,
    "resnet101": 44549160,
    "resnet152": 60192808,
    "resnext50_32x4d": 25028904,
    "wide_resnet50_2": 68883240,
    "vgg11": 132863336,
    "vgg11_bn": 132868840,
    "vgg13": 133047848,
    "vgg13_bn": 133053736,
    "vgg16": 138357544,
    "vgg16_bn": 138365992,
    "vgg19": 143667240,
    "vgg19_bn": 143678248,
}


def _tv_shapes():
    with gzip.open(os.path.join(FIXTURES, "tv_state_dicts.json.gz"), "rt") as f:
        return json.load(f)


def test_registry_lists_exactly_the_builders():
    assert models.list_models() == sorted(NUM_PARAMS)
    assert models.list_models(include="vgg*_bn") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
    assert "vgg11" not in models.list_models(exclude="vgg*")
    with pytest.raises(ValueError):
        models.get_model("resnet9000")


@pytest.mark.parametrize("name", sorted(NUM_PARAMS))
def test_model_matches_torchvision_and_trains(name):
    ember.manual_seed(0)
    model = models.get_model(name)
    sd = model.state_dict()
    expected = [(k, tuple(s)) for k, s in _tv_shapes()[name]]
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == expected
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMS[name]
    assert models.get_model_weights(name).DEFAULT.meta["num_params"] == NUM_PARAMS[name]
    # ResNets need batch 2: BatchNorm wants more than one value per channel at the 1x1 stage
    batch = 1 if name.startswith("vgg") else 2
    x = ember.randn(batch, 3, 32, 32, requires_grad=True)
    out = model(x)
    assert out.shape == (batch, 1000)
    out[:, :3].sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert all(p.grad is not None for p in model.parameters())


def test_builders_are_keyword_only_and_take_num_classes():
    with pytest.raises(TypeError):
        models.resnet18(None)
    assert models.resnet18(num_classes=7).fc.out_features == 7
    with pytest.raises(TypeError):
        models.vgg11(None)


def test_resnet_init_matches_torchvision_rules():
    ember.manual_seed(0)
    m = models.resnet50(zero_init_residual=True)
    w = m.conv1.weight.detach().numpy()
    # kaiming_normal_(mode="fan_out", relu): std = sqrt(2 / (out_channels * k * k))
    assert abs(w.std() - np.sqrt(2.0 / (64 * 7 * 7))) < 0.1 * np.sqrt(2.0 / (64 * 7 * 7))
    assert np.all(m.bn1.weight.detach().numpy() == 1) and np.all(m.bn1.bias.detach().numpy() == 0)
    assert np.all(m.layer1[0].bn3.weight.detach().numpy() == 0)
    assert np.all(
        models.resnet18(zero_init_residual=True).layer2[1].bn2.weight.detach().numpy() == 0
    )


def test_block_argument_checks_and_dilation():
    with pytest.raises(ValueError):
        models.BasicBlock(8, 8, groups=2)
    with pytest.raises(NotImplementedError):
        models.BasicBlock(8, 8, dilation=2)
    m = models.ResNet(models.Bottleneck, [1, 1, 1, 2], replace_stride_with_dilation=[0, 1, 1])
    # torchvision: a stage's first block keeps the previous dilation, the rest use the new one
    assert m.layer4[0].conv2.dilation == (2, 2) and m.layer4[0].conv2.stride == (1, 1)
    assert m.layer4[1].conv2.dilation == (4, 4)
    assert m.eval()(ember.zeros(1, 3, 32, 32)).shape == (1, 1000)


def _fixed_input():
    i = np.arange(3 * 64 * 64, dtype=np.float64).reshape(1, 3, 64, 64)
    return ember.from_numpy(np.sin(i * 0.01).astype(np.float32))


# fixture name -> the same architecture built by ember_vision
REFERENCES = {
    "resnet_basic_1111": lambda: models.ResNet(models.BasicBlock, [1, 1, 1, 1], num_classes=2),
    "resnet_bottleneck_g2": lambda: models.ResNet(
        models.Bottleneck, [1, 1, 1, 1], num_classes=2, groups=2, width_per_group=32
    ),
    "resnet18": lambda: models.resnet18(num_classes=10),
    "resnet50": lambda: models.resnet50(num_classes=10),
    "vgg11_bn": lambda: models.vgg11_bn(num_classes=10),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_torchvision_checkpoint_gives_torchvision_logits(tmp_path, name):
    # checkpoints torch.save wrote from torchvision's models (fixtures/make_fixtures.py)
    path = tmp_path / f"tv_{name}.pth"
    with lzma.open(os.path.join(FIXTURES, f"tv_{name}.pth.xz")) as f:
        path.write_bytes(f.read())
    with open(os.path.join(FIXTURES, "tv_reference_logits.json")) as f:
        expected = np.array(json.load(f)["logits"][name])
    model = REFERENCES[name]()
    model.load_state_dict(ember.load(str(path)))
    with ember.no_grad():
        logits = model.eval()(_fixed_input()).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)

"""ResNet, ResNeXt and Wide-ResNet (torchvision's ``resnet.py``: same names, same state_dict keys).

The variants are data: ``_SPECS`` names each builder's block type, depth list and group/width
settings; the builders at the bottom only look them up. Downsampling sits in the 3x3 conv of a
bottleneck (ResNet V1.5), as in torchvision.
"""

from ember import nn

from .. import weights as _w
from ._api import build, register_model

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "wide_resnet50_2",
]


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    """3x3 convolution with padding and no bias (a batch norm always follows)."""
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution with no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34); ``expansion`` is 1.

    >>> import ember
    >>> BasicBlock(8, 8)(ember.zeros(1, 8, 4, 4)).shape
    ember.Size([1, 8, 4, 4])
    """

    expansion = 1

    def __init__(
        self,
        inplanes,
        planes,
        stride=1,
        downsample=None,
        groups=1,
        base_width=64,
        dilation=1,
        norm_layer=None,
    ):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, planes, H/stride, W/stride)
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, grouped), 1x1 expand by 4, plus the residual (ResNet-50+).

    >>> import ember
    >>> Bottleneck(32, 8)(ember.zeros(1, 32, 4, 4)).shape
    ember.Size([1, 32, 4, 4])
    """

    expansion = 4

    def __init__(
        self,
        inplanes,
        planes,
        stride=1,
        downsample=None,
        groups=1,
        base_width=64,
        dilation=1,
        norm_layer=None,
    ):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, width, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, width, H/stride, W/stride)
        out = self.bn3(self.conv3(out))  # (B, planes * 4, H/stride, W/stride)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet: stem, four stages of ``block`` repeated ``layers[i]`` times, pool, classifier.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers (list of 4 ints): blocks per stage.
        num_classes (int): size of the ``fc`` output. Default: 1000.
        zero_init_residual (bool): start each block's last BN weight at zero, so every block
            begins as the identity. Default: False.
        groups (int), width_per_group (int): ResNeXt cardinality and width. Default: 1, 64.
        replace_stride_with_dilation (list of 3 bools, optional): dilate stages 2-4 instead of
            striding them.
        norm_layer: the normalization layer. Default: ``ember.nn.BatchNorm2d``.

    >>> import ember
    >>> ember.manual_seed(0)  # doctest: +ELLIPSIS
    <...>
    >>> net = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3).eval()
    >>> net(ember.zeros(1, 3, 32, 32)).shape
    ember.Size([1, 3])
    """

    def __init__(
        self,
        block,
        layers,
        num_classes=1000,
        zero_init_residual=False,
        groups=1,
        width_per_group=64,
        replace_stride_with_dilation=None,
        norm_layer=None,
    ):
        super().__init__()
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes = 64
        self.dilation = 1
        dilate = replace_stride_with_dilation or [False, False, False]
        if len(dilate) != 3:
            raise ValueError(
                "replace_stride_with_dilation should be None or a 3-element tuple, "
                f"got {replace_stride_with_dilation}"
            )
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=dilate[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )
        extra = dict(groups=self.groups, base_width=self.base_width, norm_layer=norm_layer)
        layers = [
            block(self.inplanes, planes, stride, downsample, dilation=previous_dilation, **extra)
        ]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, dilation=self.dilation, **extra))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer1(x)  # (B, 64 * e, H/4, W/4)
        x = self.layer2(x)  # (B, 128 * e, H/8, W/8)
        x = self.layer3(x)  # (B, 256 * e, H/16, W/16)
        x = self.layer4(x)  # (B, 512 * e, H/32, W/32)
        x = self.avgpool(x).flatten(1)  # (B, 512 * e)
        return self.fc(x)  # (B, num_classes)


# name -> (block, depths, extra ResNet kwargs, weights enum)
_SPECS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], {}, _w.ResNet18_Weights),
    "resnet34": (BasicBlock, [3, 4, 6, 3], {}, _w.ResNet34_Weights),
    "resnet50": (Bottleneck, [3, 4, 6, 3], {}, _w.ResNet50_Weights),
    "resnet101": (Bottleneck, [3, 4, 23, 3], {}, _w.ResNet101_Weights),
    "resnet152": (Bottleneck, [3, 8, 36, 3], {}, _w.ResNet152_Weights),
    "resnext50_32x4d": (
        Bottleneck,
        [3, 4, 6, 3],
        {"groups": 32, "width_per_group": 4},
        _w.ResNeXt50_32X4D_Weights,
    ),
    "wide_resnet50_2": (
        Bottleneck,
        [3, 4, 6, 3],
        {"width_per_group": 128},
        _w.Wide_ResNet50_2_Weights,
    ),
}


def _resnet(name, weights, progress, num_classes, kwargs):
    block, depths, extra, enum = _SPECS[name]
    return build(
        lambda n: ResNet(block, depths, num_classes=n, **{**extra, **kwargs}),
        enum,
        weights,
        progress,
        num_classes,
    )


@register_model()
def resnet18(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """ResNet-18 (He et al., 2015); ``weights``: a ``ResNet18_Weights`` member, its name,
    ``"DEFAULT"`` or a local ``.pth`` path; ``kwargs`` go to ``ResNet``.

    >>> import ember
    >>> resnet18(num_classes=10).eval()(ember.zeros(1, 3, 32, 32)).shape
    ember.Size([1, 10])
    """
    return _resnet("resnet18", weights, progress, num_classes, kwargs)


@register_model()
def resnet34(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """ResNet-34; arguments as ``resnet18``, weights ``ResNet34_Weights``."""
    return _resnet("resnet34", weights, progress, num_classes, kwargs)


@register_model()
def resnet50(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """ResNet-50 (V1.5: stride in the 3x3 conv); arguments as ``resnet18``, weights
    ``ResNet50_Weights``."""
    return _resnet("resnet50", weights, progress, num_classes, kwargs)


@register_model()
def resnet101(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """ResNet-101; arguments as ``resnet18``, weights ``ResNet101_Weights``."""
    return _resnet("resnet101", weights, progress, num_classes, kwargs)


@register_model()
def resnet152(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """ResNet-152; arguments as ``resnet18``, weights ``ResNet152_Weights``."""
    return _resnet("resnet152", weights, progress, num_classes, kwargs)


@register_model()
def resnext50_32x4d(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """ResNeXt-50 32x4d (Xie et al., 2016): 32 groups of width 4; weights
    ``ResNeXt50_32X4D_Weights``."""
    return _resnet("resnext50_32x4d", weights, progress, num_classes, kwargs)


@register_model()
def wide_resnet50_2(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """Wide ResNet-50-2 (Zagoruyko & Komodakis, 2016): bottlenecks twice as wide; weights
    ``Wide_ResNet50_2_Weights``."""
    return _resnet("wide_resnet50_2", weights, progress, num_classes, kwargs)

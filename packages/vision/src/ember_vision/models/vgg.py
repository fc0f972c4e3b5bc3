"""VGG-11/13/16/19 with and without batch norm (torchvision's ``vgg.py``: same state_dict keys).

The variants are data: ``cfgs`` lists each configuration's conv widths with ``"M"`` for a 2x2
max pool (Simonyan & Zisserman's table 1, columns A, B, D, E).
"""

from ember import nn

from .. import weights as _w
from ._api import build, register_model

__all__ = ["VGG", "cfgs", "make_layers"]
__all__ += ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]

cfgs = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
    + [512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg, batch_norm=False):
    """The ``features`` Sequential for one ``cfgs`` entry: conv3x3 [+ BN] + ReLU, or max pool.

    >>> [type(m).__name__ for m in make_layers([8, "M"], batch_norm=True)]
    ['Conv2d', 'BatchNorm2d', 'ReLU', 'MaxPool2d']
    """
    layers = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG: ``features``, then ``avgpool`` to 7x7, then a three-layer ``classifier``.

    Args:
        features (Module): the convolutional trunk, ending in 512 channels.
        num_classes (int): classifier outputs. Default: 1000.
        init_weights (bool): torchvision's init (kaiming fan_out convs, N(0, 0.01) linears,
            zero biases). Default: True.
        dropout (float): dropout probability in the classifier. Default: 0.5.

    >>> import ember
    >>> VGG(make_layers([512, "M"]), num_classes=2)(ember.zeros(1, 3, 8, 8)).shape
    ember.Size([1, 2])
    """

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.features(x)  # (B, 512, H/32, W/32)
        x = self.avgpool(x).flatten(1)  # (B, 512 * 7 * 7)
        return self.classifier(x)  # (B, num_classes)


# name -> (cfgs key, batch_norm, weights enum)
_SPECS = {
    "vgg11": ("A", False, _w.VGG11_Weights),
    "vgg11_bn": ("A", True, _w.VGG11_BN_Weights),
    "vgg13": ("B", False, _w.VGG13_Weights),
    "vgg13_bn": ("B", True, _w.VGG13_BN_Weights),
    "vgg16": ("D", False, _w.VGG16_Weights),
    "vgg16_bn": ("D", True, _w.VGG16_BN_Weights),
    "vgg19": ("E", False, _w.VGG19_Weights),
    "vgg19_bn": ("E", True, _w.VGG19_BN_Weights),
}


def _vgg(name, weights, progress, num_classes, kwargs):
    cfg, batch_norm, enum = _SPECS[name]
    if weights is not None:
        kwargs.setdefault("init_weights", False)  # the checkpoint overwrites every parameter
    return build(
        lambda n: VGG(make_layers(cfgs[cfg], batch_norm), num_classes=n, **kwargs),
        enum,
        weights,
        progress,
        num_classes,
    )


@register_model()
def vgg11(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """VGG-11 (configuration A); ``weights``: a ``VGG11_Weights`` member, its name,
    ``"DEFAULT"`` or a local ``.pth`` path; ``kwargs`` go to ``VGG`` (e.g. ``dropout``).
    """
    return _vgg("vgg11", weights, progress, num_classes, kwargs)


@register_model()
def vgg11_bn(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """VGG-11 with batch norm; arguments as ``vgg11``, weights ``VGG11_BN_Weights``."""
    return _vgg("vgg11_bn", weights, progress, num_classes, kwargs)


@register_model()
def vgg13(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """VGG-13 (configuration B); arguments as ``vgg11``, weights ``VGG13_Weights``."""
    return _vgg("vgg13", weights, progress, num_classes, kwargs)


@register_model()
def vgg13_bn(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """VGG-13 with batch norm; arguments as ``vgg11``, weights ``VGG13_BN_Weights``."""
    return _vgg("vgg13_bn", weights, progress, num_classes, kwargs)


@register_model()
def vgg16(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """VGG-16 (configuration D); arguments as ``vgg11``, weights ``VGG16_Weights``."""
    return _vgg("vgg16", weights, progress, num_classes, kwargs)


@register_model()
def vgg16_bn(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """VGG-16 with batch norm; arguments as ``vgg11``, weights ``VGG16_BN_Weights``."""
    return _vgg("vgg16_bn", weights, progress, num_classes, kwargs)


@register_model()
def vgg19(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """VGG-19 (configuration E); arguments as ``vgg11``, weights ``VGG19_Weights``."""
    return _vgg("vgg19", weights, progress, num_classes, kwargs)


@register_model()
def vgg19_bn(*, weights=None, progress=True, num_classes=1000, **kwargs):
    """VGG-19 with batch norm; arguments as ``vgg11``, weights ``VGG19_BN_Weights``."""
    return _vgg("vgg19_bn", weights, progress, num_classes, kwargs)

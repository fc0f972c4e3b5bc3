"""Typed pretrained weights (torchvision's Weights API): one enum per architecture.

Each member holds a ``Weights`` record: the checkpoint ``url`` on download.pytorch.org (the file
name's 8 hex digits are the SHA-256 prefix checked on load), ``transforms`` (the evaluation
preset, called as ``member.transforms()``) and ``meta`` (ImageNet categories, parameter count,
published accuracy, recipe). ``DEFAULT`` aliases the best member, as in torchvision.
"""

import enum
import functools
import os
from dataclasses import dataclass
from importlib import resources

import ember

from .transforms import ImageClassification

__all__ = [
    "ResNet18_Weights",
    "ResNet34_Weights",
    "ResNet50_Weights",
    "ResNet101_Weights",
    "ResNet152_Weights",
    "ResNeXt50_32X4D_Weights",
    "Wide_ResNet50_2_Weights",
    "VGG11_Weights",
    "VGG11_BN_Weights",
    "VGG13_Weights",
    "VGG13_BN_Weights",
    "VGG16_Weights",
    "VGG16_BN_Weights",
    "VGG19_Weights",
    "VGG19_BN_Weights",
    "Weights",
    "WeightsEnum",
    "imagenet_categories",
]

BASE_URL = "https://download.pytorch.org/models/"


@functools.cache
def _categories():
    text = resources.files("ember_vision").joinpath("data/imagenet_classes.txt").read_text()
    return tuple(line for line in text.splitlines() if line)


def imagenet_categories():
    """The 1000 ImageNet-1K class names in index order (torchvision's ``_IMAGENET_CATEGORIES``).

    >>> names = imagenet_categories()
    >>> len(names), names[0], names[999]
    (1000, 'tench', 'toilet tissue')
    """
    return list(_categories())


@dataclass(frozen=True, eq=False)
class Weights:
    """One checkpoint: its ``url``, a ``transforms`` factory and its ``meta`` dict."""

    url: str
    transforms: object
    meta: dict


class WeightsEnum(enum.Enum):
    """Base of the ``*_Weights`` enums: ``.url``, ``.transforms()``, ``.meta``, ``.sha256``.

    >>> ResNet18_Weights.DEFAULT.url
    'https://download.pytorch.org/models/resnet18-f37072fd.pth'
    >>> ResNet50_Weights.verify("DEFAULT") is ResNet50_Weights.IMAGENET1K_V2
    True
    """

    @classmethod
    def verify(cls, obj):
        """Turn ``None``, a member, or a member's name (``"DEFAULT"`` too) into a member."""
        if obj is None or isinstance(obj, cls):
            return obj
        if isinstance(obj, str):
            name = obj.replace(cls.__name__ + ".", "")
            if name in cls.__members__:
                return cls.__members__[name]
            raise ValueError(f"Failed to find Weights {obj!r} in {cls.__name__}.")
        raise TypeError(
            f"Invalid Weight class provided; expected {cls.__name__} but received "
            f"{obj.__class__.__name__}."
        )

    @property
    def url(self):
        return self.value.url

    @property
    def transforms(self):
        return self.value.transforms

    @property
    def meta(self):
        return self.value.meta

    @property
    def sha256(self):
        """The SHA-256 prefix the file name publishes (``resnet18-f37072fd.pth`` -> f37072fd)."""
        return os.path.basename(self.url).rsplit("-", 1)[1].split(".")[0]

    def get_state_dict(self, progress=True, check_hash=True):
        """Download (once, into ``ember.hub.get_dir()/checkpoints``) and load the state_dict."""
        return ember.hub.load_state_dict_from_url(
            self.url, progress=progress, check_hash=check_hash
        )

    def __repr__(self):
        return f"{self.__class__.__name__}.{self.name}"


def _member(file_name, num_params, acc1, acc5, recipe, min_size, resize_size=256):
    meta = {
        "categories": _categories(),
        "num_params": num_params,
        "min_size": min_size,
        "recipe": recipe,
        "_metrics": {"ImageNet-1K": {"acc@1": acc1, "acc@5": acc5}},
        "_docs": (
            "These weights reproduce closely the results of the paper using a simple "
            "training recipe."
            if resize_size == 256
            else "These weights improve upon the results of the original paper by using "
            "TorchVision's new training recipe."
        ),
    }
    transforms = functools.partial(ImageClassification, crop_size=224, resize_size=resize_size)
    return Weights(BASE_URL + file_name, transforms, meta)


_RESNET = "https://github.com/pytorch/vision/tree/main/references/classification#resnet"
_NEW = "https://github.com/pytorch/vision/issues/3995#new-recipe"
_VGG = "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg"


def _resnet(file_name, num_params, acc1, acc5, recipe=_RESNET, resize_size=256):
    return _member(file_name, num_params, acc1, acc5, recipe, (1, 1), resize_size)


def _vgg(file_name, num_params, acc1, acc5):
    return _member(file_name, num_params, acc1, acc5, _VGG, (32, 32))


class ResNet18_Weights(WeightsEnum):
    IMAGENET1K_V1 = _resnet("resnet18-f37072fd.pth", 11689512, 69.758, 89.078)
    DEFAULT = IMAGENET1K_V1


class ResNet34_Weights(WeightsEnum):
    IMAGENET1K_V1 = _resnet("resnet34-b627a593.pth", 21797672, 73.314, 91.420)
    DEFAULT = IMAGENET1K_V1


class ResNet50_Weights(WeightsEnum):
    IMAGENET1K_V1 = _resnet("resnet50-0676ba61.pth", 25557032, 76.130, 92.862)
    IMAGENET1K_V2 = _resnet(
        "resnet50-11ad3fa6.pth",
        25557032,
        80.858,
        95.434,
        "https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621",
        232,
    )
    DEFAULT = IMAGENET1K_V2


class ResNet101_Weights(WeightsEnum):
    IMAGENET1K_V1 = _resnet("resnet101-63fe2227.pth", 44549160, 77.374, 93.546)
    IMAGENET1K_V2 = _resnet("resnet101-cd907fc2.pth", 44549160, 81.886, 95.780, _NEW, 232)
    DEFAULT = IMAGENET1K_V2


class ResNet152_Weights(WeightsEnum):
    IMAGENET1K_V1 = _resnet("resnet152-394f9c45.pth", 60192808, 78.312, 94.046)
    IMAGENET1K_V2 = _resnet("resnet152-f82ba261.pth", 60192808, 82.284, 96.002, _NEW, 232)
    DEFAULT = IMAGENET1K_V2


class ResNeXt50_32X4D_Weights(WeightsEnum):
    IMAGENET1K_V1 = _resnet(
        "resnext50_32x4d-7cdf4587.pth",
        25028904,
        77.618,
        93.698,
        "https://github.com/pytorch/vision/tree/main/references/classification#resnext",
    )
    IMAGENET1K_V2 = _resnet("resnext50_32x4d-1a0047aa.pth", 25028904, 81.198, 95.340, _NEW, 232)
    DEFAULT = IMAGENET1K_V2


class Wide_ResNet50_2_Weights(WeightsEnum):
    IMAGENET1K_V1 = _resnet(
        "wide_resnet50_2-95faca4d.pth",
        68883240,
        78.468,
        94.086,
        "https://github.com/pytorch/vision/pull/912#issue-445437439",
    )
    IMAGENET1K_V2 = _resnet(
        "wide_resnet50_2-9ba9bcbe.pth", 68883240, 81.602, 95.758, _NEW + "-with-fixres", 232
    )
    DEFAULT = IMAGENET1K_V2


class VGG11_Weights(WeightsEnum):
    IMAGENET1K_V1 = _vgg("vgg11-8a719046.pth", 132863336, 69.020, 88.628)
    DEFAULT = IMAGENET1K_V1


class VGG11_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = _vgg("vgg11_bn-6002323d.pth", 132868840, 70.370, 89.810)
    DEFAULT = IMAGENET1K_V1


class VGG13_Weights(WeightsEnum):
    IMAGENET1K_V1 = _vgg("vgg13-19584684.pth", 133047848, 69.928, 89.246)
    DEFAULT = IMAGENET1K_V1


class VGG13_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = _vgg("vgg13_bn-abd245e5.pth", 133053736, 71.586, 90.374)
    DEFAULT = IMAGENET1K_V1


class VGG16_Weights(WeightsEnum):
    IMAGENET1K_V1 = _vgg("vgg16-397923af.pth", 138357544, 71.592, 90.382)
    DEFAULT = IMAGENET1K_V1


class VGG16_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = _vgg("vgg16_bn-6c64b313.pth", 138365992, 73.360, 91.516)
    DEFAULT = IMAGENET1K_V1


class VGG19_Weights(WeightsEnum):
    IMAGENET1K_V1 = _vgg("vgg19-dcbb9e9d.pth", 143667240, 72.376, 90.876)
    DEFAULT = IMAGENET1K_V1


class VGG19_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = _vgg("vgg19_bn-c79401a0.pth", 143678248, 74.218, 91.842)
    DEFAULT = IMAGENET1K_V1

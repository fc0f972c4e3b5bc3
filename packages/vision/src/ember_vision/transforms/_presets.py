"""Evaluation presets the weights enums hand out (torchvision's ``transforms._presets``)."""

from ._functional import InterpolationMode
from ._transforms import CenterCrop, Compose, Normalize, Resize, ToTensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageClassification:
    """Resize the shorter side to ``resize_size``, center-crop ``crop_size``, scale to [0, 1]
    and normalize with ImageNet's ``mean``/``std``: the ``Weights.transforms()`` of every model.

    >>> from PIL import Image
    >>> ImageClassification(crop_size=224)(Image.new("RGB", (300, 400))).shape
    ember.Size([3, 224, 224])
    """

    def __init__(
        self,
        *,
        crop_size,
        resize_size=256,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation=InterpolationMode.BILINEAR,
        antialias=True,
    ):
        self.crop_size = [crop_size]
        self.resize_size = [resize_size]
        self.mean = list(mean)
        self.std = list(std)
        self.interpolation = InterpolationMode(interpolation)
        self.antialias = antialias
        self._pipeline = Compose(
            [
                Resize(self.resize_size, self.interpolation, antialias=antialias),
                CenterCrop(self.crop_size),
                ToTensor(),
                Normalize(self.mean, self.std),
            ]
        )

    def __call__(self, img):
        return self._pipeline(img)

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(crop_size={self.crop_size}, resize_size="
            f"{self.resize_size}, mean={self.mean}, std={self.std}, "
            f"interpolation={self.interpolation})"
        )

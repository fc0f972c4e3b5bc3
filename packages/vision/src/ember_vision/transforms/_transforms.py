"""Image transforms with torchvision's names, arguments and semantics, on PIL images.

Random transforms draw from ember's generator (``ember.backend.random.rng()``), so
``ember.manual_seed`` makes augmentation reproducible.
"""

import math
import numbers

from PIL import Image

import ember
from ember.backend.random import rng

from . import _functional as F
from ._functional import InterpolationMode


def _repr(obj, **fields):
    inner = ", ".join(f"{k}={v}" for k, v in fields.items())
    return f"{obj.__class__.__name__}({inner})"


class Compose:
    """Apply ``transforms`` in order.

    >>> from PIL import Image
    >>> t = Compose([CenterCrop(2), ToTensor()])
    >>> t(Image.new("RGB", (4, 4), (255, 0, 0))).shape
    ember.Size([3, 2, 2])
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        lines = "".join(f"\n    {t}" for t in self.transforms)
        return f"{self.__class__.__name__}({lines}\n)"


class Lambda:
    """Apply a user function as a transform.

    >>> Lambda(lambda x: x + 1)(1)
    2
    """

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


class Resize:
    """Resize a PIL image; an int ``size`` sets the shorter side, keeping the aspect ratio.

    PIL's bilinear/bicubic filters antialias when downsampling, which is ``antialias=True``.

    >>> from PIL import Image
    >>> Resize(4)(Image.new("RGB", (16, 8))).size
    (8, 4)
    """

    def __init__(
        self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True
    ):
        if not isinstance(size, (int, list, tuple)) or (
            isinstance(size, (list, tuple)) and len(size) not in (1, 2)
        ):
            raise TypeError(f"Size should be int or sequence of length 1 or 2. Got {size}")
        self.size = size
        self.interpolation = InterpolationMode(interpolation)
        self.max_size = max_size
        self.antialias = antialias

    def __call__(self, img):
        return F.resize(img, self.size, self.interpolation, self.max_size)

    def __repr__(self):
        return _repr(
            self,
            size=self.size,
            interpolation=self.interpolation.value,
            max_size=self.max_size,
            antialias=self.antialias,
        )


class CenterCrop:
    """Crop the center ``size`` (int or ``(h, w)``); pads with zeros if the image is smaller.

    >>> from PIL import Image
    >>> CenterCrop((2, 3))(Image.new("L", (5, 5))).size
    (3, 2)
    """

    def __init__(self, size):
        self.size = F.pair(size)

    def __call__(self, img):
        F.check_pil(img)
        th, tw = self.size
        top = int(round((img.height - th) / 2.0))
        left = int(round((img.width - tw) / 2.0))
        return F.crop(img, top, left, th, tw)

    def __repr__(self):
        return _repr(self, size=self.size)


class RandomCrop:
    """Crop a random ``size`` region, after optional ``padding`` (int, 2 or 4 values).

    >>> import ember
    >>> from PIL import Image
    >>> _ = ember.manual_seed(0)
    >>> RandomCrop(4, padding=2)(Image.new("RGB", (4, 4))).size
    (4, 4)
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = F.pair(size)
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    @staticmethod
    def get_params(img, output_size, generator=None):
        """Random ``(top, left, h, w)`` for a crop of ``output_size``."""
        h, w = img.height, img.width
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(
                f"Required crop size {(th, tw)} is larger than input image size {(h, w)}"
            )
        if (h, w) == (th, tw):
            return 0, 0, h, w
        g = rng(generator)
        return int(g.integers(0, h - th + 1)), int(g.integers(0, w - tw + 1)), th, tw

    def __call__(self, img):
        if self.padding is not None:
            img = F.pad(img, self.padding, self.fill, self.padding_mode)
        th, tw = self.size
        if self.pad_if_needed and img.width < tw:
            img = F.pad(img, [tw - img.width, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and img.height < th:
            img = F.pad(img, [0, th - img.height], self.fill, self.padding_mode)
        return F.crop(img, *self.get_params(img, self.size))

    def __repr__(self):
        return _repr(self, size=self.size, padding=self.padding)


class RandomResizedCrop:
    """Crop a random area (``scale``) and aspect ratio (``ratio``), then resize to ``size``.

    >>> import ember
    >>> from PIL import Image
    >>> _ = ember.manual_seed(0)
    >>> RandomResizedCrop(8)(Image.new("RGB", (20, 10))).size
    (8, 8)
    """

    def __init__(
        self,
        size,
        scale=(0.08, 1.0),
        ratio=(3.0 / 4.0, 4.0 / 3.0),
        interpolation=InterpolationMode.BILINEAR,
        antialias=True,
    ):
        self.size = F.pair(size)
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("Scale and ratio should be of kind (min, max)")
        self.scale = scale
        self.ratio = ratio
        self.interpolation = InterpolationMode(interpolation)
        self.antialias = antialias

    @staticmethod
    def get_params(img, scale, ratio, generator=None):
        """Random ``(top, left, h, w)``: ten tries at a fitting box, else a central crop."""
        width, height = img.width, img.height
        area = height * width
        g = rng(generator)
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * g.uniform(scale[0], scale[1])
            aspect = math.exp(g.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                i = int(g.integers(0, height - h + 1))
                j = int(g.integers(0, width - w + 1))
                return i, j, h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        F.check_pil(img)
        i, j, h, w = self.get_params(img, self.scale, self.ratio)
        return F.resize(F.crop(img, i, j, h, w), list(self.size), self.interpolation)

    def __repr__(self):
        return _repr(self, size=self.size, scale=self.scale, ratio=self.ratio)


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p``.

    >>> from PIL import Image
    >>> img = Image.new("L", (2, 1)); img.putpixel((0, 0), 9)
    >>> RandomHorizontalFlip(p=1.0)(img).getpixel((1, 0))
    9
    """

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        if rng().random() < self.p:
            F.check_pil(img)
            return img.transpose(Image.FLIP_LEFT_RIGHT)
        return img

    def __repr__(self):
        return _repr(self, p=self.p)


def _jitter_range(value, name, center=1.0, bound=(0, float("inf")), clip_first_on_zero=True):
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"If {name} is a single number, it must be non negative.")
        value = [center - float(value), center + float(value)]
        if clip_first_on_zero:
            value[0] = max(value[0], 0.0)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        value = [float(value[0]), float(value[1])]
    else:
        raise TypeError(f"{name} should be a single number or a list/tuple with length 2.")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise ValueError(f"{name} values should be between {bound}, but got {value}.")
    return None if value[0] == value[1] == center else tuple(value)


class ColorJitter:
    """Randomly change brightness, contrast, saturation and hue, in a random order.

    Each of ``brightness``/``contrast``/``saturation`` is ``b`` (factor drawn from
    ``[max(0, 1 - b), 1 + b]``) or ``(min, max)``; ``hue`` is ``h`` in [0, 0.5] (shift drawn from
    ``[-h, h]``) or ``(min, max)`` within [-0.5, 0.5].

    >>> from PIL import Image
    >>> ColorJitter(brightness=(0.5, 0.5))(Image.new("L", (1, 1), 200)).getpixel((0, 0))
    100
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _jitter_range(brightness, "brightness")
        self.contrast = _jitter_range(contrast, "contrast")
        self.saturation = _jitter_range(saturation, "saturation")
        self.hue = _jitter_range(hue, "hue", 0, (-0.5, 0.5), False)

    @staticmethod
    def get_params(brightness, contrast, saturation, hue, generator=None):
        """A random order of the four adjustments and the factor for each (None: skipped)."""
        g = rng(generator)
        order = [int(i) for i in g.permutation(4)]
        factors = [
            None if r is None else float(g.uniform(r[0], r[1]))
            for r in (brightness, contrast, saturation, hue)
        ]
        return (order, *factors)

    def __call__(self, img):
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation, self.hue)
        adjust = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
        for idx in order:
            if factors[idx] is not None:
                img = adjust[idx](img, factors[idx])
        return img

    def __repr__(self):
        return _repr(
            self,
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            hue=self.hue,
        )


class ToTensor:
    """PIL image or HWC ndarray -> float32 ``(C, H, W)`` tensor, uint8 scaled to [0, 1].

    >>> from PIL import Image
    >>> ToTensor()(Image.new("L", (1, 1), 255)).tolist()
    [[[1.0]]]
    """

    def __call__(self, pic):
        return F.to_tensor(pic)

    def __repr__(self):
        return "ToTensor()"


class PILToTensor:
    """PIL image -> ``(C, H, W)`` tensor of the same dtype (uint8 stays 0..255).

    >>> from PIL import Image
    >>> PILToTensor()(Image.new("L", (1, 1), 7)).tolist()
    [[[7]]]
    """

    def __call__(self, pic):
        return F.pil_to_tensor(pic)

    def __repr__(self):
        return "PILToTensor()"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel of a ``(..., C, H, W)`` float tensor.

    >>> import ember
    >>> Normalize([0.5], [0.25])(ember.ones(1, 1, 1)).tolist()
    [[[2.0]]]
    """

    def __init__(self, mean, std, inplace=False):
        self.mean = list(mean)
        self.std = list(std)
        self.inplace = inplace
        if any(s == 0 for s in self.std):
            raise ValueError(
                "std evaluated to zero after conversion to float, leading to division by zero."
            )

    def __call__(self, tensor):
        if not ember.is_floating_point(tensor):
            raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
        mean = ember.tensor(self.mean, dtype=tensor.dtype).reshape(-1, 1, 1)  # (C, 1, 1)
        std = ember.tensor(self.std, dtype=tensor.dtype).reshape(-1, 1, 1)
        return (tensor - mean) / std

    def __repr__(self):
        return _repr(self, mean=self.mean, std=self.std)

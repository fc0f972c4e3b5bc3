"""Pillow-level helpers behind the transform classes (torchvision's ``functional_pil``)."""

import enum
import numbers

import numpy as np
from PIL import Image, ImageEnhance

import ember


class InterpolationMode(enum.Enum):
    """Resampling filters, with torchvision's names and string values."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_FILTERS = {
    InterpolationMode.NEAREST: Image.NEAREST,
    InterpolationMode.NEAREST_EXACT: Image.NEAREST,
    InterpolationMode.BILINEAR: Image.BILINEAR,
    InterpolationMode.BICUBIC: Image.BICUBIC,
    InterpolationMode.BOX: Image.BOX,
    InterpolationMode.HAMMING: Image.HAMMING,
    InterpolationMode.LANCZOS: Image.LANCZOS,
}


def check_pil(img):
    if not isinstance(img, Image.Image):
        raise TypeError(f"img should be a PIL Image, got {type(img).__name__}")


def pair(size, name="size"):
    """``size`` as ``(h, w)``: an int gives a square; a 1-sequence repeats its element."""
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if len(size) == 1:
        return int(size[0]), int(size[0])
    if len(size) != 2:
        raise ValueError(f"{name} should be an int or a sequence of 1 or 2 ints, got {size}")
    return int(size[0]), int(size[1])


def resize_output_size(w, h, size, max_size=None):
    """Output ``(h, w)``: an int (or 1-sequence) ``size`` matches the shorter side, keeping the
    aspect ratio (longer side truncated, as torchvision does)."""
    if isinstance(size, (list, tuple)) and len(size) == 2:
        if max_size is not None:
            raise ValueError("max_size is only supported when size is an int")
        return int(size[0]), int(size[1])
    requested = size if isinstance(size, numbers.Number) else size[0]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = int(requested), int(requested * long / short)
    if max_size is not None:
        if max_size <= requested:
            raise ValueError(f"max_size = {max_size} must be strictly greater than size")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if w <= h else (new_short, new_long)


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None):
    check_pil(img)
    oh, ow = resize_output_size(img.width, img.height, size, max_size)
    if (oh, ow) == (img.height, img.width):
        return img
    return img.resize((ow, oh), _PIL_FILTERS[InterpolationMode(interpolation)])


def crop(img, top, left, height, width):
    """Crop; regions outside the image read as zeros (PIL's ``crop`` semantics)."""
    check_pil(img)
    return img.crop((left, top, left + width, top + height))


def pad(img, padding, fill=0, padding_mode="constant"):
    """Pad by an int, ``(lr, tb)`` or ``(l, t, r, b)`` with ``constant``/``edge``/``reflect``/
    ``symmetric``, as torchvision's ``pad``."""
    check_pil(img)
    if isinstance(padding, numbers.Number):
        left = top = right = bottom = int(padding)
    elif len(padding) == 1:
        left = top = right = bottom = int(padding[0])
    elif len(padding) == 2:
        left, top = right, bottom = padding
    elif len(padding) == 4:
        left, top, right, bottom = padding
    else:
        raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not {padding}")
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
    arr = np.asarray(img)
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (arr.ndim - 2)
    if padding_mode == "constant":
        if arr.ndim == 3 and isinstance(fill, (tuple, list)):
            planes = [np.pad(arr[..., c], widths[:2], constant_values=fill[c]) for c in range(3)]
            out = np.stack(planes, axis=-1)
        else:
            out = np.pad(arr, widths, mode="constant", constant_values=fill)
    else:
        out = np.pad(arr, widths, mode=padding_mode)
    result = Image.fromarray(out, mode=img.mode) if img.mode != "P" else Image.fromarray(out)
    if img.mode == "P":
        result.putpalette(img.getpalette())
    return result


def to_tensor(pic):
    """PIL Image or HWC ndarray -> float32 CHW ember tensor; uint8 input is scaled to [0, 1]."""
    if isinstance(pic, Image.Image):
        if pic.mode == "1":
            pic = pic.convert("L")
        arr = np.array(pic)
    elif isinstance(pic, np.ndarray):
        arr = pic
    else:
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic).__name__}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1))  # (C, H, W)
    if chw.dtype == np.uint8:
        return ember.from_numpy(chw.astype(np.float32) / 255.0)
    return ember.from_numpy(chw.astype(np.float32) if chw.dtype.kind != "f" else chw)


def pil_to_tensor(pic):
    """PIL Image -> CHW ember tensor of the image's own dtype, without scaling."""
    check_pil(pic)
    arr = np.array(pic)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return ember.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def adjust_brightness(img, factor):
    return ImageEnhance.Brightness(img).enhance(factor)


def adjust_contrast(img, factor):
    return ImageEnhance.Contrast(img).enhance(factor)


def adjust_saturation(img, factor):
    return ImageEnhance.Color(img).enhance(factor)


def adjust_hue(img, hue_factor):
    """Shift the hue channel by ``hue_factor`` (in [-0.5, 0.5]) of a full turn, wrapping."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5].")
    if img.mode in {"L", "1", "I", "F"}:
        return img
    mode = img.mode
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    np_h = (np_h.astype(np.int16) + np.int16(int(hue_factor * 255))) % 256
    h = Image.fromarray(np_h.astype(np.uint8), "L")
    return Image.merge("HSV", (h, s, v)).convert(mode)

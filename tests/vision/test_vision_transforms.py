"""Transforms against hand-computed values on tiny PIL images."""

import math

import numpy as np
import pytest
from PIL import Image

import ember
from ember_vision import transforms as T


def _gray(rows):
    return Image.fromarray(np.array(rows, dtype=np.uint8), "L")


def test_to_tensor_and_pil_to_tensor():
    img = Image.fromarray(np.array([[[0, 51, 255], [102, 0, 0]]], dtype=np.uint8), "RGB")
    t = T.ToTensor()(img)
    assert t.shape == (3, 1, 2) and t.dtype == ember.float32
    np.testing.assert_allclose(t.numpy()[:, 0, 0], [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(t.numpy()[0, 0, 1], 0.4, rtol=1e-6)
    p = T.PILToTensor()(img)
    assert p.dtype == ember.uint8 and p.numpy()[2, 0, 0] == 255
    assert T.ToTensor()(np.zeros((2, 3), dtype=np.uint8)).shape == (1, 2, 3)


def test_normalize():
    x = ember.tensor([[[1.0, 3.0]], [[2.0, 2.0]]])  # (2, 1, 2)
    out = T.Normalize([1.0, 0.0], [2.0, 4.0])(x).numpy()
    np.testing.assert_allclose(out, [[[0.0, 1.0]], [[0.5, 0.5]]])
    with pytest.raises(TypeError):
        T.Normalize([0], [1])(ember.tensor([[[1]]]))


def test_resize_shorter_side_and_max_size():
    assert T.Resize(4)(Image.new("L", (10, 6))).size == (6, 4)  # int(4 * 10 / 6) = 6
    assert T.Resize(4)(Image.new("L", (6, 10))).size == (4, 6)
    assert T.Resize((3, 5))(Image.new("L", (10, 6))).size == (5, 3)
    assert T.Resize(4, max_size=5)(Image.new("L", (20, 8))).size == (5, 2)
    # 2x2 -> 1x1 bilinear with antialias averages all four pixels
    assert T.Resize(1)(_gray([[0, 100], [100, 200]])).getpixel((0, 0)) == 100


def test_center_crop_and_padding():
    img = _gray(np.arange(25).reshape(5, 5))
    np.testing.assert_array_equal(
        np.array(T.CenterCrop(3)(img)), np.arange(25).reshape(5, 5)[1:4, 1:4]
    )
    # (5 - 2) / 2 = 1.5 rounds to 2 (round half to even), as torchvision
    np.testing.assert_array_equal(np.array(T.CenterCrop(2)(img)), [[12, 13], [17, 18]])
    big = np.array(T.CenterCrop(7)(img))
    assert big.shape == (7, 7) and big[0].sum() == 0 and big[1, 1] == 0 and big[3, 3] == 12


def test_random_crop_with_padding_and_modes():
    img = _gray([[1, 2], [3, 4]])
    ember.manual_seed(0)
    out = np.array(T.RandomCrop(4, padding=1)(img))
    np.testing.assert_array_equal(out, [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]])
    out = np.array(T.RandomCrop(4, padding=1, padding_mode="edge")(img))
    np.testing.assert_array_equal(out, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    out = np.array(T.RandomCrop(4, padding=1, padding_mode="reflect")(img))
    np.testing.assert_array_equal(out, [[4, 3, 4, 3], [2, 1, 2, 1], [4, 3, 4, 3], [2, 1, 2, 1]])
    out = np.array(T.RandomCrop((2, 3), padding=(1, 0), fill=9)(img))
    assert out.shape == (2, 3) and set(out.ravel()) <= {1, 2, 3, 4, 9}
    crops = {tuple(np.array(T.RandomCrop(1)(img)).ravel()) for _ in range(60)}
    assert crops == {(1,), (2,), (3,), (4,)}
    assert T.RandomCrop(3, pad_if_needed=True)(img).size == (3, 3)


def test_random_crop_is_seeded_by_ember():
    img = _gray(np.arange(100).reshape(10, 10))
    ember.manual_seed(3)
    a = [np.array(T.RandomResizedCrop(4)(img)) for _ in range(3)]
    ember.manual_seed(3)
    b = [np.array(T.RandomResizedCrop(4)(img)) for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_random_resized_crop_params_respect_scale_and_ratio():
    img = Image.new("L", (40, 30))
    ember.manual_seed(0)
    for _ in range(50):
        i, j, h, w = T.RandomResizedCrop.get_params(img, (0.2, 0.6), (0.5, 2.0))
        assert 0 <= i and i + h <= 30 and 0 <= j and j + w <= 40
        assert 0.2 * 1200 * 0.8 <= h * w <= 0.6 * 1200 * 1.2
        assert 0.5 / 1.2 <= w / h <= 2.0 * 1.2
    # impossible scale -> torchvision's central fallback, clipped to the ratio range
    assert T.RandomResizedCrop.get_params(img, (5.0, 5.0), (0.5, 0.5)) == (0, 12, 30, 15)


def test_horizontal_flip_probability():
    img = _gray([[1, 2, 3]])
    assert np.array(T.RandomHorizontalFlip(p=1.0)(img)).tolist() == [[3, 2, 1]]
    assert np.array(T.RandomHorizontalFlip(p=0.0)(img)).tolist() == [[1, 2, 3]]
    ember.manual_seed(0)
    flips = sum(np.array(T.RandomHorizontalFlip()(img))[0, 0] == 3 for _ in range(400))
    assert 150 < flips < 250


def test_color_jitter_hand_values():
    img = Image.new("RGB", (1, 1), (200, 100, 50))
    assert T.ColorJitter(brightness=(0.5, 0.5))(img).getpixel((0, 0)) == (100, 50, 25)
    # saturation 0 -> the luma L = (299 R + 587 G + 114 B) / 1000 in every channel
    luma = round((299 * 200 + 587 * 100 + 114 * 50) / 1000)
    got = T.ColorJitter(saturation=(0.0, 0.0))(img).getpixel((0, 0))
    assert all(abs(c - luma) <= 1 for c in got)
    # hue shift of half a turn maps red to cyan
    r, g, b = T.ColorJitter(hue=(0.5, 0.5))(Image.new("RGB", (1, 1), (255, 0, 0))).getpixel((0, 0))
    assert r < 5 and g > 250 and b > 250
    with pytest.raises(ValueError):
        T.ColorJitter(hue=0.7)
    assert T.ColorJitter(brightness=0.2).brightness == (0.8, 1.2)
    assert T.ColorJitter(brightness=0).brightness is None


def test_compose_and_lambda():
    t = T.Compose([T.Lambda(lambda im: im.convert("L")), T.ToTensor(), T.Lambda(lambda x: x * 2)])
    out = t(Image.new("RGB", (2, 2), (255, 255, 255)))
    np.testing.assert_allclose(out.numpy(), np.full((1, 2, 2), 2.0))
    with pytest.raises(TypeError):
        T.Lambda(3)
    assert "ToTensor()" in repr(t)
    assert math.isclose(T.Normalize([0.5], [0.5])(ember.zeros(1, 1, 1)).item(), -1.0)

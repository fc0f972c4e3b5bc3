"""FakeData: random PIL images with random labels, reproducible per index."""

import numpy as np
from PIL import Image

import ember


class FakeData(ember.data.Dataset):
    """``size`` random RGB/L images of ``image_size`` ``(C, H, W)`` and labels in
    ``range(num_classes)``; item ``i`` is drawn from a generator seeded with
    ``i + random_offset``, so it is the same on every access.

    >>> ds = FakeData(size=4, image_size=(3, 8, 6), num_classes=3)
    >>> img, label = ds[0]
    >>> img.size, img.mode, 0 <= label < 3, len(ds)
    ((6, 8), 'RGB', True, 4)
    """

    def __init__(
        self,
        size=1000,
        image_size=(3, 224, 224),
        num_classes=10,
        transform=None,
        target_transform=None,
        random_offset=0,
    ):
        self.size = size
        self.image_size = tuple(image_size)
        self.num_classes = num_classes
        self.transform = transform
        self.target_transform = target_transform
        self.random_offset = random_offset

    def __getitem__(self, index):
        if index >= len(self):
            raise IndexError(f"{self.__class__.__name__} index out of range")
        g = np.random.default_rng(index + self.random_offset)
        c, h, w = self.image_size
        pixels = g.integers(0, 256, size=(h, w, c), dtype=np.uint8)  # (H, W, C)
        img = Image.fromarray(pixels[:, :, 0] if c == 1 else pixels, "L" if c == 1 else "RGB")
        target = int(g.integers(0, self.num_classes))
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self):
        return self.size

"""MNIST and Fashion-MNIST from the IDX files in ``root/<ClassName>/raw`` (plain or ``.gz``)."""

import gzip
import os

import numpy as np
from PIL import Image

import ember

from ._utils import download_url

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Parse one IDX file (``.gz`` too) into a NumPy array; a malformed file raises
    ``RuntimeError`` naming it."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise RuntimeError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise RuntimeError(f"{path} is corrupt: {len(data)} bytes, the header promises {expected}")
    return (
        np.frombuffer(data, dtype=dtype, offset=header)
        .reshape(dims)
        .astype(dtype.newbyteorder("="))
    )


class MNIST(ember.data.Dataset):
    """The MNIST digits: ``(PIL image "L" 28x28, int label)`` pairs.

    Reads ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or ``.gz``).
    ``download=True`` fetches the four ``.gz`` files through ``ember.hub`` (honouring
    ``EMBER_OFFLINE``) and checks their published MD5 sums (no SHA-256 is published).

    Args:
        root (str): the directory that holds ``MNIST/raw``.
        train (bool): the 60,000 training images, else the 10,000 test images.
        transform, target_transform (callable, optional): applied to image / label.
        download (bool): download the files if they are missing.
    """

    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five"]
    classes += ["6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = os.fspath(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        if download:
            self.download()
        prefix = "train" if train else "t10k"
        images = read_idx(self._find(f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(self._find(f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise RuntimeError(
                f"{self.raw_folder}: images {images.shape} and labels {labels.shape} disagree"
            )
        self.data = ember.from_numpy(np.ascontiguousarray(images))  # (N, 28, 28) uint8
        self.targets = ember.from_numpy(labels.astype(np.int64))  # (N,)

    @property
    def raw_folder(self):
        return os.path.join(self.root, self.__class__.__name__, "raw")

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def _find(self, stem):
        for name in (stem, stem + ".gz"):
            path = os.path.join(self.raw_folder, name)
            if os.path.isfile(path):
                return path
        raise RuntimeError(
            f"Dataset not found: {os.path.join(self.raw_folder, stem)}[.gz] is missing. "
            "You can use download=True to download it"
        )

    def download(self):
        """Fetch the raw ``.gz`` files that are missing, trying each mirror in turn."""
        for filename, md5 in self.resources:
            if os.path.isfile(os.path.join(self.raw_folder, filename)):
                continue
            errors = []
            for mirror in self.mirrors:
                try:
                    download_url(mirror + filename, self.raw_folder, filename, md5)
                    break
                except (OSError, RuntimeError) as error:
                    errors.append(f"{mirror}: {error}")
            else:
                raise RuntimeError(f"Error downloading {filename}: " + "; ".join(errors))

    def __getitem__(self, index):
        img = Image.fromarray(self.data[index].numpy(), mode="L")
        target = int(self.targets[index].item())
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self):
        return len(self.data)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST, in MNIST's format under ``root/FashionMNIST/raw``."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt"]
    classes += ["Sneaker", "Bag", "Ankle boot"]

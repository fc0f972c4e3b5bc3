"""CIFAR-10/100 from the "python version" batches, read with a restricted unpickler."""

import os
import pickle

import numpy as np
from PIL import Image

import ember

from ._utils import download_url, extract_tar

# The only callables a CIFAR batch pickle needs: NumPy's array/scalar reconstructors (taken
# from NumPy's own __reduce__, so no private import) and the codec Python 3 uses for bytes.
_ARRAY = np.zeros(1)
_ALLOWED = {
    _ARRAY.__reduce__()[0],
    _ARRAY.__reduce_ex__(5)[0],
    np.float64(0).__reduce__()[0],
    np.ndarray,
    np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            import codecs

            return codecs.encode
        if module.split(".")[0] == "numpy":
            for obj in _ALLOWED:
                if obj.__name__ == name and obj.__module__.split(".")[0] == "numpy":
                    return obj
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: not a plain array or container"
        )


def load_batch(path):
    """Load one CIFAR batch file, admitting only containers, numbers, strings and NumPy arrays
    of plain dtypes; anything else raises ``RuntimeError`` naming the file."""
    try:
        with open(path, "rb") as f:
            entry = _RestrictedUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise RuntimeError(f"{path} is corrupt or not a CIFAR batch: {error}") from error
    if not isinstance(entry, dict):
        raise RuntimeError(f"{path} is not a CIFAR batch (a {type(entry).__name__}, not a dict)")
    for value in entry.values():
        if isinstance(value, np.ndarray) and value.dtype.hasobject:
            raise RuntimeError(f"{path} holds an object array; refusing it")
    return entry


class CIFAR10(ember.data.Dataset):
    """CIFAR-10: ``(PIL image RGB 32x32, int label)`` pairs from ``root/cifar-10-batches-py``.

    ``download=True`` fetches the tarball through ``ember.hub`` (honouring ``EMBER_OFFLINE``),
    checks its published MD5 (no SHA-256 is published) and extracts it. The batch files are
    read with a restricted unpickler, never ``pickle.load``.
    """

    base_folder = "cifar-10-batches-py"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    filename = "cifar-10-python.tar.gz"
    tgz_md5 = "c58f30108f718f92721af3b95e74349a"
    train_list = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]
    test_list = ["test_batch"]
    meta = {"filename": "batches.meta", "key": "label_names"}
    labels_key = "labels"

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = os.fspath(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        if download:
            self.download()
        folder = os.path.join(self.root, self.base_folder)
        names = self.train_list if train else self.test_list
        missing = [
            n
            for n in names + [self.meta["filename"]]
            if not os.path.isfile(os.path.join(folder, n))
        ]
        if missing:
            raise RuntimeError(
                f"Dataset not found or corrupted: {', '.join(missing)} missing in {folder}. "
                "You can use download=True to download it"
            )
        data, targets = [], []
        for name in names:
            path = os.path.join(folder, name)
            entry = load_batch(path)
            try:
                rows = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                labels = [int(t) for t in entry[self.labels_key]]
            except (KeyError, ValueError, TypeError) as error:
                raise RuntimeError(f"{path} is not a CIFAR batch: {error!r}") from error
            if len(rows) != len(labels):
                raise RuntimeError(f"{path}: {len(rows)} images but {len(labels)} labels")
            data.append(rows)
            targets.extend(labels)
        self.data = np.concatenate(data).transpose(0, 2, 3, 1)  # (N, 32, 32, 3) uint8
        self.targets = targets
        meta = load_batch(os.path.join(folder, self.meta["filename"]))
        self.classes = [str(c) for c in meta[self.meta["key"]]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def download(self):
        """Fetch and extract the tarball unless the batch files are already there."""
        folder = os.path.join(self.root, self.base_folder)
        if all(os.path.isfile(os.path.join(folder, n)) for n in self.train_list + self.test_list):
            return
        path = download_url(self.url, self.root, self.filename, self.tgz_md5)
        extract_tar(path, self.root)

    def __getitem__(self, index):
        img = Image.fromarray(self.data[index])
        target = self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self):
        return len(self.data)


class CIFAR100(CIFAR10):
    """CIFAR-100 (fine labels) from ``root/cifar-100-python``; otherwise as ``CIFAR10``."""

    base_folder = "cifar-100-python"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    filename = "cifar-100-python.tar.gz"
    tgz_md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    train_list = ["train"]
    test_list = ["test"]
    meta = {"filename": "meta", "key": "fine_label_names"}
    labels_key = "fine_labels"

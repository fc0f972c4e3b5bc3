"""Datasets on tiny files written by the tests in the real formats."""

import functools
import gzip
import hashlib
import http.server
import os
import pickle
import struct
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

import ember
from ember_vision import datasets, transforms


def _write_idx(path, array, compress=False):
    # IDX: two zero bytes, type code 0x08 (uint8), ndim, big-endian int32 dims, raw data
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("cls", [datasets.MNIST, datasets.FashionMNIST])
def test_mnist_from_idx_files(tmp_path, cls):
    raw = tmp_path / cls.__name__ / "raw"
    raw.mkdir(parents=True)
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 251
    _write_idx(str(raw / "train-images-idx3-ubyte"), images)
    _write_idx(str(raw / "train-labels-idx1-ubyte.gz"), np.array([7, 0, 9]), compress=True)
    ds = cls(str(tmp_path), train=True, transform=transforms.ToTensor())
    assert len(ds) == 3
    img, label = ds[2]
    assert label == 9 and img.shape == (1, 28, 28)
    np.testing.assert_allclose(img.numpy()[0], images[2] / 255.0, rtol=1e-6)
    assert len(ds.classes) == 10
    with pytest.raises(RuntimeError, match="download=True"):
        cls(str(tmp_path), train=False)


def test_mnist_corrupt_file_is_reported(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(str(raw / "train-images-idx3-ubyte"), np.zeros((2, 28, 28)))
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    with pytest.raises(RuntimeError, match="corrupt"):
        datasets.MNIST(str(tmp_path))


def _write_cifar(folder, names, labels_key, meta_name, meta_key, n=4, seed=0):
    os.makedirs(folder)
    g = np.random.default_rng(seed)
    batches = {}
    for name in names:
        data = g.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(x) for x in g.integers(0, 10, size=n)]
        batches[name] = (data, labels)
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({"batch_label": name, "data": data, labels_key: labels}, f, protocol=2)
    with open(os.path.join(folder, meta_name), "wb") as f:
        pickle.dump({meta_key: [f"class{i}" for i in range(10)]}, f, protocol=2)
    return batches


def test_cifar10_python_batches(tmp_path):
    names = [f"data_batch_{i}" for i in range(1, 6)]
    folder = str(tmp_path / "cifar-10-batches-py")
    batches = _write_cifar(folder, names + ["test_batch"], "labels", "batches.meta", "label_names")
    ds = datasets.CIFAR10(str(tmp_path), train=True)
    assert len(ds) == 20 and ds.classes[3] == "class3"
    img, label = ds[5]  # batch 2, row 1
    data, labels = batches["data_batch_2"]
    assert label == labels[1]
    # a row is 1024 red, then 1024 green, then 1024 blue values, each 32x32 row-major
    np.testing.assert_array_equal(np.array(img)[:, :, 1], data[1, 1024:2048].reshape(32, 32))
    assert len(datasets.CIFAR10(str(tmp_path), train=False)) == 4


def test_cifar100_fine_labels(tmp_path):
    folder = str(tmp_path / "cifar-100-python")
    batches = _write_cifar(folder, ["train", "test"], "fine_labels", "meta", "fine_label_names")
    ds = datasets.CIFAR100(str(tmp_path), train=False)
    assert [ds[i][1] for i in range(4)] == batches["test"][1]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_refuses_untrusted_pickles_and_reports_missing(tmp_path):
    with pytest.raises(RuntimeError, match="download=True"):
        datasets.CIFAR10(str(tmp_path))
    folder = tmp_path / "cifar-100-python"
    _write_cifar(str(folder), ["train", "test"], "fine_labels", "meta", "fine_label_names")
    with open(folder / "train", "wb") as f:
        pickle.dump({"data": _Evil(), "fine_labels": []}, f, protocol=2)
    with pytest.raises(RuntimeError, match="refusing"):
        datasets.CIFAR100(str(tmp_path), train=True)
    (folder / "test").write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="corrupt"):
        datasets.CIFAR100(str(tmp_path), train=False)


def test_image_folder(tmp_path):
    for cls, color in (("zebra", 10), ("ant", 20)):
        os.makedirs(tmp_path / cls / "sub")
        Image.new("RGB", (3, 2), (color, 0, 0)).save(tmp_path / cls / "b.png")
        Image.new("RGB", (3, 2), (color + 1, 0, 0)).save(tmp_path / cls / "sub" / "a.PNG")
        (tmp_path / cls / "notes.txt").write_text("not an image")
    ds = datasets.ImageFolder(str(tmp_path))
    assert ds.classes == ["ant", "zebra"] and ds.class_to_idx == {"ant": 0, "zebra": 1}
    assert [os.path.relpath(p, tmp_path) for p, _ in ds.samples] == [
        os.path.join("ant", "b.png"),
        os.path.join("ant", "sub", "a.PNG"),
        os.path.join("zebra", "b.png"),
        os.path.join("zebra", "sub", "a.PNG"),
    ]
    assert ds.targets == [0, 0, 1, 1]
    img, label = ds[3]
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (11, 0, 0) and label == 1
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        datasets.ImageFolder(str(tmp_path))
    assert len(datasets.ImageFolder(str(tmp_path), allow_empty=True)) == 4


def test_fake_data_with_dataloader():
    ds = datasets.FakeData(
        size=6, image_size=(3, 8, 8), num_classes=4, transform=transforms.ToTensor()
    )
    a, b = ds[1], ds[1]
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    assert a[1] == b[1] and 0 <= a[1] < 4
    with pytest.raises(IndexError):
        ds[6]
    loader = ember.data.DataLoader(ds, batch_size=4)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 8, 8) and y.shape == (4,)
    gray = datasets.FakeData(size=1, image_size=(1, 5, 7))[0][0]
    assert gray.mode == "L" and gray.size == (7, 5)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(directory):
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def test_mnist_download_from_local_server_checks_md5(tmp_path, monkeypatch):
    served = tmp_path / "srv"
    served.mkdir()
    _write_idx(str(served / "train-images-idx3-ubyte.gz"), np.ones((2, 28, 28)), compress=True)
    _write_idx(str(served / "train-labels-idx1-ubyte.gz"), np.array([3, 4]), compress=True)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.iterdir()}
    server, base = _serve(served)
    monkeypatch.delenv("EMBER_OFFLINE", raising=False)
    try:
        monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/", base])
        monkeypatch.setattr(datasets.MNIST, "resources", sorted(md5.items()))
        ds = datasets.MNIST(str(tmp_path / "root"), download=True)
        assert len(ds) == 2 and ds[1][1] == 4
        monkeypatch.setattr(datasets.MNIST, "resources", [("train-labels-idx1-ubyte.gz", "0" * 32)])
        with pytest.raises(RuntimeError, match="MD5"):
            datasets.MNIST(str(tmp_path / "other"), download=True)
        assert not (tmp_path / "other" / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").exists()
    finally:
        server.shutdown()
        server.server_close()


def test_cifar10_download_extracts_the_tarball(tmp_path, monkeypatch):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = _write_cifar(
        str(tmp_path / "build" / "cifar-10-batches-py"),
        names,
        "labels",
        "batches.meta",
        "label_names",
    )
    served = tmp_path / "srv"
    served.mkdir()
    with tarfile.open(served / "c10.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    server, base = _serve(served)
    monkeypatch.delenv("EMBER_OFFLINE", raising=False)
    try:
        monkeypatch.setattr(datasets.CIFAR10, "url", base + "c10.tar.gz")
        monkeypatch.setattr(
            datasets.CIFAR10,
            "tgz_md5",
            hashlib.md5((served / "c10.tar.gz").read_bytes()).hexdigest(),
        )
        ds = datasets.CIFAR10(str(tmp_path / "root"), train=False, download=True)
    finally:
        server.shutdown()
        server.server_close()
    assert ds.targets == batches["test_batch"][1]

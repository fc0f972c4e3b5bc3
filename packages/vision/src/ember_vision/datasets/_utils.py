"""Download and integrity helpers shared by the datasets."""

import hashlib
import os
import tarfile

import ember


def md5_of(path, chunk_size=1024 * 1024):
    """The MD5 hex digest of a file (the datasets publish MD5 sums, not SHA-256)."""
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            md5.update(chunk)
    return md5.hexdigest()


def check_integrity(path, md5=None):
    """True if ``path`` exists and (when given) its MD5 is ``md5``."""
    if not os.path.isfile(path):
        return False
    return md5 is None or md5_of(path) == md5


def download_url(url, root, filename, md5=None):
    """Download ``url`` to ``root/filename`` through ``ember.hub`` (honours ``EMBER_OFFLINE``),
    then check the published MD5; a mismatch removes the file and raises ``RuntimeError``."""
    path = os.path.join(root, filename)
    if check_integrity(path, md5):
        return path
    os.makedirs(root, exist_ok=True)
    ember.hub.download_url_to_file(url, path, progress=False)
    if not check_integrity(path, md5):
        os.remove(path)
        raise RuntimeError(f"{url}: the downloaded file does not have the published MD5 {md5}")
    return path


def extract_tar(path, dest):
    """Extract a tar archive with the ``data`` filter (no absolute paths, links out, devices)."""
    with tarfile.open(path) as tar:
        tar.extractall(dest, filter="data")

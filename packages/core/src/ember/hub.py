"""Download files with SHA-256 checks into a local cache, as ``torch.hub`` does.

The cache lives in ``get_dir()`` (``$EMBER_HOME/hub``, ``EMBER_HOME`` defaulting to
``~/.cache/ember``); checkpoints go to ``get_dir()/checkpoints/``. With the environment variable
``EMBER_OFFLINE=1`` nothing touches the network: cached files are used, and a missing one raises
an error that says which URL to fetch and where to put the file.
"""

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

from tqdm import tqdm

__all__ = ["download_url_to_file", "get_dir", "load_state_dict_from_url", "set_dir"]

ENV_EMBER_HOME = "EMBER_HOME"
ENV_EMBER_OFFLINE = "EMBER_OFFLINE"
# torch.hub's rule: "resnet18-f37072fd.pth" carries the SHA-256 prefix "f37072fd".
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
READ_DATA_CHUNK = 128 * 1024
# Seconds a connect or a single read may stall before the download fails (not the total time).
TIMEOUT = 30.0

_hub_dir = None


def _ember_home():
    default = os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "ember")
    return os.path.expanduser(os.getenv(ENV_EMBER_HOME, default))


def get_dir():
    """Return the hub cache directory: ``set_dir``'s path, else ``$EMBER_HOME/hub``.

    ``EMBER_HOME`` is read at each call and defaults to ``~/.cache/ember`` (or
    ``$XDG_CACHE_HOME/ember``), as ``torch.hub.get_dir`` does with ``TORCH_HOME``.

    >>> import os, ember
    >>> os.path.basename(ember.hub.get_dir())
    'hub'
    """
    if _hub_dir is not None:
        return _hub_dir
    return os.path.join(_ember_home(), "hub")


def set_dir(d):
    """Make ``get_dir()`` return ``d`` (``~`` expanded) from now on, whatever ``EMBER_HOME`` is."""
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def _is_offline():
    return os.getenv(ENV_EMBER_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def _sha256(path):
    sha256 = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(READ_DATA_CHUNK), b""):
            sha256.update(chunk)
    return sha256.hexdigest()


def _open(url):
    """Open ``url``; HTTP and connection errors are re-raised naming the URL."""
    request = urllib.request.Request(url, headers={"User-Agent": "ember.hub"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        reason = f"{error.reason} (download_url_to_file: GET {url} answered {error.code})"
        error.close()  # the new error carries no body; release the connection now
        raise urllib.error.HTTPError(url, error.code, reason, error.headers, None) from error
    except urllib.error.URLError as error:
        reason = f"download_url_to_file: cannot reach {url}: {error.reason}"
        raise urllib.error.URLError(reason) from error


def _content_length(response):
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _stream(url, response, f, total, progress):
    """Copy the response body into ``f``; return the SHA-256 hex digest of what was written."""
    sha256 = hashlib.sha256()
    received = 0
    bar = tqdm(total=total, disable=not progress, unit="B", unit_scale=True, unit_divisor=1024)
    with bar:
        while True:
            try:
                chunk = response.read(READ_DATA_CHUNK)
            except (http.client.IncompleteRead, OSError) as error:
                raise RuntimeError(
                    f"download_url_to_file: the transfer of {url} broke off after "
                    f"{received} bytes: {error!r}"
                ) from error
            if not chunk:
                break
            f.write(chunk)
            sha256.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    # http.client ends a short body quietly with b"", so the length is checked here.
    if total is not None and received != total:
        raise RuntimeError(
            f"download_url_to_file: incomplete download of {url}: received {received} bytes, "
            f"Content-Length announced {total}"
        )
    return sha256.hexdigest()


def download_url_to_file(url, dst, hash_prefix=None, progress=True):
    """Download ``url`` to the path ``dst``, checking the SHA-256 digest against ``hash_prefix``.

    The body is streamed into a temporary file beside ``dst`` and moved into place only when it
    is complete and its digest starts with ``hash_prefix`` (when given); on any failure no file
    is left behind. A hash mismatch raises ``RuntimeError``, an HTTP error status
    ``urllib.error.HTTPError`` naming the URL and the status, a transfer that breaks off
    ``RuntimeError``. ``progress`` shows a tqdm bar on stderr. With ``EMBER_OFFLINE=1`` it raises
    ``RuntimeError`` instead of touching the network.

    Args:
        url (str): the URL of the file to download.
        dst (str or os.PathLike): the full path where the file is saved.
        hash_prefix (str, optional): the hex digits the SHA-256 digest must start with.
        progress (bool): whether to show a progress bar. Default: True.
    """
    dst = os.path.abspath(os.path.expanduser(os.fspath(dst)))
    if _is_offline():
        raise RuntimeError(
            f"download_url_to_file: {ENV_EMBER_OFFLINE}=1 forbids network access; download "
            f"{url} on a machine that has it and copy the file to {dst}"
        )
    dst_dir = os.path.dirname(dst)
    os.makedirs(dst_dir, exist_ok=True)
    # A unique name in dst's own directory, so os.replace is an atomic rename.
    tmp = f"{dst}.{uuid.uuid4().hex}.partial"
    try:
        with _open(url) as response, open(tmp, "wb") as f:
            digest = _stream(url, response, f, _content_length(response), progress)
        if hash_prefix is not None and not digest.startswith(hash_prefix):
            raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "{digest}")')
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_cached(url, cached_file, hash_prefix):
    """Raise if a file already in the cache does not have the digest its name promises."""
    digest = _sha256(cached_file)
    if not digest.startswith(hash_prefix):
        raise RuntimeError(
            f"load_state_dict_from_url: the cached file {cached_file} is corrupt or not the file "
            f'its name promises: invalid hash value (expected "{hash_prefix}", got "{digest}"); '
            f"delete it and download {url} again"
        )


def load_state_dict_from_url(
    url,
    model_dir=None,
    map_location=None,
    progress=True,
    check_hash=False,
    file_name=None,
    weights_only=True,
):
    """Load the checkpoint at ``url`` with ``ember.load``, downloading it into the cache once.

    The file is kept in ``model_dir`` (default ``get_dir()/checkpoints``) under the last part of
    the URL's path, or ``file_name``; a file already there is not downloaded again. With
    ``check_hash`` the SHA-256 digest must start with the hex digits after the name's last
    ``-`` (torch.hub's rule: ``resnet18-f37072fd.pth`` -> ``f37072fd``); a mismatch raises
    ``RuntimeError``, for a fresh download and for a cached file alike. With ``EMBER_OFFLINE=1``
    a missing file raises ``RuntimeError`` naming the URL and the path to put it at.

    Args:
        url (str): the URL of the checkpoint.
        model_dir (str, optional): the directory to keep the file in.
        map_location: passed to ``ember.load``.
        progress (bool): whether to show a progress bar while downloading. Default: True.
        check_hash (bool): whether to check the digest against the file name. Default: False.
        file_name (str, optional): the name to keep the file under instead of the URL's.
        weights_only (bool): passed to ``ember.load``. Default: True.
    """
    if model_dir is None:
        model_dir = os.path.join(get_dir(), "checkpoints")
    model_dir = os.path.expanduser(os.fspath(model_dir))
    filename = (
        file_name if file_name is not None else os.path.basename(urllib.parse.urlparse(url).path)
    )
    if not filename:
        raise ValueError(
            f"load_state_dict_from_url: the URL {url!r} names no file; pass file_name="
        )
    cached_file = os.path.join(model_dir, filename)
    match = HASH_REGEX.search(filename) if check_hash else None
    hash_prefix = match.group(1) if match else None
    if os.path.exists(cached_file):
        if hash_prefix:
            _check_cached(url, cached_file, hash_prefix)
    elif _is_offline():
        raise RuntimeError(
            f"load_state_dict_from_url: {ENV_EMBER_OFFLINE}=1 and the file is not in the cache; "
            f"download {url} and save it as {cached_file}"
        )
    else:
        os.makedirs(model_dir, exist_ok=True)
        sys.stderr.write(f'Downloading: "{url}" to {cached_file}\n')
        download_url_to_file(url, cached_file, hash_prefix, progress=progress)
    from . import serialization  # imported here: serialization may import hub's neighbours

    return serialization.load(cached_file, map_location=map_location, weights_only=weights_only)

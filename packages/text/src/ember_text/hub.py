"""Hugging Face hub ids for ``from_pretrained``: fetch a repo's files into ember's hub cache.

``snapshot("bert-base-uncased")`` downloads what a model, tokenizer or sentence-transformers
pipeline needs from ``{HF_ENDPOINT}/{repo_id}/resolve/{revision}/{filename}`` (the endpoint
defaults to ``https://huggingface.co``) into ``ember.hub.get_dir()/huggingface/<org>--<name>/
<revision>/`` with ``ember.hub.download_url_to_file`` (atomic writes, nothing left behind on
an error). A file already cached is used without asking the server again; files the repo lacks
(HTTP 404) are remembered in ``.missing.json`` so they are not asked for again either. Large
(LFS) files carry their SHA-256 in the ``X-Linked-Etag`` header, and a download whose digest
differs is refused. With ``EMBER_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` only the cache is used.
"""

import fnmatch
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from ember import hub

__all__ = ["hf_hub_url", "is_repo_id", "resolve", "snapshot"]

ENV_ENDPOINT = "HF_ENDPOINT"
ENV_HF_OFFLINE = "HF_HUB_OFFLINE"
DEFAULT_ENDPOINT = "https://huggingface.co"
CONFIG_FILE = "config.json"
# In order of preference; each may instead be sharded behind "<name>.index.json".
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "source.spm",
    "target.spm",
)
# What each from_pretrained needs; None means every file snapshot knows about.
CONFIG_PATTERNS = (CONFIG_FILE,)
MODEL_PATTERNS = (CONFIG_FILE, *WEIGHT_FILES)
MISSING_RECORD = ".missing.json"
MAX_REDIRECTS = 5
USER_AGENT = "ember_text.hub"
# Hugging Face's own rule for repo names: letters, digits, "-", "_", "."; at most 96 characters.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"(?:{_NAME}/)?{_NAME}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _truthy(value):
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _is_offline(offline):
    if offline is not None:
        return bool(offline)
    return _truthy(os.getenv(hub.ENV_EMBER_OFFLINE)) or _truthy(os.getenv(ENV_HF_OFFLINE))


def is_repo_id(name):
    """Whether ``name`` is a string shaped like a hub repo id: ``name`` or ``org/name``.

    >>> is_repo_id("bert-base-uncased"), is_repo_id("sentence-transformers/all-MiniLM-L6-v2")
    (True, True)
    >>> is_repo_id("./models/bert"), is_repo_id("a/b/c"), is_repo_id("org--x/y")
    (False, False, False)
    """
    if not isinstance(name, str) or not _REPO_ID.fullmatch(name):
        return False
    return ".." not in name and "--" not in name


def hf_hub_url(repo_id, filename, revision="main", endpoint=None):
    """The download URL of ``filename`` in repo ``repo_id`` at ``revision``, as huggingface_hub's.

    ``endpoint`` defaults to ``$HF_ENDPOINT``, else ``https://huggingface.co``.

    >>> hf_hub_url("bert-base-uncased", "config.json", endpoint="https://huggingface.co")
    'https://huggingface.co/bert-base-uncased/resolve/main/config.json'
    """
    if endpoint is None:
        endpoint = os.getenv(ENV_ENDPOINT) or DEFAULT_ENDPOINT
    revision = urllib.parse.quote(revision, safe="")
    filename = urllib.parse.quote(filename, safe="/")
    return f"{endpoint.rstrip('/')}/{repo_id}/resolve/{revision}/{filename}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError, which keeps the 3xx response's headers


def _head(url):
    """Status and headers of a HEAD request; same-host (relative) redirects are followed.

    Hugging Face answers a large file with a redirect to its CDN; the SHA-256 is in that
    redirect's ``X-Linked-Etag`` header, which following it would lose.
    """
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(MAX_REDIRECTS):
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
        try:
            with opener.open(request, timeout=hub.TIMEOUT) as response:
                return response.status, response.headers
        except urllib.error.HTTPError as error:
            error.close()
            location = error.headers.get("Location")
            if 300 <= error.code < 400 and location and not urllib.parse.urlsplit(location).netloc:
                url = urllib.parse.urljoin(url, location)
                continue
            return error.code, error.headers
        except urllib.error.URLError as error:
            raise urllib.error.URLError(f"snapshot: cannot reach {url}: {error.reason}") from error
    raise RuntimeError(f"snapshot: more than {MAX_REDIRECTS} redirects for {url}")


def _sha256_of(headers):
    """The SHA-256 an ``X-Linked-Etag`` / ``ETag`` header holds, or None (git files: a sha1)."""
    etag = headers.get("X-Linked-Etag") or headers.get("ETag") or ""
    etag = etag.strip().removeprefix("W/").strip('"').lower()
    return etag if _SHA256.fullmatch(etag) else None


def _safe_name(name, repo_id):
    """Refuse file names from a repo's json files that would escape the snapshot folder."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or "\\" in name or ".." in parts:
        raise ValueError(f"snapshot: {repo_id} lists an unsafe file name {name!r}")
    return name


class _Snapshot:
    """One repo folder in the cache; ``fetch`` makes a file present or says the repo lacks it."""

    def __init__(self, repo_id, revision, folder, offline, progress):
        self.repo_id, self.revision, self.folder = repo_id, revision, folder
        self.offline, self.progress = offline, progress
        self.missing_path = folder / MISSING_RECORD
        self.missing = set()
        if self.missing_path.is_file():
            self.missing = set(json.loads(self.missing_path.read_text(encoding="utf-8")))
        self.found_missing = set()  # recorded only once the whole snapshot succeeds

    def url(self, name):
        return hf_hub_url(self.repo_id, name, self.revision)

    def save_missing(self):
        """Remember the optional files the repo lacks, so later calls do not ask again."""
        if not self.found_missing - self.missing:
            return
        tmp = self.missing_path.with_name(f"{MISSING_RECORD}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(self.missing | self.found_missing)), encoding="utf-8")
        os.replace(tmp, self.missing_path)  # atomic, so readers never see half a list

    def not_cached(self, what=None):
        what = f"{what} of " if what else ""
        return FileNotFoundError(
            f"snapshot: offline mode ({hub.ENV_EMBER_OFFLINE}=1 or {ENV_HF_OFFLINE}=1) and "
            f"{what}Hugging Face repo {self.repo_id} (revision {self.revision}) is not cached "
            f"in {self.folder}; run once with network access, or put the files from "
            f"{self.url('')} there"
        )

    def fetch(self, name, required=False):
        """The cached path of ``name``, downloading it if needed; None if the repo lacks it."""
        path = self.folder / name
        if path.is_file():
            return path
        if name in self.missing:
            return None
        if self.offline:
            if required:
                raise self.not_cached(name)
            return None
        url = self.url(name)
        status, headers = _head(url)
        code = headers.get("X-Error-Code")
        if status == 404 and code not in ("RepoNotFound", "RevisionNotFound"):
            self.found_missing.add(name)
            return None
        if status >= 400:
            why = ""
            if status in (401, 403, 404):
                why = (
                    f"; Hugging Face repo {self.repo_id!r} or revision {self.revision!r} does "
                    "not exist, or it is private or gated (ember_text sends no token)"
                )
            raise FileNotFoundError(f"snapshot: HEAD {url} answered {status} {code or ''}{why}")
        self._download(name, url, _sha256_of(headers))
        return path

    def _download(self, name, url, sha256):
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.progress:
            sys.stderr.write(f'Downloading: "{url}" to {path}\n')
        try:
            hub.download_url_to_file(url, path, hash_prefix=sha256, progress=self.progress)
        except RuntimeError as error:  # hash mismatch or a broken transfer; nothing was kept
            raise RuntimeError(
                f"snapshot: {name} of Hugging Face repo {self.repo_id} was refused and not "
                f"kept: {error}"
            ) from error

    def fetch_sharded(self, index_name):
        """Fetch a ``*.index.json`` and every shard its ``weight_map`` names."""
        index = self.fetch(index_name)
        if index is None:
            return None
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        for shard in sorted(set(weight_map.values())):
            if self.fetch(_safe_name(shard, self.repo_id), required=True) is None:
                raise FileNotFoundError(
                    f"snapshot: {index_name} of Hugging Face repo {self.repo_id} names the "
                    f"shard {shard}, but {self.url(shard)} does not exist"
                )
        return index


def _allowed(name, patterns):
    return patterns is None or any(fnmatch.fnmatch(name, p) for p in patterns)


def _fetch_weights(snap, prefix, patterns):
    """One weights file, or an index and its shards; a cached one wins over asking again."""
    names = [prefix + name for name in WEIGHT_FILES if _allowed(prefix + name, patterns)]
    if not names:
        return
    for name in names:
        if (snap.folder / name).is_file():
            return
        if (snap.folder / f"{name}.index.json").is_file():
            snap.fetch_sharded(f"{name}.index.json")
            return
    if snap.offline:
        raise snap.not_cached(f"{' / '.join(names)} (or a sharded index)")
    for name in names:
        if snap.fetch(name) or snap.fetch_sharded(f"{name}.index.json"):
            return
    tried = [snap.url(n) for name in names for n in (name, f"{name}.index.json")]
    raise FileNotFoundError(
        f"snapshot: Hugging Face repo {snap.repo_id} (revision {snap.revision}) has no "
        f"weights; tried {', '.join(tried)}"
    )


def _fetch_model(snap, prefix, patterns):
    """config.json, the weights and the tokenizer files of the model in folder ``prefix``."""
    config = prefix + CONFIG_FILE
    if _allowed(config, patterns) and snap.fetch(config, required=True) is None:
        raise FileNotFoundError(
            f"snapshot: Hugging Face repo {snap.repo_id} (revision {snap.revision}) has no "
            f"{config}; tried {snap.url(config)}"
        )
    _fetch_weights(snap, prefix, patterns)
    for name in (*TOKENIZER_FILES, "sentence_bert_config.json"):
        if _allowed(prefix + name, patterns):
            snap.fetch(prefix + name)


def _module_folders(snap, patterns):
    """(model folders, other module folders) of a sentence-transformers ``modules.json``."""
    modules = snap.fetch("modules.json") if _allowed("modules.json", patterns) else None
    if modules is None:
        return [""], []
    models, others = [], []
    for entry in json.loads(modules.read_text(encoding="utf-8")):
        path = entry.get("path", "")
        prefix = _safe_name(path, snap.repo_id).rstrip("/") + "/" if path else ""
        kind = entry.get("type", "").rsplit(".", 1)[-1]
        (models if kind == "Transformer" else others).append(prefix)
    return models or [""], [prefix for prefix in others if prefix]


def snapshot(
    repo_id, revision="main", allow_patterns=None, cache_dir=None, offline=None, progress=True
):
    """Download what Hugging Face repo ``repo_id`` needs for ``from_pretrained``; return its folder.

    Fetched into ``cache_dir`` (default ``ember.hub.get_dir()/huggingface``) under
    ``<org>--<name>/<revision>``: ``config.json`` (required), the weights (``model.safetensors``,
    else its index and shards, else ``pytorch_model.bin`` or its shards; one is required), the
    tokenizer files the repo has, and for sentence-transformers repos ``modules.json``,
    ``sentence_bert_config.json`` and each module's ``config.json``. Only names matching one of
    ``allow_patterns`` (fnmatch; shards follow their index) are fetched. Files already cached,
    or known to be absent, cost no request. An LFS file whose SHA-256 differs from the
    ``X-Linked-Etag`` header raises ``RuntimeError`` and is not kept.

    Args:
        repo_id (str): ``name`` or ``org/name``, e.g. ``"bert-base-uncased"``.
        revision (str): a branch, tag or commit. Default: ``"main"``.
        allow_patterns (list of str, optional): restrict the files, e.g. ``["config.json"]``.
        cache_dir (str or os.PathLike, optional): the root of the cache.
        offline (bool, optional): use the cache only; default: ``EMBER_OFFLINE`` or
            ``HF_HUB_OFFLINE`` set to 1.
        progress (bool): show a progress bar per download. Default: True.
    """
    if not is_repo_id(repo_id):
        raise ValueError(f"snapshot: {repo_id!r} is not a repo id ('name' or 'org/name')")
    if isinstance(allow_patterns, str):
        allow_patterns = [allow_patterns]
    if not revision or revision in (".", ".."):
        raise ValueError(f"snapshot: {revision!r} is not a revision")
    root = Path(cache_dir if cache_dir is not None else Path(hub.get_dir()) / "huggingface")
    folder = root.expanduser() / repo_id.replace("/", "--") / revision.replace("/", "--")
    snap = _Snapshot(repo_id, revision, folder, _is_offline(offline), progress)
    if snap.offline and not folder.is_dir():
        raise snap.not_cached()
    models, others = _module_folders(snap, allow_patterns)
    for prefix in models:
        _fetch_model(snap, prefix, allow_patterns)
    for prefix in others:  # Pooling, Dense, ...: each keeps its settings in a config.json
        if _allowed(prefix + CONFIG_FILE, allow_patterns):
            snap.fetch(prefix + CONFIG_FILE)
    if not snap.offline:
        folder.mkdir(parents=True, exist_ok=True)
        snap.save_missing()
    return folder


def resolve(name_or_path, allow_patterns=None, caller="from_pretrained"):
    """The local path ``from_pretrained`` reads: ``name_or_path`` if it exists, else a snapshot.

    A string shaped like a repo id (``name`` or ``org/name``) that is not a local path is
    downloaded with :func:`snapshot`; anything else that does not exist raises
    ``FileNotFoundError``.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    if is_repo_id(name_or_path):
        return snapshot(name_or_path, allow_patterns=allow_patterns)
    raise FileNotFoundError(
        f"{caller}: {os.fspath(name_or_path)!r} is neither a directory nor a Hugging Face repo "
        "id ('name' or 'org/name', given as a str)"
    )

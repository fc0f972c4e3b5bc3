"""Hub ids in from_pretrained, against a fake Hugging Face on 127.0.0.1 (never the network).

The server answers ``/<repo>/resolve/<revision>/<file>`` like huggingface.co: HEAD and GET,
404 with ``X-Error-Code: EntryNotFound`` for a missing file, 401 ``RepoNotFound`` for an unknown
repo, and a redirect to ``/cdn/...`` for weights whose 302 carries ``X-Linked-Etag`` (sha256).
"""

import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import ember
from ember import hub as ember_hub
from ember_text import AutoModel, AutoTokenizer, BertConfig, BertModel, SentenceEncoder, hub

FIXTURES = Path(__file__).parent / "fixtures"
TEXTS = ["the quick brown fox", "a lazy dog"]
LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".spm")


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.repos`` ({repo id: folder}); see the module docstring."""

    def _answer(self, body):
        self.server.requests.append((self.command, self.path))
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] == "cdn":  # the "CDN": /cdn/<repo id with -->/<file>
            repo, name = parts[1].replace("--", "/"), "/".join(parts[2:])
        elif "resolve" in parts and len(parts) > parts.index("resolve") + 2:
            at = parts.index("resolve")
            repo, name = "/".join(parts[:at]), "/".join(parts[at + 2 :])
        else:
            return self._send(400, b"bad path", {}, body)
        if repo not in self.server.repos:
            return self._send(401, b"", {"X-Error-Code": "RepoNotFound"}, body)
        path = self.server.repos[repo] / name
        if not path.is_file():
            return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, body)
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if name in self.server.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])  # the etag still names the good bytes
        if parts[0] != "cdn" and name.endswith(LFS_SUFFIXES):
            location = f"http://127.0.0.1:{self.server.server_address[1]}/cdn/"
            location += f"{repo.replace('/', '--')}/{name}"
            headers = {"Location": location, "X-Linked-Etag": f'"{sha}"'}
            return self._send(302, b"", headers, body)
        git_sha1 = hashlib.sha1(data).hexdigest()  # small files: a git blob id, never checked
        return self._send(200, data, {"ETag": f'"{git_sha1}"'}, body)

    def _send(self, status, data, headers, body):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)
        self.close_connection = True

    def do_GET(self):
        self._answer(body=True)

    def do_HEAD(self):
        self._answer(body=False)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    """A fake hub on an ephemeral port, ember's hub dir in tmp_path, HF_ENDPOINT pointing at it."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "EMBER_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(ember_hub, "_hub_dir", str(tmp_path / "hub"))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.repos = {"org/tiny-bert": FIXTURES / "bert", "tiny-bert-bin": FIXTURES / "bert_bin"}
    srv.corrupt = set()
    srv.requests = []
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{srv.server_address[1]}")
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def cache(tmp_path, repo_id, revision="main"):
    return tmp_path / "hub" / "huggingface" / repo_id.replace("/", "--") / revision


def hidden_states(model):
    ids = ember.tensor([[2, 7, 11, 5, 3], [2, 9, 4, 3, 0]])
    with ember.no_grad():
        return model(ids, ember.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]))[0].numpy()


def test_auto_model_downloads_caches_and_matches_the_folder(server, tmp_path):
    model = AutoModel.from_pretrained("org/tiny-bert")
    assert isinstance(model, BertModel)
    np.testing.assert_array_equal(
        hidden_states(model), hidden_states(AutoModel.from_pretrained(FIXTURES / "bert"))
    )
    folder = cache(tmp_path, "org/tiny-bert")
    for name in ("config.json", "model.safetensors"):
        assert (folder / name).read_bytes() == (FIXTURES / "bert" / name).read_bytes()
    assert not list(folder.glob("*.partial"))
    fetched = {path.rsplit("/", 1)[-1] for method, path in server.requests if method == "GET"}
    assert fetched == {"config.json", "model.safetensors"}  # no tokenizer files for a model
    server.requests.clear()
    again = BertModel.from_pretrained("org/tiny-bert")
    assert server.requests == []  # all from the cache
    np.testing.assert_array_equal(hidden_states(again), hidden_states(model))


def test_pytorch_bin_when_no_safetensors_and_404s_are_remembered(server, tmp_path):
    model = AutoModel.from_pretrained("tiny-bert-bin")
    np.testing.assert_array_equal(
        hidden_states(model), hidden_states(AutoModel.from_pretrained(FIXTURES / "bert_bin"))
    )
    missing = json.loads((cache(tmp_path, "tiny-bert-bin") / ".missing.json").read_text())
    assert missing == ["model.safetensors", "model.safetensors.index.json"]
    server.requests.clear()
    AutoModel.from_pretrained("tiny-bert-bin")
    assert server.requests == []  # the 404s are not asked for again


def test_auto_tokenizer_and_config_fetch_only_their_files(server, tmp_path):
    tok = AutoTokenizer.from_pretrained("org/tiny-bert")
    assert tok(TEXTS) == AutoTokenizer.from_pretrained(FIXTURES / "bert")(TEXTS)
    folder = cache(tmp_path, "org/tiny-bert")
    assert sorted(p.name for p in folder.iterdir() if p.name != ".missing.json") == [
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert "vocab.txt" in json.loads((folder / ".missing.json").read_text())
    server.requests.clear()
    AutoTokenizer.from_pretrained("org/tiny-bert")
    assert server.requests == []
    config = BertConfig.from_pretrained("org/tiny-bert")
    assert config.hidden_size == 32
    assert [path.rsplit("/", 1)[-1] for _, path in server.requests] == ["config.json"] * 2


def test_offline_uses_the_cache_and_names_what_is_missing(server, tmp_path, monkeypatch):
    AutoModel.from_pretrained("org/tiny-bert")
    server.requests.clear()
    for name in ("HF_HUB_OFFLINE", "EMBER_OFFLINE"):
        with monkeypatch.context() as m:
            m.setenv(name, "1")
            assert isinstance(AutoModel.from_pretrained("org/tiny-bert"), BertModel)
            with pytest.raises(FileNotFoundError, match="offline.*tiny-bert-bin.*not cached"):
                AutoModel.from_pretrained("tiny-bert-bin")
    with pytest.raises(FileNotFoundError, match=r"offline.*\(revision v2\) is not cached"):
        hub.snapshot("org/tiny-bert", revision="v2", offline=True)
    (cache(tmp_path, "org/tiny-bert") / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors / pytorch_model.bin"):
        hub.snapshot("org/tiny-bert", allow_patterns=hub.MODEL_PATTERNS, offline=True)
    assert server.requests == []


def test_corrupted_download_is_refused_and_removed(server, tmp_path):
    server.corrupt.add("model.safetensors")
    good = (FIXTURES / "bert" / "model.safetensors").read_bytes()
    bad = good[:-1] + bytes([good[-1] ^ 1])
    expected, actual = hashlib.sha256(good).hexdigest(), hashlib.sha256(bad).hexdigest()
    with pytest.raises(RuntimeError, match="model.safetensors") as info:
        AutoModel.from_pretrained("org/tiny-bert")
    assert expected in str(info.value) and actual in str(info.value)
    folder = cache(tmp_path, "org/tiny-bert")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]  # nothing else kept
    server.corrupt.clear()
    assert isinstance(AutoModel.from_pretrained("org/tiny-bert"), BertModel)


def test_missing_config_weights_repo_and_bad_names(server, tmp_path):
    only_config = tmp_path / "only-config"
    only_config.mkdir()
    shutil.copy(FIXTURES / "bert" / "config.json", only_config)
    server.repos["org/no-weights"] = only_config
    server.repos["org/no-config"] = FIXTURES / "bert" / "none"
    with pytest.raises(FileNotFoundError, match=r"org/no-config .*config.json; tried http"):
        AutoModel.from_pretrained("org/no-config")
    with pytest.raises(FileNotFoundError, match="no weights; tried") as info:
        AutoModel.from_pretrained("org/no-weights")
    for name in ("model.safetensors", "pytorch_model.bin.index.json"):
        assert f"/org/no-weights/resolve/main/{name}" in str(info.value)
    with pytest.raises(FileNotFoundError, match="401 RepoNotFound.*private or gated"):
        AutoModel.from_pretrained("org/unknown")
    with pytest.raises(FileNotFoundError, match="neither a directory nor a Hugging Face repo"):
        AutoModel.from_pretrained(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="neither a directory nor a Hugging Face repo"):
        AutoTokenizer.from_pretrained("a/b/c")
    with pytest.raises(ValueError, match="not a revision"):
        hub.snapshot("org/tiny-bert", revision="..")


def test_sharded_index_downloads_every_shard(server, tmp_path):
    state = dict(ember.load(FIXTURES / "bert" / "model.safetensors"))
    repo = tmp_path / "sharded"
    repo.mkdir()
    shutil.copy(FIXTURES / "bert" / "config.json", repo)
    keys = sorted(state)
    shards = {
        "model-00001-of-00002.safetensors": keys[::2],
        "model-00002-of-00002.safetensors": keys[1::2],
    }
    for name, names in shards.items():
        ember.save({k: state[k] for k in names}, repo / name)
    weight_map = {k: name for name, names in shards.items() for k in names}
    (repo / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    server.repos["org/sharded"] = repo
    model = AutoModel.from_pretrained("org/sharded")
    np.testing.assert_array_equal(
        hidden_states(model), hidden_states(AutoModel.from_pretrained(FIXTURES / "bert"))
    )
    gets = [path for method, path in server.requests if method == "GET"]
    assert sum("/cdn/org--sharded/model-0000" in path for path in gets) == 2
    server.requests.clear()
    AutoModel.from_pretrained("org/sharded")
    assert server.requests == []


def test_sentence_encoder_from_hub_id(server, tmp_path):
    repo = tmp_path / "st"
    shutil.copytree(FIXTURES / "bert", repo)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    (repo / "modules.json").write_text(json.dumps(modules))
    (repo / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8}))
    (repo / "1_Pooling").mkdir()
    (repo / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    server.repos["org/tiny-st"] = repo
    enc = SentenceEncoder.from_pretrained("org/tiny-st")
    assert enc.pooling == ("max",) and enc.normalize and enc.max_seq_length == 8
    np.testing.assert_array_equal(
        enc.encode(TEXTS), SentenceEncoder.from_pretrained(repo).encode(TEXTS)
    )
    assert (cache(tmp_path, "org/tiny-st") / "1_Pooling" / "config.json").is_file()
    server.requests.clear()
    SentenceEncoder.from_pretrained("org/tiny-st")
    assert server.requests == []


@pytest.mark.parametrize(
    "name, ok",
    [
        ("bert-base-uncased", True),
        ("sentence-transformers/all-MiniLM-L6-v2", True),
        ("org/name.v2_x", True),
        ("a/b/c", False),
        ("/abs/path", False),
        ("./rel", False),
        ("org/../x", False),
        ("-bad", False),
        ("", False),
    ],
)
def test_is_repo_id(name, ok):
    assert hub.is_repo_id(name) is ok


def test_default_endpoint_and_revision_quoting(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    url = hub.hf_hub_url("org/m", "1_Pooling/config.json", revision="refs/pr/1")
    assert url == "https://huggingface.co/org/m/resolve/refs%2Fpr%2F1/1_Pooling/config.json"
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    assert hub.hf_hub_url("m", "config.json") == "https://mirror.example/m/resolve/main/config.json"

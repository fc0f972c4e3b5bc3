"""Hugging Face layout directories: config.json plus model.safetensors or pytorch_model.bin.

Weights are read with ``ember.load`` (no torch). Keys map explicitly: a base model loads a
checkpoint of a model with a head (``bert.`` / ``transformer.`` prefix stripped, the head
dropped with a warning), a model with a head loads a base checkpoint (prefix added, a missing
head initialised with a warning), ``_keys_to_ignore_on_load`` patterns are skipped and
``_tied_weights`` are taken from the weight they share. Every shape is checked before any
parameter changes, so a failed load leaves the model as it was.
"""

import dataclasses
import json
import re
import warnings
from pathlib import Path

import ember
from ember import nn

from .hub import CONFIG_PATTERNS, MODEL_PATTERNS, resolve

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclasses.dataclass
class PretrainedConfig:
    """Base of the model configs: dataclasses that round-trip through ``config.json``.

    Fields the dataclass does not know are kept in ``extra`` and written back unchanged.
    """

    extra: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data):
        """A config from a dict, unknown keys kept in ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        config = cls(**known)
        config.extra = {k: v for k, v in data.items() if k not in names}
        if "num_labels" in names and "num_labels" not in data and "id2label" in data:
            config.num_labels = len(data["id2label"])
        return config

    def to_dict(self):
        """The config as a JSON-ready dict (``extra`` merged in)."""
        data = dict(self.extra)
        data.update(
            {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        )
        return data

    @classmethod
    def from_json_file(cls, path):
        """Read a ``config.json`` file."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def from_pretrained(cls, directory):
        """Read ``config.json`` from a directory or a Hugging Face repo id (config only)."""
        directory = resolve(directory, CONFIG_PATTERNS, f"{cls.__name__}.from_pretrained")
        return cls.from_json_file(Path(directory) / "config.json")

    def to_json_file(self, path):
        """Write the config as indented, sorted JSON."""
        Path(path).write_text(
            json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

    def save_pretrained(self, directory):
        """Write ``config.json`` into ``directory`` (created if needed)."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.to_json_file(Path(directory) / "config.json")


def load_checkpoint(directory):
    """The flat ``{key: Tensor}`` of a directory's weights (single file or sharded with index)."""
    directory = Path(directory)
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return dict(ember.load(directory / name))
        index = directory / f"{name}.index.json"
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            state = {}
            for shard in sorted(set(weight_map.values())):
                state.update(ember.load(directory / shard))
            return state
    raise FileNotFoundError(
        f"from_pretrained: {directory} has none of {', '.join(WEIGHT_FILES)} (or an index)"
    )


class PreTrainedModel(nn.Module):
    """Base of the models: ``from_pretrained``, ``save_pretrained`` and weight initialisation."""

    config_class = PretrainedConfig
    base_model_prefix = ""
    _keys_to_ignore_on_load = ()
    _tied_weights = {}

    def init_weights(self):
        """Hugging Face's initialisation: normal(0, initializer_range) weights, zero biases."""
        std = getattr(self.config, "initializer_range", 0.02)
        with ember.no_grad():
            for module in self.modules():
                if (
                    isinstance(module, (nn.Linear, nn.Embedding))
                    or type(module).__name__ == "Conv1D"
                ):
                    nn.init.normal_(module.weight, 0.0, std)
                    if getattr(module, "bias", None) is not None:
                        nn.init.zeros_(module.bias)
                elif isinstance(module, nn.LayerNorm):
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, directory, config=None):
        """Build the model from ``config.json`` and the weights in a directory or hub repo id."""
        directory = resolve(directory, MODEL_PATTERNS, f"{cls.__name__}.from_pretrained")
        if config is None:
            config = cls.config_class.from_pretrained(directory)
        model = cls(config)
        model.load_hf_state_dict(load_checkpoint(directory))
        return model.eval()

    def save_pretrained(self, directory):
        """Write ``config.json`` and ``model.safetensors`` (tied copies left out) to a folder."""
        directory = Path(directory)
        config = self.config.to_dict()
        config["architectures"] = [type(self).__name__]
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        state = {k: v.detach() for k, v in self.state_dict().items() if k not in self._tied_weights}
        ember.save(state, directory / "model.safetensors")

    def _map_keys(self, checkpoint, own):
        prefix = self.base_model_prefix + "." if self.base_model_prefix else ""
        has_prefix = any(k.startswith(prefix) for k in checkpoint) if prefix else False
        own_has_prefix = any(k.startswith(prefix) for k in own) if prefix else False
        mapped, dropped = {}, []
        for key, value in checkpoint.items():
            if any(re.search(p, key) for p in self._keys_to_ignore_on_load):
                continue
            if prefix and has_prefix and not own_has_prefix:
                if not key.startswith(prefix):
                    dropped.append(key)
                    continue
                key = key[len(prefix) :]
            elif prefix and own_has_prefix and not has_prefix:
                key = prefix + key
            if key not in own:  # the original BERT checkpoints name LayerNorm's affine gamma/beta
                key = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", key))
            mapped[key] = value
        return mapped, dropped

    def load_hf_state_dict(self, checkpoint):
        """Load a Hugging Face state dict, checking keys and every shape first."""
        own = self.state_dict()
        mapped, dropped = self._map_keys(checkpoint, own)
        name = type(self).__name__
        if dropped:
            warnings.warn(f"{name}.from_pretrained: unused checkpoint weights {sorted(dropped)}")
        unexpected = sorted(set(mapped) - set(own))
        prefix = self.base_model_prefix + "."
        missing = sorted(k for k in own if k not in mapped and k not in self._tied_weights)
        head = [k for k in missing if self.base_model_prefix and not k.startswith(prefix)]
        fatal = [k for k in missing if k not in head]
        if unexpected or fatal or (head and len(head) == len(missing) == len(own)):
            raise KeyError(
                f"{name}.from_pretrained: missing keys {fatal or head}, "
                f"unexpected keys {unexpected}"
            )
        for key, value in mapped.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise ValueError(
                    f"{name}.from_pretrained: shape mismatch for {key!r}: checkpoint "
                    f"{tuple(value.shape)}, model {tuple(own[key].shape)}"
                )
        if head:
            warnings.warn(f"{name}.from_pretrained: newly initialised weights {head}")
        converted = {k: v.to(own[k].dtype) for k, v in mapped.items()}
        self.load_state_dict(converted, strict=False)
        return self


class AutoModel:
    """Pick a base model class from ``config.json``'s ``model_type`` (``bert``, ``gpt2``)."""

    task = "base"

    def __init__(self):
        raise TypeError(f"{type(self).__name__} is not instantiated; use .from_pretrained(path)")

    @classmethod
    def from_pretrained(cls, directory):
        """Load the model class registered for this directory's (or hub repo's) ``model_type``."""
        from .models import MODEL_CLASSES

        directory = resolve(directory, MODEL_PATTERNS, f"{cls.__name__}.from_pretrained")
        config = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
        model_type = config.get("model_type")
        choices = MODEL_CLASSES.get(model_type)
        if choices is None or cls.task not in choices:
            raise ValueError(
                f"{cls.__name__}.from_pretrained: no {cls.task} model for "
                f"model_type {model_type!r}; "
                f"known: {sorted(k for k, v in MODEL_CLASSES.items() if cls.task in v)}"
            )
        return choices[cls.task].from_pretrained(directory)


class AutoModelForSequenceClassification(AutoModel):
    """Like :class:`AutoModel`, for models with a sequence classification head."""

    task = "sequence-classification"


class AutoModelForCausalLM(AutoModel):
    """Like :class:`AutoModel`, for causal language models with a head."""

    task = "causal-lm"


class AutoModelForSeq2SeqLM(AutoModel):
    """Like :class:`AutoModel`, for encoder-decoder models with a head (``marian``)."""

    task = "seq2seq-lm"

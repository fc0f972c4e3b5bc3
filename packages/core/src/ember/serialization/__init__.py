"""``ember.save`` and ``ember.load``: safetensors plus JSON, never pickle; PyTorch checkpoints
are read without torch through an unpickler that admits only tensors and plain containers."""

from __future__ import annotations

import io
import json
import os

from .._tensor import Tensor, _make
from ..backend.device import device, to_device
from . import safetensors_io, structure, torch_reader, torch_writer
from .atomic import atomic_write
from .torch_reader import ForbiddenGlobalError

__all__ = ["ForbiddenGlobalError", "load", "save"]

_FORMATS = (None, "safetensors", "ember", "torch")
_METADATA_KEY = "ember"


def save(obj, f, format=None) -> None:
    """Save tensors and plain containers of them to a file, without pickle.

    ``obj`` may nest dicts (any hashable keys of the supported kinds: str, int, float, bool,
    None, tuples of them), OrderedDicts, lists and tuples of tensors, ints, floats, bools,
    strings and None: a model's or an optimizer's ``state_dict``, or ``{"model": ...,
    "optim": ..., "epoch": 3}``. ``f`` is a path or a writable binary file object.

    The default format is one safetensors file whose ``__metadata__`` holds a JSON description
    of ``obj``; a flat ``{str: Tensor}`` dict is thus an ordinary safetensors file that other
    tools read. ``format="torch"`` writes PyTorch's zip checkpoint format instead, which
    ``torch.load(f, weights_only=True)`` reads. A save to a path is atomic: the previous file
    survives any failure. Tensors are saved contiguous, and views of one tensor are saved as
    independent copies (they no longer share memory after loading); gradients are not saved.

    >>> import ember, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> ember.save({"w": ember.ones(2), "step": 3}, path)
    >>> ember.load(path)
    {'w': tensor([1., 1.]), 'step': 3}
    """
    if format not in _FORMATS:
        raise ValueError(f"ember.save: format must be one of {_FORMATS}, got {format!r}")
    if format == "torch":
        write = lambda fh: torch_writer.write(fh, obj)  # noqa: E731
    else:
        write = _safetensors_writer(obj)
    if isinstance(f, (str, os.PathLike)):
        atomic_write(f, write)
    elif hasattr(f, "write"):
        write(f)
    else:
        raise TypeError(f"ember.save: f must be a path or a binary file object, got {f!r}")


def _safetensors_writer(obj):
    # Encode before opening any file, so unsupported objects fail without touching the target.
    enc = structure.Encoder()
    root = enc.encode(obj)
    doc = json.dumps({"version": structure.VERSION, "root": root}, separators=(",", ":"))
    metadata = {"format": "pt", _METADATA_KEY: doc}
    return lambda fh: safetensors_io.write(fh, enc.arrays, metadata)


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **kwargs):
    """Load an object saved by :func:`save`, a ``.safetensors`` file or a PyTorch checkpoint.

    ember files come back as saved; a plain safetensors file comes back as ``{name: Tensor}``.
    PyTorch ``.pt``/``.pth`` files (zip and legacy formats) are read without torch: their
    pickle may name only tensor-rebuilding functions, storage classes, dtypes, ``torch.Size``
    and ``OrderedDict``; any other global raises :class:`ForbiddenGlobalError` (a
    ``pickle.UnpicklingError``) before anything runs, whatever ``weights_only`` says.
    Parameters load as plain tensors with their ``requires_grad``. ``map_location`` is None,
    a device or a string (``"cpu"``, ``"cuda:0"``), or a dict from saved to wanted locations.
    """
    if pickle_module is not None:
        raise ValueError("ember.load: pickle_module is not supported: ember never unpickles freely")
    encoding = kwargs.pop("encoding", "ASCII")
    if kwargs:
        raise TypeError(f"ember.load: unexpected keyword arguments {sorted(kwargs)}")
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return _load_file(fh, map_location, encoding)
    if hasattr(f, "read"):
        return _load_file(f, map_location, encoding)
    raise TypeError(f"ember.load: f must be a path or a binary file object, got {f!r}")


def _load_file(fh, map_location, encoding):
    if not (hasattr(fh, "seekable") and fh.seekable()):
        fh = io.BytesIO(fh.read())
    start = fh.tell()
    head = fh.read(9)
    fh.seek(start)
    place = _placement(map_location)
    if head[:4] == b"PK\x03\x04":
        obj, _ = torch_reader.read_zip(fh, encoding)
    elif head[:1] == b"\x80":
        obj, _ = torch_reader.read_legacy(fh, encoding)
    elif len(head) == 9 and head[8:9] == b"{":
        return _load_safetensors(bytearray(fh.read()), place)
    else:
        raise ValueError(
            f"ember.load: unrecognized file format (starts with {head!r}): expected an ember or "
            "safetensors file, or a PyTorch zip or legacy checkpoint"
        )
    return torch_reader.resolve(obj, lambda p: _tensor(torch_reader.materialize(p), p, place))


def _tensor(arr, pending, place) -> Tensor:
    t = _make(arr)
    target = place(pending.storage.location)
    if target.type != "cpu":
        t = t.to(target)
    if pending.requires_grad:
        t.requires_grad_(True)
    return t


def _load_safetensors(buf, place):
    arrays, metadata = safetensors_io.read(buf)
    target = place("cpu")
    tensors = {}
    for name, arr in arrays.items():
        t = _make(arr)
        tensors[name] = t if target.type == "cpu" else t.to(target)
    doc = metadata.get(_METADATA_KEY)
    if doc is None:
        return tensors
    try:
        root = json.loads(doc)["root"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"ember.load: the file's ember structure is malformed: {e}") from None
    return structure.Decoder(tensors).decode(root)


def _placement(map_location):
    """A function from a saved location string to the device the tensor should land on."""
    if map_location is None:
        return _saved_location
    if isinstance(map_location, dict):
        table = {str(k): v for k, v in map_location.items()}
        return lambda loc: _saved_location(str(table.get(loc, loc)))
    if isinstance(map_location, (str, device)):
        target = to_device(map_location)
        return lambda loc: target
    raise TypeError(
        "ember.load: map_location must be None, a device, a string or a dict, got "
        f"{type(map_location).__name__}"
    )


def _saved_location(loc: str):
    if loc.startswith("cuda"):
        from .. import cuda

        if not cuda.is_available():
            raise RuntimeError(
                f"ember.load: the checkpoint holds tensors on {loc!r}, but CUDA is not "
                "available; pass map_location='cpu' to load them on the CPU"
            )
    try:
        return to_device(loc)
    except RuntimeError:
        raise RuntimeError(
            f"ember.load: unsupported saved location {loc!r}; pass map_location='cpu'"
        ) from None

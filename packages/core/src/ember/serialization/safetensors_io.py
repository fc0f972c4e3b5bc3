"""The safetensors file format, written and read with NumPy.

Layout: an 8-byte little-endian header length N, N bytes of JSON (``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}``, space-padded to a multiple of 8),
then the tensors' raw little-endian bytes, back to back with no gaps.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from ..backend import dtypes as _dt

CODES = {
    _dt.bool_: "BOOL",
    _dt.uint8: "U8",
    _dt.int8: "I8",
    _dt.int16: "I16",
    _dt.int32: "I32",
    _dt.int64: "I64",
    _dt.float16: "F16",
    _dt.bfloat16: "BF16",
    _dt.float32: "F32",
    _dt.float64: "F64",
}
FROM_CODE = {code: d for d, code in CODES.items()}
MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit


def to_little(arr: np.ndarray) -> np.ndarray:
    """``arr`` as a C-contiguous array whose bytes are in little-endian order."""
    arr = np.asarray(arr, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    if sys.byteorder != "little" and arr.itemsize > 1:
        arr = arr.view(f"u{arr.itemsize}").byteswap().view(arr.dtype)
    return arr


def write(fh, arrays: dict, metadata: dict | None = None) -> None:
    """Write ``{name: ndarray}`` (and string ``metadata``) to the binary file ``fh``."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = metadata
    chunks, offset = [], 0
    for name, arr in arrays.items():
        arr = to_little(arr)
        dt = _dt.from_numpy_dtype(arr.dtype)
        header[name] = {"dtype": CODES[dt], "shape": list(arr.shape)}
        header[name]["data_offsets"] = [offset, offset + arr.nbytes]
        offset += arr.nbytes
        chunks.append(arr)
    raw = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    fh.write(len(raw).to_bytes(8, "little"))
    fh.write(raw)
    for arr in chunks:
        if arr.size:
            fh.write(arr.reshape(-1).view(np.uint8).data)


def read_header(buf, where: str = "ember.load") -> tuple[dict, int]:
    """Parse the header of the safetensors bytes ``buf``; return (header, data start)."""
    if len(buf) < 8:
        raise ValueError(f"{where}: file too short for safetensors ({len(buf)} bytes)")
    n = int.from_bytes(bytes(buf[:8]), "little")
    if n > MAX_HEADER or 8 + n > len(buf):
        raise ValueError(f"{where}: safetensors header length {n} exceeds the file ({len(buf)})")
    try:
        header = json.loads(bytes(buf[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: safetensors header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{where}: safetensors header must be a JSON object")
    return header, 8 + n


def read(buf, where: str = "ember.load") -> tuple[dict, dict]:
    """Read safetensors bytes; return ({name: ndarray}, metadata) in the header's order."""
    header, start = read_header(buf, where)
    metadata = header.pop("__metadata__", None) or {}
    size = len(buf) - start
    arrays = {}
    for name, info in header.items():
        arrays[name] = _one(buf, start, size, name, info, where)
    return arrays, metadata


def _one(buf, start: int, size: int, name: str, info, where: str) -> np.ndarray:
    try:
        code, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise ValueError(f"{where}: malformed safetensors entry {name!r}: {info!r}") from None
    if code not in FROM_CODE:
        raise TypeError(
            f"{where}: tensor {name!r} has safetensors dtype {code!r}, which ember does not "
            f"support (supported: {', '.join(FROM_CODE)})"
        )
    dt = FROM_CODE[code].np
    if not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ValueError(f"{where}: tensor {name!r} has an invalid shape {shape!r}")
    count = int(np.prod(shape, dtype=np.int64))
    if not (0 <= begin <= end <= size) or end - begin != count * dt.itemsize:
        raise ValueError(
            f"{where}: tensor {name!r} with shape {shape} and dtype {code} does not match its "
            f"data_offsets [{begin}, {end}] (data section is {size} bytes)"
        )
    arr = np.frombuffer(buf, dtype=np.uint8, count=end - begin, offset=start + begin)
    arr = arr.view(dt) if count else np.empty(0, dt)
    if sys.byteorder != "little" and dt.itemsize > 1:
        arr = arr.view(f"u{dt.itemsize}").byteswap().view(dt)
    return arr.reshape(shape).copy()

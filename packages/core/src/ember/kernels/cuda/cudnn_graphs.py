"""cuDNN frontend graphs on CuPy memory: one handle per GPU, graphs built once per shape and
cached, executed on raw device pointers on CuPy's current stream.

A graph that cuDNN refuses (no engine for a shape, dtype or layout) is remembered as refused,
and its caller falls back to its CuPy path; ``refusals()`` lists why, for diagnosis.
"""

from __future__ import annotations

import warnings

import numpy as np

from ...backends import cudnn as _flags

_STATE = {"module": None, "error": None}
_HANDLES: dict = {}  # device id -> cudnn handle
_ON_STREAM: dict = {}  # device id -> the stream its handle was last set to
_GRAPHS: dict = {}  # key -> (graph, workspace bytes, tensors) or None when refused
_REFUSED: dict = {}  # key -> reason


def cudnn():
    """The ``cudnn`` module, or None when the cuDNN frontend does not load here."""
    if _STATE["module"] is None and _STATE["error"] is None:
        try:
            import cudnn as mod

            _STATE["module"] = mod
        except Exception as exc:  # noqa: BLE001 - missing package or runtime: no cuDNN
            _STATE["error"] = repr(exc)
    return _STATE["module"]


def enabled() -> bool:
    """True when ``ember.backends.cudnn.enabled`` is set and the frontend loads. The first
    time it does not load, a RuntimeWarning says why and what runs instead."""
    if not _flags.enabled:
        return False
    if cudnn() is None:
        if not _STATE.get("warned"):
            _STATE["warned"] = True
            warnings.warn(
                f"ember: the cuDNN frontend did not load ({_STATE['error']}); CUDA convolutions "
                "and attention run on slower CuPy paths. pip install 'ember[cuda]' installs it.",
                RuntimeWarning,
                stacklevel=3,
            )
        return False
    return True


_TYPE_NAMES = {"float32": "FLOAT", "float64": "DOUBLE", "float16": "HALF", "bfloat16": "BFLOAT16"}
_TYPES: dict = {}  # dtype -> cudnn.data_type or None (ml_dtypes' dtype.name runs Python code)


def data_type(dtype):
    """The cudnn.data_type of a NumPy dtype, or None."""
    hit = _TYPES.get(dtype, False)
    if hit is False:
        mod = cudnn()
        name = _TYPE_NAMES.get(np.dtype(dtype).name)
        hit = None if name is None or mod is None else getattr(mod.data_type, name)
        if mod is not None:
            _TYPES[dtype] = hit
    return hit


def handle():
    """The cuDNN handle of the current GPU, set to CuPy's current stream."""
    return _current()[0]


def _current():
    """(the current GPU's handle set to CuPy's current stream, (device, stream))."""
    import cupy

    mod = cudnn()
    dev = cupy.cuda.runtime.getDevice()
    h = _HANDLES.get(dev)
    if h is None:
        h = _HANDLES[dev] = mod.create_handle()
    stream = cupy.cuda.get_current_stream().ptr
    if _ON_STREAM.get(dev) != stream:  # ours alone: set only when the stream changes
        mod.set_stream(handle=h, stream=stream)
        _ON_STREAM[dev] = stream
    return h, (dev, stream)


_WORKSPACES: dict = {}  # (device, stream) -> uint8 buffer shared by the graphs run there


def _workspace(where, nbytes: int) -> int:
    """The address of at least ``nbytes`` of workspace for a graph run on ``where``'s stream:
    one buffer per stream, grown when a graph needs more, instead of an allocation per run
    (158 a ResNet-50 step). Runs on one stream are ordered, so they can share it."""
    import cupy

    ws = _WORKSPACES.get(where)
    if ws is None or ws.nbytes < nbytes:
        ws = _WORKSPACES[where] = cupy.empty(max(1, nbytes), dtype=cupy.uint8)
    return ws.data.ptr


def release_workspaces() -> None:
    """Drop the cached workspaces (``ember.cuda.empty_cache`` calls this)."""
    _WORKSPACES.clear()


def new_graph(dtype):
    """An empty graph with ``dtype`` I/O and float32 (float64 for float64) compute."""
    mod = cudnn()
    io = data_type(dtype)
    comp = mod.data_type.DOUBLE if np.dtype(dtype) == np.float64 else mod.data_type.FLOAT
    return mod.pygraph(
        io_data_type=io, intermediate_data_type=comp, compute_data_type=comp, handle=handle()
    )


def elem_strides(a) -> list:
    """An array's strides in elements."""
    return [s // a.itemsize for s in a.strides]


def build(key, make):
    """The cached graph for ``key``, built by ``make()`` -> (graph, tensors, float32?) on first
    use; None when cuDNN refuses it (remembered). Float32 graphs drop engines that would
    down-convert inputs, and TF32 ones unless ``ember.backends.cudnn.allow_tf32``."""
    key = (key, bool(_flags.allow_tf32), bool(_flags.deterministic))
    if key in _GRAPHS:
        return _GRAPHS[key]
    mod = cudnn()
    try:
        graph, tensors, is_f32 = make()
        graph.validate()
        graph.build_operation_graph()
        notes = []
        if is_f32:
            notes.append(mod.numerical_note.DOWN_CONVERT_INPUTS)
            if not _flags.allow_tf32:
                notes.append(mod.numerical_note.TENSOR_CORE)
        if _flags.deterministic:
            notes.append(mod.numerical_note.NONDETERMINISTIC)
        if notes:
            graph.deselect_numeric_notes(notes)
        graph.create_execution_plans([mod.heur_mode.A, mod.heur_mode.FALLBACK])
        graph.check_support()
        graph.build_plans()
        entry = [graph, int(graph.get_workspace_size()), tensors, None]
    except Exception as exc:  # noqa: BLE001 - any refusal means: use the fallback
        _REFUSED[key] = f"{type(exc).__name__}: {str(exc)[:300]}"
        entry = None
    _GRAPHS[key] = entry
    return entry


def _direct(graph, tensors):
    """A function that runs ``graph`` straight through its lowered C++ graph (one pybind call
    with a uid -> pointer map), or None when this frontend version has no such path. The
    public ``execute`` re-derives bindings and layouts in Python on every call: 160 us per
    convolution on an H100 host, most of a ResNet-50 step's host time."""
    try:
        from cudnn._handle import to_backend_handle

        if graph.selected_engine is not None:  # a Python engine: only execute() runs it
            return None
        lowered = graph.__dict__.get("_lowered_graph")
        bound = dict(graph._data_bindings)
        if lowered is None or any(type(v) is not int for v in bound.values()):
            return None
        cfg = graph._materialize_backend_plan(graph._plan_index) if graph._plans else None
        index = None if cfg is None else cfg.cpp_index
        uids = {name: t.uid for name, t in tensors.items()}
    except Exception:  # noqa: BLE001 - another frontend layout: keep the public path
        return None

    backend = {}  # handle -> its backend form, converted once

    def run(pointers, ws_ptr, h):
        pack = dict(bound)
        for name, arr in pointers.items():
            pack[uids[name]] = arr.data.ptr
        bh = backend.get(id(h))
        if bh is None:
            bh = backend[id(h)] = to_backend_handle(h)
        if index is None:
            lowered._execute(pack, ws_ptr, bh, None, None, None)
        else:
            lowered._execute_plan_at_index(pack, ws_ptr, index, bh, None, None, None)

    return run


def run(entry, pointers: dict) -> None:
    """Execute a built graph on ``{tensor name: CuPy array}``. The first run goes through
    the public ``execute`` and then the direct path (its outputs are overwritten, not
    accumulated, so running twice is harmless); later runs take the direct path alone, or
    the public one where the direct path is missing or failed."""
    graph, ws_bytes, tensors, direct = entry
    h, where = _current()
    ws_ptr = _workspace(where, ws_bytes)
    if direct:
        direct(pointers, ws_ptr, h)
        return
    feed = {tensors[name]: arr.data.ptr for name, arr in pointers.items()}
    graph.execute(feed, ws_ptr, handle=h)
    if direct is None:
        fn = _direct(graph, tensors)
        try:
            if fn is not None:
                fn(pointers, ws_ptr, h)
        except Exception as exc:  # noqa: BLE001 - the public path already produced the outputs
            _REFUSED[("direct", id(graph))] = f"direct execute: {type(exc).__name__}: {exc}"[:300]
            fn = None
        entry[3] = fn or False
        STATS["direct" if fn else "public"] += 1


STATS = {"direct": 0, "public": 0}  # graphs that run directly / only through execute()


def refusals() -> dict:
    """Graph keys cuDNN refused, with the reason (empty when every graph built)."""
    return dict(_REFUSED)


def clear() -> None:
    """Forget every cached graph (after changing ``ember.backends.cudnn`` flags)."""
    _GRAPHS.clear()
    _REFUSED.clear()

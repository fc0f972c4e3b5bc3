"""ember: tensors, autograd, neural networks and optimizers with PyTorch's names.

>>> import ember
>>> x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> y = (x ** 2).sum()
>>> y.backward()
>>> x.grad
tensor([2., 4., 6.])
"""

from .backend import heap as _heap

_heap.tune()  # freed arrays stay in the heap: no page faults re-touching them (see heap.py)

from . import (  # noqa: E402
    _methods,  # noqa: F401  (installs Tensor's operators and methods)
    autograd,
    cuda,
)
from ._tensor import Size, Tensor
from .autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .backend import Generator, default_generator, device, get_default_dtype, set_default_dtype
from .backend.dtypes import (
    bfloat16,
    dtype,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    promote_types,
    uint8,
)
from .backend.dtypes import bool_ as bool  # noqa: A001 - PyTorch's name
from .backend.memory_format import (
    channels_last,
    channels_last_3d,
    contiguous_format,
    memory_format,
    preserve_format,
)
from .backend.random import initial_seed, manual_seed
from .backend.threads import get_num_threads, set_num_threads
from .creation import (
    arange,
    as_tensor,
    asarray,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .ops import (
    abs,
    add,
    all,
    allclose,
    amax,
    amin,
    any,
    argmax,
    argmin,
    argsort,
    argwhere,
    bmm,
    broadcast_to,
    cat,
    ceil,
    chunk,
    clamp,
    clip,
    clone,
    concat,
    concatenate,
    cos,
    count_nonzero,
    cumprod,
    cumsum,
    diag,
    div,
    dot,
    einsum,
    eq,
    equal,
    erf,
    exp,
    expm1,
    flatten,
    flip,
    floor,
    gather,
    ge,
    gt,
    hstack,
    index_select,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    log,
    log1p,
    log_softmax,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsumexp,
    lt,
    masked_fill,
    masked_select,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    movedim,
    mul,
    mv,
    narrow,
    ne,
    neg,
    nonzero,
    norm,
    outer,
    permute,
    pow,
    prod,
    reciprocal,
    relu,
    repeat,
    reshape,
    roll,
    round,
    rsqrt,
    scatter,
    scatter_add,
    sigmoid,
    sign,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    std_mean,
    sub,
    sum,
    take_along_dim,
    tanh,
    tensordot,
    tile,
    topk,
    transpose,
    tril,
    triu,
    trunc,
    unbind,
    unflatten,
    unique,
    unsqueeze,
    var,
    var_mean,
    vstack,
    where,
)
from .ops.elementwise import bitwise_and, bitwise_or, bitwise_xor  # noqa: F401
from .ops.reduce import _ValuesIndices  # noqa: F401

float = float32  # noqa: A001 - PyTorch's aliases
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16
uint = uint8

negative = neg
subtract = sub
multiply = mul
divide = div
true_divide = div
absolute = abs
greater = gt
less = lt


def numel(input) -> int:
    """Number of elements of ``input``."""
    return input.numel()


def is_tensor(obj) -> bool:
    """True for ember Tensors."""
    return isinstance(obj, Tensor)


def is_floating_point(input) -> bool:
    """True for floating-point tensors."""
    return input.dtype.is_floating_point


def result_type(a, b):
    """The dtype PyTorch's promotion gives ``a op b``."""
    from .ops._util import result_dtype

    return result_dtype(a, b)


def from_dlpack(ext):
    """A tensor sharing memory with any DLPack-capable array (NumPy, CuPy, PyTorch ...)."""
    import numpy as _np

    device_type = ext.__dlpack_device__()[0] if hasattr(ext, "__dlpack_device__") else 1
    if device_type in (2, 3, 13):  # kDLCUDA, kDLCUDAHost, kDLCUDAManaged
        from .backend.device import cupy_module

        arr = cupy_module().from_dlpack(ext)
    else:
        try:
            arr = _np.from_dlpack(ext)
        except (RuntimeError, TypeError, BufferError) as exc:
            raise TypeError(
                f"from_dlpack: NumPy cannot import this CPU array ({exc}); NumPy's DLPack has "
                "no bfloat16, so move bfloat16 data as float32 or through .numpy()"
            ) from exc
    from ._tensor import _make

    return _make(arr)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, **_):
    """Accepted for compatibility; ember prints with 4 decimals like PyTorch's default."""


from . import amp, backends, data, distributions, hub, jit, nn, onnx, optim, utils  # noqa: E402
from .amp import autocast  # noqa: E402
from .backends import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: E402
from .serialization import load, save  # noqa: E402

__version__ = "0.1.0"

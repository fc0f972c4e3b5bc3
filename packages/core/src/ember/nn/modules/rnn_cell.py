"""Single-step recurrent cells: RNNCell, LSTMCell and GRUCell, with PyTorch's parameter names
(``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``), gate orders and initialization."""

from __future__ import annotations

import math

from ... import ops
from ...creation import empty
from .. import init
from ..module import Module
from ..parameter import Parameter
from .rnn import STEPS, zeros_state

# ---- single-step cells -----------------------------------------------------------------


class RNNCellBase(Module):
    """Shared parameters of the cells: ``weight_ih``, ``weight_hh``, ``bias_ih``,
    ``bias_hh``, drawn from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(g, input_size, **kw))
        self.weight_hh = Parameter(empty(g, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(empty(g, **kw))
            self.bias_hh = Parameter(empty(g, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self):
        """``input_size, hidden_size`` plus non-default options."""
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _input(self, input, hx):
        """Validate; returns (input as (N, I), hx list with batch dims, batched)."""
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(
                f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead "
                f"(shape {list(input.shape)})"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{name}: input has inconsistent input_size: got {input.shape[-1]} expected "
                f"{self.input_size} (input shape {list(input.shape)})"
            )
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
            hx = None if hx is None else [h.unsqueeze(0) for h in hx]
        want = (input.shape[0], self.hidden_size)
        for h in hx or ():
            if tuple(h.shape) != want:
                raise RuntimeError(
                    f"{name}: expected hidden state of shape {want}, got {list(h.shape)}"
                )
        return input, hx, batched

    def _step(self, mode, input, hx):
        x, hx, batched = self._input(input, hx)
        if hx is None:
            hx = [zeros_state((x.shape[0], self.hidden_size), x)] * (2 if mode == "LSTM" else 1)
        xw = ops.linear(x, self.weight_ih, self.bias_ih)
        state = tuple(hx) if mode == "LSTM" else hx[0]
        out = STEPS[mode](xw, state, self.weight_hh, self.bias_hh)
        if batched:
            return out
        return tuple(t.squeeze(0) for t in out) if mode == "LSTM" else out.squeeze(0)


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", **kw):
        super().__init__(input_size, hidden_size, bias, 1, **kw)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        """Returns the next hidden state (N, H)."""
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        return self._step(mode, input, None if hx is None else [hx])


class LSTMCell(RNNCellBase):
    """One LSTM step; ``forward(input, (h, c))`` returns ``(h', c')``."""

    def __init__(self, input_size, hidden_size, bias=True, **kw):
        super().__init__(input_size, hidden_size, bias, 4, **kw)

    def forward(self, input, hx=None):
        """Returns ``(h', c')``, each (N, H); ``hx`` defaults to zeros."""
        return self._step("LSTM", input, None if hx is None else list(hx))


class GRUCell(RNNCellBase):
    """One GRU step; ``forward(input, h)`` returns ``h'``."""

    def __init__(self, input_size, hidden_size, bias=True, **kw):
        super().__init__(input_size, hidden_size, bias, 3, **kw)

    def forward(self, input, hx=None):
        """Returns the next hidden state (N, H); ``hx`` defaults to zeros."""
        return self._step("GRU", input, None if hx is None else [hx])

"""Recurrent layers: RNN, LSTM and GRU (multi-layer, bidirectional) and their single-step
cells, with PyTorch's parameter names, gate orders and initialization.

Each layer computes its input projection for the whole sequence in one matmul and loops only
over the recurrent part. Gate orders: LSTM (i, f, g, o); GRU (r, z, n) with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.
"""

from __future__ import annotations

import math
import numbers
import warnings

from ... import ops
from ...creation import empty, zeros
from ...ops.recurrent import gru_pointwise, lstm_pointwise, unbind_pieces
from .. import init
from ..module import Module
from ..parameter import Parameter

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}

# ---- one time step of each cell --------------------------------------------------------
# ``xw`` is the input projection of this step (N, G) with b_ih already added; ``state`` is h
# (or (h, c) for the LSTM); the step returns the new state.


def _lstm_step(xw, state, w_hh, b_hh, w_hr=None):
    h, c = state
    h, c = lstm_pointwise(xw + ops.linear(h, w_hh, b_hh), c)  # gates (N, 4H)
    if w_hr is not None:
        h = ops.linear(h, w_hr)  # (N, proj_size)
    return h, c


def _gru_step(xw, h, w_hh, b_hh):
    return gru_pointwise(xw, ops.linear(h, w_hh, b_hh), h)


def _tanh_step(xw, h, w_hh, b_hh):
    return ops.tanh(xw + ops.linear(h, w_hh, b_hh))


def _relu_step(xw, h, w_hh, b_hh):
    return ops.relu(xw + ops.linear(h, w_hh, b_hh))


STEPS = {"LSTM": _lstm_step, "GRU": _gru_step, "RNN_TANH": _tanh_step, "RNN_RELU": _relu_step}


def zeros_state(shape, like):
    """A zero initial state of ``shape`` with ``like``'s dtype and device."""
    return zeros(*shape, dtype=like.dtype, device=like.device)


def _scan(mode, xw, state, weights, reverse):
    """Run one direction of one layer over ``xw`` (T, N, G); returns (T, N, H) and the final
    state."""
    step = STEPS[mode]
    extra = weights[2:]  # LSTM's projection weight, if any
    steps = unbind_pieces(xw, 0)
    order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
    outs = [None] * len(steps)
    for t in order:
        state = step(steps[t], state, weights[0], weights[1], *extra)
        outs[t] = state[0] if mode == "LSTM" else state
    return ops.stack(outs, 0), state


# ---- the multi-layer recurrent module --------------------------------------------------


def _check_config(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size):
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool):
        raise ValueError("dropout should be a number in range [0, 1]")
    if not 0 <= dropout <= 1:
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an "
            f"element being zeroed, got {dropout}"
        )
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero "
            f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
            f"num_layers={num_layers}",
            stacklevel=4,
        )
    for name, value, kind in (
        ("bias", bias, bool),
        ("batch_first", batch_first, bool),
        ("input_size", input_size, int),
        ("hidden_size", hidden_size, int),
    ):
        if not isinstance(value, kind):
            raise TypeError(
                f"{name} should be of type {kind.__name__}, got: {type(value).__name__}"
            )
    if input_size <= 0:
        raise ValueError(f"input_size must be greater than zero, got {input_size}")
    if hidden_size <= 0:
        raise ValueError(f"hidden_size must be greater than zero, got {hidden_size}")
    if num_layers <= 0:
        raise ValueError(f"num_layers must be greater than zero, got {num_layers}")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError(
            f"proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}"
        )


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU: parameters ``weight_ih_l{k}``,
    ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (``_reverse`` for the backward
    direction), all drawn from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""

    def __init__(
        self,
        mode,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + str(mode))
        _check_config(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self._flat_weights_names = []
        self._all_weights = []
        self._make_weights(_GATES[mode] * hidden_size, {"device": device, "dtype": dtype})
        self.reset_parameters()

    def _make_weights(self, gate_size, kw):
        dirs = 2 if self.bidirectional else 1
        out_size = self.proj_size or self.hidden_size
        for layer in range(self.num_layers):
            for d in range(dirs):
                in_size = self.input_size if layer == 0 else out_size * dirs
                shapes = [("weight_ih", (gate_size, in_size)), ("weight_hh", (gate_size, out_size))]
                if self.bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if self.proj_size:
                    shapes.append(("weight_hr", (self.proj_size, self.hidden_size)))
                names = []
                for base, shape in shapes:
                    name = f"{base}_l{layer}{'_reverse' if d else ''}"
                    setattr(self, name, Parameter(empty(*shape, **kw)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        """The parameters, one list per layer and direction."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self):
        """No-op (PyTorch compacts cuDNN weights here); kept so PyTorch code runs."""

    def reset_parameters(self):
        """Draw every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self):
        """``input_size, hidden_size`` plus the options that differ from the defaults."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    # ---- forward helpers ---------------------------------------------------------------

    def _layer_weights(self, index):
        """(w_ih, b_ih, w_hh, b_hh[, w_hr]) of layer-direction ``index``."""
        names = self._all_weights[index]
        got = {n.split("_l")[0]: getattr(self, n) for n in names}
        rest = (got["weight_hr"],) if "weight_hr" in got else ()
        return (got["weight_ih"], got.get("bias_ih"), got["weight_hh"], got.get("bias_hh"), *rest)

    def _check_input(self, input):
        name = type(self).__name__
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{name}: Expected input to be 2D or 3D, got {input.dim()}D instead "
                f"(shape {list(input.shape)})"
            )
        w = self._flat_weights[0]
        if input.dtype != w.dtype:
            raise ValueError(
                f"{name}: input dtype ({input.dtype}) does not match weight dtype ({w.dtype}). "
                f"Convert input: input.to({w.dtype}), or convert model: model.to({input.dtype})"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{name}: input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {input.shape[-1]} (input shape {list(input.shape)})"
            )

    def _check_hidden(self, hx, expected, what):
        if tuple(hx.shape) != expected:
            raise RuntimeError(
                f"{type(self).__name__}: Expected {what} size {expected}, got {list(hx.shape)}"
            )

    def _run(self, x, states):
        """``x`` (T, N, I); ``states`` one per layer-direction. Returns (T, N, D*H_out) and
        the final states."""
        dirs = 2 if self.bidirectional else 1
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                idx = layer * dirs + d
                w_ih, b_ih, *rec = self._layer_weights(idx)
                xw = ops.linear(x, w_ih, b_ih)  # (T, N, G): all steps in one matmul
                seq, final = _scan(self.mode, xw, states[idx], rec, reverse=d == 1)
                outs.append(seq)
                finals.append(final)
            x = outs[0] if dirs == 1 else ops.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = ops.dropout(x, p=self.dropout)
        return x, finals

    def _prepare(self, input):
        """Validate; returns (x as (T, N, I), batched)."""
        self._check_input(input)
        batched = input.dim() == 3
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        return input, batched

    def _finish(self, out, batched):
        if not batched:
            return out.squeeze(1)
        return out.transpose(0, 1) if self.batch_first else out

    def _hidden_shape(self, batch, size):
        return ((2 if self.bidirectional else 1) * self.num_layers, batch, size)


def _check_hx_dims(name, hx, batched):
    want = 3 if batched else 2
    bad = [t.dim() for t in hx if t.dim() != want]
    if bad:
        kind = "batched 3-D" if batched else "unbatched 2-D"
        dims = ", ".join(f"{t.dim()}-D" for t in hx)
        raise RuntimeError(
            f"{name}: For {kind} input, hx (and cx) should also be {want}-D but got ({dims}) "
            "tensors"
        )


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)`` (or relu).

    forward(input, hx=None) returns ``(output, h_n)``.

    >>> import ember
    >>> rnn = ember.nn.RNN(4, 6, num_layers=2)
    >>> out, h = rnn(ember.randn(5, 3, 4))
    >>> out.shape, h.shape
    (ember.Size([5, 3, 6]), ember.Size([2, 3, 6]))
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNN: Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device=device,
            dtype=dtype,
        )
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        """Run over the sequence; ``hx`` (num_layers * D, N, H) defaults to zeros."""
        return _forward_single_state(self, input, hx)


class GRU(RNNBase):
    """Gated recurrent unit, gates (r, z, n) as in PyTorch.

    forward(input, hx=None) returns ``(output, h_n)``.

    >>> import ember
    >>> gru = ember.nn.GRU(4, 6, batch_first=True, bidirectional=True)
    >>> out, h = gru(ember.randn(3, 5, 4))
    >>> out.shape, h.shape
    (ember.Size([3, 5, 12]), ember.Size([2, 3, 6]))
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device=device,
            dtype=dtype,
        )

    def forward(self, input, hx=None):
        """Run over the sequence; ``hx`` (num_layers * D, N, H) defaults to zeros."""
        return _forward_single_state(self, input, hx)


def _forward_single_state(mod, input, hx):
    x, batched = mod._prepare(input)
    if hx is None:
        hx = zeros_state(mod._hidden_shape(x.shape[1], mod.hidden_size), x)
    else:
        _check_hx_dims(type(mod).__name__, (hx,), batched)
        hx = hx if batched else hx.unsqueeze(1)
        mod._check_hidden(hx, mod._hidden_shape(x.shape[1], mod.hidden_size), "hidden")
    out, finals = mod._run(x, unbind_pieces(hx, 0))
    h_n = ops.stack(finals, 0)
    return mod._finish(out, batched), h_n if batched else h_n.squeeze(1)


class LSTM(RNNBase):
    """Long short-term memory, gates (i, f, g, o) as in PyTorch; ``proj_size > 0`` projects
    each hidden state through ``weight_hr_l{k}``.

    forward(input, hx=None) returns ``(output, (h_n, c_n))``.

    >>> import ember
    >>> lstm = ember.nn.LSTM(4, 6, num_layers=2)
    >>> out, (h, c) = lstm(ember.randn(5, 3, 4))
    >>> out.shape, h.shape, c.shape
    (ember.Size([5, 3, 6]), ember.Size([2, 3, 6]), ember.Size([2, 3, 6]))
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )

    def forward(self, input, hx=None):
        """Run over the sequence; ``hx = (h_0, c_0)`` defaults to zeros."""
        x, batched = self._prepare(input)
        n = x.shape[1]
        h_shape = self._hidden_shape(n, self.proj_size or self.hidden_size)
        c_shape = self._hidden_shape(n, self.hidden_size)
        if hx is None:
            h0, c0 = zeros_state(h_shape, x), zeros_state(c_shape, x)
        else:
            _check_hx_dims("LSTM", hx, batched)
            h0, c0 = hx if batched else (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
            self._check_hidden(h0, h_shape, "hidden[0]")
            self._check_hidden(c0, c_shape, "hidden[1]")
        states = list(zip(unbind_pieces(h0, 0), unbind_pieces(c0, 0)))
        out, finals = self._run(x, states)
        h_n = ops.stack([s[0] for s in finals], 0)
        c_n = ops.stack([s[1] for s in finals], 0)
        if not batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return self._finish(out, batched), (h_n, c_n)

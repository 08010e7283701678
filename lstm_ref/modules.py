"""``LSTM`` and ``LSTMCell``: drop-in replacements for torch's modules.

Same constructor signature and validation, the same parameter names, shapes,
registration order and initialisation, the same forward signature and return
structure as ``torch.nn.LSTM`` / ``torch.nn.LSTMCell``, so a torch state_dict
loads unchanged. The arithmetic lives in :mod:`lstm_ref.functional`.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.configs import parameter_suffix
from lstm_ref.functional import DirectionWeights, lstm_cell, lstm_layers
from lstm_ref.interface import (
    State,
    check_input_tensor,
    check_state_pair,
    check_state_tensor,
    flatten_call,
    layer_weights,
)


def _check_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than zero")


def _check_size(name: str, value: object) -> None:
    """An LSTMCell size: an int >= 0 (torch accepts 0, an empty cell; a negative size fails in
    torch.empty with a RuntimeError, the type kept here)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value < 0:
        raise RuntimeError(f"{name} must be zero or greater, got {value}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")


class LSTM(nn.Module):
    """A multi-layer (bidirectional, projected) LSTM with torch's interface.

    For each layer and direction, at each time step t (gate order i, f, g, o):

        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)            then h_t = W_hr h_t if proj_size > 0

    Shapes (D = 2 if bidirectional else 1, H_out = proj_size or hidden_size):
    input (T, N, I) or (N, T, I) with batch_first, (T, I) unbatched, or a
    PackedSequence; output (T, N, D*H_out); h_n (L*D, N, H_out); c_n (L*D, N, H).
    """

    #: One time step, ``(x, h, c, weights) -> (h', c')``, and the layer stack over time
    #: (:func:`lstm_ref.functional.lstm_layers`'s signature): a subclass may swap in variants.
    cell = staticmethod(lstm_cell)
    layers = staticmethod(lstm_layers)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if (
            not isinstance(dropout, numbers.Number)
            or isinstance(dropout, bool)
            or not 0 <= dropout <= 1
        ):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the "
                f"probability of an element being zeroed, got {dropout!r}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so "
                "non-zero dropout expects num_layers greater than 1, but got "
                f"dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        _check_bool("bias", bias)
        _check_bool("batch_first", batch_first)
        _check_positive_int("input_size", input_size)
        _check_positive_int("hidden_size", hidden_size)
        _check_positive_int("num_layers", num_layers)
        if not isinstance(proj_size, int) or isinstance(proj_size, bool):
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections, "
                f"got {proj_size}"
            )
        if proj_size >= hidden_size:
            raise ValueError(
                f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} "
                f"and hidden_size={hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size

        factory = {"device": device, "dtype": dtype}
        gate_size = 4 * hidden_size
        real_hidden_size = proj_size or hidden_size
        num_directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
            shapes = {"weight_ih": (gate_size, layer_input_size), "weight_hh": (gate_size, real_hidden_size)}
            if bias:
                shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
            if proj_size > 0:
                shapes["weight_hr"] = (proj_size, hidden_size)
            for direction in range(num_directions):
                for name, shape in shapes.items():
                    parameter = nn.Parameter(torch.empty(shape, **factory))
                    self.register_parameter(name + parameter_suffix(layer, direction), parameter)
        self.reset_parameters()

    @classmethod
    def from_torch(cls, module: nn.LSTM, **options: object) -> LSTM:
        """A copy of ``module``'s configuration, weights, dtype, device and training flag.

        ``options``: a subclass's further constructor arguments; parameters torch has not
        (a subclass's own) keep their initialisation.
        """
        if not isinstance(module, nn.LSTM):
            raise TypeError(f"from_torch expects a torch.nn.LSTM, got {type(module).__name__}")
        weight = next(module.parameters())
        ref = cls(module.input_size, module.hidden_size, num_layers=module.num_layers, bias=module.bias,
                  batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional,
                  proj_size=module.proj_size, device=weight.device, dtype=weight.dtype, **options)
        with torch.no_grad():
            ref.load_state_dict({**ref.state_dict(), **module.state_dict()})
        return ref.train(module.training)

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch (0 for an
        empty LSTMCell, hidden_size 0)."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def _layer_weights(self) -> list[list[DirectionWeights]]:
        """``weights[layer][direction]``, the parameters the layer stack computes with."""
        return layer_weights(self)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        for name, default in [("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("dropout", 0.0), ("bidirectional", False)]:
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text

    def forward(
        self, input: Tensor | PackedSequence, hx: State | None = None
    ) -> tuple[Tensor | PackedSequence, State]:
        """Run the LSTM; returns ``(output, (h_n, c_n))`` exactly as nn.LSTM does."""
        call = flatten_call(self, input, hx)
        outputs, h_n, c_n = self.layers(
            call.steps(), call.h0, call.c0, self._layer_weights(), self.dropout, self.training, cell=self.cell
        )
        return call.unflatten(torch.cat(outputs), h_n, c_n)  # outputs[t]: (B_t, D*H_out)


class LSTMCell(nn.Module):
    """One LSTM step with torch.nn.LSTMCell's interface.

        gates = x W_ih^T + b_ih + h W_hh^T + b_hh,   split as i, f, g, o
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h' = sigmoid(o) * tanh(c')

    x: (N, I) or (I,); h, c: (N, H) or (H,); returns (h', c') of the same rank.
    Parameters weight_ih (4H, I), weight_hh (4H, H), bias_ih, bias_hh (4H).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_size("input_size", input_size)
        _check_size("hidden_size", hidden_size)
        _check_bool("bias", bias)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    @classmethod
    def from_torch(cls, cell: nn.LSTMCell) -> LSTMCell:
        """A copy of ``cell``'s configuration, weights, dtype and device."""
        if not isinstance(cell, nn.LSTMCell):
            raise TypeError(f"from_torch expects a torch.nn.LSTMCell, got {type(cell).__name__}")
        ref = cls(cell.input_size, cell.hidden_size, bias=cell.bias,
                  device=cell.weight_ih.device, dtype=cell.weight_ih.dtype)
        with torch.no_grad():
            ref.load_state_dict(cell.state_dict())
        return ref.train(cell.training)

    reset_parameters = LSTM.reset_parameters

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def forward(self, input: Tensor, hx: State | None = None) -> State:
        """Returns ``(h_1, c_1)`` exactly as nn.LSTMCell does."""
        if not isinstance(input, Tensor):
            raise TypeError(f"LSTMCell: Expected input to be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            check_state_pair(hx, "LSTMCell")
            for index, state in enumerate(hx):
                if state.dim() not in (1, 2):
                    raise ValueError(
                        f"LSTMCell: Expected hx[{index}] to be 1D or 2D, got {state.dim()}D instead"
                    )
            if hx[0].dim() != input.dim() or hx[1].dim() != input.dim():
                kind = "batched 2-D" if input.dim() == 2 else "unbatched 1-D"
                raise RuntimeError(
                    f"LSTMCell: For {kind} input, hx and cx should also be {input.dim()}-D but got "
                    f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
                )
        is_batched = input.dim() == 2
        x = input if is_batched else input.unsqueeze(0)  # (N, I)
        check_input_tensor(x, self.weight_ih, RuntimeError)
        if x.shape[1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {x.shape[1]} expected {self.input_size}"
            )
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            hx = (zeros, zeros)
        elif not is_batched:
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        for index, state in enumerate(hx):
            if state.shape != (x.shape[0], self.hidden_size):
                raise RuntimeError(
                    f"Expected hx[{index}] size {(x.shape[0], self.hidden_size)}, got {list(state.shape)}"
                )
            check_state_tensor(f"hx[{index}]", state, x, self.weight_ih)
        weights = DirectionWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        h_next, c_next = lstm_cell(x, hx[0], hx[1], weights)
        if not is_batched:
            return h_next.squeeze(0), c_next.squeeze(0)
        return h_next, c_next

"""``LSTM``, ``GRU``, ``RNN`` and their cells: drop-in replacements for torch's modules.

Same constructor signature and validation, the same parameter names, shapes,
registration order and initialisation, the same forward signature and return
structure as ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` and ``LSTMCell`` / ``GRUCell`` /
``RNNCell``, so a torch state_dict loads unchanged. The arithmetic lives in
:mod:`lstm_ref.functional`; :func:`from_torch` copies any of torch's six modules.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.configs import parameter_suffix
from lstm_ref.functional import (
    GATES,
    STATE_CELLS,
    DirectionWeights,
    StateCell,
    gru_cell,
    lstm_cell,
    lstm_layers,
    recurrent_layers,
)
from lstm_ref.interface import (
    State,
    check_input_tensor,
    check_state_pair,
    check_state_tensor,
    flatten_call,
    layer_weights,
)

#: torch's class for each kind (``mode``), as from_torch expects it.
TORCH_CLASSES: dict[str, type[nn.Module]] = {
    "LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN,
}


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


class RecurrentBase(nn.Module):
    """What torch's LSTM, GRU and RNN share (torch's ``RNNBase``): constructor validation, the
    parameters ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and
    ``_reverse``) of G * hidden_size rows (G = GATES[mode]), their initialisation, from_torch,
    and the forward pass through :func:`lstm_ref.interface.flatten_call` (the kind's own loop
    in ``_recur``). ``mode`` names the kind as torch's RNNBase does."""

    mode = "LSTM"

    def _setup(
        self, input_size: int, hidden_size: int, num_layers: int, bias: bool, batch_first: bool,
        dropout: float, bidirectional: bool, proj_size: int, device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        """torch's RNNBase.__init__: validate, then register and initialise the parameters."""
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
                stacklevel=3,
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
        gate_size = GATES[self.mode] * hidden_size
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
    def _check_kind(cls, module: nn.Module, modes: tuple[str, ...]) -> None:
        """``module`` is torch's module of one of ``modes``: TypeError for anything else,
        NotImplementedError for another of torch's recurrent kinds (a candidate factory's
        "unsupported")."""
        expected = TORCH_CLASSES[modes[0]].__name__
        if isinstance(module, (nn.RNNBase, nn.RNNCellBase)) and not (
                isinstance(module, nn.RNNBase) and module.mode in modes):
            raise NotImplementedError(
                f"{cls.__name__}.from_torch copies a torch.nn.{expected} only, got a torch.nn."
                f"{type(module).__name__}; lstm_ref.from_torch copies any of torch's recurrent modules")
        if not isinstance(module, nn.RNNBase):
            raise TypeError(f"from_torch expects a torch.nn.{expected}, got {type(module).__name__}")

    @classmethod
    def _copy_weights(cls, module: nn.Module, ref: RecurrentBase) -> RecurrentBase:
        with torch.no_grad():
            ref.load_state_dict({**ref.state_dict(), **module.state_dict()})
        return ref.train(module.training)

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch (0 for an
        empty cell, hidden_size 0)."""
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

    def _recur(self, call) -> tuple:
        """(outputs per step, *final state) of the flattened call; the kind's own loop."""
        raise NotImplementedError

    def forward(self, input: Tensor | PackedSequence, hx: State | Tensor | None = None):
        """Run the module; returns ``(output, h_n)`` (GRU, RNN) or ``(output, (h_n, c_n))``
        (LSTM) exactly as torch's module does."""
        call = flatten_call(self, input, hx)
        outputs, *state = self._recur(call)
        return call.unflatten(torch.cat(outputs), *state)  # outputs[t]: (B_t, D*H_out)


class LSTM(RecurrentBase):
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
        self._setup(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                    proj_size, device, dtype)

    @classmethod
    def from_torch(cls, module: nn.LSTM, **options: object) -> LSTM:
        """A copy of ``module``'s configuration, weights, dtype, device and training flag.

        ``options``: a subclass's further constructor arguments; parameters torch has not
        (a subclass's own) keep their initialisation.
        """
        cls._check_kind(module, ("LSTM",))
        weight = next(module.parameters())
        ref = cls(module.input_size, module.hidden_size, num_layers=module.num_layers, bias=module.bias,
                  batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional,
                  proj_size=module.proj_size, device=weight.device, dtype=weight.dtype, **options)
        return cls._copy_weights(module, ref)  # type: ignore[return-value]

    def _recur(self, call) -> tuple:
        return self.layers(
            call.steps(), call.h0, call.c0, self._layer_weights(), self.dropout, self.training, cell=self.cell
        )

    def forward(
        self, input: Tensor | PackedSequence, hx: State | None = None
    ) -> tuple[Tensor | PackedSequence, State]:
        """Run the LSTM; returns ``(output, (h_n, c_n))`` exactly as nn.LSTM does."""
        return super().forward(input, hx)


class GRU(RecurrentBase):
    """A multi-layer (bidirectional) GRU with torch's interface.

    For each layer and direction, at each time step t (gate order r, z, n; torch's form,
    ONNX's linear_before_reset=1):

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    Shapes (D = 2 if bidirectional else 1): input (T, N, I) or (N, T, I) with batch_first,
    (T, I) unbatched, or a PackedSequence; h_0 (L*D, N, H) ((L*D, H) unbatched);
    output (T, N, D*H); h_n (L*D, N, H).
    """

    mode = "GRU"
    #: One time step, ``(x, (h,), weights) -> (h',)``: a subclass may swap in a variant.
    cell = staticmethod(gru_cell)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        proj_size: None = None,
    ) -> None:
        super().__init__()
        _refuse_projection(proj_size)
        self._setup(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                    0, device, dtype)

    @classmethod
    def from_torch(cls, module: nn.GRU) -> GRU:
        """A copy of ``module``'s configuration, weights, dtype, device and training flag."""
        cls._check_kind(module, ("GRU",))
        weight = next(module.parameters())
        ref = cls(module.input_size, module.hidden_size, num_layers=module.num_layers, bias=module.bias,
                  batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional,
                  device=weight.device, dtype=weight.dtype)
        return cls._copy_weights(module, ref)  # type: ignore[return-value]

    def _recur(self, call) -> tuple:
        outputs, state = recurrent_layers(call.steps(), call.state0, self._layer_weights(), self.dropout,
                                          self.training, cell=self.cell)
        return (outputs, *state)

    def forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        """Run the GRU; returns ``(output, h_n)`` exactly as nn.GRU does."""
        return super().forward(input, hx)


class RNN(RecurrentBase):
    """A multi-layer (bidirectional) Elman RNN with torch's interface.

    For each layer and direction, at each time step t:

        h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)     (relu for nonlinearity="relu")

    Shapes as :class:`GRU`'s. ``mode`` is RNN_TANH or RNN_RELU, as torch's.
    """

    mode = "RNN_TANH"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        proj_size: None = None,
    ) -> None:
        super().__init__()
        _refuse_projection(proj_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        self.mode = f"RNN_{nonlinearity.upper()}"
        self._setup(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                    0, device, dtype)

    @property
    def cell(self) -> StateCell:
        """One time step, ``(x, (h,), weights) -> (h',)``: tanh or relu by ``nonlinearity``."""
        return STATE_CELLS[self.mode]

    @classmethod
    def from_torch(cls, module: nn.RNN) -> RNN:
        """A copy of ``module``'s configuration (nonlinearity too), weights, dtype, device and training flag."""
        cls._check_kind(module, ("RNN_TANH", "RNN_RELU"))
        weight = next(module.parameters())
        ref = cls(module.input_size, module.hidden_size, num_layers=module.num_layers,
                  nonlinearity=module.nonlinearity, bias=module.bias, batch_first=module.batch_first,
                  dropout=module.dropout, bidirectional=module.bidirectional, device=weight.device,
                  dtype=weight.dtype)
        return cls._copy_weights(module, ref)  # type: ignore[return-value]

    _recur = GRU._recur

    def forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        """Run the RNN; returns ``(output, h_n)`` exactly as nn.RNN does."""
        return super().forward(input, hx)


def _refuse_projection(proj_size: object) -> None:
    if proj_size is not None:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


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


class _SingleStateCell(nn.Module):
    """What GRUCell and RNNCell share: torch's RNNCellBase parameters (G * hidden_size rows) and
    a forward pass on one state tensor. ``mode`` picks the step (functional.STATE_CELLS)."""

    mode = "GRU"

    def _setup(self, input_size: int, hidden_size: int, bias: bool, device: torch.device | str | None,
               dtype: torch.dtype | None) -> None:
        _check_size("input_size", input_size)
        _check_size("hidden_size", hidden_size)
        _check_bool("bias", bias)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        factory = {"device": device, "dtype": dtype}
        rows = GATES[self.mode] * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows, **factory))
            self.bias_hh = nn.Parameter(torch.empty(rows, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RecurrentBase.reset_parameters

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        return text + ("" if nonlinearity == "tanh" else f", nonlinearity={nonlinearity}")

    def _cell(self) -> StateCell:
        """The step this cell computes (functional.STATE_CELLS)."""
        return STATE_CELLS[self.mode]

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """Returns ``h_1`` exactly as torch's cell does: x: (N, I) or (I,), h: (N, H) or (H,)
        (zeros when None) -> h': (N, H) or (H,), the rank of x."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: Expected input to be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            if not isinstance(hx, Tensor):
                raise TypeError(f"{name}: Expected hx to be a Tensor, got {type(hx).__name__}")
            if hx.dim() not in (1, 2):
                raise ValueError(f"{name}: Expected hidden to be 1D or 2D, got {hx.dim()}D instead")
        cell = self._cell()
        is_batched = input.dim() == 2
        x = input if is_batched else input.unsqueeze(0)  # (N, I)
        check_input_tensor(x, self.weight_ih, RuntimeError)
        if x.shape[1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {x.shape[1]} expected {self.input_size}"
            )
        if hx is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            h = hx if is_batched else hx.unsqueeze(0)
            if h.shape != (x.shape[0], self.hidden_size):
                raise RuntimeError(f"Expected hx size {(x.shape[0], self.hidden_size)}, got {list(hx.shape)}")
            check_state_tensor("hx", h, x, self.weight_ih)
        weights = DirectionWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        (h_next,) = cell(x, (h,), weights)
        return h_next if is_batched else h_next.squeeze(0)

    @classmethod
    def _copy(cls, cell: nn.Module, ref: nn.Module) -> nn.Module:
        with torch.no_grad():
            ref.load_state_dict(cell.state_dict())
        return ref.train(cell.training)


class GRUCell(_SingleStateCell):
    """One GRU step with torch.nn.GRUCell's interface (gate order r, z, n):

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    x: (N, I) or (I,); h: (N, H) or (H,); returns h' of the same rank.
    Parameters weight_ih (3H, I), weight_hh (3H, H), bias_ih, bias_hh (3H).
    """

    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self._setup(input_size, hidden_size, bias, device, dtype)

    @classmethod
    def from_torch(cls, cell: nn.GRUCell) -> GRUCell:
        """A copy of ``cell``'s configuration, weights, dtype and device."""
        if not isinstance(cell, nn.GRUCell):
            raise TypeError(f"from_torch expects a torch.nn.GRUCell, got {type(cell).__name__}")
        return cls._copy(cell, cls(cell.input_size, cell.hidden_size, bias=cell.bias,  # type: ignore[return-value]
                                   device=cell.weight_ih.device, dtype=cell.weight_ih.dtype))


class RNNCell(_SingleStateCell):
    """One Elman RNN step with torch.nn.RNNCell's interface:

        h' = tanh(W_ih x + b_ih + W_hh h + b_hh)     (relu for nonlinearity="relu")

    x: (N, I) or (I,); h: (N, H) or (H,); returns h' of the same rank.
    Parameters weight_ih (H, I), weight_hh (H, H), bias_ih, bias_hh (H). As torch's, the
    constructor takes any nonlinearity and forward raises RuntimeError for one not tanh or relu.
    """

    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self._setup(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    @classmethod
    def from_torch(cls, cell: nn.RNNCell) -> RNNCell:
        """A copy of ``cell``'s configuration, weights, dtype and device."""
        if not isinstance(cell, nn.RNNCell):
            raise TypeError(f"from_torch expects a torch.nn.RNNCell, got {type(cell).__name__}")
        return cls._copy(cell, cls(cell.input_size, cell.hidden_size, bias=cell.bias,  # type: ignore[return-value]
                                   nonlinearity=cell.nonlinearity, device=cell.weight_ih.device,
                                   dtype=cell.weight_ih.dtype))

    def _cell(self) -> StateCell:
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return STATE_CELLS[f"RNN_{self.nonlinearity.upper()}"]


def from_torch(module: nn.Module) -> nn.Module:
    """lstm_ref's copy of any of torch's recurrent modules (LSTM, GRU, RNN and their cells):
    configuration, weights, dtype, device and training flag. The conformance harness's
    default factory (``lstm_ref:from_torch``); TypeError for anything else."""
    for torch_class, ours in ((nn.LSTM, LSTM), (nn.GRU, GRU), (nn.RNN, RNN),
                              (nn.LSTMCell, LSTMCell), (nn.GRUCell, GRUCell), (nn.RNNCell, RNNCell)):
        if isinstance(module, torch_class):
            return ours.from_torch(module)
    raise TypeError(f"from_torch expects one of torch's recurrent modules (nn.LSTM, nn.GRU, nn.RNN or "
                    f"their cells), got {type(module).__name__}")

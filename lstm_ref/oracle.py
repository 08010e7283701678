"""An independent LSTM, GRU and Elman RNN in NumPy float64: the ground truth the others are measured against.

Written from the equations with NumPy only (no torch import, nothing shared
with :mod:`lstm_ref.functional`), so a bug in one implementation is not
copied into the other. Everything is computed in float64 whatever the
input's dtype, which makes it the reference for accuracy: a float32 LSTM's
error is its distance from this one evaluated on the same (float32-exact)
weights and inputs.

Per layer and direction, at each time step t, with a_t = W_ih x_t + b_ih and
r_t = W_hh h_{t-1} + b_hh (both (N, G*H), torch's gate order):

    LSTM (gates i, f, g, o):
        i_t, f_t, g_t, o_t = sigmoid(a_i + r_i), sigmoid(a_f + r_f), tanh(a_g + r_g), sigmoid(a_o + r_o)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)          then h_t = W_hr h_t when proj_size > 0
    GRU (gates r, z, n; torch's form, ONNX's linear_before_reset=1):
        reset = sigmoid(a_r + r_r), update = sigmoid(a_z + r_z)
        new = tanh(a_n + reset * r_n)
        h_t = (1 - update) * new + update * h_{t-1}
    RNN_TANH / RNN_RELU:
        h_t = tanh(a + r) / max(a + r, 0)

Variable lengths take a ``lengths`` array (the padded form of a
PackedSequence): sequence n runs steps ``0 .. lengths[n]-1``; past its end
its state is held (forward) or not yet started (reverse, which begins each
sequence at its own last step), and its output is zero.

Memory: the output of the layer being computed and of the one before it,
``2 * T * N * D * H_out`` floats, plus a block of at most ``BLOCK_STEPS``
input projections; nothing grows per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Time steps whose input projections ``W_ih x_t`` are computed in one matmul.
BLOCK_STEPS = 256

Array = np.ndarray


@dataclass(frozen=True)
class Direction:
    """One direction of one layer, float64, torch's shapes (G gate rows in torch's order).

    w_ih (G*H, I), w_hh (G*H, H_out), b_ih and b_hh (G*H,) or None, w_hr (P, H) or None.
    """

    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None
    w_hr: Array | None


def sigmoid(z: Array) -> Array:
    """1 / (1 + exp(-z)) without overflow: exp is only taken of -|z| (<= 0)."""
    e = np.exp(-np.abs(z))
    reciprocal = 1.0 / (1.0 + e)
    return np.where(z >= 0, reciprocal, e * reciprocal)


#: Gate rows per hidden unit, by torch's name of the kind (``module.mode``).
GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


class LSTM:
    """torch.nn.LSTM's inference forward pass in float64 NumPy (``mode="GRU"``, ``"RNN_TANH"``,
    ``"RNN_RELU"``: torch.nn.GRU's and torch.nn.RNN's; :class:`GRU` and :class:`RNN` name them).

    ``weights`` maps torch's parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``,
    ``weight_hr_l0``, ...) to arrays of torch's shapes; every expected name
    must be present with its shape, and no other.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        weights: Mapping[str, object],
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        proj_size: int = 0,
        mode: str = "LSTM",
    ) -> None:
        if mode not in GATES:
            raise ValueError(f"mode must be one of {sorted(GATES)}, got {mode!r}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"proj_size is for the LSTM only, got proj_size={proj_size} for {mode}")
        self.mode = mode
        for name, value in [("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)]:
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(proj_size, int) or isinstance(proj_size, bool) or not 0 <= proj_size < hidden_size:
            raise ValueError(f"proj_size must be an int in [0, hidden_size={hidden_size}), got {proj_size!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.num_directions = 2 if bidirectional else 1
        self.proj_size = proj_size
        self.output_size = proj_size or hidden_size
        shapes = self.parameter_shapes()
        missing = sorted(set(shapes) - set(weights))
        unexpected = sorted(set(weights) - set(shapes))
        if missing or unexpected:
            raise KeyError(f"oracle {mode} weights: missing {missing}, unexpected {unexpected}")
        arrays = {name: np.array(weights[name], dtype=np.float64) for name in shapes}
        for name, shape in shapes.items():
            if arrays[name].shape != shape:
                raise ValueError(f"oracle {mode} weight {name}: shape {arrays[name].shape}, expected {shape}")
        self.layers: list[list[Direction]] = [
            [
                Direction(
                    w_ih=arrays[f"weight_ih{suffix}"],
                    w_hh=arrays[f"weight_hh{suffix}"],
                    b_ih=arrays.get(f"bias_ih{suffix}"),
                    b_hh=arrays.get(f"bias_hh{suffix}"),
                    w_hr=arrays.get(f"weight_hr{suffix}"),
                )
                for suffix in self._suffixes(layer)
            ]
            for layer in range(num_layers)
        ]

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """torch's parameter names and shapes for this configuration."""
        gates, h_out = GATES[self.mode] * self.hidden_size, self.output_size
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.num_directions * h_out
            for suffix in self._suffixes(layer):
                shapes[f"weight_ih{suffix}"] = (gates, layer_input)
                shapes[f"weight_hh{suffix}"] = (gates, h_out)
                if self.bias:
                    shapes[f"bias_ih{suffix}"] = (gates,)
                    shapes[f"bias_hh{suffix}"] = (gates,)
                if self.proj_size:
                    shapes[f"weight_hr{suffix}"] = (self.proj_size, self.hidden_size)
        return shapes

    @classmethod
    def from_torch(cls, module: object) -> LSTM:
        """The oracle of a ``torch.nn.LSTM`` (of a GRU or RNN for :class:`GRU`, :class:`RNN`; any
        of them for :func:`from_torch`): its configuration and its weights, converted once
        (exactly: float32, float16 and bfloat16 values are all float64 numbers) to float64.

        The oracle computes the inference forward pass; a module in training mode with
        active dropout (``dropout > 0``, ``num_layers > 1``) is refused with NotImplementedError.
        """
        required = ("input_size", "hidden_size", "num_layers", "bias", "batch_first",
                    "bidirectional", "proj_size", "dropout", "training", "state_dict")
        absent = [name for name in required if not hasattr(module, name)]
        mode = getattr(module, "mode", "LSTM")  # nn.GRU and nn.RNN have mode GRU, RNN_*
        if absent or mode not in cls.MODES:
            missing = f" (no {', '.join(absent)})" if absent else ""
            raise TypeError(f"from_torch expects a {cls.EXPECTS}, got {type(module).__name__}{missing}")
        if module.training and module.dropout > 0 and module.num_layers > 1:
            raise NotImplementedError(
                "the oracle computes the inference forward pass; dropout is active in training "
                "mode: call module.eval() first"
            )
        state = module.state_dict()
        weights = {name: tensor.detach().cpu().double().numpy() for name, tensor in state.items()}
        return LSTM(module.input_size, module.hidden_size, weights, num_layers=module.num_layers,
                    bias=module.bias, batch_first=module.batch_first,
                    bidirectional=module.bidirectional, proj_size=module.proj_size, mode=mode)

    #: The kinds from_torch takes, and their name in its error.
    MODES: tuple[str, ...] = ("LSTM",)
    EXPECTS = "torch.nn.LSTM"

    def __call__(
        self, x: object, hx: tuple[object, object] | object | None = None, lengths: object | None = None
    ) -> tuple[Array, tuple[Array, Array] | Array]:
        """Run the network; returns float64 ``(output, (h_n, c_n))`` (LSTM) or ``(output, h_n)``
        (GRU, RNN) in torch's layout.

        x: (T, N, I), (N, T, I) with batch_first, or unbatched (T, I).
        hx: (h0 (L*D, N, H_out), c0 (L*D, N, H)) for the LSTM, h0 otherwise, without N when
        unbatched; zeros if None.
        lengths: (N,) ints in [1, T] (batched input only); None means every sequence has T steps.
        output: (T, N, D*H_out) (batch_first: (N, T, ...); unbatched: (T, ...)), zero past each length;
        h_n (L*D, N, H_out), c_n (L*D, N, H), index ``layer * D + direction``.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim not in (2, 3):
            raise ValueError(f"{self.mode.split('_')[0]}: Expected input to be 2D or 3D, got {x.ndim}D instead")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}"
            )
        batched = x.ndim == 3
        if not batched:
            if lengths is not None:
                raise ValueError("lengths is for batched input; unbatched input is one sequence of T steps")
            x = x[:, None, :]                                   # (T, 1, I)
        elif self.batch_first:
            x = x.transpose(1, 0, 2)                            # (N, T, I) -> (T, N, I)
        steps, batch = x.shape[0], x.shape[1]
        h0, c0 = self._initial_state(hx, batch, batched)
        active = self._active_mask(lengths, steps, batch)       # (T, N) or None

        layer_input = x
        h_n, c_n = np.empty_like(h0), np.empty_like(c0)
        with np.errstate(over="ignore", invalid="ignore"):
            for layer, directions in enumerate(self.layers):
                output = np.empty((steps, batch, self.num_directions * self.output_size))
                for direction, weights in enumerate(directions):
                    index = layer * self.num_directions + direction
                    columns = slice(direction * self.output_size, (direction + 1) * self.output_size)
                    h_n[index], c_n[index] = self._run_direction(
                        layer_input, h0[index], c0[index], weights, active,
                        reverse=direction == 1, output=output[:, :, columns],
                    )
                layer_input = output
        output = layer_input
        if not batched:
            output, h_n, c_n = output[:, 0], h_n[:, 0], c_n[:, 0]
        elif self.batch_first:
            output = output.transpose(1, 0, 2)
        return output, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _initial_state(
        self, hx: tuple[object, object] | None, batch: int, batched: bool
    ) -> tuple[Array, Array]:
        """(h0, c0); for the GRU and the RNN, c0 is zeros that no step reads."""
        layers = self.num_layers * self.num_directions
        shapes = [(layers, batch, self.output_size), (layers, batch, self.hidden_size)]
        if hx is None:
            return np.zeros(shapes[0]), np.zeros(shapes[1])
        if self.mode != "LSTM":
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"hx must be the array h0 for {self.mode}, got {type(hx).__name__}")
            hx = (hx, np.zeros(shapes[1] if batched else (layers, self.hidden_size)))
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"hx must be a pair (h0, c0), got {type(hx).__name__}")
        states = []
        for index, (state, shape) in enumerate(zip(hx, shapes, strict=True)):
            state = np.asarray(state, dtype=np.float64)
            expected = shape if batched else (shape[0], shape[2])
            if state.shape != expected:
                raise RuntimeError(f"Expected hidden[{index}] size {expected}, got {list(state.shape)}")
            states.append(state.reshape(shape))
        return states[0], states[1]

    @staticmethod
    def _active_mask(lengths: object | None, steps: int, batch: int) -> Array | None:
        """(T, N) bool: step t of sequence n is within its length. None when all run T steps."""
        if lengths is None:
            return None
        lengths = np.asarray(lengths)
        if lengths.shape != (batch,) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(f"lengths must be {batch} integers (one per sequence), got {lengths.dtype} "
                             f"array of shape {lengths.shape}")
        if batch and (lengths.min() < 1 or lengths.max() > steps):
            raise ValueError(f"lengths must lie in [1, T={steps}], got {lengths.tolist()}")
        return np.arange(steps)[:, None] < lengths[None, :]

    def _run_direction(
        self, x: Array, h: Array, c: Array, weights: Direction, active: Array | None,
        reverse: bool, output: Array,
    ) -> tuple[Array, Array]:
        """One direction of one layer over x (T, N, I); writes h_t into output (T, N, H_out)
        and returns the final (h (N, H_out), c (N, H)).

        The input projections ``x_t W_ih^T + b_ih`` (N, G*H) are computed for a block of
        steps at a time; the recurrent part ``h_{t-1} W_hh^T + b_hh`` one step at a time.
        For the GRU and the RNN, c passes through untouched.
        """
        steps = x.shape[0]
        step = {"LSTM": self._lstm_step, "GRU": self._gru_step,
                "RNN_TANH": lambda a, r, h, c: (np.tanh(a + r), c),
                "RNN_RELU": lambda a, r, h, c: (np.maximum(a + r, 0.0), c)}[self.mode]
        h, c = h.copy(), c.copy()
        starts = range(0, steps, BLOCK_STEPS)
        for start in reversed(starts) if reverse else starts:
            stop = min(start + BLOCK_STEPS, steps)
            projected = x[start:stop] @ weights.w_ih.T                         # (B, N, G*H)
            if weights.b_ih is not None:
                projected += weights.b_ih
            for t in range(stop - 1, start - 1, -1) if reverse else range(start, stop):
                recurrent = h @ weights.w_hh.T                                 # (N, G*H)
                if weights.b_hh is not None:
                    recurrent += weights.b_hh
                h_next, c_next = step(projected[t - start], recurrent, h, c)
                if weights.w_hr is not None:
                    h_next = h_next @ weights.w_hr.T                           # (N, P)
                if active is None:
                    h, c = h_next, c_next
                    output[t] = h
                else:
                    running = active[t][:, None]                               # (N, 1)
                    h = np.where(running, h_next, h)
                    c = np.where(running, c_next, c)
                    output[t] = np.where(running, h_next, 0.0)
        return h, c

    def _lstm_step(self, a: Array, r: Array, h: Array, c: Array) -> tuple[Array, Array]:
        """(h_t (N, H), c_t (N, H)) from a = W_ih x_t + b_ih, r = W_hh h + b_hh (N, 4H), c (N, H)."""
        hidden = self.hidden_size
        z = a + r
        squashed = sigmoid(z)              # i, f, o need it; g's slice is replaced by tanh
        in_gate = squashed[:, :hidden]
        forget_gate = squashed[:, hidden:2 * hidden]
        cell_gate = np.tanh(z[:, 2 * hidden:3 * hidden])
        out_gate = squashed[:, 3 * hidden:]
        c_next = forget_gate * c + in_gate * cell_gate
        return out_gate * np.tanh(c_next), c_next

    def _gru_step(self, a: Array, r: Array, h: Array, c: Array) -> tuple[Array, Array]:
        """h_t (N, H) from a = W_ih x_t + b_ih, r = W_hh h + b_hh (N, 3H), gates r, z, n; c unchanged."""
        hidden = self.hidden_size
        reset = sigmoid(a[:, :hidden] + r[:, :hidden])
        update = sigmoid(a[:, hidden:2 * hidden] + r[:, hidden:2 * hidden])
        new = np.tanh(a[:, 2 * hidden:] + reset * r[:, 2 * hidden:])
        return (1.0 - update) * new + update * h, c


class GRU(LSTM):
    """torch.nn.GRU's inference forward pass: :class:`LSTM` with ``mode="GRU"``."""

    MODES = ("GRU",)
    EXPECTS = "torch.nn.GRU"

    def __init__(self, input_size: int, hidden_size: int, weights: Mapping[str, object], num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, weights, num_layers, bias, batch_first, bidirectional,
                         mode="GRU")


class RNN(LSTM):
    """torch.nn.RNN's inference forward pass: :class:`LSTM` with ``mode`` RNN_TANH or RNN_RELU."""

    MODES = ("RNN_TANH", "RNN_RELU")
    EXPECTS = "torch.nn.RNN"

    def __init__(self, input_size: int, hidden_size: int, weights: Mapping[str, object], num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 bidirectional: bool = False) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, weights, num_layers, bias, batch_first, bidirectional,
                         mode=f"RNN_{nonlinearity.upper()}")


class _AnyKind(LSTM):
    MODES = tuple(GATES)
    EXPECTS = "torch.nn.LSTM, GRU or RNN"


#: The oracle of any of torch.nn.LSTM, GRU, RNN: :meth:`LSTM.from_torch` for every kind.
from_torch = _AnyKind.from_torch

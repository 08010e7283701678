"""The recurrent computations (LSTM, GRU, Elman RNN), written from the equations with plain tensor ops.

Nothing here calls torch's recurrent kernels (``nn.LSTM``, ``_VF.lstm``, ``_VF.gru``,
``torch.lstm``, ``lstm_cell``, ``gru_cell``, ``rnn_tanh_cell``): only matmul, sigmoid,
tanh, relu and elementwise arithmetic. One recurrence serves every kind; only the
cell differs. A kind's *state* is a tuple: ``(h, c)`` for the LSTM, ``(h,)`` for
the GRU and the RNN; its first element is the step's output.

    lstm_cell, gru_cell, rnn_tanh_cell, rnn_relu_cell
                    one time step of one direction of one layer (STATE_CELLS[mode]:
                    each as a state cell, ``(x, state, weights) -> state``)
    run_states      one direction of one layer over all time steps
    stack_layers    the stack: layers x directions, dropout between layers

The LSTM keeps its own spelling of the last two, the state unpacked: ``run_direction``
(``run_direction_premul``: the input projection hoisted out) and ``lstm_layers``, whose
cells take ``(x, h, c, weights)``; both are the generic recurrence underneath.

Sequences are handled as a list of per-step inputs ``steps[t]`` of shape
``(B_t, I)`` with ``B_0 >= B_1 >= ...``. A dense batch has ``B_t = N`` for all
t; a PackedSequence has ``B_t = batch_sizes[t]`` (its sequences sorted by
decreasing length), so the first ``B_t`` rows are exactly the sequences still
running at step t. Rows past ``B_t`` keep their state untouched, which gives
both directions their packed semantics with no special case: the forward
direction's state freezes at each sequence's last step, and the reverse
direction starts each sequence from its initial state at its own last step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

#: The state of one direction of one layer: (h, c) for the LSTM, (h,) for the GRU and the RNN.
State = tuple[Tensor, ...]


@dataclass(frozen=True)
class DirectionWeights:
    """The parameters of one direction of one layer, with torch's shapes (G gates: 4 for the
    LSTM, 3 for the GRU, 1 for the RNN).

    weight_ih: (G*H, I)   rows in torch's gate order: LSTM i, f, g, o; GRU r, z, n
    weight_hh: (G*H, H_out) where H_out = P if projections (LSTM only) else H
    bias_ih, bias_hh: (G*H,) or None when bias=False
    weight_hr: (P, H) or None when proj_size=0
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None = None
    bias_hh: Tensor | None = None
    weight_hr: Tensor | None = None


def project_input(x: Tensor, weights: DirectionWeights) -> Tensor:
    """The input's share of the gates, x W_ih^T + b_ih + b_hh: x (..., I) -> (..., 4H).

    Applied to all time steps at once (x: (rows, I)) it is one GEMM: the fastrnns
    "premul" arrangement, whose steps then run :func:`premul_cell`.
    """
    bias = None if weights.bias_ih is None else weights.bias_ih + weights.bias_hh  # (4H,)
    return F.linear(x, weights.weight_ih, bias)


def premul_cell(
    x_proj: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights
) -> tuple[Tensor, Tensor]:
    """One LSTM step on a pre-projected input (``x_proj = project_input(x, weights)``).

    x_proj: (B, 4H), h: (B, H_out), c: (B, H) -> h': (B, H_out), c': (B, H)

        gates = x_proj + h W_hh^T                            (B, 4H)
        i, f, g, o = gates split in four along the last dim
        i = sigmoid(i), f = sigmoid(f), g = tanh(g), o = sigmoid(o)
        c' = f * c + i * g
        h' = o * tanh(c')
        h' = h' W_hr^T                                       if projections
    """
    gates = torch.addmm(x_proj, h, weights.weight_hh.T)
    ingate, forgetgate, cellgate, outgate = gates.chunk(4, dim=-1)
    ingate = torch.sigmoid(ingate)
    forgetgate = torch.sigmoid(forgetgate)
    cellgate = torch.tanh(cellgate)
    outgate = torch.sigmoid(outgate)
    c_next = forgetgate * c + ingate * cellgate
    h_next = outgate * torch.tanh(c_next)
    if weights.weight_hr is not None:
        h_next = h_next @ weights.weight_hr.T
    return h_next, c_next


def lstm_cell(
    x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights
) -> tuple[Tensor, Tensor]:
    """One LSTM step: x: (B, I), h: (B, H_out), c: (B, H) -> h': (B, H_out), c': (B, H)

        gates = x W_ih^T + b_ih + b_hh + h W_hh^T, then as :func:`premul_cell`
    """
    return premul_cell(project_input(x, weights), h, c, weights)


def gru_cell(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """One GRU step (torch's form, ONNX's linear_before_reset=1): x: (B, I), state (h,), h: (B, H) -> (h',)

        x W_ih^T + b_ih = (x_r, x_z, x_n)     h W_hh^T + b_hh = (h_r, h_z, h_n)     each (B, H)
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * h_n)               (b_hn inside r's product: it cannot join b_in)
        h' = (1 - z) * n + z * h              computed as n + z * (h - n), ATen's arrangement

    The arrangement matters in float32 only: with z saturated near 1 over T=200 steps
    (saturating_T200) the written form lands 9.9e-6 from torch (0.83x the float32 tolerance),
    this one 3e-7; against the float64 oracle the written form errs 4.4e-6, this one and
    torch 1.05e-5.
    """
    (h,) = state
    x_r, x_z, x_n = F.linear(x, weights.weight_ih, weights.bias_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, weights.weight_hh, weights.bias_hh).chunk(3, dim=-1)
    reset = torch.sigmoid(x_r + h_r)
    update = torch.sigmoid(x_z + h_z)
    new = torch.tanh(x_n + reset * h_n)
    return (new + update * (h - new),)


def _elman_preactivation(x: Tensor, h: Tensor, weights: DirectionWeights) -> Tensor:
    """x W_ih^T + b_ih + h W_hh^T + b_hh: (B, H)."""
    return torch.addmm(project_input(x, weights), h, weights.weight_hh.T)


def rnn_tanh_cell(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """One Elman RNN step: x: (B, I), state (h,), h: (B, H) -> (h',), h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    return (torch.tanh(_elman_preactivation(x, state[0], weights)),)


def rnn_relu_cell(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """One Elman RNN step with relu: h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh), shapes as :func:`rnn_tanh_cell`."""
    return (torch.relu(_elman_preactivation(x, state[0], weights)),)


def lstm_state_cell(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """:func:`lstm_cell` as a state cell: state (h, c) -> (h', c')."""
    return lstm_cell(x, *state, weights)


#: One step of any kind, ``(x, state, weights) -> state``.
StateCell = Callable[[Tensor, State, DirectionWeights], State]
#: One LSTM step with the state unpacked, ``(x, h, c, weights) -> (h', c')``.
Cell = Callable[[Tensor, Tensor, Tensor, DirectionWeights], tuple[Tensor, Tensor]]

#: Each kind's cell, by the name torch's RNNBase gives the kind (``module.mode``).
STATE_CELLS: dict[str, StateCell] = {
    "LSTM": lstm_state_cell, "GRU": gru_cell, "RNN_TANH": rnn_tanh_cell, "RNN_RELU": rnn_relu_cell,
}
#: Gates per kind: the rows of weight_ih are GATES[mode] * hidden_size.
GATES: dict[str, int] = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def run_states(
    steps: list[Tensor], state: State, weights: DirectionWeights, reverse: bool, cell: StateCell
) -> tuple[list[Tensor], State]:
    """Run one direction of one layer over time, any kind.

    steps[t]: (B_t, I) with B_t non-increasing; state: tensors of shape (B_0, ...).
    Returns the per-step outputs ``outputs[t] = state_t[0][:B_t]`` in time order
    (also for reverse=True, which visits t = T-1, ..., 0) and the final state.
    A row whose sequence has ended (or, in reverse, not yet started) keeps its
    state unchanged.
    """
    outputs: list[Tensor] = [state[0]] * len(steps)
    order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
    for t in order:
        active = steps[t].shape[0]
        stepped = cell(steps[t], tuple(s[:active] for s in state), weights)
        state = tuple(torch.cat([new, old[active:]]) if active < old.shape[0] else new
                      for new, old in zip(stepped, state, strict=True))
        outputs[t] = stepped[0]
    return outputs, state


def run_direction(
    steps: list[Tensor], h: Tensor, c: Tensor, weights: DirectionWeights, reverse: bool,
    cell: Cell = lstm_cell,
) -> tuple[list[Tensor], Tensor, Tensor]:
    """:func:`run_states` for the LSTM, the state unpacked: h: (B_0, H_out), c: (B_0, H) ->
    ``outputs[t]: (B_t, H_out)`` and the final h, c. ``cell`` computes one step (default
    :func:`lstm_cell`; a variant cell plugs in here)."""
    outputs, (h, c) = run_states(steps, (h, c), weights, reverse, lambda x, s, w: cell(x, *s, w))
    return outputs, h, c


def run_direction_premul(
    steps: list[Tensor], h: Tensor, c: Tensor, weights: DirectionWeights, reverse: bool,
    cell: Cell = premul_cell,
) -> tuple[list[Tensor], Tensor, Tensor]:
    """:func:`run_direction` with the input projection hoisted out of the loop (fastrnns "premul"):

        X_proj = X W_ih^T + b_ih + b_hh     X: all steps' rows (sum B_t, I) -> (sum B_t, 4H), one GEMM

    then the loop over X_proj's steps (B_t, 4H) with a cell that takes pre-projected input.
    """
    x_proj = project_input(torch.cat(steps), weights).split([step.shape[0] for step in steps])
    return run_direction(list(x_proj), h, c, weights, reverse, cell)


#: One LSTM direction over time, with :func:`run_direction`'s signature.
DirectionLoop = Callable[..., tuple[list[Tensor], Tensor, Tensor]]
#: One direction over time, any kind: ``(steps, state, weights, reverse) -> (outputs, state)``.
DirectionRun = Callable[[list[Tensor], State, DirectionWeights, bool], tuple[list[Tensor], State]]


def stack_layers(
    steps: list[Tensor],
    initial: State,
    layers: list[list[DirectionWeights]],
    dropout: float,
    training: bool,
    run: DirectionRun,
) -> tuple[list[Tensor], State]:
    """The multi-layer, possibly bidirectional recurrence over per-step inputs, any kind.

    steps[t]: (B_t, I); initial: the states, each (L*D, B_0, ...), indexed
    ``layer * D + direction``; layers[layer][direction] holds the weights.
    Layer k > 0 reads the previous layer's outputs, both directions
    concatenated (B_t, D*H_out), with dropout applied in training mode.
    Returns per-step outputs (B_t, D*H_out) of the last layer and the final
    states, each (L*D, B_0, ...). ``run`` runs one direction.
    """
    num_directions = len(layers[0])
    finals: list[State] = []
    for layer, directions in enumerate(layers):
        if layer > 0 and dropout > 0 and training:  # one mask over all steps' rows, in time order, as torch draws it
            steps = list(F.dropout(torch.cat(steps), p=dropout, training=True).split([s.shape[0] for s in steps]))
        direction_outputs = []
        for direction, weights in enumerate(directions):
            index = layer * num_directions + direction
            outputs, final = run(steps, tuple(s[index] for s in initial), weights, direction == 1)
            direction_outputs.append(outputs)
            finals.append(final)
        steps = [torch.cat(per_direction, dim=-1) for per_direction in zip(*direction_outputs)]
    return steps, tuple(torch.stack(component) for component in zip(*finals))


def lstm_layers(
    steps: list[Tensor],
    h0: Tensor,
    c0: Tensor,
    layers: list[list[DirectionWeights]],
    dropout: float = 0.0,
    training: bool = False,
    cell: Cell = lstm_cell,
    direction_loop: DirectionLoop = run_direction,
) -> tuple[list[Tensor], Tensor, Tensor]:
    """:func:`stack_layers` for the LSTM, the states unpacked.

    steps[t]: (B_t, I); h0: (L*D, B_0, H_out), c0: (L*D, B_0, H). Returns per-step
    outputs (B_t, D*H_out) of the last layer and h_n (L*D, B_0, H_out), c_n (L*D, B_0, H).
    ``direction_loop`` runs one direction (:func:`run_direction`'s signature), ``cell`` its steps.
    """
    def run(steps: list[Tensor], state: State, weights: DirectionWeights, reverse: bool):
        outputs, h, c = direction_loop(steps, *state, weights, reverse=reverse, cell=cell)
        return outputs, (h, c)

    outputs, (h_n, c_n) = stack_layers(steps, (h0, c0), layers, dropout, training, run)
    return outputs, h_n, c_n


def recurrent_layers(
    steps: list[Tensor],
    initial: State,
    layers: list[list[DirectionWeights]],
    dropout: float = 0.0,
    training: bool = False,
    cell: StateCell = gru_cell,
) -> tuple[list[Tensor], State]:
    """:func:`stack_layers` with every direction run by :func:`run_states` on ``cell``."""
    def run(steps: list[Tensor], state: State, weights: DirectionWeights, reverse: bool):
        return run_states(steps, state, weights, reverse, cell)

    return stack_layers(steps, initial, layers, dropout, training, run)

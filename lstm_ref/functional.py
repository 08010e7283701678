"""The LSTM computation, written from the equations with plain tensor ops.

Nothing here calls torch's recurrent kernels (``nn.LSTM``, ``_VF.lstm``,
``torch.lstm``, ``lstm_cell``): only matmul, sigmoid, tanh and elementwise
arithmetic. The pieces compose the way the math does:

    lstm_cell       one time step of one direction of one layer: project_input,
                    the input's share of the gates, then premul_cell, the rest
    run_direction   one direction of one layer over all time steps
                    (run_direction_premul: the input projection hoisted out)
    lstm_layers     the stack: layers x directions, dropout between layers

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


@dataclass(frozen=True)
class DirectionWeights:
    """The parameters of one direction of one layer, with torch's shapes.

    weight_ih: (4H, I)   rows in gate order i, f, g, o
    weight_hh: (4H, H_out) where H_out = P if projections else H
    bias_ih, bias_hh: (4H,) or None when bias=False
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


Cell = Callable[[Tensor, Tensor, Tensor, DirectionWeights], tuple[Tensor, Tensor]]


def run_direction(
    steps: list[Tensor], h: Tensor, c: Tensor, weights: DirectionWeights, reverse: bool,
    cell: Cell = lstm_cell,
) -> tuple[list[Tensor], Tensor, Tensor]:
    """Run one direction of one layer over time.

    steps[t]: (B_t, I) with B_t non-increasing; h: (B_0, H_out), c: (B_0, H).
    Returns the per-step outputs ``outputs[t]: (B_t, H_out)`` in time order
    (also for reverse=True, which visits t = T-1, ..., 0) and the final
    states (B_0, H_out), (B_0, H). A row whose sequence has ended (or, in
    reverse, not yet started) keeps its state unchanged. ``cell`` computes
    one step (default :func:`lstm_cell`; a variant cell plugs in here).
    """
    outputs: list[Tensor] = [h] * len(steps)
    order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
    for t in order:
        active = steps[t].shape[0]
        h_step, c_step = cell(steps[t], h[:active], c[:active], weights)
        h = torch.cat([h_step, h[active:]]) if active < h.shape[0] else h_step
        c = torch.cat([c_step, c[active:]]) if active < c.shape[0] else c_step
        outputs[t] = h_step
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


#: One direction over time, with :func:`run_direction`'s signature.
DirectionLoop = Callable[..., tuple[list[Tensor], Tensor, Tensor]]


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
    """The multi-layer, possibly bidirectional LSTM over per-step inputs.

    steps[t]: (B_t, I); h0: (L*D, B_0, H_out), c0: (L*D, B_0, H), indexed
    ``layer * D + direction``; layers[layer][direction] holds the weights.
    Layer k > 0 reads the previous layer's outputs, both directions
    concatenated (B_t, D*H_out), with dropout applied in training mode.
    Returns per-step outputs (B_t, D*H_out) of the last layer and the final
    states h_n (L*D, B_0, H_out), c_n (L*D, B_0, H). ``direction_loop`` runs
    one direction (:func:`run_direction`'s signature), ``cell`` its steps.
    """
    num_directions = len(layers[0])
    final_h, final_c = [], []
    for layer, directions in enumerate(layers):
        if layer > 0 and dropout > 0 and training:
            steps = [F.dropout(step, p=dropout, training=True) for step in steps]
        direction_outputs = []
        for direction, weights in enumerate(directions):
            index = layer * num_directions + direction
            outputs, h_n, c_n = direction_loop(
                steps, h0[index], c0[index], weights, reverse=direction == 1, cell=cell
            )
            direction_outputs.append(outputs)
            final_h.append(h_n)
            final_c.append(c_n)
        steps = [torch.cat(per_direction, dim=-1) for per_direction in zip(*direction_outputs)]
    return steps, torch.stack(final_h), torch.stack(final_c)

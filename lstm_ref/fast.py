"""lstm_ref's fast path: the same LSTM as :mod:`lstm_ref.functional`, arranged for speed.

    fast = lstm_ref.fast.from_torch(torch_lstm)
    out, (h_n, c_n) = fast(x, hx)          # nn.LSTM.forward's signature and results

Like the readable path it uses only matmul, sigmoid, tanh and elementwise
arithmetic, never torch's recurrent kernels. What makes it fast:

* the input projection of every time step is one GEMM per layer and direction,
  ``X_proj = X W_ih^T + (b_ih + b_hh)``, X: (rows, I) -> (rows, 4H), where
  rows = T*N for a dense batch or sum(batch_sizes) for a PackedSequence;
* under ``torch.no_grad()`` (or when nothing requires grad) the gate rows are
  reordered once, i, f, g, o -> i, f, o, g, so one sigmoid covers i, f, o and
  one tanh covers g, and each step works in place on preallocated buffers:
  ``gates = X_proj[t] + h W_hh^T`` (addmm, out=) into one gate buffer, then
  ``sigmoid_``/``tanh_`` on views of it made once, ``c = f*c + i*g`` (mul_,
  addcmul_), and ``h = o * tanh(c)`` written straight into the output buffer,
  which is the next step's h: seven ATen calls a step, no allocation and no
  view made inside the loop of a dense batch.

When gradients are needed (grad mode on and a parameter, the input or the
state requires grad) it is the readable stack, :func:`lstm_ref.functional.lstm_layers`,
arranged the same way: each direction is ``run_direction_premul`` (one input
GEMM, then ``run_direction`` with ``premul_cell``), out of place, so autograd
differentiates it and gradients reach the ``nn.LSTM``'s own parameters.
Under ``torch.autocast`` it takes that readable stack too: autocast casts the
operands of out-of-place matmuls, not of ``addmm(..., out=)`` into a float32 buffer.
Validation and the input forms are :mod:`lstm_ref.interface`'s, shared with
:class:`lstm_ref.LSTM`.

The reordered weights are cached and rebuilt when a parameter of the module
changes (tracked by the parameters' version counters), so an optimizer step
on the module is seen by the next call.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.functional import DirectionWeights, lstm_layers, premul_cell, run_direction_premul
from lstm_ref.interface import FlatCall, State, flatten_call, layer_weights
from lstm_ref.torch_compat import autocast_enabled


def reorder_gates(weight: Tensor) -> Tensor:
    """Rows (or entries) in gate order i, f, g, o -> i, f, o, g along dim 0 (4H, ...)."""
    ingate, forgetgate, cellgate, outgate = weight.chunk(4, dim=0)
    return torch.cat([ingate, forgetgate, outgate, cellgate], dim=0)


class _Direction:
    """One direction of one layer, gates reordered to i, f, o, g, for the in-place loop.

    w_ih_t: (I, 4H), w_hh_t: (H_out, 4H), bias: (4H,) = b_ih + b_hh or None,
    w_hr_t: (H, P) or None (transposed views: addmm reads them without a copy).
    """

    def __init__(self, weights: DirectionWeights) -> None:
        self.w_ih_t = reorder_gates(weights.weight_ih).t()
        self.w_hh_t = reorder_gates(weights.weight_hh).t()
        self.bias = None if weights.bias_ih is None else reorder_gates(weights.bias_ih + weights.bias_hh)
        self.w_hr_t = None if weights.weight_hr is None else weights.weight_hr.t()

    def project_input(self, data: Tensor) -> Tensor:
        """X_proj = X W_ih^T + b: (rows, I) -> (rows, 4H), all time steps in one GEMM."""
        if self.bias is None:
            return data @ self.w_ih_t
        return torch.addmm(self.bias, data, self.w_ih_t)


def _run_inplace(
    d: _Direction, data: Tensor, h: Tensor, c0: Tensor, batch_sizes: list[int], reverse: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """One direction over time, in place on buffers allocated once, no autograd.

    data: (rows, I) the layer's input; h: (B_0, H_out), c0: (B_0, H) initial
    states (not modified). x_proj = d.project_input(data): (rows, 4H), then per
    step t with B_t rows, in a (B_0, 4H) gate buffer whose views i, f, o, g are
    made once:

        gates = x_proj[t] + h[:B_t] W_hh^T          (B_t, 4H)
        i, f, o = sigmoid(gates[:, :3H]);  g = tanh(gates[:, 3H:])
        c[:B_t] = f * c[:B_t] + i * g
        out[t] = o * tanh(c[:B_t])                   (then @ W_hr^T with projections)

    Returns out (rows, H_out), h_n (B_0, H_out), c_n (B_0, H).
    """
    x_proj = d.project_input(data)
    out = data.new_empty(data.shape[0], h.shape[1])
    c = c0.clone()
    hidden = c.shape[1]
    gates = x_proj.new_empty(batch_sizes[0], 4 * hidden)
    tanh_c = c.new_empty(c.shape)
    order = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
    w_hh_t, w_hr_t = d.w_hh_t, d.w_hr_t
    if batch_sizes[0] == batch_sizes[-1]:  # dense: every step has all N rows
        steps, batch = len(batch_sizes), batch_sizes[0]
        x_steps = x_proj.view(steps, batch, 4 * hidden).unbind(0)
        out_steps = out.view(steps, batch, out.shape[1]).unbind(0)
        activated, cellgate = gates[:, : 3 * hidden], gates[:, 3 * hidden :]
        ingate, forgetgate, outgate = activated.chunk(3, dim=1)
        for t in order:
            torch.addmm(x_steps[t], h, w_hh_t, out=gates)
            activated.sigmoid_()
            cellgate.tanh_()
            c.mul_(forgetgate).addcmul_(ingate, cellgate)
            torch.tanh(c, out=tanh_c)
            if w_hr_t is None:
                torch.mul(outgate, tanh_c, out=out_steps[t])
            else:
                torch.mm(tanh_c.mul_(outgate), w_hr_t, out=out_steps[t])
            h = out_steps[t]
        return out, h, c
    state = h.clone()  # packed: rows past B_t keep their state
    x_steps, out_steps = x_proj.split(batch_sizes), out.split(batch_sizes)
    for t in order:
        rows = batch_sizes[t]
        step_gates, c_t, tanh_t = gates[:rows], c[:rows], tanh_c[:rows]
        torch.addmm(x_steps[t], state[:rows], w_hh_t, out=step_gates)
        step_gates[:, : 3 * hidden].sigmoid_()
        cellgate = step_gates[:, 3 * hidden :].tanh_()
        ingate, forgetgate, outgate = step_gates[:, : 3 * hidden].chunk(3, dim=1)
        c_t.mul_(forgetgate).addcmul_(ingate, cellgate)
        torch.tanh(c_t, out=tanh_t)
        if w_hr_t is None:
            torch.mul(outgate, tanh_t, out=out_steps[t])
        else:
            torch.mm(tanh_t.mul_(outgate), w_hr_t, out=out_steps[t])
        state[:rows].copy_(out_steps[t])
    return out, state, c


class FastLSTM:
    """A callable with ``nn.LSTM.forward``'s signature, computing with the fast path."""

    def __init__(self, module: nn.LSTM) -> None:
        if isinstance(module, nn.RNNBase) and not isinstance(module, nn.LSTM):
            raise NotImplementedError(f"lstm_ref.fast computes torch.nn.LSTM only, "
                                      f"got a torch.nn.{type(module).__name__}")
        if not isinstance(module, nn.LSTM):
            raise TypeError(f"from_torch expects a torch.nn.LSTM, got {type(module).__name__}")
        self.module = module
        self._cache_key: tuple | None = None
        self._reordered: list[list[_Direction]] = []

    def _reordered_layers(self) -> list[list[_Direction]]:
        """The module's weights reordered for the in-place loop, rebuilt when a parameter changed."""
        key = tuple((p.data_ptr(), p._version) for p in self.module.parameters())
        if key != self._cache_key:
            with torch.no_grad():
                self._reordered = [[_Direction(w) for w in layer] for layer in layer_weights(self.module)]
            self._cache_key = key
        return self._reordered

    def __call__(
        self, input: Tensor | PackedSequence, hx: State | None = None
    ) -> tuple[Tensor | PackedSequence, State]:
        call = flatten_call(self.module, input, hx)
        m = self.module
        if (torch.is_grad_enabled() and _requires_grad(call, m)) or autocast_enabled(call.data.device.type):
            outputs, h_n, c_n = lstm_layers(call.steps(), call.h0, call.c0, layer_weights(m), m.dropout,
                                            m.training, cell=premul_cell, direction_loop=run_direction_premul)
            return call.unflatten(torch.cat(outputs), h_n, c_n)  # outputs[t]: (B_t, D*H_out)
        with torch.no_grad():
            return call.unflatten(*self._forward_inplace(call))

    def _forward_inplace(self, call: FlatCall) -> tuple[Tensor, Tensor, Tensor]:
        """The stack over the flat input, each direction by :func:`_run_inplace`: data (rows, I)
        -> output (rows, D*H_out), h_n (L*D, B_0, H_out), c_n (L*D, B_0, H), state index
        ``layer * D + direction``; layer k > 0 reads the previous layer's directions
        concatenated, with dropout in training mode."""
        m = self.module
        data, final_h, final_c = call.data, [], []
        for layer, directions in enumerate(self._reordered_layers()):
            if layer > 0 and m.dropout > 0 and m.training:
                data = F.dropout(data, p=m.dropout, training=True)
            outputs = []
            for direction, d in enumerate(directions):
                index = layer * len(directions) + direction
                out, h_n, c_n = _run_inplace(d, data, call.h0[index], call.c0[index], call.batch_sizes,
                                             reverse=direction == 1)
                outputs.append(out)
                final_h.append(h_n)
                final_c.append(c_n)
            data = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]
        return data, torch.stack(final_h), torch.stack(final_c)


def _requires_grad(call: FlatCall, module: nn.Module) -> bool:
    """Whether anything the call reads requires grad: the input, the states or a parameter."""
    return (call.data.requires_grad or call.h0.requires_grad or call.c0.requires_grad
            or any(p.requires_grad for p in module.parameters()))


def from_torch(module: nn.LSTM) -> FastLSTM:
    """The fast path for ``module`` (the ``--lstm-impl lstm_ref.fast:from_torch`` factory).

    The module is kept, not copied: its parameters are read (and, when
    gradients are needed, differentiated) on every call.
    """
    return FastLSTM(module)

"""lstm_ref's fast path: the same LSTM as :mod:`lstm_ref.functional`, arranged for speed.

    fast = lstm_ref.fast.from_torch(torch_lstm)
    out, (h_n, c_n) = fast(x, hx)          # nn.LSTM.forward's signature and results

Like the readable path it uses only matmul, sigmoid, tanh and elementwise
arithmetic, never torch's recurrent kernels. What makes it fast:

* the input projection of every time step is one GEMM per layer and direction,
  ``X_proj = X W_ih^T + (b_ih + b_hh)``, X: (rows, I) -> (rows, 4H), where
  rows = T*N for a dense batch or sum(batch_sizes) for a PackedSequence;
* the gate rows are reordered once, i, f, g, o -> i, f, o, g, so one sigmoid
  covers i, f, o and one tanh covers g;
* under ``torch.no_grad()`` (or when nothing requires grad) each step works in
  place on preallocated buffers: ``gates = X_proj[t] + h W_hh^T`` (addmm, out=)
  into one gate buffer, then ``sigmoid_``/``tanh_`` on views of it made once,
  ``c = f*c + i*g`` (mul_, addcmul_), and ``h = o * tanh(c)`` written straight
  into the output buffer, which is the next step's h: seven ATen calls a step,
  no allocation and no view made inside the loop of a dense batch.

When gradients are needed (grad mode on and a parameter, the input or the
state requires grad) the same algorithm runs out of place, so autograd
differentiates it and gradients reach the ``nn.LSTM``'s own parameters.

The reordered weights are cached and rebuilt when a parameter of the module
changes (tracked by the parameters' version counters), so an optimizer step
on the module is seen by the next call.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence

State = tuple[Tensor, Tensor]


def reorder_gates(weight: Tensor) -> Tensor:
    """Rows (or entries) in gate order i, f, g, o -> i, f, o, g along dim 0 (4H, ...)."""
    ingate, forgetgate, cellgate, outgate = weight.chunk(4, dim=0)
    return torch.cat([ingate, forgetgate, outgate, cellgate], dim=0)


class _Direction:
    """One direction of one layer, gates reordered to i, f, o, g.

    w_ih_t: (I, 4H), w_hh_t: (H_out, 4H), bias: (4H,) = b_ih + b_hh or None,
    w_hr_t: (H, P) or None (transposed views: addmm reads them without a copy).
    """

    def __init__(self, module: nn.LSTM, layer: int, direction: int, detach: bool) -> None:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")

        def get(name: str) -> Tensor:
            tensor = getattr(module, name + suffix)
            return tensor.detach() if detach else tensor

        self.w_ih_t = reorder_gates(get("weight_ih")).t()
        self.w_hh_t = reorder_gates(get("weight_hh")).t()
        self.bias = reorder_gates(get("bias_ih") + get("bias_hh")) if module.bias else None
        self.w_hr_t = get("weight_hr").t() if module.proj_size > 0 else None

    def project_input(self, data: Tensor) -> Tensor:
        """X_proj = X W_ih^T + b: (rows, I) -> (rows, 4H), all time steps in one GEMM."""
        if self.bias is None:
            return data @ self.w_ih_t
        return torch.addmm(self.bias, data, self.w_ih_t)


def _run_inplace(
    d: _Direction, x_proj: Tensor, out: Tensor, h: Tensor, c: Tensor, batch_sizes: list[int], reverse: bool
) -> Tensor:
    """One direction over time, in place, no autograd.

    x_proj: (rows, 4H) gate pre-activations from the input;
    out: (rows, H_out) view of the output buffer, written step by step;
    h: (B_0, H_out) initial hidden state (not modified); c: (B_0, H) initial
    cell state, updated in place to c_n. Per step t with B_t rows, in a
    (B_0, 4H) gate buffer whose views i, f, o, g are made once:

        gates = x_proj[t] + h[:B_t] W_hh^T          (B_t, 4H)
        i, f, o = sigmoid(gates[:, :3H]);  g = tanh(gates[:, 3H:])
        c[:B_t] = f * c[:B_t] + i * g
        out[t] = o * tanh(c[:B_t])                   (then @ W_hr^T with projections)

    Returns h_n (B_0, H_out).
    """
    hidden = c.shape[1]
    gates = x_proj.new_empty(batch_sizes[0], 4 * hidden)
    tanh_c = c.new_empty(c.shape)
    order = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
    w_hh_t, w_hr_t = d.w_hh_t, d.w_hr_t
    if batch_sizes[0] == batch_sizes[-1]:  # dense: every step has all N rows
        steps, batch = len(batch_sizes), batch_sizes[0]
        x_steps = x_proj.view(steps, batch, -1).unbind(0)
        out_steps = out.view(steps, batch, -1).unbind(0)
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
        return h
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
    return state


def _run_autograd(
    d: _Direction, x_proj: Tensor, h: Tensor, c: Tensor, batch_sizes: list[int], reverse: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The same recurrence out of place, for autograd. Returns out (rows, H_out), h_n, c_n."""
    hidden = c.shape[1]
    gate_steps = x_proj.split(batch_sizes)
    outputs: list[Tensor] = [h] * len(batch_sizes)
    order = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
    for t in order:
        rows = batch_sizes[t]
        gates = torch.addmm(gate_steps[t], h[:rows], d.w_hh_t)
        ingate, forgetgate, outgate = gates[:, : 3 * hidden].sigmoid().chunk(3, dim=1)
        cellgate = gates[:, 3 * hidden :].tanh()
        c_next = forgetgate * c[:rows] + ingate * cellgate
        h_next = outgate * c_next.tanh()
        if d.w_hr_t is not None:
            h_next = h_next @ d.w_hr_t
        outputs[t] = h_next
        h = torch.cat([h_next, h[rows:]]) if rows < h.shape[0] else h_next
        c = torch.cat([c_next, c[rows:]]) if rows < c.shape[0] else c_next
    return torch.cat(outputs), h, c


class FastLSTM:
    """A callable with ``nn.LSTM.forward``'s signature, computing with the fast path."""

    def __init__(self, module: nn.LSTM) -> None:
        if not isinstance(module, nn.LSTM):
            raise TypeError(f"from_torch expects a torch.nn.LSTM, got {type(module).__name__}")
        self.module = module
        self.num_directions = 2 if module.bidirectional else 1
        self._cache_key: tuple | None = None
        self._layers: list[list[_Direction]] = []

    def _parameters_key(self) -> tuple:
        return tuple((p.data_ptr(), p._version) for p in self.module.parameters())

    def _detached_layers(self) -> list[list[_Direction]]:
        key = self._parameters_key()
        if key != self._cache_key:
            with torch.no_grad():
                self._layers = self._build_layers(detach=True)
            self._cache_key = key
        return self._layers

    def _build_layers(self, detach: bool) -> list[list[_Direction]]:
        return [[_Direction(self.module, layer, direction, detach)
                 for direction in range(self.num_directions)] for layer in range(self.module.num_layers)]

    def __call__(
        self, input: Tensor | PackedSequence, hx: State | None = None
    ) -> tuple[Tensor | PackedSequence, State]:
        m = self.module
        weight = m.weight_ih_l0
        h_out = m.proj_size or m.hidden_size
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes_tensor, sorted_indices, unsorted_indices = input
            if data.dim() != 2:
                raise RuntimeError(f"input must have 2 dimensions, got {data.dim()}")
            batch_sizes = batch_sizes_tensor.tolist()
            batch, is_batched = batch_sizes[0], True
            _check_state_rank(hx, 3)
        else:
            if not isinstance(input, Tensor):
                raise TypeError(
                    f"LSTM: Expected input to be a Tensor or PackedSequence, got {type(input).__name__}")
            if input.dim() not in (2, 3):
                raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
            is_batched = input.dim() == 3
            _check_state_rank(hx, 3 if is_batched else 2)
            if not is_batched:
                input = input.unsqueeze(1)  # (T, 1, I)
                hx = None if hx is None else (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
            elif m.batch_first:
                input = input.transpose(0, 1)  # (T, N, I)
            if input.shape[0] == 0:
                raise ValueError("LSTM: Expected a sequence of length at least 1, got length 0")
            steps, batch = input.shape[0], input.shape[1]
            batch_sizes = [batch] * steps
            data = input.reshape(steps * batch, input.shape[2])  # (T*N, I)
            sorted_indices = unsorted_indices = None
        _check_tensor(data, weight, "input")
        if data.shape[-1] != m.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {m.input_size}, got {data.shape[-1]}")
        layers_directions = m.num_layers * self.num_directions
        shapes = ((layers_directions, batch, h_out), (layers_directions, batch, m.hidden_size))
        if hx is not None:
            for index, (state, shape) in enumerate(zip(hx, shapes, strict=True)):
                if tuple(state.shape) != shape:
                    raise RuntimeError(f"Expected hidden[{index}] size {shape}, got {list(state.shape)}")
                _check_tensor(state, weight, f"hidden[{index}]")
            if sorted_indices is not None:
                hx = (hx[0].index_select(1, sorted_indices), hx[1].index_select(1, sorted_indices))

        needs_grad = torch.is_grad_enabled() and (
            data.requires_grad or any(p.requires_grad for p in m.parameters())
            or (hx is not None and (hx[0].requires_grad or hx[1].requires_grad)))
        if needs_grad:
            output, h_n, c_n = self._forward_autograd(data, hx, batch_sizes, shapes)
        else:
            with torch.no_grad():
                output, h_n, c_n = self._forward_inplace(data, hx, batch_sizes, shapes)

        if unsorted_indices is not None:
            h_n, c_n = h_n.index_select(1, unsorted_indices), c_n.index_select(1, unsorted_indices)
        if packed:
            return PackedSequence(output, batch_sizes_tensor, sorted_indices, unsorted_indices), (h_n, c_n)
        output = output.view(len(batch_sizes), batch, -1)  # (T, N, D*H_out)
        if not is_batched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if m.batch_first:
            output = output.transpose(0, 1)
        return output, (h_n, c_n)

    def _layer_input(self, data: Tensor, layer: int) -> Tensor:
        m = self.module
        if layer > 0 and m.dropout > 0 and m.training:
            return F.dropout(data, p=m.dropout, training=True)
        return data

    def _forward_inplace(
        self, data: Tensor, hx: State | None, batch_sizes: list[int], shapes: tuple
    ) -> tuple[Tensor, Tensor, Tensor]:
        """data: (rows, I) -> output (rows, D*H_out), h_n (L*D, B_0, H_out), c_n (L*D, B_0, H)."""
        h_shape, c_shape = shapes
        h_out = h_shape[2]
        h_n = data.new_zeros(h_shape)
        c_n = data.new_zeros(c_shape) if hx is None else hx[1].clone()
        h0 = h_n.clone() if hx is None else hx[0]
        for layer, directions in enumerate(self._detached_layers()):
            data = self._layer_input(data, layer)
            output = data.new_empty(data.shape[0], self.num_directions * h_out)
            for direction, d in enumerate(directions):
                index = layer * self.num_directions + direction
                columns = slice(direction * h_out, (direction + 1) * h_out)
                out_view = output if self.num_directions == 1 else output[:, columns]
                h_last = _run_inplace(d, d.project_input(data), out_view, h0[index], c_n[index],
                                      batch_sizes, reverse=direction == 1)
                h_n[index].copy_(h_last)
            data = output
        return data, h_n, c_n

    def _forward_autograd(
        self, data: Tensor, hx: State | None, batch_sizes: list[int], shapes: tuple
    ) -> tuple[Tensor, Tensor, Tensor]:
        if hx is None:
            hx = (data.new_zeros(shapes[0]), data.new_zeros(shapes[1]))
        final_h, final_c = [], []
        for layer, directions in enumerate(self._build_layers(detach=False)):
            data = self._layer_input(data, layer)
            outputs = []
            for direction, d in enumerate(directions):
                index = layer * self.num_directions + direction
                out, h_last, c_last = _run_autograd(d, d.project_input(data), hx[0][index], hx[1][index],
                                                    batch_sizes, reverse=direction == 1)
                outputs.append(out)
                final_h.append(h_last)
                final_c.append(c_last)
            data = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]
        return data, torch.stack(final_h), torch.stack(final_c)


def _check_state_rank(hx: State | None, rank: int) -> None:
    if hx is None:
        return
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError("LSTM: Expected hx to be a tuple (h_0, c_0) of two tensors")
    if hx[0].dim() != rank or hx[1].dim() != rank:
        kind = "batched 3-D" if rank == 3 else "unbatched 2-D"
        raise RuntimeError(f"For {kind} input, hx and cx should also be {rank}-D but got "
                           f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")


def _check_tensor(tensor: Tensor, weight: Tensor, name: str) -> None:
    if tensor.dtype != weight.dtype:
        raise ValueError(f"{name} must have the type {weight.dtype}, got type {tensor.dtype}")
    if tensor.device != weight.device:
        raise RuntimeError(f"Input and parameter tensors are not at the same device, found {name} "
                           f"at {tensor.device} and parameter tensor at {weight.device}")


def from_torch(module: nn.LSTM) -> FastLSTM:
    """The fast path for ``module`` (the ``--lstm-impl lstm_ref.fast:from_torch`` factory).

    The module is kept, not copied: its parameters are read (and, when
    gradients are needed, differentiated) on every call.
    """
    return FastLSTM(module)

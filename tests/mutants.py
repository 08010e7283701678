"""Deliberately broken LSTMs, each with one bug that real ports have.

Each mutant is a factory with the ``--lstm-impl`` contract (called with a
configured ``torch.nn.LSTM``, returns a callable like its forward), so it can
be run by the suite, by ``lstm-ref check --impl tests.mutants:NAME`` and by
``tests/test_mutants.py``, which asserts that the default matrix fails every
one of them. ``MUTANTS`` records, for each, the smallest configuration of
the matrix that catches it and a control one axis away that does not: the
axis between the two is the one that catches the bug.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstm_ref import LSTM
from lstm_ref.configs import Config, special_cases
from lstm_ref.functional import (
    DirectionWeights,
    lstm_cell,
    lstm_layers,
    premul_cell,
    project_input,
    run_direction,
)

GATES = "ifgo"


def _reordered(module: nn.LSTM, read_as: str) -> LSTM:
    """A port that reads torch's gate blocks (i, f, g, o) as if they were in ``read_as`` order."""
    ref = LSTM.from_torch(module)
    source = [read_as.index(gate) for gate in GATES]  # block that the port uses for i, f, g, o
    with torch.no_grad():
        for name, parameter in ref.named_parameters():
            if not name.startswith("weight_hr"):
                blocks = parameter.chunk(4, dim=0)
                parameter.copy_(torch.cat([blocks[k] for k in source]))
    return ref


def _with_cell(cell: Callable) -> Callable[[nn.LSTM], LSTM]:
    variant = type("CellVariant", (LSTM,), {"cell": staticmethod(cell)})
    return variant.from_torch


def _with_layers(layers: Callable) -> Callable[[nn.LSTM], LSTM]:
    variant = type("LayersVariant", (LSTM,), {"layers": staticmethod(layers)})
    return variant.from_torch


# --- gate order and biases -------------------------------------------------------------------

def gates_if_swapped(module: nn.LSTM) -> LSTM:
    """Input and forget gates swapped (blocks read as f, i, g, o)."""
    return _reordered(module, "figo")


def onnx_order_unconverted(module: nn.LSTM) -> LSTM:
    """torch weights used as ONNX's i, o, f, c without reordering."""
    return _reordered(module, "iofg")


def haiku_order_unconverted(module: nn.LSTM) -> LSTM:
    """torch weights used as Haiku's i, g, f, o without reordering."""
    return _reordered(module, "igfo")


def _forget_bias_plus_one(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights):
    """The cell of a port that adds Keras/TF's unit forget bias at run time on top of torch's."""
    shift = torch.zeros(weights.weight_ih.shape[0], dtype=x.dtype, device=x.device)
    shift[shift.shape[0] // 4: shift.shape[0] // 2] = 1.0
    biased = replace(weights, bias_ih=shift if weights.bias_ih is None else weights.bias_ih + shift,
                     bias_hh=torch.zeros_like(shift) if weights.bias_hh is None else weights.bias_hh)
    return lstm_cell(x, h, c, biased)


forget_bias_added = _with_cell(_forget_bias_plus_one)


def bias_hh_dropped(module: nn.LSTM) -> LSTM:
    """Only one bias imported: b_hh (cuDNN's second bias) left at zero."""
    ref = LSTM.from_torch(module)
    with torch.no_grad():
        for name, parameter in ref.named_parameters():
            if name.startswith("bias_hh"):
                parameter.zero_()
    return ref


def _hard_sigmoid_cell(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights):
    """Keras 2's default recurrent_activation, hard_sigmoid(z) = clip(0.2 z + 0.5, 0, 1)."""
    gates = x @ weights.weight_ih.T + h @ weights.weight_hh.T
    if weights.bias_ih is not None:
        gates = gates + weights.bias_ih + weights.bias_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    hard = [torch.clamp(0.2 * z + 0.5, 0, 1) for z in (i, f, o)]
    c_next = hard[1] * c + hard[0] * torch.tanh(g)
    h_next = hard[2] * torch.tanh(c_next)
    if weights.weight_hr is not None:
        h_next = h_next @ weights.weight_hr.T
    return h_next, c_next


hard_sigmoid_gates = _with_cell(_hard_sigmoid_cell)


def _clipped_cell(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights):
    """TF's LSTMCell(cell_clip=10): c clipped to [-10, 10] every step."""
    h_next, c_next = lstm_cell(x, h, c, weights)
    return h_next, c_next.clamp(-10.0, 10.0)


cell_state_clipped = _with_cell(_clipped_cell)


# --- directions, layers and states -----------------------------------------------------------

def _reverse_not_reflipped(steps, h0, c0, layers, dropout=0.0, training=False, cell=lstm_cell):
    """The reverse direction's outputs left in processing order (t = T-1 first)."""
    outputs, h_n, c_n = lstm_layers(steps, h0, c0, layers, dropout, training, cell)
    if len(layers[0]) == 2 and len({step.shape[0] for step in steps}) == 1:
        forward, backward = zip(*(step.chunk(2, dim=-1) for step in outputs))
        outputs = [torch.cat(pair, dim=-1) for pair in zip(forward, reversed(backward))]
    return outputs, h_n, c_n


reverse_outputs_not_reflipped = _with_layers(_reverse_not_reflipped)


def _reverse_runs_forward(steps, h0, c0, layers, dropout=0.0, training=False, cell=lstm_cell):
    """A "bidirectional" port whose second direction also runs forward in time."""
    final_h, final_c = [], []
    for layer, directions in enumerate(layers):
        if layer > 0 and dropout > 0 and training:
            steps = [torch.nn.functional.dropout(step, p=dropout) for step in steps]
        per_direction = []
        for direction, weights in enumerate(directions):
            index = layer * len(directions) + direction
            outputs, h_n, c_n = run_direction(steps, h0[index], c0[index], weights, False, cell)
            per_direction.append(outputs)
            final_h.append(h_n)
            final_c.append(c_n)
        steps = [torch.cat(parts, dim=-1) for parts in zip(*per_direction)]
    return steps, torch.stack(final_h), torch.stack(final_c)


reverse_direction_runs_forward = _with_layers(_reverse_runs_forward)


def _direction_major(steps, h0, c0, layers, dropout=0.0, training=False, cell=lstm_cell):
    """h_n, c_n stacked direction-major (direction * L + layer) instead of layer-major."""
    outputs, h_n, c_n = lstm_layers(steps, h0, c0, layers, dropout, training, cell)
    num_layers, num_directions = len(layers), len(layers[0])
    order = [layer * num_directions + direction
             for direction in range(num_directions) for layer in range(num_layers)]
    return outputs, h_n[order], c_n[order]


state_direction_major = _with_layers(_direction_major)


def _last_layer_state(steps, h0, c0, layers, dropout=0.0, training=False, cell=lstm_cell):
    """h_n, c_n filled with the last layer's final state for every layer."""
    outputs, h_n, c_n = lstm_layers(steps, h0, c0, layers, dropout, training, cell)
    directions = len(layers[0])
    return outputs, h_n[-directions:].repeat(len(layers), 1, 1), c_n[-directions:].repeat(len(layers), 1, 1)


final_state_of_last_layer_only = _with_layers(_last_layer_state)


def _dropout_always(steps, h0, c0, layers, dropout=0.0, training=False, cell=lstm_cell):
    """Dropout between layers applied in eval mode too."""
    return lstm_layers(steps, h0, c0, layers, dropout, True, cell)


dropout_in_eval_mode = _with_layers(_dropout_always)


def _chunked_loses_cell(steps, h0, c0, layers, dropout=0.0, training=False, cell=lstm_cell):
    """A chunked kernel (100 steps a chunk) that carries h across chunks but restarts c from c0."""
    chunk = 100
    if len(steps) <= chunk:
        return lstm_layers(steps, h0, c0, layers, dropout, training, cell)
    head, h_mid, _ = lstm_layers(steps[:chunk], h0, c0, layers, dropout, training, cell)
    tail, h_n, c_n = _chunked_loses_cell(steps[chunk:], h_mid, c0, layers, dropout, training, cell)
    return head + tail, h_n, c_n


cell_state_lost_between_chunks = _with_layers(_chunked_loses_cell)


def h0_c0_swapped(module: nn.LSTM) -> Callable:
    """The initial state tuple read as (c0, h0)."""
    ref = LSTM.from_torch(module)
    return lambda input, hx=None: ref(input, None if hx is None else (hx[1], hx[0]))


def initial_state_ignored(module: nn.LSTM) -> Callable:
    """hx accepted and ignored: every sequence starts from zeros."""
    ref = LSTM.from_torch(module)
    return lambda input, hx=None: ref(input)


# --- layouts: batch_first, unbatched, packed, projections, dtypes ------------------------------

def batch_first_reshaped(module: nn.LSTM) -> Callable:
    """batch_first handled with reshape instead of transpose (right shapes, scrambled steps)."""
    ref = LSTM.from_torch(module)
    ref.batch_first = False

    def forward(input, hx=None):
        if module.batch_first and isinstance(input, Tensor) and input.dim() == 3:
            batch, steps = input.shape[:2]
            output, state = ref(input.reshape(steps, batch, -1), hx)
            return output.reshape(batch, steps, -1), state
        return ref(input, hx)
    return forward


def unbatched_as_batch(module: nn.LSTM) -> Callable:
    """An unbatched (T, I) input read as T sequences of length 1."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        if isinstance(input, Tensor) and input.dim() == 2:
            as_batch = input.unsqueeze(0)  # (1, T, I): one step, T sequences
            state = None if hx is None else (hx[0].unsqueeze(1).expand(-1, input.shape[0], -1).contiguous(),
                                             hx[1].unsqueeze(1).expand(-1, input.shape[0], -1).contiguous())
            if module.batch_first:
                as_batch = as_batch.transpose(0, 1)
            output, (h_n, c_n) = ref(as_batch, state)
            output = output.transpose(0, 1) if module.batch_first else output
            return output.squeeze(0), (h_n[:, -1], c_n[:, -1])
        return ref(input, hx)
    return forward


def packed_state_at_padded_end(module: nn.LSTM) -> Callable:
    """Packed input padded and run densely: the final state is read at the padded end."""
    ref = LSTM.from_torch(module)
    ref.batch_first = False

    def forward(input, hx=None):
        if not isinstance(input, PackedSequence):
            return ref(input, hx)
        padded, lengths = pad_packed_sequence(input)  # (T, N, I), original batch order
        output, state = ref(padded, hx)
        repacked = torch.nn.utils.rnn.pack_padded_sequence(output, lengths, enforce_sorted=False)
        return repacked, state
    return forward


def packed_state_left_sorted(module: nn.LSTM) -> Callable:
    """h_n, c_n returned in the packed (length-sorted) order, not the caller's batch order."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        output, (h_n, c_n) = ref(input, hx)
        if isinstance(input, PackedSequence) and input.sorted_indices is not None:
            h_n, c_n = h_n[:, input.sorted_indices], c_n[:, input.sorted_indices]
        return output, (h_n, c_n)
    return forward


def weight_hr_reverse_from_forward(module: nn.LSTM) -> LSTM:
    """An importer whose key pattern misses ``weight_hr_l{k}_reverse``: both directions get W_hr_l{k}."""
    ref = LSTM.from_torch(module)
    with torch.no_grad():
        for name, parameter in ref.named_parameters():
            if name.startswith("weight_hr") and name.endswith("_reverse"):
                parameter.copy_(getattr(ref, name.removesuffix("_reverse")))
    return ref


def computes_in_float32(module: nn.LSTM) -> Callable:
    """float64 accepted but computed in float32 (a float32-only kernel behind a cast)."""
    ref = LSTM.from_torch(module).float()

    def forward(input, hx=None):
        dtype = input.data.dtype if isinstance(input, PackedSequence) else input.dtype
        cast = input.float() if isinstance(input, Tensor) else PackedSequence(
            input.data.float(), input.batch_sizes, input.sorted_indices, input.unsorted_indices)
        output, (h_n, c_n) = ref(cast, None if hx is None else (hx[0].float(), hx[1].float()))
        output = output.to(dtype) if isinstance(output, Tensor) else PackedSequence(
            output.data.to(dtype), output.batch_sizes, output.sorted_indices, output.unsorted_indices)
        return output, (h_n.to(dtype), c_n.to(dtype))
    return forward


def returns_cpu_tensors(module: nn.LSTM) -> Callable:
    """Results copied to the CPU, whatever device the input was on."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        output, (h_n, c_n) = ref(input, hx)
        output = output.cpu() if isinstance(output, Tensor) else PackedSequence(
            output.data.cpu(), output.batch_sizes, output.sorted_indices, output.unsorted_indices)
        return output, (h_n.cpu(), c_n.cpu())
    return forward


def batch_squeezed(module: nn.LSTM) -> Callable:
    """A ``.squeeze()`` on the results, which also drops a batch dimension of size 1."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        output, (h_n, c_n) = ref(input, hx)
        if isinstance(output, Tensor):
            output = output.squeeze()
        return output, (h_n.squeeze(), c_n.squeeze())
    return forward


# --- what torch never does to its caller, and memory it does not assume ----------------------

def state_written_back(module: nn.LSTM) -> Callable:
    """A streaming kernel that writes the final state into the caller's h0 and c0 buffers."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        output, (h_n, c_n) = ref(input, hx)
        if hx is not None:
            hx[0].copy_(h_n)
            hx[1].copy_(c_n)
        return output, (h_n, c_n)
    return forward


def packed_data_as_workspace(module: nn.LSTM) -> Callable:
    """A kernel that reuses a packed input's data buffer as scratch space once it has read it."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        output, state = ref(input, hx)
        if isinstance(input, PackedSequence):
            input.data.tanh_()
        return output, state
    return forward


def _storage_read_contiguously(tensor: Tensor) -> Tensor:
    """``tensor``'s storage read from its offset with contiguous strides (a raw pointer's view)."""
    return tensor.new_empty(0).set_(tensor.untyped_storage(), tensor.storage_offset(), tensor.shape)


def assumes_contiguous_memory(module: nn.LSTM) -> Callable:
    """A kernel that reads its input and states through a raw pointer, as if they were contiguous."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        if isinstance(input, PackedSequence):
            input = input._replace(data=_storage_read_contiguously(input.data))
        else:
            input = _storage_read_contiguously(input)
        return ref(input, None if hx is None else tuple(_storage_read_contiguously(s) for s in hx))
    return forward


def assumes_sorted_indices(module: nn.LSTM) -> Callable:
    """A kernel that reorders h0 by the packed input's sorted_indices, assuming there always are some."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        if isinstance(input, PackedSequence):
            order = input.sorted_indices.to(input.data.device)  # None from enforce_sorted=True
            assert order.numel() == input.batch_sizes[0]
        return ref(input, hx)
    return forward


def weights_reordered_in_place(module: nn.LSTM) -> Callable:
    """A converter that reorders the handed module's gate blocks to ONNX's i, o, f, g in place
    (and reads them back correctly): right results, the user's model rewritten."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if not name.startswith("weight_hr"):
                i, f, g, o = parameter.chunk(4, dim=0)
                parameter.copy_(torch.cat([i, o, f, g]))
    ref = _reordered(module, "iofg")
    return lambda input, hx=None: ref(input, hx)


def state_carried_across_calls(module: nn.LSTM) -> Callable:
    """A stateful kernel that starts a call without hx from where its previous call ended."""
    ref = LSTM.from_torch(module)
    carried: list = []

    def forward(input, hx=None):
        if hx is None and carried and carried[0][0].shape[1:] == (input.shape[0 if module.batch_first else 1],
                                                                    carried[0][0].shape[-1]):
            hx = carried[0]
        output, state = ref(input, hx)
        carried[:] = [tuple(s.detach() for s in state)]
        return output, state
    return forward


# --- paths taken for one value of an axis --------------------------------------------------------

def single_layer_path_drops_bias_hh(module: nn.LSTM) -> Callable:
    """A single-layer fast path that imports one bias (b_ih) and leaves b_hh at zero."""
    return bias_hh_dropped(module) if module.num_layers == 1 else LSTM.from_torch(module)


def _third_layer_reads_first(steps, h0, c0, layers, dropout=0.0, training=False, cell=lstm_cell):
    """Layers past the second read the first layer's outputs (a stack wired by index from 0)."""
    final_h, final_c, first_outputs = [], [], None
    for layer, directions in enumerate(layers):
        per_direction = []
        for direction, weights in enumerate(directions):
            index = layer * len(directions) + direction
            outputs, h_n, c_n = run_direction(steps, h0[index], c0[index], weights, direction == 1, cell)
            per_direction.append(outputs)
            final_h.append(h_n)
            final_c.append(c_n)
        outputs = [torch.cat(parts, dim=-1) for parts in zip(*per_direction)]
        first_outputs = outputs if layer == 0 else first_outputs
        steps = first_outputs if layer >= 1 else outputs
    return outputs, torch.stack(final_h), torch.stack(final_c)


third_layer_reads_first_layer = _with_layers(_third_layer_reads_first)


def one_direction_path_ignores_c0(module: nn.LSTM) -> Callable:
    """A unidirectional fast path that starts the cell state from zeros (h0 used, c0 dropped)."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        if hx is not None and not module.bidirectional:
            hx = (hx[0], torch.zeros_like(hx[1]))
        return ref(input, hx)
    return forward


def seq_first_reshaped(module: nn.LSTM) -> Callable:
    """A batch-major kernel fed time-major input with reshape instead of transpose."""
    ref = LSTM.from_torch(module)
    ref.batch_first = True

    def forward(input, hx=None):
        if not module.batch_first and isinstance(input, Tensor) and input.dim() == 3:
            steps, batch = input.shape[:2]
            output, state = ref(input.reshape(batch, steps, -1), hx)
            return output.reshape(steps, batch, -1), state
        if module.batch_first:
            return ref(input, hx)
        ref.batch_first = False
        try:
            return ref(input, hx)
        finally:
            ref.batch_first = True
    return forward


def missing_bias_given_unit_forget_bias(module: nn.LSTM) -> LSTM:
    """An LSTM without biases ported with Keras' unit_forget_bias: a forget bias of 1 appears."""
    if module.bias:
        return LSTM.from_torch(module)
    return forget_bias_added(module)


def unprojected_h_n_from_last_output(module: nn.LSTM) -> Callable:
    """Without projections, h_n read off the output's last step (wrong for the reverse direction,
    whose final state is at t = 0)."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        output, (h_n, c_n) = ref(input, hx)
        if module.proj_size == 0 and isinstance(output, Tensor) and output.dim() == 3:
            last = (output[:, -1] if module.batch_first else output[-1]).view(output.shape[1 - module.batch_first], -1,
                                                                              module.hidden_size)
            h_n = h_n.clone()
            h_n[-last.shape[1]:] = last.transpose(0, 1)
        return output, (h_n, c_n)
    return forward


def tied_lengths_unsorted_in_reverse(module: nn.LSTM) -> Callable:
    """Final states put back in the caller's order by the kernel's own sort of the lengths, which
    orders tied lengths the other way round from the PackedSequence's sorted_indices."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        output, (h_n, c_n) = ref(input, hx)
        if isinstance(input, PackedSequence) and input.sorted_indices is not None:
            lengths = pad_packed_sequence(input)[1]
            own_order = torch.argsort(lengths, stable=True).flip(0).to(h_n.device)  # decreasing, ties reversed
            sorted_indices = input.sorted_indices.to(h_n.device)
            h_sorted, c_sorted = h_n[:, sorted_indices], c_n[:, sorted_indices]
            h_n, c_n = torch.empty_like(h_n), torch.empty_like(c_n)
            h_n[:, own_order], c_n[:, own_order] = h_sorted, c_sorted
        return output, (h_n, c_n)
    return forward


def contiguous_fast_path_reads_batch_major(module: nn.LSTM) -> Callable:
    """A fast path for contiguous input that reads its memory as batch-major, whatever batch_first
    says (non-contiguous input goes through a correct copy)."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        if isinstance(input, Tensor) and input.dim() == 3 and input.is_contiguous() and not module.batch_first:
            steps, batch, features = input.shape
            input = input.view(batch, steps, features).transpose(0, 1)
        return ref(input, hx)
    return forward


def _inner_stride_assumed_one(tensor: Tensor) -> Tensor:
    """``tensor``'s storage read with its own outer strides and a last-dimension stride of 1."""
    return tensor.new_empty(0).set_(tensor.untyped_storage(), tensor.storage_offset(), tensor.shape,
                                    (*tensor.stride()[:-1], 1))


def _read_in_stride_order(tensor: Tensor) -> Tensor:
    """``tensor`` read as the dense permutation its strides sort into (right for any transposition;
    a stride-0 or gapped dimension is read as if the memory were dense)."""
    order = sorted(range(tensor.dim()), key=lambda d: -tensor.stride(d))
    permuted = tensor.permute(order)
    dense = _storage_read_contiguously(permuted)
    return dense.permute([order.index(d) for d in range(tensor.dim())])


def _reading_memory(read: Callable[[Tensor], Tensor]) -> Callable[[nn.LSTM], Callable]:
    def factory(module: nn.LSTM) -> Callable:
        ref = LSTM.from_torch(module)

        def forward(input, hx=None):
            if isinstance(input, PackedSequence):
                input = input._replace(data=read(input.data))
            else:
                input = read(input)
            return ref(input, None if hx is None else tuple(read(s) for s in hx))
        return forward
    return factory


assumes_unit_inner_stride = _reading_memory(_inner_stride_assumed_one)
assumes_unit_inner_stride.__doc__ = "A kernel that takes a tensor's outer strides, assuming its last dimension dense."
assumes_no_stride_zero = _reading_memory(_read_in_stride_order)
assumes_no_stride_zero.__doc__ = ("A kernel that handles transposed memory by sorting the strides, and reads "
                                  "stride-0 (expanded) dimensions as if dense.")


def _tf32_rounded(tensor: Tensor) -> Tensor:
    """float32 rounded to TF32's 10-bit mantissa (other dtypes unchanged)."""
    if tensor.dtype != torch.float32:
        return tensor
    mantissa, exponent = torch.frexp(tensor)
    return torch.ldexp(torch.round(mantissa * 2.0**11) / 2.0**11, exponent)


def _tf32_cell(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights):
    """float32 gate matmuls in TF32 (a GPU default), float64 exact."""
    rounded = DirectionWeights(_tf32_rounded(weights.weight_ih), _tf32_rounded(weights.weight_hh),
                               weights.bias_ih, weights.bias_hh,
                               None if weights.weight_hr is None else _tf32_rounded(weights.weight_hr))
    return lstm_cell(_tf32_rounded(x), _tf32_rounded(h), c, rounded)


float32_matmuls_in_tf32 = _with_cell(_tf32_cell)


def cpu_fallback_drops_bias_hh(module: nn.LSTM) -> Callable:
    """A CUDA kernel's CPU fallback that imports one bias (b_ih) and leaves b_hh at zero."""
    return bias_hh_dropped(module) if module.weight_ih_l0.device.type == "cpu" else LSTM.from_torch(module)


# --- sizes past a kernel's tiles ---------------------------------------------------------------

TILE = 256


def _remainder_tile_without_recurrence(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights):
    """Hidden units past the last full 256-unit tile get no recurrent product (h W_hh^T)."""
    hidden = weights.weight_ih.shape[0] // 4
    if hidden > TILE and hidden % TILE:
        keep = (torch.arange(hidden, device=x.device) < hidden // TILE * TILE).repeat(4)  # (4H,)
        weights = replace(weights, weight_hh=weights.weight_hh * keep[:, None].to(weights.weight_hh.dtype))
    return lstm_cell(x, h, c, weights)


hidden_remainder_tile_skips_recurrence = _with_cell(_remainder_tile_without_recurrence)


def _batch_tile_reads_first_tile(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights):
    """Rows past the first 128 of a step's batch read the recurrent state of row r - 128."""
    if h.shape[0] > 128:
        index = torch.arange(h.shape[0], device=h.device)
        index = torch.where(index >= 128, index - 128, index)
        h, c = h[index], c[index]
    return lstm_cell(x, h, c, weights)


batch_tile_past_128_reads_wrong_state = _with_cell(_batch_tile_reads_first_tile)


def _input_tile_only(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights):
    """An input projection tiled by 256 features with no remainder loop: features past 256 ignored."""
    if x.shape[-1] > TILE:
        x = torch.cat([x[..., :TILE], torch.zeros_like(x[..., TILE:])], dim=-1)
    return lstm_cell(x, h, c, weights)


input_features_past_256_ignored = _with_cell(_input_tile_only)


# --- results used after the call ----------------------------------------------------------------

def results_in_reused_buffer(module: nn.LSTM) -> Callable:
    """An inference engine's output bindings: results are views of buffers the next call overwrites."""
    ref = LSTM.from_torch(module)
    buffers: dict = {}

    def bound(name: str, tensor: Tensor) -> Tensor:
        buffer = buffers.get(name)
        if buffer is None or buffer.shape != tensor.shape:
            buffer = buffers[name] = torch.empty_like(tensor)
        return buffer.copy_(tensor)

    def forward(input, hx=None):
        output, (h_n, c_n) = ref(input, hx)
        if isinstance(output, PackedSequence):
            output = output._replace(data=bound("output", output.data))
        else:
            output = bound("output", output)
        return output, (bound("h_n", h_n), bound("c_n", c_n))
    return forward


def input_projection_cached_by_shape(module: nn.LSTM) -> Callable:
    """The input projection of every step cached by input shape, so a second batch of the same
    shape reuses the first one's (a "prepacked input" cache keyed on the wrong thing)."""
    cache: dict = {}

    def cached_projection(x: Tensor, weights: DirectionWeights) -> Tensor:
        key = (tuple(x.shape), id(weights.weight_ih))
        if key not in cache:
            cache[key] = project_input(x, weights)
        return cache[key]

    def cell(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights):
        return premul_cell(cached_projection(x, weights), h, c, weights)

    return _with_cell(cell)(module)


class _PackedAtFirstCall(LSTM):
    """A module that packs its weights into its kernel's layout at its first call and computes
    with that pack ever after: an optimizer step on its parameters never reaches the kernel."""

    def _layer_weights(self):
        if not hasattr(self, "_pack"):
            self._pack = [[DirectionWeights(*(None if t is None else t.detach().clone() for t in (
                weights.weight_ih, weights.weight_hh, weights.bias_ih, weights.bias_hh, weights.weight_hr)))
                for weights in directions] for directions in super()._layer_weights()]
        return self._pack


def weights_packed_at_first_call(module: nn.LSTM) -> LSTM:
    """Weights packed into the kernel's layout at the first call and reused: an optimizer step never reaches them."""
    return _PackedAtFirstCall.from_torch(module)


_BUILT_PER_SHAPE: dict[tuple, LSTM] = {}


def built_once_per_shape(module: nn.LSTM) -> LSTM:
    """What it builds is kept per configuration and shape, across modules: the second model of a shape
    computes with the first one's weights."""
    key = (module.input_size, module.hidden_size, module.num_layers, module.bidirectional, module.proj_size,
           module.bias, module.batch_first, module.weight_ih_l0.dtype, module.weight_ih_l0.device)
    if key not in _BUILT_PER_SHAPE:
        _BUILT_PER_SHAPE[key] = LSTM.from_torch(module)
    return _BUILT_PER_SHAPE[key]


def states_share_a_buffer_read_as_contiguous(module: nn.LSTM) -> Callable:
    """h_n and c_n returned as two halves of one (L*D, N, H_out + H) buffer (non-contiguous views),
    and hx read through a raw pointer as if contiguous: feeding the returned state back breaks."""
    ref = LSTM.from_torch(module)

    def forward(input, hx=None):
        if hx is not None:
            hx = tuple(_storage_read_contiguously(state) for state in hx)
        output, (h_n, c_n) = ref(input, hx)
        joint = torch.cat([h_n, c_n], dim=-1)
        return output, (joint[..., :h_n.shape[-1]], joint[..., h_n.shape[-1]:])
    return forward


# --- the registry ----------------------------------------------------------------------------

def _special(tag: str) -> Config:
    return next(c for c in special_cases() if c.tag == tag)


@dataclass(frozen=True)
class Mutant:
    """A broken factory, the smallest matrix configuration that catches it, and (where one
    axis isolates the bug) a control configuration one axis away that passes."""

    name: str
    factory: Callable
    smallest: Config
    control: Config | None = None

    @property
    def bug(self) -> str:
        """The first line of the bug's docstring (of the factory, its cell or its layer driver)."""
        source = getattr(self.factory, "__self__", None)
        for candidate in (getattr(source, "cell", None), getattr(source, "layers", None), self.factory):
            if candidate is not None and candidate.__doc__ and candidate.__module__ == __name__:
                return candidate.__doc__.strip().splitlines()[0]
        return self.name


BASE = Config()
H0 = replace(BASE, initial_state=True)
SATURATING = _special("saturating_T200")
MUTANTS: list[Mutant] = [
    Mutant("gates_if_swapped", gates_if_swapped, BASE),
    Mutant("onnx_order_unconverted", onnx_order_unconverted, BASE),
    Mutant("haiku_order_unconverted", haiku_order_unconverted, BASE),
    Mutant("forget_bias_added", forget_bias_added, BASE),
    Mutant("hard_sigmoid_gates", hard_sigmoid_gates, BASE),
    Mutant("bias_hh_dropped", bias_hh_dropped, BASE, replace(BASE, bias=False)),
    Mutant("cell_state_clipped", cell_state_clipped, SATURATING,
           replace(SATURATING, input_scale=1.0, hold_input=False)),
    Mutant("reverse_outputs_not_reflipped", reverse_outputs_not_reflipped,
           replace(BASE, bidirectional=True), replace(BASE, bidirectional=True, input_form="packed")),
    Mutant("reverse_direction_runs_forward", reverse_direction_runs_forward,
           replace(BASE, bidirectional=True), BASE),
    Mutant("state_direction_major", state_direction_major,
           replace(BASE, num_layers=2, bidirectional=True), replace(BASE, bidirectional=True)),
    Mutant("final_state_of_last_layer_only", final_state_of_last_layer_only,
           replace(BASE, num_layers=2), BASE),
    Mutant("dropout_in_eval_mode", dropout_in_eval_mode, _special("dropout0.5_eval"),
           replace(_special("dropout0.5_eval"), dropout=0.0)),
    Mutant("cell_state_lost_between_chunks", cell_state_lost_between_chunks, SATURATING,
           replace(SATURATING, seq_len=100)),
    Mutant("h0_c0_swapped", h0_c0_swapped, H0, BASE),
    Mutant("initial_state_ignored", initial_state_ignored, H0, BASE),
    Mutant("batch_first_reshaped", batch_first_reshaped, replace(BASE, batch_first=True), BASE),
    Mutant("unbatched_as_batch", unbatched_as_batch, replace(BASE, input_form="unbatched"), BASE),
    Mutant("packed_state_at_padded_end", packed_state_at_padded_end, replace(BASE, input_form="packed"), BASE),
    Mutant("packed_state_left_sorted", packed_state_left_sorted, replace(BASE, input_form="packed"), BASE),
    Mutant("weight_hr_reverse_from_forward", weight_hr_reverse_from_forward,
           replace(BASE, bidirectional=True, proj_size=3), replace(BASE, bidirectional=True)),
    Mutant("computes_in_float32", computes_in_float32, replace(BASE, dtype="float64"), BASE),
    Mutant("returns_cpu_tensors", returns_cpu_tensors, replace(BASE, device="cuda", torch_path="cudnn"), BASE),
    Mutant("batch_squeezed", batch_squeezed, _special("N1"), replace(_special("N1"), batch_size=3)),
    Mutant("state_written_back", state_written_back, H0, BASE),
    Mutant("packed_data_as_workspace", packed_data_as_workspace, replace(BASE, input_form="packed"), BASE),
    Mutant("assumes_contiguous_memory", assumes_contiguous_memory,
           replace(H0, num_layers=2, layout="transposed"), replace(H0, num_layers=2)),
    Mutant("assumes_sorted_indices", assumes_sorted_indices,
           replace(BASE, input_form="packed_sorted"), replace(BASE, input_form="packed")),
    Mutant("weights_reordered_in_place", weights_reordered_in_place, BASE),
    Mutant("state_carried_across_calls", state_carried_across_calls, BASE, H0),
    # one value of an axis: every value of every axis is some mutant's catching value
    Mutant("single_layer_path_drops_bias_hh", single_layer_path_drops_bias_hh, BASE, replace(BASE, num_layers=2)),
    Mutant("third_layer_reads_first_layer", third_layer_reads_first_layer,
           replace(BASE, num_layers=3), replace(BASE, num_layers=2)),
    Mutant("one_direction_path_ignores_c0", one_direction_path_ignores_c0, H0, replace(H0, bidirectional=True)),
    Mutant("seq_first_reshaped", seq_first_reshaped, BASE, replace(BASE, batch_first=True)),
    Mutant("missing_bias_given_unit_forget_bias", missing_bias_given_unit_forget_bias,
           replace(BASE, bias=False), BASE),
    Mutant("unprojected_h_n_from_last_output", unprojected_h_n_from_last_output,
           replace(BASE, bidirectional=True), replace(BASE, bidirectional=True, proj_size=3)),
    Mutant("tied_lengths_unsorted_in_reverse", tied_lengths_unsorted_in_reverse,
           replace(BASE, input_form="packed_list"), replace(BASE, input_form="packed")),
    Mutant("contiguous_fast_path_reads_batch_major", contiguous_fast_path_reads_batch_major,
           replace(H0, num_layers=2), replace(H0, num_layers=2, layout="transposed")),
    Mutant("assumes_unit_inner_stride", assumes_unit_inner_stride,
           replace(H0, num_layers=2, layout="strided"), replace(H0, num_layers=2, layout="transposed")),
    Mutant("assumes_no_stride_zero", assumes_no_stride_zero,
           replace(H0, num_layers=2, layout="expanded"), replace(H0, num_layers=2, layout="transposed")),
    Mutant("float32_matmuls_in_tf32", float32_matmuls_in_tf32, BASE,
           replace(BASE, dtype="float64", torch_path="native")),
    Mutant("cpu_fallback_drops_bias_hh", cpu_fallback_drops_bias_hh, BASE,
           replace(BASE, device="cuda", torch_path="cudnn")),
    # sizes past a kernel's tiles: the realistic tier catches them, the tile's own size does not
    Mutant("hidden_remainder_tile_skips_recurrence", hidden_remainder_tile_skips_recurrence,
           _special("real_I300_H260_N131"), replace(_special("real_I300_H260_N131"), hidden_size=256)),
    Mutant("batch_tile_past_128_reads_wrong_state", batch_tile_past_128_reads_wrong_state,
           _special("real_I300_H260_N131"), replace(_special("real_I300_H260_N131"), batch_size=128)),
    Mutant("input_features_past_256_ignored", input_features_past_256_ignored,
           _special("real_I768_H520_N33"), replace(_special("real_I768_H520_N33"), input_size=256)),
    # results used after the call
    Mutant("results_in_reused_buffer", results_in_reused_buffer, BASE),
    Mutant("input_projection_cached_by_shape", input_projection_cached_by_shape, BASE),
    Mutant("states_share_a_buffer_read_as_contiguous", states_share_a_buffer_read_as_contiguous, H0, BASE),
    Mutant("weights_packed_at_first_call", weights_packed_at_first_call, BASE),
    Mutant("built_once_per_shape", built_once_per_shape, BASE),
]

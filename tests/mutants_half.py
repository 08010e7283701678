"""Half-precision LSTMs, right and wrong, for the half-precision rows (``lstm-ref check --dtype
bfloat16,float16``): each is a factory with the ``--lstm-impl`` signature.

The precision a candidate computes in is the module's dtype, or the autocast dtype when called
under ``torch.autocast``; its results have the module's dtype (float32 under autocast, as
torch's native path returns), unless said otherwise.

Controls (must pass):

    same_precision          every operation rounded to the computing dtype's significant bits
                            (8 bfloat16, 11 float16), computed in float32: what torch does, emulated
    more_accurate           computed in float32 (no autocast), the results rounded to the result dtype
    autocast_half_results   under autocast, the module and inputs converted to the autocast dtype and
                            results in it (what torch's oneDNN path returns on CPUs with bfloat16)

Mutants (must fail):

    lower_precision         every operation rounded to a lower precision: float16 computed at
                            bfloat16's 8 bits, bfloat16 at 6 bits
    state_lower_precision   computed in float32, but the cell state c kept at 3 bits fewer than the
                            computing dtype's after every step (8 for float16, 5 for bfloat16)
    float32_results         lstm_ref in the module's dtype, its results returned as float32
    autocast_mixed_dtypes   under autocast: output in the autocast dtype, h_n and c_n float32
    autocast_other_half     under autocast: results in the other half dtype (float16 under
                            bfloat16 autocast and vice versa)

    lstm-ref check --dtype bfloat16,float16 --impl tests.mutants_half:lower_precision
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

import lstm_ref
from lstm_ref.functional import DirectionWeights, lstm_layers
from lstm_ref.half import converted
from lstm_ref.interface import flatten_call, layer_weights
from lstm_ref.torch_compat import autocast_dtype, autocast_enabled

#: Significant bits (the implicit one included) of each floating dtype.
SIGNIFICANT_BITS = {torch.bfloat16: 8, torch.float16: 11, torch.float32: 24, torch.float64: 53}


def round_to_bits(value: Tensor, bits: int) -> Tensor:
    """``value`` rounded to the nearest number with ``bits`` significant bits (exponent range
    unbounded); its gradient passes straight through, as a cast's does."""
    with torch.no_grad():
        mantissa, exponent = torch.frexp(value)  # value = mantissa * 2**exponent, |mantissa| in [0.5, 1)
        rounding = torch.ldexp(torch.round(mantissa * 2.0**bits) / 2.0**bits, exponent) - value
    return value + rounding


def rounded_cell(bits: int, state_bits: int | None = None) -> Callable:
    """An LSTM cell (``lstm_ref.functional.lstm_cell``'s signature) in float32 whose every operation's
    result is rounded to ``bits`` significant bits, and its new c to ``state_bits`` (default ``bits``)."""
    def r(value: Tensor) -> Tensor:
        return round_to_bits(value, bits)

    def cell(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights) -> tuple[Tensor, Tensor]:
        gates = r(x @ weights.weight_ih.T)
        if weights.bias_ih is not None:
            gates = r(gates + r(weights.bias_ih + weights.bias_hh))
        gates = r(gates + r(h @ weights.weight_hh.T))
        ingate, forgetgate, cellgate, outgate = gates.chunk(4, dim=-1)
        ingate, forgetgate, outgate = r(torch.sigmoid(ingate)), r(torch.sigmoid(forgetgate)), r(torch.sigmoid(outgate))
        cellgate = r(torch.tanh(cellgate))
        c_next = round_to_bits(r(forgetgate * c) + r(ingate * cellgate), state_bits or bits)
        h_next = r(outgate * r(torch.tanh(c_next)))
        if weights.weight_hr is not None:
            h_next = r(h_next @ weights.weight_hr.T)
        return h_next, c_next
    return cell


def computing_dtype(module: nn.Module, device_type: str) -> torch.dtype:
    """The autocast dtype when autocast is on for ``device_type``, else the module's dtype."""
    if autocast_enabled(device_type):
        return autocast_dtype(device_type)
    return next(module.parameters()).dtype


def run_stack(module: nn.Module, input: Tensor | PackedSequence, hx: tuple | None, compute_in: torch.dtype,
              result_dtype: torch.dtype, cell: Callable | None = None) -> tuple:
    """lstm_ref's stack on ``module``'s weights with autocast off, the weights, input and states
    converted to ``compute_in`` (differentiably: gradients reach the module's parameters), ``cell``
    for each step (default lstm_ref's), the results converted to ``result_dtype``."""
    device_type = (input.data if isinstance(input, PackedSequence) else input).device.type
    own = next(module.parameters()).dtype  # a state returned in the autocast dtype, fed back: as torch takes it
    with torch.autocast(device_type, enabled=False):
        call = flatten_call(module, converted(input, own), converted(hx, own))
        layers = [[DirectionWeights(**{f.name: None if getattr(w, f.name) is None else getattr(w, f.name).to(compute_in)
                                       for f in fields(w)}) for w in layer] for layer in layer_weights(module)]
        options = {"cell": cell} if cell else {}
        outputs, h_n, c_n = lstm_layers([step.to(compute_in) for step in call.steps()], call.h0.to(compute_in),
                                        call.c0.to(compute_in), layers, module.dropout, module.training, **options)
        return converted(call.unflatten(torch.cat(outputs), h_n, c_n), result_dtype)


def _emulated(module: nn.LSTM, bits_for: Callable[[torch.dtype], tuple[int, int]]) -> Callable:
    """A candidate computing in float32 with :func:`rounded_cell` (bits, state bits) chosen by the
    computing dtype; results in the module's dtype."""
    def call(input, hx=None):
        data = input.data if isinstance(input, PackedSequence) else input
        dtype = computing_dtype(module, data.device.type)
        bits, state_bits = bits_for(dtype)
        return run_stack(module, input, hx, torch.float32, next(module.parameters()).dtype,
                         rounded_cell(bits, state_bits))
    return call


def same_precision(module: nn.LSTM) -> Callable:
    return _emulated(module, lambda dtype: (SIGNIFICANT_BITS[dtype],) * 2)


def lower_precision(module: nn.LSTM) -> Callable:
    lower = {torch.float16: SIGNIFICANT_BITS[torch.bfloat16], torch.bfloat16: 6}
    return _emulated(module, lambda dtype: (lower.get(dtype, SIGNIFICANT_BITS[dtype]),) * 2)


def state_lower_precision(module: nn.LSTM) -> Callable:
    return _emulated(module, lambda dtype: (SIGNIFICANT_BITS[torch.float32], SIGNIFICANT_BITS[dtype] - 3))


def more_accurate(module: nn.LSTM) -> Callable:
    def call(input, hx=None):
        return run_stack(module, input, hx, torch.float32, next(module.parameters()).dtype)
    return call


def autocast_half_results(module: nn.LSTM) -> Callable:
    reference = lstm_ref.LSTM.from_torch(module)

    def call(input, hx=None):
        device_type = (input.data if isinstance(input, PackedSequence) else input).device.type
        if not autocast_enabled(device_type):
            return reference(input, hx)
        dtype = autocast_dtype(device_type)
        return run_stack(module, input, hx, dtype, dtype)
    return call


def float32_results(module: nn.LSTM) -> Callable:
    reference = lstm_ref.LSTM.from_torch(module)

    def call(input, hx=None):
        return converted(reference(input, hx), torch.float32)
    return call


def _under_autocast(module: nn.LSTM, dtypes: Callable[[torch.dtype], tuple[torch.dtype, torch.dtype]]) -> Callable:
    """lstm_ref; under autocast, its output converted to ``dtypes(autocast dtype)[0]``, h_n and c_n to ``[1]``."""
    reference = lstm_ref.LSTM.from_torch(module)

    def call(input, hx=None):
        device_type = (input.data if isinstance(input, PackedSequence) else input).device.type
        output, (h_n, c_n) = reference(input, hx)
        if not autocast_enabled(device_type):
            return output, (h_n, c_n)
        output_dtype, state_dtype = dtypes(autocast_dtype(device_type))
        return converted(output, output_dtype), (h_n.to(state_dtype), c_n.to(state_dtype))
    return call


def autocast_mixed_dtypes(module: nn.LSTM) -> Callable:
    return _under_autocast(module, lambda dtype: (dtype, torch.float32))


def autocast_other_half(module: nn.LSTM) -> Callable:
    other = {torch.bfloat16: torch.float16, torch.float16: torch.bfloat16}
    return _under_autocast(module, lambda dtype: (other[dtype], other[dtype]))


CONTROLS = ("same_precision", "more_accurate", "autocast_half_results")
MUTANTS = ("lower_precision", "state_lower_precision", "float32_results", "autocast_mixed_dtypes",
           "autocast_other_half")

"""Deliberately broken GRUs and RNNs, each with one bug that real ports and converters have.

The same contract as ``tests/mutants.py``: each mutant is a factory (called with a configured
``torch.nn.GRU`` or ``torch.nn.RNN``; given another kind it raises NotImplementedError, the
harness's "unsupported"), so ``lstm-ref check --module gru --impl tests.mutants_rnn:NAME`` runs
it; ``MUTANTS`` records the smallest configuration of the matrix that catches it and, where one
axis isolates the bug, a control one axis away that passes (``tests/test_mutants_rnn.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lstm_ref import GRU, RNN
from lstm_ref.configs import Config
from lstm_ref.functional import DirectionWeights, State, rnn_relu_cell, rnn_tanh_cell
from tests.mutants import Mutant


def _gru_with_cell(cell: Callable) -> Callable[[nn.GRU], GRU]:
    return type("GRUVariant", (GRU,), {"cell": staticmethod(cell)}).from_torch


def _rnn_with_cell(cell: Callable) -> Callable[[nn.RNN], RNN]:
    return type("RNNVariant", (RNN,), {"cell": staticmethod(cell)}).from_torch


def _gates(x: Tensor, h: Tensor, weights: DirectionWeights) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """(x_r, x_z, x_n) = x W_ih^T + b_ih and (h_r, h_z, h_n) = h W_hh^T + b_hh, each (B, H)."""
    return (F.linear(x, weights.weight_ih, weights.bias_ih).chunk(3, dim=-1),
            F.linear(h, weights.weight_hh, weights.bias_hh).chunk(3, dim=-1))


# --- GRU ---------------------------------------------------------------------------------------

def _reset_before_product(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """The reset gate applied before the recurrent product (ONNX linear_before_reset=0, Keras
    reset_after=False): n = tanh(x_n + W_hn (r * h) + b_hn)."""
    (h,) = state
    (x_r, x_z, x_n), (h_r, h_z, _) = _gates(x, h, weights)
    reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    w_hn = weights.weight_hh.chunk(3, dim=0)[2]
    b_hn = 0 if weights.bias_hh is None else weights.bias_hh.chunk(3)[2]
    new = torch.tanh(x_n + F.linear(reset * h, w_hn) + b_hn)
    return ((1 - update) * new + update * h,)


reset_before_product = _gru_with_cell(_reset_before_product)


def _reset_update_swapped(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """r and z swapped: the first gate block taken as the update gate, the second as the reset gate."""
    (h,) = state
    (x_r, x_z, x_n), (h_r, h_z, h_n) = _gates(x, h, weights)
    update, reset = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    new = torch.tanh(x_n + reset * h_n)
    return ((1 - update) * new + update * h,)


reset_update_swapped = _gru_with_cell(_reset_update_swapped)


def _update_complement_swapped(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """z's complement on the wrong side: h' = z * n + (1 - z) * h (the Cho et al. paper's form)."""
    (h,) = state
    (x_r, x_z, x_n), (h_r, h_z, h_n) = _gates(x, h, weights)
    reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    new = torch.tanh(x_n + reset * h_n)
    return (update * new + (1 - update) * h,)


update_complement_swapped = _gru_with_cell(_update_complement_swapped)


def _b_hn_folded(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """b_hn folded into b_in (the LSTM's pre-summed biases carried over): n = tanh(x_n + b_hn + r * W_hn h)."""
    (h,) = state
    (x_r, x_z, x_n), (h_r, h_z, h_n) = _gates(x, h, weights)
    reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    b_hn = 0 if weights.bias_hh is None else weights.bias_hh.chunk(3)[2]
    new = torch.tanh(x_n + b_hn + reset * (h_n - b_hn))
    return ((1 - update) * new + update * h,)


b_hn_folded_into_b_in = _gru_with_cell(_b_hn_folded)


def onnx_order_unconverted(module: nn.GRU) -> GRU:
    """torch's GRU weights read in ONNX's and Keras's gate order z, r, h without reordering."""
    ref = GRU.from_torch(module)
    with torch.no_grad():
        for parameter in ref.parameters():
            r, z, n = parameter.chunk(3, dim=0)
            parameter.copy_(torch.cat([z, r, n]))
    return ref


def h0_ignored(module: nn.GRU) -> Callable:
    """The initial state dropped: every call starts from zeros."""
    ref = GRU.from_torch(module)
    return lambda input, hx=None: ref(input)


def state_as_pair(module: nn.GRU) -> Callable:
    """An LSTM port's return structure kept: (output, (h_n,)) for the GRU's (output, h_n)."""
    ref = GRU.from_torch(module)

    def call(input, hx=None):
        output, h_n = ref(input, hx)
        return output, (h_n,)
    return call


# --- RNN ---------------------------------------------------------------------------------------

def _relu_for_tanh(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """relu where the module says tanh: every RNN computed as RNN_RELU."""
    return rnn_relu_cell(x, state, weights)


relu_for_tanh = _rnn_with_cell(_relu_for_tanh)


def _bias_hh_dropped(x: Tensor, state: State, weights: DirectionWeights) -> State:
    """b_hh left out (the one-bias layouts' port): h' = tanh(x W_ih^T + b_ih + h W_hh^T)."""
    return rnn_tanh_cell(x, state, replace(weights, bias_hh=None if weights.bias_hh is None else
                                          torch.zeros_like(weights.bias_hh)))


rnn_bias_hh_dropped = _rnn_with_cell(_bias_hh_dropped)


# --- the registry ----------------------------------------------------------------------------

#: GRU and RNN configurations run torch's native loop (configs.torch_runs_path): their matrix ids say so.
GRU_BASE = Config(mode="GRU", torch_path="native")
RNN_BASE = Config(mode="RNN_TANH", torch_path="native")
MUTANTS: list[Mutant] = [
    Mutant("reset_before_product", reset_before_product, GRU_BASE),
    Mutant("reset_update_swapped", reset_update_swapped, GRU_BASE),
    Mutant("update_complement_swapped", update_complement_swapped, GRU_BASE),
    Mutant("b_hn_folded_into_b_in", b_hn_folded_into_b_in, GRU_BASE, replace(GRU_BASE, bias=False)),
    Mutant("onnx_order_unconverted", onnx_order_unconverted, GRU_BASE),
    Mutant("h0_ignored", h0_ignored, replace(GRU_BASE, initial_state=True), GRU_BASE),
    Mutant("state_as_pair", state_as_pair, GRU_BASE),
    Mutant("relu_for_tanh", relu_for_tanh, RNN_BASE, replace(RNN_BASE, mode="RNN_RELU")),
    Mutant("rnn_bias_hh_dropped", rnn_bias_hh_dropped, RNN_BASE, replace(RNN_BASE, bias=False)),
]

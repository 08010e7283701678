"""LSTMs with an exactly right forward pass and a wrong backward pass.

Each mutant is a factory with the ``--lstm-impl`` signature (a configured
``torch.nn.LSTM`` in, a callable LSTM out), so only a gradient check can tell
it from a correct implementation:

    handwritten_cell        lstm_ref with a hand-written cell backward (correct: the control)
    forget_gate_sign        ... whose forget-gate derivative has the wrong sign
    h0_detached             the initial hidden state is detached: no gradient reaches h0
    gradient_through_c_only the recurrent h is detached in every step: gradients flow through c alone
    weight_hh_grad_doubled  a plain callable over the given module whose weight_hh gradients are twice torch's
    biases_detached         a plain callable over the given module that detaches the biases
    data_without_grad_detaches_weights
                            ... that detaches every parameter when the data does not require grad,
                            as in a training step (right whenever the input requires grad)
    weights_copied          a plain callable over its own copy of the weights (parameter gradients
                            cannot be compared: unsupported, never passed)

    lstm-ref check --grad --impl tests.mutants_grad:forget_gate_sign
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

import lstm_ref
from lstm_ref.functional import DirectionWeights, lstm_cell


class HandwrittenCell(torch.autograd.Function):
    """One LSTM step (without projection) with its backward pass written out.

    Forward, x: (B, I), h: (B, H_out), c: (B, H) -> h': (B, H), c': (B, H):

        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (x W_ih^T + h W_hh^T + b_ih + b_hh)
        c' = f * c + i * g,   h' = o * tanh(c')

    Backward, from dh', dc':

        dc_total = dc' + dh' * o * (1 - tanh(c')^2)
        do = dh' * tanh(c') * o (1 - o)          di = dc_total * g * i (1 - i)
        df = dc_total * c * f (1 - f) * sign     dg = dc_total * i * (1 - g^2)
        dgates = [di, df, dg, do]  (B, 4H)
        dx = dgates W_ih, dh = dgates W_hh, dc = dc_total * f
        dW_ih = dgates^T x, dW_hh = dgates^T h, db_ih = db_hh = sum_B dgates

    ``forget_sign`` = +1 is the true derivative; -1 is the mutation.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Tensor | None, bias_hh: Tensor | None, forget_sign: float) -> tuple[Tensor, Tensor]:
        weights = DirectionWeights(weight_ih, weight_hh, bias_ih, bias_hh)
        h_next, c_next = lstm_cell(x, h, c, weights)  # bit-identical to lstm_ref's forward
        gates = x @ weight_ih.T + h @ weight_hh.T
        if bias_ih is not None:
            gates = gates + bias_ih + bias_hh
        ctx.save_for_backward(x, h, c, weight_ih, weight_hh, gates, c_next)
        ctx.has_bias = bias_ih is not None
        ctx.forget_sign = forget_sign
        return h_next, c_next

    @staticmethod
    def backward(ctx, dh_next: Tensor, dc_next: Tensor):
        x, h, c, weight_ih, weight_hh, gates, c_next = ctx.saved_tensors
        i, f, g, o = gates.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        tanh_c = torch.tanh(c_next)
        dc_total = dc_next + dh_next * o * (1 - tanh_c * tanh_c)
        dgates = torch.cat([
            dc_total * g * i * (1 - i),
            dc_total * c * f * (1 - f) * ctx.forget_sign,
            dc_total * i * (1 - g * g),
            dh_next * tanh_c * o * (1 - o),
        ], dim=-1)
        dbias = dgates.sum(0) if ctx.has_bias else None
        return (dgates @ weight_ih, dgates @ weight_hh, dc_total * f,
                dgates.T @ x, dgates.T @ h, dbias, dbias, None)


def _handwritten_cell(forget_sign: float):
    def cell(x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights) -> tuple[Tensor, Tensor]:
        h_next, c_next = HandwrittenCell.apply(x, h, c, weights.weight_ih, weights.weight_hh,
                                               weights.bias_ih, weights.bias_hh, forget_sign)
        if weights.weight_hr is not None:
            h_next = h_next @ weights.weight_hr.T
        return h_next, c_next
    return cell


def _recurrent_h_detached(
    x: Tensor, h: Tensor, c: Tensor, weights: DirectionWeights
) -> tuple[Tensor, Tensor]:
    """lstm_cell with h cut from the graph: values unchanged, d/dh of every step lost."""
    return lstm_cell(x, h.detach(), c, weights)


class HandwrittenCellLSTM(lstm_ref.LSTM):
    cell = staticmethod(_handwritten_cell(+1.0))


class ForgetGateSignLSTM(lstm_ref.LSTM):
    cell = staticmethod(_handwritten_cell(-1.0))


class ThroughCOnlyLSTM(lstm_ref.LSTM):
    cell = staticmethod(_recurrent_h_detached)


class H0DetachedLSTM(lstm_ref.LSTM):
    def forward(self, input, hx=None):
        if hx is not None:
            hx = (hx[0].detach(), hx[1])
        return super().forward(input, hx)


def handwritten_cell(module: nn.LSTM) -> lstm_ref.LSTM:
    """The control: the hand-written backward with the true derivative (must pass)."""
    return HandwrittenCellLSTM.from_torch(module)


def forget_gate_sign(module: nn.LSTM) -> lstm_ref.LSTM:
    return ForgetGateSignLSTM.from_torch(module)


def h0_detached(module: nn.LSTM) -> lstm_ref.LSTM:
    return H0DetachedLSTM.from_torch(module)


def gradient_through_c_only(module: nn.LSTM) -> lstm_ref.LSTM:
    return ThroughCOnlyLSTM.from_torch(module)


class _ScaledGradient(torch.autograd.Function):
    """The identity forward; backward multiplies the incoming gradient by ``scale``."""

    @staticmethod
    def forward(ctx: FunctionCtx, tensor: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.scale, None


def _over_parameters(module: nn.LSTM, transform) -> Callable:
    """A plain callable (not an nn.Module) running ``module`` with each parameter ``p`` of name
    ``name`` replaced by ``transform(name, p)``: gradients reach the module's own parameters."""
    def call(input, hx=None):
        parameters = {name: transform(name, p) for name, p in module.named_parameters()}
        return torch.func.functional_call(module, parameters, (input, hx))
    return call


def weight_hh_grad_doubled(module: nn.LSTM) -> Callable:
    def doubled(name: str, parameter: Tensor) -> Tensor:
        return _ScaledGradient.apply(parameter, 2.0) if name.startswith("weight_hh") else parameter
    return _over_parameters(module, doubled)


def biases_detached(module: nn.LSTM) -> Callable:
    return _over_parameters(module, lambda name, p: p.detach() if name.startswith("bias") else p)


def data_without_grad_detaches_weights(module: nn.LSTM) -> Callable:
    def call(input, hx=None):
        data = input.data if isinstance(input, nn.utils.rnn.PackedSequence) else input
        detach = not data.requires_grad
        return _over_parameters(module, lambda name, p: p.detach() if detach else p)(input, hx)
    return call


def weights_copied(module: nn.LSTM) -> Callable:
    """Right values and input gradients; the weights live in a copy no gradient check can see."""
    ref = lstm_ref.LSTM.from_torch(module)
    return lambda input, hx=None: ref(input, hx)


#: The mutants the gradient check must catch, by name.
MUTANTS = {
    "forget_gate_sign": forget_gate_sign,
    "h0_detached": h0_detached,
    "gradient_through_c_only": gradient_through_c_only,
    "weight_hh_grad_doubled": weight_hh_grad_doubled,
    "biases_detached": biases_detached,
    "data_without_grad_detaches_weights": data_without_grad_detaches_weights,
}

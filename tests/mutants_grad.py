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
from lstm_ref.functional import DirectionWeights, lstm_cell, lstm_layers, run_direction
from lstm_ref.interface import flatten_call, layer_weights


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


# --- The training loop: long sequences, accumulated backward passes, training-mode dropout ----------
#
# Each is right on one call, one backward pass from zeroed gradients, short sequences and
# deterministic dropout; each is wrong on exactly one axis of the training loop:
#
#     truncated_bptt_64         backpropagation through time stops every 64 steps (the state is
#                               detached between chunks of 64): only T > 64 shows it
#     grad_overwritten          each backward pass zeroes the parameters' .grad before its own
#                               gradient lands there: accumulation over passes lost
#     stale_workspace           the backward recomputes from the inputs of the latest call, kept in
#                               a workspace every forward overwrites: wrong once two graphs are alive
#     dropout_scaled_by_keep    kept activations scaled by (1 - p) instead of 1 / (1 - p)
#     dropout_unscaled          kept activations not scaled
#     dropout_keeps_p           drops with probability 1 - p instead of p
#     dropout_masks_reversed    torch's masks, drawn from the last time step's rows to the first
#     dropout_own_generator     masks drawn from a generator of its own
#     dropout_backward_unmasked the forward drops right; the backward lets every gradient through


def _flat_stack(module: nn.LSTM, direction_loop=None, between_layers=None) -> Callable:
    """A plain callable over ``module`` computing with lstm_ref's functions one layer at a time:
    ``direction_loop`` runs each direction (default run_direction), ``between_layers(data, p)``
    (default torch's dropout) acts on a layer's whole output (rows, D*H_out) before the next
    layer in training mode."""
    loop = direction_loop or run_direction
    drop = between_layers or (lambda data, p: nn.functional.dropout(data, p, training=True))

    def call(input, hx=None):
        flat = flatten_call(module, input, hx)
        directions = 2 if module.bidirectional else 1
        data, h_n, c_n = flat.data, [], []
        for layer, weights in enumerate(layer_weights(module)):
            if layer > 0 and module.dropout > 0 and module.training:
                data = drop(data, module.dropout)
            states = slice(layer * directions, (layer + 1) * directions)
            outputs, h, c = lstm_layers(list(data.split(flat.batch_sizes)), flat.h0[states], flat.c0[states],
                                        [weights], direction_loop=loop)
            data = torch.cat(outputs)
            h_n.append(h)
            c_n.append(c)
        return flat.unflatten(data, torch.cat(h_n), torch.cat(c_n))
    return call


CHUNK = 64


def _chunked_loop(steps, h, c, weights, reverse, cell=lstm_cell):
    """run_direction over chunks of CHUNK steps, the states detached between chunks."""
    outputs: list[Tensor] = [h] * len(steps)
    chunks = [(start, min(start + CHUNK, len(steps))) for start in range(0, len(steps), CHUNK)]
    for number, (start, stop) in enumerate(reversed(chunks) if reverse else chunks):
        if number > 0:
            h, c = h.detach(), c.detach()
        outputs[start:stop], h, c = run_direction(steps[start:stop], h, c, weights, reverse, cell)
    return outputs, h, c


def truncated_bptt_64(module: nn.LSTM) -> Callable:
    return _flat_stack(module, direction_loop=_chunked_loop)


class _ZeroesGrad(torch.autograd.Function):
    """The identity; its backward zeroes ``parameter.grad`` first, so the gradient it returns
    replaces what earlier passes accumulated there."""

    @staticmethod
    def forward(ctx: FunctionCtx, parameter: Tensor) -> Tensor:
        ctx.parameter = parameter
        return parameter.view_as(parameter)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if ctx.parameter.grad is not None:
            ctx.parameter.grad.zero_()
        return grad


def grad_overwritten(module: nn.LSTM) -> Callable:
    return _over_parameters(module, lambda name, parameter: _ZeroesGrad.apply(parameter))


class _RecomputeFromWorkspace(torch.autograd.Function):
    """``run(data, h0, c0, parameters)`` without saving anything: the backward recomputes the
    forward from ``workspace``, which holds the inputs of the latest call."""

    @staticmethod
    def forward(ctx: FunctionCtx, run, workspace: dict, data: Tensor, h0: Tensor, c0: Tensor, *parameters: Tensor):
        workspace["inputs"] = [t.detach().clone() for t in (data, h0, c0)]  # overwritten by every call
        ctx.run, ctx.workspace = run, workspace
        ctx.save_for_backward(*parameters)
        return run(data, h0, c0, parameters)

    @staticmethod
    def backward(ctx, *grads: Tensor):
        inputs = [t.detach().requires_grad_(True) for t in ctx.workspace["inputs"]]
        parameters = [p.detach().requires_grad_(True) for p in ctx.saved_tensors]
        with torch.enable_grad():
            outputs = ctx.run(*inputs, parameters)
            computed = torch.autograd.grad(outputs, inputs + parameters, grads, allow_unused=True)
        return (None, None, *computed)


def stale_workspace(module: nn.LSTM) -> Callable:
    names = [name for name, _ in module.named_parameters()]
    workspace: dict = {}

    def call(input, hx=None):
        if hx is None or not torch.is_grad_enabled():
            return module(input, hx)
        packed = isinstance(input, nn.utils.rnn.PackedSequence)

        def run(data, h0, c0, parameters):
            given = input._replace(data=data) if packed else data
            output, (h_n, c_n) = torch.func.functional_call(module, dict(zip(names, parameters)), (given, (h0, c0)))
            return output.data if packed else output, h_n, c_n

        data = input.data if packed else input
        output, h_n, c_n = _RecomputeFromWorkspace.apply(run, workspace, data, *hx, *module.parameters())
        return (input._replace(data=output) if packed else output), (h_n, c_n)
    return call


def _kept(data: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """torch's dropout mask (1 kept, 0 dropped), drawn as F.dropout draws it."""
    return torch.empty_like(data).bernoulli_(1 - p, generator=generator)


def dropout_scaled_by_keep(module: nn.LSTM) -> Callable:
    return _flat_stack(module, between_layers=lambda data, p: data * _kept(data, p) * (1 - p))


def dropout_unscaled(module: nn.LSTM) -> Callable:
    return _flat_stack(module, between_layers=lambda data, p: data * _kept(data, p))


def dropout_keeps_p(module: nn.LSTM) -> Callable:
    """Drops with probability 1 - p (keeps with p), scaled by 1 / (1 - p)."""
    return _flat_stack(module, between_layers=lambda data, p: data * _kept(data, 1 - p) / (1 - p))


def dropout_masks_reversed(module: nn.LSTM) -> Callable:
    return _flat_stack(module, between_layers=lambda data, p: data * _kept(data, p).flip(0) / (1 - p))


def dropout_own_generator(module: nn.LSTM) -> Callable:
    generator = torch.Generator().manual_seed(0)
    return _flat_stack(module, between_layers=lambda data, p: data * _kept(data, p, generator) / (1 - p))


class _MaskedForwardOnly(torch.autograd.Function):
    """``data * mask / (1 - p)`` forward; the backward scales the gradient but forgets the mask."""

    @staticmethod
    def forward(ctx: FunctionCtx, data: Tensor, mask: Tensor, p: float) -> Tensor:
        ctx.p = p
        return data * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad / (1 - ctx.p), None, None


def dropout_backward_unmasked(module: nn.LSTM) -> Callable:
    return _flat_stack(module, between_layers=lambda data, p: _MaskedForwardOnly.apply(data, _kept(data, p), p))


def dropout_right(module: nn.LSTM) -> Callable:
    """The control: the same layer-by-layer stack with torch's dropout (must pass)."""
    return _flat_stack(module)


#: The training-loop mutants, each with the training-loop case (lstm_ref.configs.training_loop_cases,
#: by tag, or "acc3": the dense case with three backward passes) whose axis catches it.
TRAINING_LOOP_MUTANTS = {
    "truncated_bptt_64": (truncated_bptt_64, "long_T100"),
    "grad_overwritten": (grad_overwritten, "acc3"),
    "stale_workspace": (stale_workspace, "acc3"),
    "dropout_scaled_by_keep": (dropout_scaled_by_keep, "dropout0.3_train"),
    "dropout_unscaled": (dropout_unscaled, "dropout0.3_train"),
    "dropout_keeps_p": (dropout_keeps_p, "dropout0.3_train"),
    "dropout_masks_reversed": (dropout_masks_reversed, "dropout0.3_train"),
    "dropout_own_generator": (dropout_own_generator, "dropout0.3_train"),
    "dropout_backward_unmasked": (dropout_backward_unmasked, "dropout0.3_train"),
}

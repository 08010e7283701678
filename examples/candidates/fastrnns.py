"""PyTorch's TorchScript LSTMs (``benchmarks/fastrnns/custom_lstms.py``) as a conformance candidate.

    lstm-ref check --impl examples.candidates.fastrnns:make --grad

``custom_lstms.py`` is not a package: it lives in PyTorch's repository, beside its benchmarks.
Point ``LSTM_REF_FASTRNNS`` at a copy of the file (``benchmarks/fastrnns/custom_lstms.py`` of a
pytorch/pytorch checkout); the factory loads it once per process (its import runs its own smoke
tests and scripts every class: seconds). Without the variable every configuration is unsupported,
with a reason that names it.

What the file offers, and how an ``nn.LSTM`` maps onto it (one layer, one direction):

    LSTMCell        gates = x W_ih^T + b_ih + h W_hh^T + b_hh      x (N, I), h and c (N, H)
                    i, f, g, o = gates.chunk(4, 1)                  torch's gate order
                    c' = σ(f) c + σ(i) tanh(g),  h' = σ(o) tanh(c')
    LSTMLayer       the cell over ``input.unbind(0)``, input (T, N, I) -> output (T, N, H)
    ReverseLSTMLayer the same over the reversed steps, outputs put back in time order
    BidirLSTMLayer  both, outputs concatenated: (T, N, 2H); states [forward, backward]
    StackedLSTM     layers in sequence, states one (h, c) per layer
    StackedLSTM2    the same with [forward, backward] states per layer (bidirectional)
    StackedLSTMWithDropout  StackedLSTM with ``nn.Dropout(0.4)`` between layers (p fixed at 0.4)

``script_lstm(input_size, hidden_size, num_layers, dropout=..., bidirectional=...)`` picks among
them; it asserts ``bias`` and ``not batch_first``, takes ``dropout`` as a flag (p is always 0.4)
and ignores it when ``bidirectional``. ``LayerNormLSTMCell`` computes another function (layer
norms on the gates and c), which no ``nn.LSTM`` configuration asks for.

The adapter: the stack computes with the parameters of the ``nn.LSTM`` handed to the factory
(assigned to each cell, not copied), so the gradient check judges their gradients; ``bias=False``
becomes frozen zero biases (the cell always adds ``b_ih + b_hh``); ``batch_first`` is a transpose
and an unbatched input an ``unsqueeze(1)`` on the way in and the inverse on the way out; h0 and
c0 ``(L*D, N, H)`` become the stack's per-layer (per-direction) list, index ``layer * D + direction``
as torch's, and back. Not expressible, so ``NotImplementedError``: packed input (the layers run
every sequence to the full T), projections, and training-mode dropout other than p = 0.4 on a
unidirectional stack.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from types import ModuleType

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

#: The environment variable naming the path of ``custom_lstms.py``.
PATH_VARIABLE = "LSTM_REF_FASTRNNS"
#: The only dropout probability ``StackedLSTMWithDropout`` has (``nn.Dropout(0.4)`` in its constructor).
FASTRNNS_DROPOUT = 0.4

_loaded: dict[str, ModuleType] = {}


def load_custom_lstms() -> ModuleType:
    """``custom_lstms.py`` from the path in ``$LSTM_REF_FASTRNNS``, imported once per process."""
    path = os.environ.get(PATH_VARIABLE)
    if not path:
        raise NotImplementedError(f"set {PATH_VARIABLE} to the path of custom_lstms.py "
                                  "(pytorch/pytorch benchmarks/fastrnns/custom_lstms.py)")
    if path not in _loaded:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{PATH_VARIABLE}={path}: no such file")
        spec = importlib.util.spec_from_file_location("custom_lstms", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded[path] = module
    return _loaded[path]


def _unsupported(module: nn.Module) -> str:
    """Why the fastrnns LSTMs cannot express ``module``'s configuration ("" when they can)."""
    if not isinstance(module, nn.LSTM):
        return f"fastrnns custom_lstms has LSTMs only, not {type(module).__name__}"
    if module.proj_size:
        return f"proj_size={module.proj_size}: fastrnns' LSTMCell has no projection"
    if module.training and module.dropout and module.num_layers > 1:
        if module.bidirectional:
            return ("training-mode dropout on a bidirectional stack: StackedLSTM2 has no dropout "
                    "(script_lstm ignores dropout=True when bidirectional)")
        if module.dropout != FASTRNNS_DROPOUT:
            return (f"training-mode dropout p={module.dropout}: StackedLSTMWithDropout's p is fixed "
                    f"at {FASTRNNS_DROPOUT}")
    return ""


def _share_parameters(stack: nn.Module, module: nn.LSTM) -> None:
    """Make every cell of ``stack`` compute with ``module``'s parameters (zero biases when it has none)."""
    directions = 2 if module.bidirectional else 1
    for layer_index, layer in enumerate(stack.layers):
        cells = [d.cell for d in layer.directions] if directions == 2 else [layer.cell]
        for direction, cell in enumerate(cells):
            suffix = f"_l{layer_index}" + ("_reverse" if direction else "")
            cell.weight_ih = getattr(module, "weight_ih" + suffix)
            cell.weight_hh = getattr(module, "weight_hh" + suffix)
            if module.bias:
                cell.bias_ih = getattr(module, "bias_ih" + suffix)
                cell.bias_hh = getattr(module, "bias_hh" + suffix)
            else:
                zeros = cell.weight_hh.new_zeros(4 * module.hidden_size)
                cell.bias_ih = nn.Parameter(zeros, requires_grad=False)
                cell.bias_hh = nn.Parameter(zeros.clone(), requires_grad=False)


def make(module: nn.LSTM) -> Callable:
    """A callable with ``nn.LSTM.forward``'s signature computing ``module`` with fastrnns' TorchScript LSTM.

    input (T, N, I), (N, T, I) when batch_first, or (T, I); hx = (h0, c0), each (L*D, N, H) or
    (L*D, H), or None (zeros) -> (output (T, N, D*H) in the input's layout, (h_n, c_n)).
    """
    reason = _unsupported(module)
    if reason:
        raise NotImplementedError(reason)
    custom_lstms = load_custom_lstms()
    # eval mode too, so their dropout's eval-mode no-op is exercised (script_lstm: a flag, p = 0.4)
    dropout = bool(module.dropout) and module.num_layers > 1 and not module.bidirectional
    stack = custom_lstms.script_lstm(module.input_size, module.hidden_size, module.num_layers,
                                     dropout=dropout, bidirectional=module.bidirectional)
    stack.train(module.training)
    _share_parameters(stack, module)
    layers, directions, hidden = module.num_layers, 2 if module.bidirectional else 1, module.hidden_size

    def forward(input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None):
        if isinstance(input, PackedSequence):
            raise NotImplementedError("packed input: fastrnns' layers run every sequence for all T steps "
                                      "and take a dense (T, N, I) tensor")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else input.transpose(0, 1) if module.batch_first else input
        if hx is None:
            zeros = x.new_zeros(layers * directions, x.shape[1], hidden)
            h0, c0 = zeros, zeros
        else:
            h0, c0 = (s.unsqueeze(1) for s in hx) if unbatched else hx
        if directions == 2:
            states = [[(h0[2 * layer + d], c0[2 * layer + d]) for d in range(2)] for layer in range(layers)]
        else:
            states = [(h0[layer], c0[layer]) for layer in range(layers)]
        output, final = stack(x, states)
        flat = [state for per_layer in final for state in per_layer] if directions == 2 else final
        h_n, c_n = torch.stack([h for h, _ in flat]), torch.stack([c for _, c in flat])
        if unbatched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (output.transpose(0, 1) if module.batch_first else output), (h_n, c_n)

    return forward

"""Keras 3's recurrent layers on its torch backend as a conformance candidate: ``keras.layers.LSTM``
for ``nn.LSTM``, ``GRU(reset_after=True)`` for ``nn.GRU`` and ``SimpleRNN`` (tanh or relu) for ``nn.RNN``.

    pip install keras
    lstm-ref check --impl examples.candidates.keras_lstm:make --module lstm,gru,rnn_tanh,rnn_relu

One Keras layer per torch layer (``Bidirectional`` around it when bidirectional), each with
``return_sequences=True, return_state=True``; the weights go through :mod:`lstm_ref.layouts`
(Keras' kernels are the transposes of torch's):

* ``LSTM``, :func:`~lstm_ref.layouts.torch_to_keras`: gate order i, f, c, o is torch's, one bias
  ``b_ih + b_hh``; kernel (I, 4H), recurrent_kernel (H, 4H)::

      z = x @ kernel + h @ recurrent_kernel + bias;  i, f, c~, o = split(z, 4)
      c' = σ(f) c + σ(i) tanh(c~);  h' = σ(o) tanh(c')

* ``GRU(reset_after=True)``, :func:`~lstm_ref.layouts.torch_gru_to_keras`: gate order z, r, h
  (torch's is r, z, n), bias (2, 3H) = [b_ih, b_hh]; the reset gate multiplies the recurrent
  product with its bias, as torch's ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
* ``SimpleRNN(activation=tanh | relu)``, :func:`~lstm_ref.layouts.torch_rnn_to_keras`: one bias
  ``b_ih + b_hh``; ``h' = act(x @ kernel + bias + h @ recurrent_kernel)``.

Keras is batch-major, (N, T, I): a time-major input is transposed on the way in and the output
back; an unbatched (T, I) input gets a batch of one. A PackedSequence becomes Keras' form of
variable lengths: the padded batch with a mask ``(N, T)``, ``mask[n, t] = t < length[n]``, on
every layer (a masked step keeps the state; ``Bidirectional``'s backward layer reverses the
padded sequence, so it starts on its padding, holding the initial state, and reaches the real
steps after it), and the output at the unmasked steps is packed again in the input's order. The
initial state ``(L*D, N, H)`` (h0 and c0 for the LSTM, h0 otherwise) becomes each layer's
``initial_state``: [h, c] or [h], or for ``Bidirectional`` the forward layer's states then the
backward layer's ([h_fwd, c_fwd, h_bwd, c_bwd] or [h_fwd, h_bwd]); the layers' final states,
returned in that order, are stacked back in torch's ``layer * D + direction`` order.

Where Keras' torch backend computes (``keras.src.backend.torch.rnn``): the LSTM and the GRU
without a mask run a fused loop of torch ops on CPU (torch's cuDNN kernel on CUDA); with a mask
they run Keras' generic RNN loop over the cell's ``call``; SimpleRNN has no fused path and
always runs the generic loop over ``SimpleRNNCell.call``. The cells multiply with
``keras.ops.matmul``, which computes two float64 operands in float32 (docs/candidates.md), so
float64 configurations that run a cell come out with float32 rounding: the LSTM and the GRU
with a mask, SimpleRNN always (``keras_xfails.txt``).

Not expressible, so ``NotImplementedError``: projections (Keras' LSTM has none) and
training-mode dropout between layers (Keras' ``dropout`` masks each layer's input, one mask for
all steps). Gradients reach Keras' own variables (torch Parameters that Keras owns, in its
layout), never the torch module's: the gradient check compares the input and initial-state
gradients and reports the configuration unsupported for the parameters.

``KERAS_BACKEND`` must be ``torch`` (the factory sets it when Keras is not imported yet).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstm_ref.layouts import torch_gru_to_keras, torch_rnn_to_keras, torch_to_keras


class Kind(NamedTuple):
    """How one torch module kind is built in Keras."""

    layer: str                                       # the keras.layers class
    kwargs: dict                                     # its arguments beyond units and the shared ones
    convert: Callable[[dict], list]                  # the module's state_dict -> Keras weights per layer, direction
    states: int                                      # state tensors per direction: (h, c) or h


#: Per torch ``RNNBase.mode``.
KINDS = {
    "LSTM": Kind("LSTM", {}, torch_to_keras, 2),
    "GRU": Kind("GRU", {"reset_after": True}, torch_gru_to_keras, 1),
    "RNN_TANH": Kind("SimpleRNN", {"activation": "tanh"}, torch_rnn_to_keras, 1),
    "RNN_RELU": Kind("SimpleRNN", {"activation": "relu"}, torch_rnn_to_keras, 1),
}


def import_keras() -> ModuleType:
    """Keras on its torch backend; NotImplementedError saying why when that cannot be had."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as error:
        raise NotImplementedError(f"Keras is not importable ({error}): pip install keras") from None
    if keras.backend.backend() != "torch":
        raise NotImplementedError(f"Keras runs on its {keras.backend.backend()} backend; set KERAS_BACKEND=torch "
                                  "before Keras is imported")
    return keras


def _unsupported(module: nn.Module) -> str:
    """Why Keras' layers cannot express ``module``'s configuration ("" when they can)."""
    if not isinstance(module, nn.RNNBase) or module.mode not in KINDS:
        return f"this candidate builds Keras LSTM, GRU and SimpleRNN layers only, not {type(module).__name__}"
    layer = KINDS[module.mode].layer
    if module.proj_size:
        return f"proj_size={module.proj_size}: Keras' LSTM has no projection"
    if module.training and module.dropout and module.num_layers > 1:
        return (f"training-mode dropout p={module.dropout} between layers: Keras' {layer} dropout masks "
                "each layer's input with one mask for all steps, not torch's per-element mask on a layer's output")
    return ""


def _keras_layers(keras: ModuleType, module: nn.RNNBase, kind: Kind) -> list:
    """One built Keras layer per torch layer, its weights ``module``'s, converted."""
    dtype = str(module.weight_hh_l0.dtype).removeprefix("torch.")
    converted = kind.convert(module.state_dict())
    names = ("kernel", "recurrent_kernel", "bias") if module.bias else ("kernel", "recurrent_kernel")
    width = 2 * module.hidden_size if module.bidirectional else module.hidden_size
    layers = []
    for index, directions in enumerate(converted):
        layer = getattr(keras.layers, kind.layer)(module.hidden_size, return_sequences=True, return_state=True,
                                                  use_bias=module.bias, dtype=dtype, **kind.kwargs)
        if module.bidirectional:
            layer = keras.layers.Bidirectional(layer, merge_mode="concat", dtype=dtype)
        layer.build((None, None, module.input_size if index == 0 else width))
        layer.set_weights([weights[name] for weights in directions for name in names])
        layers.append(layer)
    return layers


def _packed_like(packed: PackedSequence, padded: Tensor) -> PackedSequence:
    """``padded`` (N, T, F), batch-major in the sequences' own order, packed as ``packed`` is:
    step t's rows are the ``batch_sizes[t]`` longest sequences, in ``sorted_indices`` order."""
    if packed.sorted_indices is not None:
        padded = padded.index_select(0, packed.sorted_indices)
    data = torch.cat([padded[:size, t] for t, size in enumerate(packed.batch_sizes.tolist())])
    return packed._replace(data=data)


def make(module: nn.RNNBase) -> Callable:
    """A callable with the module's ``forward`` signature computing ``module`` with Keras layers.

    input (T, N, I), (N, T, I) when batch_first, or (T, I); hx: for the LSTM (h0, c0), otherwise
    h0, each (L*D, N, H) or (L*D, H), or None (zeros) -> (output (T, N, D*H) in the input's
    layout, (h_n, c_n) for the LSTM or h_n).
    """
    reason = _unsupported(module)
    if reason:
        raise NotImplementedError(reason)
    keras = import_keras()
    device = module.weight_hh_l0.device
    keras_device = torch.device(keras.src.backend.torch.core.get_device())
    if device.type != keras_device.type:
        raise NotImplementedError(f"the module is on {device}, Keras' torch backend computes on {keras_device}")
    kind = KINDS[module.mode]
    layers = _keras_layers(keras, module, kind)
    directions, hidden = (2 if module.bidirectional else 1), module.hidden_size

    def forward(input: Tensor | PackedSequence, hx: Tensor | tuple[Tensor, Tensor] | None = None):
        mask = None
        if isinstance(input, PackedSequence):
            x, lengths = pad_packed_sequence(input, batch_first=True)
            # (N, T), in the sequences' own order, as pad_packed_sequence returns them
            mask = torch.arange(x.shape[1], device=x.device) < lengths.to(x.device).unsqueeze(1)
            unbatched = False
        else:
            unbatched = input.dim() == 2
            x = input.unsqueeze(0) if unbatched else input if module.batch_first else input.transpose(0, 1)
        if hx is None:
            initial = (x.new_zeros(len(layers) * directions, x.shape[0], hidden),) * kind.states
        else:
            initial = tuple(hx) if kind.states > 1 else (hx,)
            if unbatched:
                initial = tuple(state.unsqueeze(1) for state in initial)
        final: list[list[Tensor]] = [[] for _ in range(kind.states)]
        for index, layer in enumerate(layers):
            rows = range(index * directions, (index + 1) * directions)
            initial_state = [state[row] for row in rows for state in initial]
            x, *states = layer(x, initial_state=initial_state, mask=mask, training=False)
            for which in range(kind.states):
                final[which] += states[which::kind.states]
        stacked = [torch.stack(states) for states in final]
        if mask is not None:
            output = _packed_like(input, x)
        elif unbatched:
            output, stacked = x.squeeze(0), [states.squeeze(1) for states in stacked]
        else:
            output = x if module.batch_first else x.transpose(0, 1)
        return output, (tuple(stacked) if kind.states > 1 else stacked[0])

    return forward

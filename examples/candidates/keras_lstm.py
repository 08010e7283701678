"""Keras 3's ``keras.layers.LSTM`` on its torch backend as a conformance candidate.

    pip install keras
    lstm-ref check --impl examples.candidates.keras_lstm:make

One Keras ``LSTM`` per torch layer (``Bidirectional`` around it when bidirectional), each with
``return_sequences=True, return_state=True``; the weights go through
:func:`lstm_ref.layouts.torch_to_keras` (Keras' gate order i, f, c, o is torch's; its kernels are
the transposes of torch's; its one bias is ``b_ih + b_hh``):

    z = x @ kernel + h @ recurrent_kernel + bias        kernel (I, 4H), recurrent_kernel (H, 4H)
    i, f, c~, o = split(z, 4);  c' = σ(f) c + σ(i) tanh(c~);  h' = σ(o) tanh(c')

Keras is batch-major, (N, T, I): a time-major input is transposed on the way in and the output
back; an unbatched (T, I) input gets a batch of one. A PackedSequence becomes Keras' form of
variable lengths: the padded batch with a mask ``(N, T)``, ``mask[n, t] = t < length[n]``, on
every layer (a masked step keeps the state; ``Bidirectional``'s backward layer reverses the
padded sequence, so it starts on its padding, holding h0, c0, and reaches the real steps after
it), and the output at the unmasked steps is packed again in the input's order. h0 and c0
``(L*D, N, H)`` become each layer's ``initial_state`` ([h, c], or [h_fwd, c_fwd, h_bwd, c_bwd]
for ``Bidirectional``), and the layers' final states are stacked back in torch's
``layer * D + direction`` order. On CPU, and with a mask anywhere, Keras' torch backend runs
its own loop of torch ops (``keras.src.backend.torch.rnn``); on CUDA without a mask it calls
torch's cuDNN LSTM.

Not expressible, so ``NotImplementedError``: projections (Keras' LSTM has none) and
training-mode dropout between layers (Keras' ``dropout`` masks each layer's input, one mask for
all steps). Gradients reach Keras' own variables (torch Parameters that Keras owns, in its
layout), never the ``nn.LSTM``'s: the gradient check compares the input, h0 and c0 gradients
and reports the configuration unsupported for the parameters.

``KERAS_BACKEND`` must be ``torch`` (the factory sets it when Keras is not imported yet).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstm_ref.layouts import torch_to_keras


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
    """Why Keras' LSTM layers cannot express ``module``'s configuration ("" when they can)."""
    if not isinstance(module, nn.LSTM):
        return f"this candidate builds Keras LSTM layers only, not {type(module).__name__}"
    if module.proj_size:
        return f"proj_size={module.proj_size}: Keras' LSTM has no projection"
    if module.training and module.dropout and module.num_layers > 1:
        return (f"training-mode dropout p={module.dropout} between layers: Keras' LSTM dropout masks "
                "each layer's input with one mask for all steps, not torch's per-element mask on a layer's output")
    return ""


def _keras_layers(keras: ModuleType, module: nn.LSTM) -> list:
    """One built Keras layer per torch layer, its weights ``module``'s, converted."""
    dtype = str(module.weight_hh_l0.dtype).removeprefix("torch.")
    converted = torch_to_keras(module.state_dict())
    names = ("kernel", "recurrent_kernel", "bias") if module.bias else ("kernel", "recurrent_kernel")
    width = 2 * module.hidden_size if module.bidirectional else module.hidden_size
    layers = []
    for index, directions in enumerate(converted):
        layer = keras.layers.LSTM(module.hidden_size, return_sequences=True, return_state=True,
                                  use_bias=module.bias, dtype=dtype)
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


def make(module: nn.LSTM) -> Callable:
    """A callable with ``nn.LSTM.forward``'s signature computing ``module`` with Keras LSTM layers.

    input (T, N, I), (N, T, I) when batch_first, or (T, I); hx = (h0, c0), each (L*D, N, H) or
    (L*D, H), or None (zeros) -> (output (T, N, D*H) in the input's layout, (h_n, c_n)).
    """
    reason = _unsupported(module)
    if reason:
        raise NotImplementedError(reason)
    keras = import_keras()
    device = module.weight_hh_l0.device
    keras_device = torch.device(keras.src.backend.torch.core.get_device())
    if device.type != keras_device.type:
        raise NotImplementedError(f"the module is on {device}, Keras' torch backend computes on {keras_device}")
    layers = _keras_layers(keras, module)
    directions, hidden = (2 if module.bidirectional else 1), module.hidden_size

    def forward(input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None):
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
            zeros = x.new_zeros(len(layers) * directions, x.shape[0], hidden)
            h0, c0 = zeros, zeros
        else:
            h0, c0 = (s.unsqueeze(1) for s in hx) if unbatched else hx
        h_n, c_n = [], []
        for index, layer in enumerate(layers):
            rows = range(index * directions, (index + 1) * directions)
            initial_state = [state[row] for row in rows for state in (h0, c0)]
            x, *final = layer(x, initial_state=initial_state, mask=mask, training=False)
            h_n += final[0::2]
            c_n += final[1::2]
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if mask is not None:
            return _packed_like(input, x), (h_n, c_n)
        if unbatched:
            return x.squeeze(0), (h_n.squeeze(1), c_n.squeeze(1))
        return (x if module.batch_first else x.transpose(0, 1)), (h_n, c_n)

    return forward

"""Other frameworks' LSTM weight layouts, to and from torch's.

Every framework computes the same four gates; they differ in the order the
gates are stacked, in whether weights are stored transposed, in how many
biases there are and in constants added at run time. The gate names used
here are torch's: i (input), f (forget), g (cell candidate; ONNX and Keras
call it c), o (output). :data:`GATE_ORDERS` is the one table of gate orders;
the code, the tests and docs/weights.md all read it.

torch, per layer k and direction (``_reverse``), gate order i, f, g, o:

    gates = W_ih x + b_ih + W_hh h + b_hh       W_ih (4H, I), W_hh (4H, H), b_* (4H,)

ONNX ``LSTM`` (one node per layer; D = 2 if bidirectional; gate order i, o, f, c):

    W [D, 4H, I], R [D, 4H, H], B [D, 8H] = Wb || Rb, peepholes P [D, 3H] (torch has none: zeros)

Keras ``LSTM`` (one layer per torch layer; ``Bidirectional`` wraps two; gate order i, f, c, o):

    kernel (I, 4H) = W_ih^T, recurrent_kernel (H, 4H) = W_hh^T, bias (4H,) = b_ih + b_hh

Concatenated-kernel layouts (TF ``LSTMBlockCell`` i, c, f, o; Haiku i, g, f, o):

    gates = [x, h] @ kernel + bias + forget_bias * e_f      kernel (I + H, 4H)

where ``forget_bias`` (TF's ``forget_bias`` argument, default 1.0; Haiku's
hard-coded 1) is added to the f pre-activation at run time. torch has no such
term, so converting into torch folds it into the bias (b_f += forget_bias) and
converting out of torch takes it back out (b_f -= forget_bias).

Projections (``proj_size > 0``) exist in none of these layouts: converting such
an LSTM raises ValueError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstm_ref.configs import parameter_suffix

#: The gate order of each layout, in torch's gate names (g = cell candidate).
GATE_ORDERS: dict[str, tuple[str, ...]] = {
    "torch": ("i", "f", "g", "o"),             # also cuDNN, Flax, Equinox
    "onnx": ("i", "o", "f", "g"),              # ONNX LSTM: i, o, f, c
    "keras": ("i", "f", "g", "o"),             # Keras / tf.keras: i, f, c, o
    "tf_lstm_block_cell": ("i", "g", "f", "o"),  # TF LSTMBlockCell: i, c, f, o
    "haiku": ("i", "g", "f", "o"),
}
#: Layouts that add a constant to the forget gate's pre-activation at run time (the default value).
RUNTIME_FORGET_BIAS: dict[str, float] = {"tf_lstm_block_cell": 1.0, "haiku": 1.0}

Array = np.ndarray
LayerWeights = dict[str, Array]


def reorder_gates(values: Array, source: str, target: str, axis: int = 0) -> Array:
    """``values`` with its 4 gate blocks along ``axis`` moved from ``source``'s order to ``target``'s."""
    blocks = dict(zip(GATE_ORDERS[source], np.split(np.asarray(values), 4, axis=axis), strict=True))
    return np.concatenate([blocks[gate] for gate in GATE_ORDERS[target]], axis=axis)


def gate_slice(layout: str, gate: str, hidden_size: int) -> slice:
    """Where ``gate``'s block of ``4 * hidden_size`` rows lies in ``layout``."""
    index = GATE_ORDERS[layout].index(gate)
    return slice(index * hidden_size, (index + 1) * hidden_size)


def _numpy(tensor: Tensor) -> Array:
    return tensor.detach().cpu().numpy()


def _torch_config(state_dict: dict[str, Tensor], kind: str = "LSTM") -> dict[str, Any]:
    """The configuration of the torch nn.LSTM (nn.GRU, nn.RNN: ``kind``) whose state_dict this is,
    every key validated (:func:`lstm_ref.weights.find_modules`); ValueError for another kind or
    for a projection, which none of these layouts has."""
    from lstm_ref.weights import FAMILY_GATES, find_modules

    found = [f for f in find_modules(state_dict) if f.prefix == "" and f.kind in FAMILY_GATES]
    if not found:
        raise ValueError(f"expected a torch nn.{kind} state_dict (weight_ih_l0, weight_hh_l0, ...)")
    config = found[0].config
    if found[0].kind != kind:
        rows, hidden = state_dict["weight_hh_l0"].shape[0], config["hidden_size"]
        raise ValueError(f"expected an nn.{kind} state_dict: weight_hh_l0 has {rows} rows for hidden size "
                         f"{hidden}, not {FAMILY_GATES[kind]} x {hidden} (an nn.{found[0].kind}'s)")
    if config.get("proj_size"):
        raise ValueError(f"proj_size={config['proj_size']}: this layout has no projection weights")
    return config


def _suffixes(config: dict[str, Any], layer: int) -> list[str]:
    """torch's parameter-name suffixes of ``layer``, forward then reverse direction."""
    return [parameter_suffix(layer, direction) for direction in range(2 if config["bidirectional"] else 1)]


# ----------------------------------------------------------------------------- ONNX

def _to_onnx(tensor: Tensor) -> Array:
    return reorder_gates(_numpy(tensor), "torch", "onnx")


def torch_to_onnx(state_dict: dict[str, Tensor]) -> list[LayerWeights]:
    """One ``{"W", "R", "B"}`` per layer (``B`` absent when bias=False) for ONNX LSTM nodes
    with ``direction`` forward or bidirectional. Shapes W [D,4H,I], R [D,4H,H], B [D,8H]."""
    config = _torch_config(state_dict)
    layers = []
    for layer in range(config["num_layers"]):
        names = _suffixes(config, layer)
        weights = {
            "W": np.stack([_to_onnx(state_dict["weight_ih" + n]) for n in names]),
            "R": np.stack([_to_onnx(state_dict["weight_hh" + n]) for n in names]),
        }
        if config["bias"]:
            weights["B"] = np.stack([
                np.concatenate([_to_onnx(state_dict["bias_ih" + n]), _to_onnx(state_dict["bias_hh" + n])])
                for n in names
            ])
        layers.append(weights)
    return layers


def onnx_to_torch(layers: list[LayerWeights]) -> dict[str, Tensor]:
    """A torch nn.LSTM state_dict from one ``{"W", "R"[, "B"][, "P"]}`` per ONNX LSTM node.

    Peepholes ``P`` must be zero (torch's LSTM has none); a missing ``B`` means bias=False.
    """
    state_dict: dict[str, Tensor] = {}
    for layer, weights in enumerate(layers):
        W, R = np.asarray(weights["W"]), np.asarray(weights["R"])
        if W.ndim != 3 or R.ndim != 3 or W.shape[0] != R.shape[0] or W.shape[0] not in (1, 2):
            raise ValueError(f"layer {layer}: expected W [D,4H,I] and R [D,4H,H] with D in (1, 2), "
                             f"found W {W.shape}, R {R.shape}")
        if weights.get("P") is not None and np.any(np.asarray(weights["P"]) != 0):
            raise ValueError(f"layer {layer}: nonzero peephole weights P have no torch equivalent")
        hidden = R.shape[-1]
        for direction in range(W.shape[0]):
            suffix = parameter_suffix(layer, direction)
            state_dict["weight_ih" + suffix] = torch.from_numpy(reorder_gates(W[direction], "onnx", "torch"))
            state_dict["weight_hh" + suffix] = torch.from_numpy(reorder_gates(R[direction], "onnx", "torch"))
            if weights.get("B") is not None:
                B = np.asarray(weights["B"])[direction]
                state_dict["bias_ih" + suffix] = torch.from_numpy(
                    reorder_gates(B[: 4 * hidden], "onnx", "torch"))
                state_dict["bias_hh" + suffix] = torch.from_numpy(
                    reorder_gates(B[4 * hidden:], "onnx", "torch"))
    return state_dict


# ----------------------------------------------------------------------------- Keras

def _torch_to_keras_layers(
    config: dict[str, Any], state_dict: dict[str, Tensor], to_keras: Callable[[Array], Array],
    bias: Callable[[Array, Array], Array],
) -> list[list[LayerWeights]]:
    """Per layer, per direction (forward, then backward of a ``Bidirectional``): ``kernel`` =
    ``to_keras(W_ih)^T``, ``recurrent_kernel`` = ``to_keras(W_hh)^T`` and, with a bias,
    ``bias(b_ih, b_hh)``; ``to_keras`` reorders a kind's gate blocks into Keras's order."""
    layers = []
    for layer in range(config["num_layers"]):
        directions = []
        for suffix in _suffixes(config, layer):
            weights = {key: to_keras(_numpy(state_dict[name + suffix])).T
                       for key, name in (("kernel", "weight_ih"), ("recurrent_kernel", "weight_hh"))}
            if config["bias"]:
                weights["bias"] = bias(_numpy(state_dict["bias_ih" + suffix]), _numpy(state_dict["bias_hh" + suffix]))
            directions.append(weights)
        layers.append(directions)
    return layers


def _keras_to_torch_layers(
    layers: list[list[LayerWeights]], gates: int, to_torch: Callable[[Array], Array],
    bias: Callable[[Array, int], tuple[Array, Array]],
) -> dict[str, Tensor]:
    """A torch state_dict from Keras weights per layer, per direction: ``W_ih`` = ``to_torch(kernel^T)``,
    ``W_hh`` = ``to_torch(recurrent_kernel^T)`` and ``(b_ih, b_hh)`` = ``bias(bias, layer)``, for a
    kind of ``gates`` gate blocks (``to_torch`` reorders them into torch's order)."""
    state_dict: dict[str, Tensor] = {}
    blocks = f"{gates}H" if gates > 1 else "H"
    for layer, directions in enumerate(layers):
        if len(directions) not in (1, 2):
            raise ValueError(f"layer {layer}: expected 1 or 2 directions, found {len(directions)}")
        for direction, weights in enumerate(directions):
            suffix = parameter_suffix(layer, direction)
            kernel, recurrent = np.asarray(weights["kernel"]), np.asarray(weights["recurrent_kernel"])
            if kernel.ndim != 2 or recurrent.shape != (recurrent.shape[0], gates * recurrent.shape[0]):
                raise ValueError(f"layer {layer}: expected kernel (I,{blocks}) and recurrent_kernel (H,{blocks}), "
                                 f"found {kernel.shape} and {recurrent.shape}")
            state_dict["weight_ih" + suffix] = torch.from_numpy(np.ascontiguousarray(to_torch(kernel.T)))
            state_dict["weight_hh" + suffix] = torch.from_numpy(np.ascontiguousarray(to_torch(recurrent.T)))
            if weights.get("bias") is not None:
                bias_ih, bias_hh = bias(np.asarray(weights["bias"]), layer)
                if bias_ih.shape != (recurrent.shape[1],) or bias_hh.shape != (recurrent.shape[1],):
                    raise ValueError(f"layer {layer}: the bias gives b_ih {bias_ih.shape} and b_hh {bias_hh.shape}, "
                                     f"expected ({recurrent.shape[1]},) each ({blocks} for H={recurrent.shape[0]})")
                state_dict["bias_ih" + suffix] = torch.from_numpy(np.ascontiguousarray(bias_ih))
                state_dict["bias_hh" + suffix] = torch.from_numpy(np.ascontiguousarray(bias_hh))
    return state_dict


def _one_bias(bias: Array, layer: int) -> tuple[Array, Array]:
    """Keras's one bias (b_ih + b_hh) as torch's pair: ``bias_ih`` it, ``bias_hh`` zero (torch
    only ever uses their sum, so the gates are the same)."""
    return bias, np.zeros_like(bias)


def torch_to_keras(state_dict: dict[str, Tensor]) -> list[list[LayerWeights]]:
    """Per layer, per direction (forward, then backward of a ``Bidirectional``), the
    weights of a Keras LSTM layer: ``kernel (I,4H)``, ``recurrent_kernel (H,4H)``,
    ``bias (4H,)`` = b_ih + b_hh (absent when bias=False, i.e. ``use_bias=False``)."""
    def to_keras(values: Array) -> Array:
        return reorder_gates(values, "torch", "keras")
    return _torch_to_keras_layers(_torch_config(state_dict), state_dict, to_keras,
                                  lambda bias_ih, bias_hh: to_keras(bias_ih + bias_hh))


def keras_to_torch(layers: list[list[LayerWeights]]) -> dict[str, Tensor]:
    """A torch nn.LSTM state_dict from Keras LSTM weights (per layer, per direction).

    Keras has one bias; it becomes ``bias_ih`` and ``bias_hh`` is zero, which
    computes the same gates (torch only ever uses their sum).
    """
    def to_torch(values: Array) -> Array:
        return reorder_gates(values, "keras", "torch")
    return _keras_to_torch_layers(layers, 4, to_torch, lambda bias, layer: _one_bias(to_torch(bias), layer))


# ----------------------------------------------------------------------------- concatenated kernels

def torch_cell_to_concat_kernel(
    cell_state_dict: dict[str, Tensor], layout: str, forget_bias: float | None = None
) -> LayerWeights:
    """An LSTMCell's weights as ``kernel (I+H, 4H)`` on ``[x, h]`` and ``bias (4H,)`` in
    ``layout`` (tf_lstm_block_cell or haiku), with the layout's run-time forget bias
    (default :data:`RUNTIME_FORGET_BIAS`) taken out of the f block."""
    forget_bias = RUNTIME_FORGET_BIAS[layout] if forget_bias is None else forget_bias
    w_ih, w_hh = _numpy(cell_state_dict["weight_ih"]), _numpy(cell_state_dict["weight_hh"])
    hidden = w_hh.shape[1]
    kernel = reorder_gates(np.concatenate([w_ih, w_hh], axis=1), "torch", layout).T
    bias = np.zeros(4 * hidden, dtype=w_ih.dtype)
    if "bias_ih" in cell_state_dict:
        bias = _numpy(cell_state_dict["bias_ih"]) + _numpy(cell_state_dict["bias_hh"])
    bias = reorder_gates(bias, "torch", layout)
    bias[gate_slice(layout, "f", hidden)] -= forget_bias
    return {"kernel": kernel, "bias": bias}


def concat_kernel_to_torch_cell(
    kernel: Array, bias: Array, input_size: int, layout: str, forget_bias: float | None = None
) -> dict[str, Tensor]:
    """An nn.LSTMCell state_dict (bias=True) from a concatenated kernel ``(I+H, 4H)`` and
    bias in ``layout``, the run-time forget bias folded into ``bias_ih``'s f block."""
    forget_bias = RUNTIME_FORGET_BIAS[layout] if forget_bias is None else forget_bias
    kernel, bias = np.asarray(kernel), np.array(bias, copy=True)
    hidden = kernel.shape[1] // 4
    if kernel.shape != (input_size + hidden, 4 * hidden) or bias.shape != (4 * hidden,):
        raise ValueError(f"expected kernel {(input_size + hidden, 4 * hidden)} and bias {(4 * hidden,)}, "
                         f"found {kernel.shape} and {bias.shape}")
    bias[gate_slice(layout, "f", hidden)] += forget_bias
    weights = reorder_gates(kernel.T, layout, "torch")
    return {
        "weight_ih": torch.from_numpy(np.ascontiguousarray(weights[:, :input_size])),
        "weight_hh": torch.from_numpy(np.ascontiguousarray(weights[:, input_size:])),
        "bias_ih": torch.from_numpy(reorder_gates(bias, layout, "torch")),
        "bias_hh": torch.zeros(4 * hidden, dtype=torch.from_numpy(bias).dtype),
    }


# ----------------------------------------------------------------------------- GRU and Elman RNN
#
# torch's GRU (gate order r, z, n), per layer and direction:
#
#     r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
#     n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
#
# ONNX ``GRU`` (gate order z, r, h): W [D, 3H, I], R [D, 3H, H], B [D, 6H] = Wb || Rb, and the
# attribute ``linear_before_reset``: 1 is torch's n above; 0 (ONNX's default) computes
# n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), an equation torch's GRU cannot express.
# Keras ``GRU`` (gate order z, r, h): kernel (I, 3H), recurrent_kernel (H, 3H) and, with
# ``reset_after=True`` (Keras 2.x/3 default, torch's equation), bias (2, 3H) = [input bias,
# recurrent bias]; ``reset_after=False`` is ONNX's linear_before_reset=0 with one bias (3H,).
# The Elman RNN has one gate: ONNX ``RNN`` W [D, H, I], R [D, H, H], B [D, 2H] (activation Tanh
# or Relu); Keras ``SimpleRNN`` kernel (I, H), recurrent_kernel (H, H), bias (H,) = b_ih + b_hh.

#: The GRU's gate order of each layout, in torch's gate names (r reset, z update, n new; h in ONNX and Keras).
GRU_GATE_ORDERS: dict[str, tuple[str, ...]] = {
    "torch": ("r", "z", "n"),
    "onnx": ("z", "r", "n"),
    "keras": ("z", "r", "n"),
}
#: The attribute an ONNX GRU node needs to compute torch's GRU.
ONNX_GRU_LINEAR_BEFORE_RESET = 1


def reorder_gru_gates(values: Array, source: str, target: str, axis: int = 0) -> Array:
    """``values`` with its 3 GRU gate blocks along ``axis`` moved from ``source``'s order to ``target``'s."""
    blocks = dict(zip(GRU_GATE_ORDERS[source], np.split(np.asarray(values), 3, axis=axis), strict=True))
    return np.concatenate([blocks[gate] for gate in GRU_GATE_ORDERS[target]], axis=axis)


#: The torch module kind of a recurrent layout's gate count: 3 the GRU, 1 the Elman RNN.
RECURRENT_KINDS = {3: "GRU", 1: "RNN"}


def _reorder(values: Array, gates: int, source: str, target: str, axis: int = 0) -> Array:
    return reorder_gru_gates(values, source, target, axis) if gates == 3 else np.asarray(values)


def _torch_to_onnx_recurrent(state_dict: dict[str, Tensor], gates: int) -> list[LayerWeights]:
    config = _torch_config(state_dict, RECURRENT_KINDS[gates])
    layers = []
    for layer in range(config["num_layers"]):
        names = _suffixes(config, layer)
        weights = {key: np.stack([_reorder(_numpy(state_dict[name + n]), gates, "torch", "onnx") for n in names])
                   for key, name in (("W", "weight_ih"), ("R", "weight_hh"))}
        if config["bias"]:
            weights["B"] = np.stack([np.concatenate([_reorder(_numpy(state_dict[b + n]), gates, "torch", "onnx")
                                                     for b in ("bias_ih", "bias_hh")]) for n in names])
        layers.append(weights)
    return layers


def _onnx_to_torch_recurrent(layers: list[LayerWeights], gates: int) -> dict[str, Tensor]:
    state_dict: dict[str, Tensor] = {}
    for layer, weights in enumerate(layers):
        W, R = np.asarray(weights["W"]), np.asarray(weights["R"])
        hidden = R.shape[-1] if R.ndim == 3 else -1
        if W.ndim != 3 or R.ndim != 3 or W.shape[0] != R.shape[0] or W.shape[0] not in (1, 2) \
                or R.shape[1] != gates * hidden:
            raise ValueError(f"layer {layer}: expected W [D,{gates}H,I] and R [D,{gates}H,H] with D in (1, 2), "
                             f"found W {W.shape}, R {R.shape}")
        for direction in range(W.shape[0]):
            suffix = parameter_suffix(layer, direction)
            state_dict["weight_ih" + suffix] = torch.from_numpy(_reorder(W[direction], gates, "onnx", "torch"))
            state_dict["weight_hh" + suffix] = torch.from_numpy(_reorder(R[direction], gates, "onnx", "torch"))
            if weights.get("B") is not None:
                B = np.asarray(weights["B"])[direction]
                state_dict["bias_ih" + suffix] = torch.from_numpy(_reorder(B[: gates * hidden], gates, "onnx", "torch"))
                state_dict["bias_hh" + suffix] = torch.from_numpy(_reorder(B[gates * hidden:], gates, "onnx", "torch"))
    return state_dict


def torch_gru_to_onnx(state_dict: dict[str, Tensor]) -> list[LayerWeights]:
    """One ``{"W", "R", "B"}`` per layer (``B`` absent when bias=False) for ONNX GRU nodes with
    ``linear_before_reset=1`` (:data:`ONNX_GRU_LINEAR_BEFORE_RESET`). W [D,3H,I], R [D,3H,H], B [D,6H]."""
    return _torch_to_onnx_recurrent(state_dict, 3)


def onnx_gru_to_torch(layers: list[LayerWeights], linear_before_reset: int) -> dict[str, Tensor]:
    """A torch nn.GRU state_dict from one ``{"W", "R"[, "B"]}`` per ONNX GRU node.

    ``linear_before_reset`` is the nodes' attribute (ONNX's default is 0): 0 computes another
    equation than torch's GRU, which no torch weights reproduce, and is refused (ValueError).
    """
    if linear_before_reset != ONNX_GRU_LINEAR_BEFORE_RESET:
        raise ValueError(f"linear_before_reset={linear_before_reset}: ONNX's GRU then applies the reset gate "
                         "before the recurrent product, n = tanh(W_in x + b_in + W_hn (r * h) + b_hn); torch's "
                         "nn.GRU computes n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) (linear_before_reset=1) "
                         "and has no weights for the other equation")
    return _onnx_to_torch_recurrent(layers, 3)


def torch_rnn_to_onnx(state_dict: dict[str, Tensor]) -> list[LayerWeights]:
    """One ``{"W", "R", "B"}`` per layer for ONNX RNN nodes (activations Tanh or Relu, as the
    module's nonlinearity). W [D,H,I], R [D,H,H], B [D,2H]."""
    return _torch_to_onnx_recurrent(state_dict, 1)


def onnx_rnn_to_torch(layers: list[LayerWeights]) -> dict[str, Tensor]:
    """A torch nn.RNN state_dict from one ``{"W", "R"[, "B"]}`` per ONNX RNN node."""
    return _onnx_to_torch_recurrent(layers, 1)


def torch_gru_to_keras(state_dict: dict[str, Tensor]) -> list[list[LayerWeights]]:
    """Per layer, per direction, the weights of a Keras ``GRU(reset_after=True)``: kernel (I,3H),
    recurrent_kernel (H,3H), bias (2,3H) = [b_ih, b_hh] (absent when bias=False)."""
    def to_keras(values: Array) -> Array:
        return reorder_gru_gates(values, "torch", "keras")
    return _torch_to_keras_layers(_torch_config(state_dict, "GRU"), state_dict, to_keras,
                                  lambda bias_ih, bias_hh: np.stack([to_keras(bias_ih), to_keras(bias_hh)]))


def keras_gru_to_torch(layers: list[list[LayerWeights]], reset_after: bool = True) -> dict[str, Tensor]:
    """A torch nn.GRU state_dict from Keras GRU weights (per layer, per direction).

    ``reset_after=False`` (Keras 2.2's default, ONNX's linear_before_reset=0) computes another
    equation than torch's GRU and is refused (ValueError); its bias would be (3H,), not (2, 3H).
    """
    if not reset_after:
        raise ValueError("reset_after=False: Keras's GRU then applies the reset gate before the recurrent "
                         "product, hh = tanh(x W_h + b_h + (r * h) U_h); torch's nn.GRU computes "
                         "n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) (reset_after=True) and has no weights "
                         "for the other equation")

    def to_torch(values: Array) -> Array:
        return reorder_gru_gates(values, "keras", "torch")

    def bias_pair(bias: Array, layer: int) -> tuple[Array, Array]:
        if bias.ndim != 2 or bias.shape[0] != 2:
            raise ValueError(f"layer {layer}: expected a reset_after=True bias (2, 3H), found {bias.shape}")
        return to_torch(bias[0]), to_torch(bias[1])
    return _keras_to_torch_layers(layers, 3, to_torch, bias_pair)


def torch_rnn_to_keras(state_dict: dict[str, Tensor]) -> list[list[LayerWeights]]:
    """Per layer, per direction, a Keras ``SimpleRNN``'s weights: kernel (I,H), recurrent_kernel
    (H,H), bias (H,) = b_ih + b_hh (absent when bias=False)."""
    return _torch_to_keras_layers(_torch_config(state_dict, "RNN"), state_dict, np.asarray,
                                  lambda bias_ih, bias_hh: bias_ih + bias_hh)


def keras_simple_rnn_to_torch(layers: list[list[LayerWeights]]) -> dict[str, Tensor]:
    """A torch nn.RNN state_dict from Keras SimpleRNN weights; the one bias becomes ``bias_ih``
    and ``bias_hh`` is zero (torch only ever uses their sum)."""
    return _keras_to_torch_layers(layers, 1, np.asarray, _one_bias)

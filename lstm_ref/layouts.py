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


def _torch_config(state_dict: dict[str, Tensor]) -> dict[str, Any]:
    from lstm_ref.weights import find_lstms

    found = [f for f in find_lstms(state_dict) if f.prefix == "" and f.kind == "LSTM"]
    if not found:
        raise ValueError("expected a torch nn.LSTM state_dict (weight_ih_l0, weight_hh_l0, ...)")
    config = found[0].config
    if config["proj_size"]:
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

def torch_to_keras(state_dict: dict[str, Tensor]) -> list[list[LayerWeights]]:
    """Per layer, per direction (forward, then backward of a ``Bidirectional``), the
    weights of a Keras LSTM layer: ``kernel (I,4H)``, ``recurrent_kernel (H,4H)``,
    ``bias (4H,)`` = b_ih + b_hh (absent when bias=False, i.e. ``use_bias=False``)."""
    config = _torch_config(state_dict)
    layers = []
    for layer in range(config["num_layers"]):
        directions = []
        for suffix in _suffixes(config, layer):
            w_ih, w_hh = _numpy(state_dict["weight_ih" + suffix]), _numpy(state_dict["weight_hh" + suffix])
            weights = {
                "kernel": reorder_gates(w_ih, "torch", "keras").T,
                "recurrent_kernel": reorder_gates(w_hh, "torch", "keras").T,
            }
            if config["bias"]:
                bias = _numpy(state_dict["bias_ih" + suffix]) + _numpy(state_dict["bias_hh" + suffix])
                weights["bias"] = reorder_gates(bias, "torch", "keras")
            directions.append(weights)
        layers.append(directions)
    return layers


def keras_to_torch(layers: list[list[LayerWeights]]) -> dict[str, Tensor]:
    """A torch nn.LSTM state_dict from Keras LSTM weights (per layer, per direction).

    Keras has one bias; it becomes ``bias_ih`` and ``bias_hh`` is zero, which
    computes the same gates (torch only ever uses their sum).
    """
    state_dict: dict[str, Tensor] = {}
    for layer, directions in enumerate(layers):
        if len(directions) not in (1, 2):
            raise ValueError(f"layer {layer}: expected 1 or 2 directions, found {len(directions)}")
        for direction, weights in enumerate(directions):
            suffix = parameter_suffix(layer, direction)
            kernel, recurrent = np.asarray(weights["kernel"]), np.asarray(weights["recurrent_kernel"])
            if kernel.ndim != 2 or recurrent.shape != (recurrent.shape[0], 4 * recurrent.shape[0]):
                raise ValueError(f"layer {layer}: expected kernel (I,4H) and recurrent_kernel (H,4H), "
                                 f"found {kernel.shape} and {recurrent.shape}")
            state_dict["weight_ih" + suffix] = torch.from_numpy(reorder_gates(kernel.T, "keras", "torch"))
            state_dict["weight_hh" + suffix] = torch.from_numpy(reorder_gates(recurrent.T, "keras", "torch"))
            if weights.get("bias") is not None:
                bias = reorder_gates(np.asarray(weights["bias"]), "keras", "torch")
                state_dict["bias_ih" + suffix] = torch.from_numpy(bias)
                state_dict["bias_hh" + suffix] = torch.zeros_like(state_dict["bias_ih" + suffix])
    return state_dict


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

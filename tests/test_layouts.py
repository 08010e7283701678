"""Other frameworks' layouts: exact round trips, and each conversion run through an independent
implementation of that layout (onnx.reference's LSTM operator; the Keras and Haiku/TF equations
written in NumPy here)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lstm_ref import layouts
from lstm_ref.testing import assert_close, assert_lstm_close

DOCS = Path(__file__).resolve().parents[1] / "docs" / "weights.md"

CASES = {
    "L1-onedir-bias": dict(num_layers=1, bidirectional=False, bias=True),
    "L2-bidir-bias": dict(num_layers=2, bidirectional=True, bias=True),
    "L2-onedir-nobias": dict(num_layers=2, bidirectional=False, bias=False),
    "L1-bidir-nobias": dict(num_layers=1, bidirectional=True, bias=False),
}
IN, H, T, N = 3, 5, 6, 2


def make_lstm(case: dict, seed: int = 0) -> nn.LSTM:
    torch.manual_seed(seed)
    return nn.LSTM(IN, H, dtype=torch.float64, **case).eval()


def inputs(case: dict, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    states = case["num_layers"] * (2 if case["bidirectional"] else 1)
    draw = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)  # noqa: E731
    return draw(T, N, IN), draw(states, N, H), draw(states, N, H)


def lstm_result(output: np.ndarray, h_n: np.ndarray, c_n: np.ndarray) -> tuple:
    """NumPy arrays as nn.LSTM's result ``(output, (h_n, c_n))``."""
    output, h_n, c_n = (torch.from_numpy(np.ascontiguousarray(array)) for array in (output, h_n, c_n))
    return output, (h_n, c_n)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def test_docs_gate_order_table_is_the_module_constant():
    rows = re.findall(r"^\| `(\w+)` \| ([a-z, ]+) \|", DOCS.read_text(), flags=re.MULTILINE)
    documented = {layout: tuple(g.strip() for g in gates.split(",")) for layout, gates in rows}
    assert documented == layouts.GATE_ORDERS


@pytest.mark.parametrize("source", sorted(layouts.GATE_ORDERS))
def test_reorder_gates_there_and_back_is_identity(source):
    values = np.arange(4 * 3 * 2).reshape(12, 2)
    moved = layouts.reorder_gates(values, "torch", source)
    for gate in "ifgo":
        rows = values[layouts.gate_slice("torch", gate, 3)]
        assert np.array_equal(moved[layouts.gate_slice(source, gate, 3)], rows)
    assert np.array_equal(layouts.reorder_gates(moved, source, "torch"), values)


# ----------------------------------------------------------------------------- ONNX

@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_onnx_round_trips_are_exact(case):
    state_dict = make_lstm(case).state_dict()
    back = layouts.onnx_to_torch(layouts.torch_to_onnx(state_dict))
    assert back.keys() == state_dict.keys()
    assert all(torch.equal(back[k], v) for k, v in state_dict.items())
    onnx_layers = layouts.torch_to_onnx(state_dict)
    again = layouts.torch_to_onnx(layouts.onnx_to_torch(onnx_layers))
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(onnx_layers, again, strict=True) for k in a)


def run_onnx_reference(layers: list[dict], x: np.ndarray, h0: np.ndarray, c0: np.ndarray) -> tuple:
    """Stacked ONNX LSTM nodes, each run by onnx.reference: Y (T, D, N, H) -> (T, N, D*H) between layers."""
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install 'lstm-ref[onnx]'")
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    directions = layers[0]["W"].shape[0]
    h_n, c_n = [], []
    for k, weights in enumerate(layers):
        names = ["X", "W", "R", "B" if "B" in weights else "", "", "initial_h", "initial_c"]
        node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], hidden_size=H,
                                direction="bidirectional" if directions == 2 else "forward")
        states = slice(k * directions, (k + 1) * directions)
        feeds = {"X": x, "W": weights["W"], "R": weights["R"],
                 "initial_h": h0[states], "initial_c": c0[states]}
        if "B" in weights:
            feeds["B"] = weights["B"]
        graph = helper.make_graph(
            [node], f"lstm_layer{k}",
            [helper.make_tensor_value_info(n, TensorProto.DOUBLE, None) for n in feeds],
            [helper.make_tensor_value_info(n, TensorProto.DOUBLE, None) for n in ("Y", "Y_h", "Y_c")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        y, y_h, y_c = ReferenceEvaluator(model).run(None, feeds)
        x = y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)  # (T, N, D*H)
        h_n.append(y_h)
        c_n.append(y_c)
    assert onnx is not None
    return lstm_result(x, np.concatenate(h_n), np.concatenate(c_n))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_onnx_weights_run_by_onnx_reference_match_torch(case):
    module = make_lstm(case)
    x, h0, c0 = inputs(case)
    with torch.no_grad():
        expected = module(x, (h0, c0))
    actual = run_onnx_reference(layouts.torch_to_onnx(module.state_dict()), x.numpy(), h0.numpy(), c0.numpy())
    assert_lstm_close(actual, expected, steps=T)


def test_onnx_gate_order_bug_is_caught_by_the_reference_check():
    """Control: torch's order written as if it were ONNX's gives different numbers."""
    case = CASES["L1-onedir-bias"]
    module = make_lstm(case)
    x, h0, c0 = inputs(case)
    wrong = layouts.torch_to_onnx(module.state_dict())
    wrong[0]["W"] = layouts.reorder_gates(wrong[0]["W"], "onnx", "torch", axis=1)
    with torch.no_grad():
        output, _ = module(x, (h0, c0))
    actual, _ = run_onnx_reference(wrong, x.numpy(), h0.numpy(), c0.numpy())
    assert not torch.allclose(actual, output, atol=1e-3)


def test_onnx_rejects_projections_and_peepholes():
    with pytest.raises(ValueError, match="proj_size=2"):
        layouts.torch_to_onnx(nn.LSTM(3, 5, proj_size=2).state_dict())
    onnx_layers = layouts.torch_to_onnx(nn.LSTM(3, 5).state_dict())
    onnx_layers[0]["P"] = np.ones((1, 15))
    with pytest.raises(ValueError, match="peephole"):
        layouts.onnx_to_torch(onnx_layers)


# ----------------------------------------------------------------------------- Keras

def keras_lstm(weights: dict, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple:
    """Keras LSTM (recurrent_activation sigmoid, activation tanh), from its documentation:
    z = x_t kernel + h recurrent_kernel + bias; i, f, c~, o = split(z, 4);
    c = sigmoid(f) c + sigmoid(i) tanh(c~); h = sigmoid(o) tanh(c)."""
    outputs = []
    for x_t in x:
        z = x_t @ weights["kernel"] + h @ weights["recurrent_kernel"] + weights.get("bias", 0.0)
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
        h = sigmoid(z_o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs), h, c


def run_keras_equations(layers: list[list[dict]], x: np.ndarray, h0: np.ndarray, c0: np.ndarray) -> tuple:
    """Stacked Keras LSTMs; a Bidirectional layer runs the backward LSTM on x reversed in time,
    reverses its output back and concatenates (merge_mode='concat')."""
    h_n, c_n = [], []
    index = 0
    for directions in layers:
        outputs = []
        for direction, weights in enumerate(directions):
            sequence = x[::-1] if direction else x
            y, h, c = keras_lstm(weights, sequence, h0[index], c0[index])
            outputs.append(y[::-1] if direction else y)
            h_n.append(h)
            c_n.append(c)
            index += 1
        x = np.concatenate(outputs, axis=-1)
    return lstm_result(x, np.stack(h_n), np.stack(c_n))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_keras_weights_run_by_keras_equations_match_torch(case):
    module = make_lstm(case)
    x, h0, c0 = inputs(case)
    with torch.no_grad():
        expected = module(x, (h0, c0))
    keras = layouts.torch_to_keras(module.state_dict())
    actual = run_keras_equations(keras, x.numpy(), h0.numpy(), c0.numpy())
    assert_lstm_close(actual, expected, steps=T)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_keras_round_trips_are_exact(case):
    rng = np.random.default_rng(0)
    keras = [[{"kernel": rng.standard_normal((IN if k == 0 else H * len(ds), 4 * H)),
               "recurrent_kernel": rng.standard_normal((H, 4 * H)),
               **({"bias": rng.standard_normal(4 * H)} if case["bias"] else {})}
              for _ in ds]
             for k, ds in enumerate([[0, 1] if case["bidirectional"] else [0]] * case["num_layers"])]
    again = layouts.torch_to_keras(layouts.keras_to_torch(keras))
    for layer, layer_again in zip(keras, again, strict=True):
        for weights, weights_again in zip(layer, layer_again, strict=True):
            assert weights.keys() == weights_again.keys()
            assert all(np.array_equal(weights[k], weights_again[k]) for k in weights)
    # torch -> keras -> torch: the weights exactly; the biases as the one sum torch uses
    state_dict = make_lstm(case).state_dict()
    back = layouts.keras_to_torch(layouts.torch_to_keras(state_dict))
    assert back.keys() == state_dict.keys()
    for key in state_dict:
        if key.startswith("weight"):
            assert torch.equal(back[key], state_dict[key]), key
        elif key.startswith("bias_ih"):
            hh = key.replace("bias_ih", "bias_hh")
            assert torch.equal(back[key] + back[hh], state_dict[key] + state_dict[hh]), key


# ----------------------------------------------------------------------------- concatenated kernels

def haiku_lstm_cell(kernel: np.ndarray, bias: np.ndarray, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple:
    """Haiku's ``hk.LSTM.__call__``, from its documentation and source (haiku/_src/recurrent.py):
    gated = Linear(4H)(concat([x, h])), i.e. [x, h] @ w + b with w (I+H, 4H);
    i, g, f, o = split(gated, 4); f = sigmoid(f + 1) (the +1 is hard-coded);
    c = f c + sigmoid(i) tanh(g); h = sigmoid(o) tanh(c)."""
    gated = np.concatenate([x, h], axis=-1) @ kernel + bias
    i, g, f, o = np.split(gated, 4, axis=-1)
    c = sigmoid(f + 1) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def tf_lstm_block_cell(kernel: np.ndarray, bias: np.ndarray, x: np.ndarray, h: np.ndarray, c: np.ndarray,
                       forget_bias: float = 1.0) -> tuple:
    """TF's ``LSTMBlockCell`` (kernel lstm_ops.h, gate layout ICFO; ``BasicLSTMCell`` in
    rnn_cell_impl.py computes the same with i, j, f, o): xh = [x, h]; i, ci, f, o =
    split(xh @ w + b, 4) with w (I+H, 4H); f = f + forget_bias (argument, default 1.0);
    cs = sigmoid(i) tanh(ci) + sigmoid(f) c; h = sigmoid(o) tanh(cs)."""
    gates = np.concatenate([x, h], axis=-1) @ kernel + bias
    i, ci, f, o = np.split(gates, 4, axis=-1)
    cs = sigmoid(i) * np.tanh(ci) + sigmoid(f + forget_bias) * c
    return sigmoid(o) * np.tanh(cs), cs


#: Each concatenated-kernel layout's cell, written from that framework's documentation above (its
#: gate order and forget-gate constant spelled out there, not read from lstm_ref.layouts).
CONCAT_KERNEL_CELLS = {"haiku": haiku_lstm_cell, "tf_lstm_block_cell": tf_lstm_block_cell}


def check_concat_kernel_layout(layout: str) -> None:
    """Both directions of ``layout``'s conversion against the framework's own cell equations.

    Export: an nn.LSTMCell converted to ``layout`` and run by the framework's equations gives
    torch's (h, c). Import: a random kernel and bias in ``layout``, converted to torch, give
    the framework's (h, c) when nn.LSTMCell runs them. AssertionError when either differs.
    """
    framework_cell = CONCAT_KERNEL_CELLS[layout]
    torch.manual_seed(0)
    cell = nn.LSTMCell(IN, H, dtype=torch.float64)
    x, h0, c0 = (torch.randn(N, n, dtype=torch.float64) for n in (IN, H, H))
    with torch.no_grad():
        h_torch, c_torch = cell(x, (h0, c0))
    exported = layouts.torch_cell_to_concat_kernel(cell.state_dict(), layout)
    h, c = framework_cell(exported["kernel"], exported["bias"], x.numpy(), h0.numpy(), c0.numpy())
    assert_close(torch.from_numpy(h), h_torch, steps=1, name=f"h of the exported {layout} cell")
    assert_close(torch.from_numpy(c), c_torch, steps=1, name=f"c of the exported {layout} cell")

    rng = np.random.default_rng(1)
    kernel, bias = rng.uniform(-0.5, 0.5, (IN + H, 4 * H)), rng.uniform(-0.5, 0.5, 4 * H)
    h_framework, c_framework = framework_cell(kernel, bias, x.numpy(), h0.numpy(), c0.numpy())
    imported = nn.LSTMCell(IN, H, dtype=torch.float64)
    imported.load_state_dict(layouts.concat_kernel_to_torch_cell(kernel, bias, IN, layout))
    with torch.no_grad():
        h_imported, c_imported = imported(x, (h0, c0))
    assert_close(h_imported, torch.from_numpy(h_framework), steps=1, name=f"h of the imported {layout} cell")
    assert_close(c_imported, torch.from_numpy(c_framework), steps=1, name=f"c of the imported {layout} cell")


@pytest.mark.parametrize("layout", sorted(CONCAT_KERNEL_CELLS))
def test_concat_kernel_layout_runs_like_the_frameworks_cell(layout):
    check_concat_kernel_layout(layout)


def test_every_runtime_forget_bias_layout_has_its_frameworks_cell():
    assert sorted(layouts.RUNTIME_FORGET_BIAS) == sorted(CONCAT_KERNEL_CELLS)


@pytest.mark.parametrize("layout", sorted(CONCAT_KERNEL_CELLS))
@pytest.mark.parametrize("broken", ["forget_bias_0", "torch_gate_order", "onnx_gate_order"])
def test_a_broken_layout_table_fails_the_concat_kernel_check(layout, broken, monkeypatch):
    """Control: the check fails when the converter forgets the run-time +1 (the classic "forgot
    Haiku's forget bias" bug) or stacks the gates in another framework's order."""
    if broken == "forget_bias_0":
        monkeypatch.setitem(layouts.RUNTIME_FORGET_BIAS, layout, 0.0)
    else:
        monkeypatch.setitem(layouts.GATE_ORDERS, layout, layouts.GATE_ORDERS[broken.split("_")[0]])
    with pytest.raises(AssertionError, match="out of tolerance"):
        check_concat_kernel_layout(layout)


def test_concat_kernel_round_trip_folds_the_forget_bias_exactly():
    """torch -> layout -> torch: the weights exactly, the bias up to one rounding of b_f + 1."""
    torch.manual_seed(0)
    cell = nn.LSTMCell(IN, H, dtype=torch.float64)
    for layout in CONCAT_KERNEL_CELLS:
        converted = layouts.torch_cell_to_concat_kernel(cell.state_dict(), layout)
        back = layouts.concat_kernel_to_torch_cell(converted["kernel"], converted["bias"], IN, layout)
        assert torch.equal(back["weight_ih"], cell.weight_ih) and torch.equal(back["weight_hh"], cell.weight_hh)
        torch.testing.assert_close(back["bias_ih"] + back["bias_hh"], (cell.bias_ih + cell.bias_hh).detach(),
                                   rtol=0, atol=4e-16)

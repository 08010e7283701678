"""GRU and RNN weight layouts (lstm_ref.layouts): ONNX GRU/RNN and Keras GRU/SimpleRNN, both ways,
each checked round trip and against the other framework's own computation where it is installed
(onnx.reference's GRU and RNN operators; Keras 3 on its torch backend, in a subprocess)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from lstm_ref import layouts

T, N, I, H = 5, 3, 4, 6
MODULES = {
    "GRU": lambda: nn.GRU(I, H),
    "GRU-L2-bidir": lambda: nn.GRU(I, H, num_layers=2, bidirectional=True),
    "GRU-nobias": lambda: nn.GRU(I, H, bias=False),
    "RNN_TANH-L2-bidir": lambda: nn.RNN(I, H, num_layers=2, bidirectional=True),
    "RNN_RELU": lambda: nn.RNN(I, H, nonlinearity="relu"),
}


def module_of(name: str) -> nn.Module:
    torch.manual_seed(0)
    return MODULES[name]().double().eval()


def to_onnx(module: nn.Module) -> list[dict]:
    return (layouts.torch_gru_to_onnx if module.mode == "GRU" else layouts.torch_rnn_to_onnx)(module.state_dict())


def from_onnx(module: nn.Module, layers: list[dict]) -> dict:
    if module.mode == "GRU":
        return layouts.onnx_gru_to_torch(layers, linear_before_reset=1)
    return layouts.onnx_rnn_to_torch(layers)


def to_keras(module: nn.Module) -> list[list[dict]]:
    return (layouts.torch_gru_to_keras if module.mode == "GRU" else layouts.torch_rnn_to_keras)(module.state_dict())


def from_keras(module: nn.Module, layers: list[list[dict]]) -> dict:
    return (layouts.keras_gru_to_torch if module.mode == "GRU" else layouts.keras_simple_rnn_to_torch)(layers)


def same_function(module: nn.Module, state_dict: dict) -> None:
    """``state_dict`` loaded into a copy of ``module`` computes what ``module`` does."""
    copy = type(module)(I, H, num_layers=module.num_layers, bias=module.bias, bidirectional=module.bidirectional,
                        **({"nonlinearity": module.nonlinearity} if module.mode.startswith("RNN") else {}))
    copy.double().load_state_dict(state_dict, strict=True)
    x = torch.randn(T, N, I, dtype=torch.float64)
    torch.testing.assert_close(copy(x), module(x), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", MODULES)
def test_onnx_round_trip(name: str) -> None:
    module = module_of(name)
    back = from_onnx(module, to_onnx(module))
    assert back.keys() == module.state_dict().keys()
    for key, value in module.state_dict().items():
        assert torch.equal(back[key], value), key


@pytest.mark.parametrize("name", MODULES)
def test_keras_round_trip_computes_the_same(name: str) -> None:
    """Exact for the GRU (two biases kept); the SimpleRNN's one bias is b_ih + b_hh."""
    module = module_of(name)
    same_function(module, from_keras(module, to_keras(module)))


def run_onnx_reference(module: nn.Module, layers: list[dict], x: np.ndarray, h0: np.ndarray,
                       linear_before_reset: int = 1, runtime: str = "onnx.reference") -> tuple[np.ndarray, np.ndarray]:
    """Stacked ONNX GRU or RNN nodes run by onnx.reference (or ONNX Runtime, in x's dtype):
    output (T, N, D*H), h_n (L*D, N, H)."""
    pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install 'lstm-ref[onnx]'")
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    if runtime == "onnxruntime":
        onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: "
                                          "pip install 'lstm-ref[runtimes]'")

        def evaluator(model):
            return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    else:
        evaluator = ReferenceEvaluator
    element = TensorProto.DOUBLE if x.dtype == np.float64 else TensorProto.FLOAT

    directions = layers[0]["W"].shape[0]
    attributes = {"hidden_size": H, "direction": "bidirectional" if directions == 2 else "forward"}
    if module.mode == "GRU":
        attributes["linear_before_reset"] = linear_before_reset
    else:
        attributes["activations"] = ["Tanh" if module.mode == "RNN_TANH" else "Relu"] * directions
    h_n = []
    for k, weights in enumerate(layers):
        node = helper.make_node(module.mode.split("_")[0], ["X", "W", "R", "B" if "B" in weights else "", "",
                                                            "initial_h"], ["Y", "Y_h"], **attributes)
        feeds = {"X": x, "W": weights["W"], "R": weights["R"], "initial_h": h0[k * directions:(k + 1) * directions]}
        if "B" in weights:
            feeds["B"] = weights["B"]
        feeds = {name: np.ascontiguousarray(value, dtype=x.dtype) for name, value in feeds.items()}
        graph = helper.make_graph(
            [node], f"layer{k}", [helper.make_tensor_value_info(n, element, None) for n in feeds],
            [helper.make_tensor_value_info(n, element, None) for n in ("Y", "Y_h")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        model.ir_version = min(model.ir_version, 10)  # what ONNX Runtime reads
        y, y_h = evaluator(model).run(None, feeds)
        x = y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)
        h_n.append(y_h)
    return x, np.concatenate(h_n)


@pytest.mark.parametrize("name", MODULES)
def test_onnx_weights_run_by_onnx_reference_match_torch(name: str) -> None:
    module = module_of(name)
    if module.mode == "RNN_RELU":
        pytest.skip("onnx.reference's RNN operator implements the Tanh and Affine activations only")
    layers = module.num_layers * (2 if module.bidirectional else 1)
    x, h0 = torch.randn(T, N, I, dtype=torch.float64), torch.randn(layers, N, H, dtype=torch.float64)
    with torch.no_grad():
        expected, expected_h = module(x, h0)
    output, h_n = run_onnx_reference(module, to_onnx(module), x.numpy(), h0.numpy())
    np.testing.assert_allclose(output, expected.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n, expected_h.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", MODULES)
def test_onnx_weights_run_by_onnx_runtime_match_torch(name: str) -> None:
    """ONNX Runtime's own GRU and RNN kernels (float32; its RNN has Relu, onnx.reference's not)."""
    module = module_of(name).float()
    layers = module.num_layers * (2 if module.bidirectional else 1)
    x, h0 = torch.randn(T, N, I), torch.randn(layers, N, H)
    with torch.no_grad():
        expected, expected_h = module(x, h0)
    output, h_n = run_onnx_reference(module, to_onnx(module), x.numpy(), h0.numpy(), runtime="onnxruntime")
    np.testing.assert_allclose(output, expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n, expected_h.numpy(), rtol=1e-5, atol=1e-6)


def test_onnx_runtime_with_linear_before_reset_0_computes_another_gru() -> None:
    module = module_of("GRU").float()                  # one layer, one direction
    x, h0 = torch.randn(T, N, I), torch.randn(1, N, H)
    with torch.no_grad():
        expected, _ = module(x, h0)
    output, _ = run_onnx_reference(module, to_onnx(module), x.numpy(), h0.numpy(), linear_before_reset=0,
                                   runtime="onnxruntime")
    assert np.abs(output - expected.numpy()).max() > 1e-3


def test_onnx_linear_before_reset_0_is_another_equation_and_refused() -> None:
    """The same weights with ONNX's default linear_before_reset=0 compute something else (the
    exporter bug of pytorch/pytorch#189225 would be this), and importing such a node is refused."""
    module = module_of("GRU")
    x, h0 = torch.randn(T, N, I, dtype=torch.float64), torch.randn(1, N, H, dtype=torch.float64)
    with torch.no_grad():
        expected, _ = module(x, h0)
    output, _ = run_onnx_reference(module, to_onnx(module), x.numpy(), h0.numpy(), linear_before_reset=0)
    assert np.abs(output - expected.numpy()).max() > 1e-3
    with pytest.raises(ValueError, match="linear_before_reset=0: ONNX's GRU then applies the reset gate before"):
        layouts.onnx_gru_to_torch(to_onnx(module), linear_before_reset=0)


def test_keras_reset_after_false_is_refused_not_converted() -> None:
    with pytest.raises(ValueError, match="reset_after=False: Keras's GRU then applies the reset gate before"):
        layouts.keras_gru_to_torch(to_keras(module_of("GRU")), reset_after=False)
    bias_3h = [[{**to_keras(module_of("GRU"))[0][0], "bias": np.zeros(3 * H)}]]
    with pytest.raises(ValueError, match=r"reset_after=True bias \(2, 3H\)"):
        layouts.keras_gru_to_torch(bias_3h)


def test_an_lstm_state_dict_is_not_taken_for_a_gru() -> None:
    with pytest.raises(ValueError, match="expected an nn.GRU state_dict: weight_hh_l0 has 24 rows"):
        layouts.torch_gru_to_onnx(nn.LSTM(I, H).state_dict())


KERAS_SCRIPT = """
import json, sys
import numpy as np
import keras
case = json.loads(sys.stdin.read())
x = np.array(case["x"])[None]                       # (1, T, I): Keras is batch-major
results = {}
for name, weights in case["layers"].items():
    if name.startswith("GRU"):
        layer = keras.layers.GRU(case["H"], return_sequences=True, reset_after=name != "GRU-reset_before",
                                 dtype="float64")
    else:
        layer = keras.layers.SimpleRNN(case["H"], return_sequences=True, dtype="float64",
                                       activation="relu" if name == "RNN_RELU" else "tanh")
    layer.build(x.shape)
    layer.set_weights([np.array(w) for w in weights])
    results[name] = keras.ops.convert_to_numpy(layer(x))[0].tolist()
print(json.dumps(results))
"""


def test_keras_weights_run_by_keras_match_torch() -> None:
    """Keras 3 on its torch backend, in a fresh interpreter (its default backend, TensorFlow,
    need not be installed): GRU(reset_after=True) and SimpleRNN (tanh, relu) compute torch's
    outputs from the converted weights; the same weights in GRU(reset_after=False) do not."""
    if importlib.util.find_spec("keras") is None:  # not imported here: it would pick its default backend
        pytest.skip("keras is not installed")
    x = torch.randn(T, 1, I, dtype=torch.float64)
    names = {"GRU": "GRU", "GRU-reset_before": "GRU", "RNN_TANH": "RNN_TANH-L2-bidir", "RNN_RELU": "RNN_RELU"}
    modules = {name: module_of(source) for name, source in names.items()}
    layers = {}
    for name, module in modules.items():
        weights = to_keras(module)[0][0]
        if name == "GRU-reset_before":
            weights = {**weights, "bias": weights["bias"][0] + weights["bias"][1]}   # its bias is (3H,)
        layers[name] = [weights[key].tolist() for key in ("kernel", "recurrent_kernel", "bias")]
    case = json.dumps({"x": x[:, 0].tolist(), "H": H, "layers": layers})
    done = subprocess.run([sys.executable, "-c", KERAS_SCRIPT], input=case, capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "torch"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, module in modules.items():
        first_layer = type(module)(I, H, **({"nonlinearity": module.nonlinearity} if name.startswith("RNN") else {}))
        first_layer.double().load_state_dict({k: v for k, v in module.state_dict().items() if k.endswith("_l0")})
        with torch.no_grad():
            expected = first_layer(x)[0][:, 0].numpy()
        error = np.abs(np.array(results[name]) - expected).max()
        if name == "GRU-reset_before":
            assert error > 1e-3, "reset_after=False should compute another equation"
        else:  # Keras's SimpleRNN on the torch backend lands 6e-8 from float64 torch (its GRU 1e-16)
            assert error < (1e-12 if name == "GRU" else 1e-6), f"{name}: Keras differs from torch by {error}"


def test_a_keras_bias_of_the_wrong_width_is_refused_with_the_expected_shape() -> None:
    gru = to_keras(module_of("GRU"))
    gru[0][0]["bias"] = np.zeros((2, 2 * H))
    with pytest.raises(ValueError, match=rf"expected \({3 * H},\) each \(3H for H={H}\)"):
        layouts.keras_gru_to_torch(gru)
    rnn = to_keras(module_of("RNN_RELU"))
    rnn[0][0]["bias"] = np.zeros(H + 1)
    with pytest.raises(ValueError, match=rf"expected \({H},\) each"):
        layouts.keras_simple_rnn_to_torch(rnn)

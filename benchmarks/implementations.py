"""The implementations the benchmarks time, each behind one interface.

``IMPLEMENTATIONS[name](module, x)`` builds a :class:`Runner` for an ``nn.LSTM`` (float32,
CPU, eval mode) and an input x (T, N, I): ``forward()`` runs the forward pass,
``forward_backward()`` (None without autograd) the forward pass and the gradients of
``output.sum()`` with respect to x and every parameter, and ``results(out)`` turns what
forward returned into torch tensors ``(output, h_n, c_n)`` for the agreement check.
An implementation that cannot run (an optional package missing, a configuration it
does not support) raises :class:`Unavailable` with the reason.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

import lstm_ref
from lstm_ref import fast, layouts
from lstm_ref.candidates import Factory
from lstm_ref.conformance import torch_path


class Unavailable(Exception):
    """This implementation cannot run here; the message says why (the benchmark is skipped)."""


@dataclass
class Runner:
    forward: Callable[[], object]
    forward_backward: Callable[[], object] | None
    results: Callable[[object], tuple[Tensor, Tensor, Tensor]]


def _torch_results(out) -> tuple[Tensor, Tensor, Tensor]:
    output, (h_n, c_n) = out
    return output, h_n, c_n


def autograd_runner(call: Callable, parameters: list[Tensor], x: Tensor, path: str | None = None) -> Runner:
    """A Runner for a torch-callable with nn.LSTM.forward's signature; its backward takes the
    gradients of output.sum() with respect to x and ``parameters`` (those the call reads)."""
    x_grad = x.detach().clone().requires_grad_(True)
    wrt = [x_grad, *parameters]

    def forward():
        with torch.no_grad(), torch_path(path) if path else contextlib.nullcontext():
            return call(x)

    def forward_backward():
        with torch_path(path) if path else contextlib.nullcontext():
            output, _ = call(x_grad)
            return torch.autograd.grad(output.sum(), wrt, allow_unused=True)

    return Runner(forward, forward_backward, _torch_results)


def torch_onednn(module: nn.LSTM, x: Tensor) -> Runner:
    return autograd_runner(module, list(module.parameters()), x, "onednn")


def torch_native(module: nn.LSTM, x: Tensor) -> Runner:
    return autograd_runner(module, list(module.parameters()), x, "native")


def lstm_ref_readable(module: nn.LSTM, x: Tensor) -> Runner:
    ref = lstm_ref.LSTM.from_torch(module)
    return autograd_runner(ref, list(ref.parameters()), x)


def lstm_ref_fast(module: nn.LSTM, x: Tensor) -> Runner:
    return autograd_runner(fast.from_torch(module), list(module.parameters()), x)


def numpy_oracle(module: nn.LSTM, x: Tensor) -> Runner:
    try:
        from lstm_ref import oracle
    except ImportError as error:
        raise Unavailable(f"lstm_ref.oracle is not available: {error}") from None
    model = oracle.LSTM.from_torch(module)
    x_numpy = x.numpy()

    def results(out):
        output, (h_n, c_n) = out
        return tuple(torch.from_numpy(np.ascontiguousarray(a)).float() for a in (output, h_n, c_n))

    return Runner(lambda: model(x_numpy), None, results)


def onnx_model(module: nn.LSTM):
    """An ONNX graph of ``module``: one ``LSTM`` node per layer (gate order i, o, f, c).

    Per layer, the weights of :func:`lstm_ref.layouts.torch_to_onnx`: W [D, 4H, I_l],
    R [D, 4H, H], B [D, 8H] = W_b || R_b. The node's Y [T, D, N, H] becomes the next
    layer's input [T, N, D*H] (Transpose + Reshape). Inputs X [T, N, I]; outputs
    Y [T, N, D*H], Y_h and Y_c [L*D, N, H] (layers concatenated).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise Unavailable("onnx is not installed (pip install onnx)") from None
    if module.proj_size:
        raise Unavailable("ONNX's LSTM operator has no projection (proj_size)")
    hidden, directions = module.hidden_size, 2 if module.bidirectional else 1

    nodes, initializers, h_names, c_names = [], [], [], []
    layer_input = "X"
    for layer, weights in enumerate(layouts.torch_to_onnx(module.state_dict())):
        initializers += [numpy_helper.from_array(value.astype(np.float32), f"{name}{layer}")
                         for name, value in weights.items()]
        y, h, c = f"Y{layer}", f"Y_h{layer}", f"Y_c{layer}"
        nodes.append(helper.make_node(
            "LSTM", [layer_input, f"W{layer}", f"R{layer}", f"B{layer}" if module.bias else ""],
            [y, h, c], hidden_size=hidden,
            direction="bidirectional" if directions == 2 else "forward"))
        nodes.append(helper.make_node("Transpose", [y], [f"{y}_tndh"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"{y}_tndh", "flat_shape"], [f"{y}_flat"]))
        layer_input = f"{y}_flat"
        h_names.append(h)
        c_names.append(c)
    initializers.append(numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "flat_shape"))
    nodes.append(helper.make_node("Identity", [layer_input], ["Y"]))
    nodes.append(helper.make_node("Concat", h_names, ["Y_h"], axis=0))
    nodes.append(helper.make_node("Concat", c_names, ["Y_c"], axis=0))
    float_tensor = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "lstm", [helper.make_tensor_value_info("X", float_tensor, ["T", "N", module.input_size])],
        [helper.make_tensor_value_info("Y", float_tensor, ["T", "N", directions * hidden]),
         *(helper.make_tensor_value_info(name, float_tensor, [module.num_layers * directions, "N", hidden])
           for name in ("Y_h", "Y_c"))],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model


def _onnx_results(out) -> tuple[Tensor, Tensor, Tensor]:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in out)


def onnxruntime_lstm(module: nn.LSTM, x: Tensor) -> Runner:
    model = onnx_model(module)
    try:
        import onnxruntime
    except ImportError:
        raise Unavailable("onnxruntime is not installed (pip install onnxruntime)") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    feed = {"X": x.numpy()}
    return Runner(lambda: session.run(None, feed), None, _onnx_results)


def onnx_reference_lstm(module: nn.LSTM, x: Tensor) -> Runner:
    model = onnx_model(module)
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(model)
    feed = {"X": x.numpy()}
    return Runner(lambda: evaluator.run(None, feed), None, _onnx_results)


def candidate(factory: Factory) -> Callable[[nn.LSTM, Tensor], Runner]:
    """The ``--lstm-impl`` candidate; forward+backward when its output carries a grad_fn."""

    def build(module: nn.LSTM, x: Tensor) -> Runner:
        own = copy.deepcopy(module)
        try:
            call = factory(own)
            probe, _ = call(x[:1].detach().clone().requires_grad_(True))
        except NotImplementedError as error:
            raise Unavailable(f"unsupported by the candidate: {error}") from None
        runner = autograd_runner(call, list(own.parameters()), x)
        if not (isinstance(probe, Tensor) and probe.requires_grad):
            runner.forward_backward = None
        return runner

    return build


#: name -> builder; "nn.LSTM-onednn" is the baseline every ratio is taken against.
BASELINE = "nn.LSTM-onednn"
IMPLEMENTATIONS: dict[str, Callable[[nn.LSTM, Tensor], Runner]] = {
    BASELINE: torch_onednn,
    "nn.LSTM-native": torch_native,
    "lstm_ref-fast": lstm_ref_fast,
    "lstm_ref-readable": lstm_ref_readable,
    "numpy-oracle": numpy_oracle,
    "onnxruntime": onnxruntime_lstm,
    "onnx-reference": onnx_reference_lstm,
}

"""Real runtimes as candidates: the paths people take to deploy a trained ``nn.LSTM``.

Each factory below follows the harness's protocol (:mod:`lstm_ref.candidates`): it is
called with a configured, initialised ``torch.nn.LSTM`` and returns a callable with
``nn.LSTM.forward``'s signature and return structure; ``NotImplementedError`` marks a
configuration the path cannot express (*unsupported*, with the tool's own reason). The
short names are in ``lstm_ref.candidates.BUILTIN``; optional packages are imported when a
factory is called, so a missing one makes that runtime unsupported, not the module
unimportable.

What each one converts:

- ``onnx-export``: ``torch.onnx.export(module, ..., dynamo=True)`` (torch's default exporter:
  ``torch.export`` then onnxscript's translation, which maps ``aten.lstm`` to ONNX ``LSTM``
  nodes), run by ONNX Runtime's CPU provider.
- ``onnxruntime-op``: ONNX's ``LSTM`` operator (``GRU`` with ``linear_before_reset=1``, ``RNN``)
  built here from the weights with :func:`lstm_ref.layouts.torch_to_onnx` (gates i, o, f, c;
  ``torch_gru_to_onnx``: z, r, h; ``torch_rnn_to_onnx``) (one node per layer, both directions in
  it; ``layout=1`` for batch_first; ``sequence_lens`` for packed input).
- ``torch-compile``: ``torch.compile(module)`` (inductor, CPU), RNNs traced (``allow_rnn``).
- ``torchscript``: ``torch.jit.script(module)``.
- ``torch-export``: ``torch.export.export(module, example)``, then the program's module.
- ``quantized-dynamic``: ``torch.ao.quantization.quantize_dynamic`` (int8 weights,
  float32 activations): not expected to meet the float tolerance.
- ``numpy-oracle``: :class:`lstm_ref.oracle.LSTM` (NumPy, float64), results cast back.

Export at one shape, run at another: the exporting runtimes export once per module
configuration, input rank and sequence length, from an example batch of
:data:`EXAMPLE_BATCH` sequences with initial states, with the batch dimension dynamic
(``torch.export.Dim``); every configuration then runs its own batch size and states
through the cached artifact, with its own weights swapped in. The sequence length is
exported static: ``torch.export`` specialises it for ``nn.LSTM`` (see docs/runtimes.md).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstm_ref import layouts, oracle

State = tuple[Tensor, Tensor] | None
Forward = Callable[..., tuple[Any, tuple[Tensor, Tensor]]]

#: The example batch the exporters trace. Not 1, though a user exporting from one example
#: sequence would: torch.export.export specialises dimensions of size 0 and 1 and refuses a
#: dynamic batch from an N=1 example ("Constraints violated (batch)"), and torch.onnx.export
#: then applies torch.export's suggested fix, batch = 1, silently in a fresh process, but not
#: after an earlier export in the same process (docs/runtimes.md, finding 8): the survey's
#: verdicts would depend on the order of its configurations.
EXAMPLE_BATCH = 2

#: Artifacts per key (module configuration, input kind, sequence length): exports are slow.
_CACHE: dict[tuple, Any] = {}


def _config_key(module: nn.LSTM) -> tuple:
    """What an exported artifact depends on, besides the weights (which are swapped in)."""
    weight = module.weight_ih_l0
    return (module.mode, module.input_size, module.hidden_size, module.num_layers, module.bias, module.batch_first,
            module.bidirectional, module.proj_size, module.dropout, module.training,
            weight.dtype, weight.device.type)


def _cached(key: tuple, build: Callable[[], Any]) -> Any:
    """``build()``'s result for ``key``, built once; a NotImplementedError is cached too."""
    if key not in _CACHE:
        try:
            _CACHE[key] = build()
        except NotImplementedError as error:
            _CACHE[key] = error
    found = _CACHE[key]
    if isinstance(found, NotImplementedError):
        raise found
    return found


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Exporters print progress, graphs and warnings about nn.LSTM's internals: keep them out of reports."""
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)


def _import(name: str, runtime: str) -> Any:
    """Import an optional package, or make ``runtime`` unsupported saying how to install it."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError as error:
        raise NotImplementedError(f"{runtime} needs {name.split('.')[0]}, which is not installed "
                                  f"(pip install 'lstm-ref[runtimes]'): {error}") from None


def _zero_state(module: nn.LSTM, input: Tensor) -> tuple[Tensor, ...]:
    """torch's default state for a dense input: zeros (L*D, N, H_out) and, for the LSTM, (L*D, N, H)
    (without N unbatched), as a state tuple: (h0, c0) for the LSTM, (h0,) for the GRU and the RNN."""
    layers = module.num_layers * (2 if module.bidirectional else 1)
    batch = () if input.dim() == 2 else (input.shape[0 if module.batch_first else 1],)
    h_out = module.proj_size or module.hidden_size
    options = dict(dtype=input.dtype, device=input.device)
    h0 = torch.zeros(layers, *batch, h_out, **options)
    return (h0, torch.zeros(layers, *batch, module.hidden_size, **options)) if module.mode == "LSTM" else (h0,)


def _states(module: nn.LSTM, hx: object, input: Tensor) -> tuple[Tensor, ...]:
    """The caller's hx as a state tuple ((h0, c0), or (h0,) for the GRU and the RNN), zeros for None."""
    if hx is None:
        return _zero_state(module, input)
    return tuple(hx) if module.mode == "LSTM" else (hx,)  # type: ignore[arg-type]


def _call_form(module: nn.LSTM, states: tuple[Tensor, ...]) -> Any:
    """A state tuple as torch's module of the kind takes and returns it: (h, c), or the tensor h."""
    return states if module.mode == "LSTM" else states[0]


def _example(module: nn.LSTM, steps: int, unbatched: bool) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """An input of ``steps`` steps (EXAMPLE_BATCH sequences unless unbatched) with random states."""
    weight = module.weight_ih_l0
    shape = (steps, module.input_size) if unbatched else (
        (EXAMPLE_BATCH, steps, module.input_size) if module.batch_first else (steps, EXAMPLE_BATCH, module.input_size))
    generator = torch.Generator().manual_seed(0)  # not the caller's random stream

    def draw(*size: int) -> Tensor:
        return torch.randn(*size, generator=generator, dtype=weight.dtype).to(weight.device)

    x = draw(*shape)
    return x, _call_form(module, tuple(draw(*state.shape) for state in _zero_state(module, x)))


def _batch_dynamic(module: nn.LSTM, unbatched: bool) -> dict:
    """``dynamic_shapes`` for ``forward(input, hx)``: the batch dimension free, the rest static."""
    lstm = module.mode == "LSTM"
    if unbatched:
        return {"input": {}, "hx": ({}, {}) if lstm else {}}
    batch = torch.export.Dim("batch")
    return {"input": {0 if module.batch_first else 1: batch}, "hx": ({1: batch}, {1: batch}) if lstm else {1: batch}}


def _steps(module: nn.LSTM, input: Tensor) -> int:
    return input.shape[1 if module.batch_first and input.dim() == 3 else 0]


def _refusal(exporter: str, error: Exception) -> NotImplementedError:
    """The exporter's own reason: its exception and the first line of the innermost cause (the
    ONNX exporter wraps torch.export's error in a generic one)."""
    cause = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    inner = "" if cause is error else f" <- {type(cause).__name__}: {_first_lines(str(cause), 1)}"
    return NotImplementedError(f"{exporter}: {type(error).__name__}: {_first_lines(str(error), 1)}{inner}")


def _refuse_packed(module: nn.LSTM, exporter: str, export: Callable[..., Any], input: PackedSequence,
                   hx: State) -> NoReturn:
    """Export ``module`` on the PackedSequence (once per module configuration) and raise the
    exporter's refusal as NotImplementedError. The artifacts take tensors: were the export to
    succeed, the packed input still could not be fed, which is said instead."""
    def attempt() -> NoReturn:
        with _quiet():
            try:
                export(module, (input, hx))
            except Exception as error:
                raise _refusal(exporter, error) from None
        raise NotImplementedError(f"{exporter} exported a PackedSequence input; this adapter feeds "
                                  "exported artifacts tensors only")

    _cached((exporter, "packed", _config_key(module)), attempt)
    raise AssertionError("attempt() always raises")


def _packed_like(padded: Tensor, like: PackedSequence, batch_first: bool) -> PackedSequence:
    """``padded`` (caller's batch order) packed with ``like``'s batch_sizes and indices."""
    if batch_first:
        padded = padded.transpose(0, 1)                         # (N, T, ...) -> (T, N, ...)
    order = like.sorted_indices if like.sorted_indices is not None else torch.arange(padded.shape[1])
    lengths = torch.tensor([int((like.batch_sizes > n).sum()) for n in range(len(order))])
    data = pack_padded_sequence(padded[:, order.to(padded.device)], lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _detached_numpy(tensor: Tensor) -> np.ndarray:
    """A NumPy copy of ``tensor`` (any strides, any device); the caller's tensor is untouched."""
    return np.ascontiguousarray(tensor.detach().cpu().numpy())


# ----------------------------------------------------------------------------- ONNX Runtime

def _session(model_bytes: bytes) -> Any:
    """An ONNX Runtime CPU session with torch's intra-op thread count."""
    onnxruntime = _import("onnxruntime", "ONNX Runtime")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 4  # fatal only: its errors reach the caller as exceptions
    with _unsupported_kernel():
        return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


#: How ONNX Runtime's CPU LSTM (GRU, RNN) kernel refuses what it does not implement, e.g. "LSTM operator
#: does not support double yet", "Batchwise recurrent operations (layout == 1) are not supported",
#: "Could not find an implementation for RNN(14) node" (no float64 GRU or RNN kernel).
KERNEL_REFUSALS = ("does not support", "are not supported", "Could not find an implementation")


@contextlib.contextmanager
def _unsupported_kernel() -> Iterator[None]:
    """Turn ONNX Runtime's refusals (:data:`KERNEL_REFUSALS`) into NotImplementedError."""
    try:
        yield
    except Exception as error:
        reason = re.search("[^:]*(?:{})[^.]*".format("|".join(KERNEL_REFUSALS)), str(error))
        if reason:
            raise NotImplementedError(f"ONNX Runtime: {reason.group(0).strip()}") from None
        raise


def _run_session(session: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    with _unsupported_kernel():
        return session.run(None, feed)


def _as_torch(array: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=like.device, dtype=like.dtype)


def onnx_export(module: nn.LSTM) -> Forward:
    """``torch.onnx.export(module, (x, (h0, c0)), dynamo=True, dynamic_shapes=batch, optimize=False)``
    run by ONNX Runtime (CPU).

    ``optimize=False`` keeps the parameters as named initializers, so the cached model takes
    each configuration's weights with ``ONNXProgram.apply_weights`` (the optimiser folds them
    into anonymous constants). ``hx=None`` is fed as zeros, which is what torch computes.
    """
    _import("onnxscript", "torch.onnx.export (dynamo=True)")
    state = {name: tensor.detach() for name, tensor in module.state_dict().items()}

    def export(steps: int, unbatched: bool) -> Any:
        example = _example(module, steps, unbatched)
        with _quiet():
            try:
                program = torch.onnx.export(module, example, dynamo=True, optimize=False,
                                            dynamic_shapes=_batch_dynamic(module, unbatched), verbose=False)
            except Exception as error:  # what the exporter cannot express, in its own words
                raise _refusal("torch.onnx.export", error) from None
        return program

    def forward(input: Tensor | PackedSequence, hx: State = None):
        if isinstance(input, PackedSequence):
            _refuse_packed(module, "torch.onnx.export",
                           lambda m, args: torch.onnx.export(m, args, dynamo=True, verbose=False), input, hx)
        unbatched = input.dim() == 2
        program = _cached(("onnx-export", _config_key(module), unbatched, _steps(module, input)),
                          lambda: export(_steps(module, input), unbatched))
        with _quiet():  # it warns of names the model lacks, which are an error here
            program.apply_weights(state)
        session = _session(program.model_proto.SerializeToString())
        unused = set(state) - {i.name for i in program.model_proto.graph.initializer}
        if unused:  # apply_weights skips names the model lacks: the output cannot be this module's
            raise RuntimeError(f"the exported model has no initializer for {', '.join(sorted(unused))}")
        states = _states(module, hx, input)
        feed = dict(zip([i.name for i in session.get_inputs()], map(_detached_numpy, (input, *states))))
        output, *finals = _run_session(session, feed)
        return _as_torch(output, input), _call_form(module, tuple(_as_torch(f, input) for f in finals))

    return forward


def _first_lines(text: str, count: int = 3) -> str:
    """The first ``count`` non-empty lines of ``text`` as one line, terminal colours removed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:count])


#: Per kind: the ONNX operator and the converter of torch's weights to its W, R, B (lstm_ref.layouts).
ONNX_OPERATORS: dict[str, tuple[str, Callable[[dict[str, Tensor]], list[dict[str, np.ndarray]]]]] = {
    "LSTM": ("LSTM", layouts.torch_to_onnx),
    "GRU": ("GRU", layouts.torch_gru_to_onnx),
    "RNN_TANH": ("RNN", layouts.torch_rnn_to_onnx),
    "RNN_RELU": ("RNN", layouts.torch_rnn_to_onnx),
}


def _onnx_attributes(module: nn.Module, directions: int) -> dict[str, Any]:
    """The attributes that make the kind's ONNX operator compute torch's module: a GRU's
    ``linear_before_reset=1`` (ONNX's default 0 is another equation), an RNN's activation."""
    if module.mode == "GRU":
        return {"linear_before_reset": layouts.ONNX_GRU_LINEAR_BEFORE_RESET}
    if module.mode.startswith("RNN_"):
        return {"activations": [module.nonlinearity.capitalize()] * directions}
    return {}


def _onnx_state_names(module: nn.Module) -> tuple[str, ...]:
    """The state inputs of the kind's ONNX operator: initial_h and, for the LSTM, initial_c."""
    return ("initial_h", "initial_c") if module.mode == "LSTM" else ("initial_h",)


def onnx_recurrent_model(module: nn.Module, packed: bool, unbatched: bool) -> Any:
    """An ONNX model of ``module`` (nn.LSTM, nn.GRU or nn.RNN) built from the kind's ONNX operator
    (``LSTM``, ``GRU`` with ``linear_before_reset=1``, ``RNN`` with ``Tanh`` or ``Relu``), one
    node per layer.

    Inputs ``X`` ([T, N, I], or [N, T, I] with ``layout=1`` when batch_first), per layer
    ``initial_h{k}`` (and for the LSTM ``initial_c{k}``) ([D, N, H], layout 1: [N, D, H]), and
    ``sequence_lens`` ([N] int32) when packed. Layer k's ``Y`` [T, D, N, H] (layout 1: [N, T, D, H])
    becomes layer k+1's input [T, N, D*H] (Transpose + Reshape; layout 1: Reshape). Outputs ``Y``
    of the last layer and every layer's ``Y_h{k}`` (and ``Y_c{k}``). Unbatched input runs as N = 1.
    """
    operator, to_onnx = ONNX_OPERATORS[module.mode]
    onnx = _import("onnx", f"ONNX's {operator} operator")
    from onnx import TensorProto, helper, numpy_helper

    if getattr(module, "proj_size", 0):
        raise NotImplementedError("ONNX's LSTM operator has no projection (proj_size); "
                                  "lstm_ref.layouts.torch_to_onnx refuses it")
    if module.training and module.dropout and module.num_layers > 1:
        raise NotImplementedError(f"ONNX's {operator} operator has no dropout between layers (training mode)")
    dtype = module.weight_ih_l0.dtype
    elem = {torch.float32: TensorProto.FLOAT, torch.float64: TensorProto.DOUBLE}.get(dtype)
    if elem is None:
        raise NotImplementedError(f"ONNX {operator} model built for float32 and float64, not {dtype}")
    numpy_dtype = np.float32 if dtype == torch.float32 else np.float64
    layout = 1 if module.batch_first and not unbatched else 0
    hidden, directions = module.hidden_size, 2 if module.bidirectional else 1
    state_names = _onnx_state_names(module)
    final_names = tuple(name.replace("initial_", "Y_") for name in state_names)   # Y_h, Y_c
    state = {name: tensor.detach().cpu() for name, tensor in module.state_dict().items()}
    initializers = [numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "flat")]
    nodes, inputs, outputs = [], [helper.make_tensor_value_info("X", elem, [None] * 3)], []
    if packed:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["N"]))
    layer_input = "X"
    for layer, weights in enumerate(to_onnx(state)):
        names = {key: f"{key}{layer}" for key in weights}
        initializers += [numpy_helper.from_array(value.astype(numpy_dtype), names[key])
                         for key, value in weights.items()]
        initial = [f"{name}{layer}" for name in state_names]
        finals = [f"{name}{layer}" for name in final_names]
        y = f"Y{layer}"
        inputs += [helper.make_tensor_value_info(name, elem, [None] * 3) for name in initial]
        nodes.append(helper.make_node(
            operator, [layer_input, names["W"], names["R"], names.get("B", ""),
                       "sequence_lens" if packed else "", *initial], [y, *finals],
            hidden_size=hidden, layout=layout, direction="bidirectional" if directions == 2 else "forward",
            **_onnx_attributes(module, directions)))
        if layout == 0:  # Y [T, D, N, H] -> [T, N, D, H] -> [T, N, D*H]
            nodes.append(helper.make_node("Transpose", [y], [f"{y}_tndh"], perm=[0, 2, 1, 3]))
            y = f"{y}_tndh"
        nodes.append(helper.make_node("Reshape", [y, "flat"], [f"{y}_flat"]))  # layout 1: [N, T, D*H]
        layer_input = f"{y}_flat"
        outputs += [helper.make_tensor_value_info(name, elem, [None] * 3) for name in finals]
    nodes.append(helper.make_node("Identity", [layer_input], ["Y"]))
    outputs.insert(0, helper.make_tensor_value_info("Y", elem, [None] * 3))
    graph = helper.make_graph(nodes, operator.lower(), inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model


def onnxruntime_op(module: nn.Module) -> Forward:
    """The kind's ONNX operator built from the weights (:func:`onnx_recurrent_model`), run by ONNX Runtime.

    A PackedSequence is padded and fed with ``sequence_lens``; the output is packed again with
    the input's batch_sizes and indices. h0 (and c0) rows ``layer*D + direction`` go to layer k's
    ``initial_h`` (``initial_c``) ([D, N, H], or [N, D, H] with layout 1); ``Y_h`` (``Y_c``) come
    back the same way.
    """
    batch_first = module.batch_first
    count = len(_onnx_state_names(module))

    def forward(input: Tensor | PackedSequence, hx: State = None):
        packed = isinstance(input, PackedSequence)
        x, lengths = pad_packed_sequence(input, batch_first=batch_first) if packed else (input, None)
        unbatched = x.dim() == 2
        layout = 1 if batch_first and not unbatched else 0
        model = onnx_recurrent_model(module, packed, unbatched)
        session = _session(model.SerializeToString())
        states = _states(module, hx, x)
        if unbatched:
            x, states = x.unsqueeze(0 if layout else 1), tuple(s.unsqueeze(1) for s in states)
        feed = {"X": _detached_numpy(x)}
        if packed:
            feed["sequence_lens"] = lengths.numpy().astype(np.int32)
        directions = 2 if module.bidirectional else 1
        for layer in range(module.num_layers):
            rows = slice(layer * directions, (layer + 1) * directions)
            for name, state in zip(_onnx_state_names(module), states):
                per_layer = state[rows] if layout == 0 else state[rows].transpose(0, 1)   # [N, D, H]
                feed[f"{name}{layer}"] = _detached_numpy(per_layer)
        output, *finals = _run_session(session, feed)
        like = x
        finals = [_as_torch(np.concatenate([f if layout == 0 else f.transpose(1, 0, 2) for f in finals[k::count]]),
                            like) for k in range(count)]
        output = _as_torch(output, like)
        if unbatched:
            output, finals = output.squeeze(0 if layout else 1), [f.squeeze(1) for f in finals]
        if packed:
            output = _packed_like(output, input, batch_first)
        return output, _call_form(module, tuple(finals))

    return forward


# ----------------------------------------------------------------------------- torch's own paths

#: torch.compile settings for the duration of a call: dynamo traces nn.LSTM only with
#: ``allow_rnn`` (by default it leaves RNN modules out of the graph and they run eagerly), and
#: its one cache of compiled graphs for ``nn.LSTM.forward``, shared by every instance, would
#: silently fall back to eager past ``recompile_limit`` entries (torch 2.1's ``cache_size_limit``;
#: the names this torch lacks are left out).
COMPILE_SETTINGS = dict(allow_rnn=True, recompile_limit=100_000, accumulated_recompile_limit=100_000,
                        cache_size_limit=100_000)


def torch_compile(module: nn.LSTM) -> nn.Module:
    """``torch.compile(module)`` (inductor, CPU) on the module itself (its parameters, its
    autograd), with :data:`COMPILE_SETTINGS` so that the LSTM is compiled, not run eagerly."""
    compiled = torch.compile(module, backend="inductor")

    class Compiled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.compiled = compiled

        def forward(self, input: Tensor | PackedSequence, hx: State = None):
            settings = {name: value for name, value in COMPILE_SETTINGS.items() if hasattr(torch._dynamo.config, name)}
            with torch._dynamo.config.patch(**settings):
                return self.compiled(input, hx)

    return Compiled()


def torchscript(module: nn.LSTM) -> nn.Module:
    """``torch.jit.script(module)``, sharing the module's parameters.

    A scripted nn.LSTM has no ``forward``: torch compiles its two overloads as ``forward__0``
    (Tensor input) and ``forward__1`` (PackedSequence). The latter returns TorchScript's
    PackedSequence named tuple; it is converted to ``nn.utils.rnn.PackedSequence``.
    """
    with _quiet():
        scripted = torch.jit.script(module)

    class Scripted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scripted = scripted

        def forward(self, input: Tensor | PackedSequence, hx: State = None):
            if not isinstance(input, PackedSequence):
                return self.scripted.forward__0(input, hx)
            output, state = self.scripted.forward__1(input, hx)
            return PackedSequence(output.data, output.batch_sizes, output.sorted_indices,
                                  output.unsorted_indices), state

    return Scripted()


def torch_export(module: nn.LSTM) -> Forward:
    """``torch.export.export(module, (x, (h0, c0)), dynamic_shapes=batch)``, run as
    ``program.module()`` with the given module's parameters (``torch.func.functional_call``),
    so gradients reach them. ``hx=None`` is fed as zeros.
    """
    parameters = dict(module.named_parameters())
    buffers = dict(module.named_buffers())

    def export(steps: int, unbatched: bool) -> nn.Module:
        example = _example(module, steps, unbatched)
        with _quiet():
            try:
                program = torch.export.export(module, example, dynamic_shapes=_batch_dynamic(module, unbatched))
            except Exception as error:
                raise _refusal("torch.export.export", error) from None
        return program.module()

    def forward(input: Tensor | PackedSequence, hx: State = None):
        if isinstance(input, PackedSequence):
            _refuse_packed(module, "torch.export.export", torch.export.export, input, hx)
        unbatched = input.dim() == 2
        program = _cached(("torch-export", _config_key(module), unbatched, _steps(module, input)),
                          lambda: export(_steps(module, input), unbatched))
        state = hx if hx is not None else _call_form(module, _zero_state(module, input))
        return torch.func.functional_call(program, {**parameters, **buffers}, (input, state))

    return forward


def quantized_dynamic(module: nn.LSTM) -> Forward:
    """``torch.ao.quantization.quantize_dynamic(holder, {nn.LSTM}, dtype=torch.qint8)`` on a copy:
    int8 weights (per-tensor scale), float32 activations. The quantized LSTM is an inference
    module (its packed int8 weights are no parameters autograd can reach), so it runs under
    ``no_grad``: gradients are unsupported.

    ``quantize_dynamic`` swaps submodules, not the root, so the LSTM is held by a container.
    """
    quantization = _import("torch.ao.quantization", "dynamic quantization")
    if module.weight_ih_l0.dtype != torch.float32:
        raise NotImplementedError(f"quantize_dynamic: the quantized {type(module).__name__} computes in float32 only, "
                                  f"not {module.weight_ih_l0.dtype}")
    if isinstance(module, nn.RNN):  # not in its mapping: the module would come back unquantized
        raise NotImplementedError("quantize_dynamic has no quantized nn.RNN (its mapping: LSTM, GRU, the cells)")
    holder = nn.ModuleDict({"lstm": module})
    with _quiet():
        try:
            quantized = quantization.quantize_dynamic(holder, {type(module)}, dtype=torch.qint8)["lstm"]
        except AssertionError as error:  # how the quantized LSTM refuses a module, e.g. "mod.bias must be True"
            raise NotImplementedError(f"quantize_dynamic: {type(error).__name__}: {_first_lines(str(error))}") from None

    def forward(input: Tensor | PackedSequence, hx: State = None):
        with torch.no_grad():  # an inference-only module: no gradients to offer
            return quantized(input, hx)

    return forward


def numpy_oracle(module: nn.LSTM) -> Forward:
    """:class:`lstm_ref.oracle.LSTM` (NumPy float64) behind the protocol: inputs copied to
    float64 arrays, a PackedSequence padded and given as ``lengths``, results cast back to
    the input's dtype and device (a packed output packed like the input). No autograd."""
    model = oracle.from_torch(module)
    batch_first = module.batch_first

    def forward(input: Tensor | PackedSequence, hx: State = None):
        packed = isinstance(input, PackedSequence)
        x, lengths = pad_packed_sequence(input, batch_first=batch_first) if packed else (input, None)
        # float64 arrays: every float16, bfloat16 (which NumPy lacks) and float32 value is one, exactly
        state = None if hx is None else tuple(_detached_numpy(s.double()) for s in _states(module, hx, x))
        output, final = model(_detached_numpy(x.double()), None if state is None else _call_form(module, state),
                              None if lengths is None else lengths.numpy())
        finals = final if module.mode == "LSTM" else (final,)
        output, final = _as_torch(output, x), _call_form(module, tuple(_as_torch(a, x) for a in finals))
        return (_packed_like(output, input, batch_first) if packed else output), final

    return forward

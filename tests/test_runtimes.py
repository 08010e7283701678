"""The real runtimes of lstm_ref.runtimes behind the candidate protocol.

Each runtime passes where it conforms, and reports *unsupported* (never failed) for what its
path cannot express. A runtime whose package is missing is skipped here, and unsupported
with an install hint in the harness. Exports take seconds: the configurations are few.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import replace

import pytest
import torch

from lstm_ref import runtimes
from lstm_ref.candidates import BUILTIN, load_factory
from lstm_ref.configs import Config
from lstm_ref.conformance import FAILED, PASSED, UNSUPPORTED, check_forward
from lstm_ref.gradients import check_gradients

DENSE = Config(num_layers=2, bidirectional=True, initial_state=True)
PACKED = Config(bidirectional=True, input_form="packed", initial_state=True)
UNBATCHED = Config(num_layers=2, input_form="unbatched", initial_state=True)
BATCH_FIRST = Config(batch_first=True, initial_state=True)
PROJECTION = Config(proj_size=3, initial_state=True)
FLOAT64 = Config(dtype="float64")
TRAINING_DROPOUT = Config(num_layers=2, dropout=1.0, train=True, initial_state=True, tag="dropout1_train")
#: torch 2.1 has neither torch.export.Dim (the exporters' dynamic batch) nor
#: torch.onnx.export(dynamo=True): there onnx-export and torch-export are unsupported throughout.
HAS_DYNAMIC_EXPORT = hasattr(torch.export, "Dim") and "dynamo" in inspect.signature(torch.onnx.export).parameters
#: The torch whose exporters' reasons docs/runtimes.md quotes (checked word for word from there on).
REASONS_SINCE = "2.13"


def unsupported_without_dynamic_export(name: str) -> None:
    """On a torch without the dynamic-shape exporters: ``name`` reports a configuration
    unsupported, naming the exporter, and the test stops there (skipped, with the reason)."""
    if HAS_DYNAMIC_EXPORT:
        return
    result = check_forward(DENSE, name)
    assert result.status == UNSUPPORTED and "export" in result.message, result.describe()
    pytest.skip(f"torch {torch.__version__} has no dynamic-shape export: {name} is unsupported ({result.message})")


def verdict(name: str, config: Config) -> str:
    result = check_forward(config, name)
    return f"{result.status}: {result.message}" if result.status != PASSED else PASSED


def test_every_runtime_is_a_builtin_name():
    from lstm_ref.survey import RUNTIMES

    for name in RUNTIMES:
        assert BUILTIN[name].startswith("lstm_ref.runtimes:"), name
        assert callable(load_factory(name)[1])


# ----------------------------------------------------------------------------- numpy-oracle

@pytest.mark.parametrize("config", [DENSE, PACKED, UNBATCHED, BATCH_FIRST, PROJECTION, FLOAT64], ids=lambda c: c.id)
def test_numpy_oracle_conforms(config):
    assert verdict("numpy-oracle", config) == PASSED


def test_numpy_oracle_unsupported_in_training_with_dropout():
    result = check_forward(TRAINING_DROPOUT, "numpy-oracle")
    assert result.status == UNSUPPORTED and "dropout" in result.message


def test_numpy_oracle_has_no_gradients():
    assert check_gradients(DENSE, "numpy-oracle").status == UNSUPPORTED


# ----------------------------------------------------------------------------- onnxruntime-op

@pytest.fixture
def onnxruntime():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("config", [DENSE, PACKED, UNBATCHED, Config(num_layers=3, bias=False)], ids=lambda c: c.id)
def test_onnxruntime_op_conforms(onnxruntime, config):
    assert verdict("onnxruntime-op", config) == PASSED


@pytest.mark.parametrize("config, reason", [
    (PROJECTION, "no projection"),
    (FLOAT64, "does not support double"),
    (BATCH_FIRST, "layout == 1"),                       # ONNX Runtime's CPU kernel refuses layout=1
    (TRAINING_DROPOUT, "no dropout"),
], ids=["proj_size", "float64", "batch_first", "dropout_train"])
def test_onnxruntime_op_unsupported(onnxruntime, config, reason):
    result = check_forward(config, "onnxruntime-op")
    assert result.status == UNSUPPORTED and reason in result.message


def test_onnx_model_uses_sequence_lens_and_layout(onnxruntime):
    module = torch.nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True)
    model = runtimes.onnx_recurrent_model(module, packed=True, unbatched=False)
    nodes = [node for node in model.graph.node if node.op_type == "LSTM"]
    assert len(nodes) == 2
    assert all(node.input[4] == "sequence_lens" for node in nodes)
    assert all({a.name: a.i for a in node.attribute if a.name == "layout"} == {"layout": 1} for node in nodes)


def test_missing_package_is_unsupported_with_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import onnxruntime raises ImportError
    result = check_forward(DENSE, "onnxruntime-op")
    assert result.status == UNSUPPORTED and "pip install" in result.message


# ----------------------------------------------------------------------------- exporters

@pytest.fixture
def onnx_exporter(onnxruntime):
    module = pytest.importorskip("onnxscript")
    unsupported_without_dynamic_export("onnx-export")
    return module


def test_onnx_export_runs_other_batch_sizes_through_one_export(onnx_exporter):
    """Exported at batch 2, run at 3, 1 and 17 from the cache: one export."""
    before = {key for key in runtimes._CACHE if key[0] == "onnx-export"}
    for batch_size in (3, 1, 17):
        assert verdict("onnx-export", Config(num_layers=2, bidirectional=True, initial_state=True,
                                             batch_size=batch_size)) == PASSED
    assert len({key for key in runtimes._CACHE if key[0] == "onnx-export"} - before) == 1


def test_onnx_export_unsupported_for_packed_input(onnx_exporter):
    """The exporter's own reason: torch.export cannot trace the packed LSTM's data-dependent sizes."""
    result = check_forward(PACKED, "onnx-export")
    assert result.status == UNSUPPORTED and "torch.onnx.export: TorchExportError" in result.message
    assert "GuardOnDataDependentSymNode" in result.message


def test_onnx_export_of_a_projection_is_invalid(onnx_exporter):
    """A finding (docs/runtimes.md): the exporter drops weight_hr and writes ONNX LSTM nodes
    with hidden_size = proj_size. This turns red when the exporter is fixed."""
    result = check_forward(PROJECTION, "onnx-export")
    assert result.status == FAILED and "no initializer for weight_hr_l0" in result.message


def test_torch_export_conforms_at_other_batch_sizes_and_has_gradients():
    unsupported_without_dynamic_export("torch-export")
    for config in (DENSE, UNBATCHED, Config(num_layers=2, bidirectional=True, initial_state=True, batch_size=1)):
        assert verdict("torch-export", config) == PASSED
    result = check_gradients(DENSE, "torch-export")
    assert result.status == PASSED
    assert any(report.name == "grad.weight_hh_l1_reverse" for report in result.tensors)


def test_torch_export_unsupported_for_packed_input():
    result = check_forward(PACKED, "torch-export")
    assert result.status == UNSUPPORTED and result.message.startswith("torch.export.export: "), result.describe()
    if torch.__version__ >= REASONS_SINCE:  # torch 2.1's tracer stops earlier, at the PackedSequence argument
        assert "GuardOnDataDependentSymNode" in result.message


# ----------------------------------------------------------------------------- torch's own paths

def test_torchscript_conforms_and_returns_an_nn_packed_sequence():
    for config in (DENSE, PACKED, UNBATCHED):
        assert verdict("torchscript", config) == PASSED
    assert check_gradients(PACKED, "torchscript").status == PASSED


def test_torch_compile_compiles_the_lstm():
    """With allow_rnn the LSTM is in a compiled graph (without it dynamo runs nn.LSTM eagerly).
    Inductor compiles for a minute or more on two cores: the smallest configuration, forward only."""
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    assert verdict("torch-compile", Config(seq_len=2, batch_size=2, initial_state=True)) == PASSED
    assert counters["stats"]["unique_graphs"] > graphs


def test_quantized_dynamic_misses_the_float_tolerance_but_stays_close():
    """int8 weights: out of the float32 tolerance, by far less than a wrong computation would be."""
    result = check_forward(DENSE, "quantized-dynamic")
    assert result.status == FAILED
    worst = max(report.max_abs for report in result.tensors)
    assert 1e-4 < worst < 0.1


@pytest.mark.parametrize("config, reason", [
    (FLOAT64, "float32 only"), (Config(bias=False), "bias must be True"),
], ids=["float64", "nobias"])
def test_quantized_dynamic_unsupported(config, reason):
    result = check_forward(config, "quantized-dynamic")
    assert result.status == UNSUPPORTED, result.describe()
    if config.bias or torch.__version__ >= REASONS_SINCE:  # torch 2.1's bias assertion has no message
        assert reason in result.message


def test_quantized_dynamic_has_no_gradients():
    assert check_gradients(DENSE, "quantized-dynamic").status == UNSUPPORTED


def test_adapters_leave_the_callers_tensors_alone():
    """Each runtime is called with a non-contiguous input and states; they are unchanged after."""
    module = torch.nn.LSTM(4, 6, num_layers=2)
    x = torch.randn(3, 5, 4).transpose(0, 1)                   # (T=5, N=3, I), not contiguous
    h0, c0 = torch.randn(2, 6, 3).transpose(1, 2), torch.randn(2, 6, 3).transpose(1, 2)
    before = [t.clone() for t in (x, h0, c0)]
    for factory in (runtimes.numpy_oracle, runtimes.torchscript, runtimes.quantized_dynamic):
        factory(module)(x, (h0, c0))
        assert all(torch.equal(a, b) for a, b in zip(before, (x, h0, c0)))


#: One dense configuration of each other kind, with initial states (h0 alone).
KINDS = [Config(mode=mode, torch_path="native", num_layers=2, bidirectional=True, initial_state=True)
         for mode in ("GRU", "RNN_TANH", "RNN_RELU")]


#: The cheap runtimes on every kind, the compilers and exporters (seconds per kind) on the GRU.
KIND_RUNS = [(name, config) for name in ("numpy-oracle", "torchscript") for config in KINDS] + [
    (name, KINDS[0]) for name in ("torch-compile", "torch-export")]


@pytest.mark.parametrize(("name", "config"), KIND_RUNS, ids=[f"{n}-{c.mode}" for n, c in KIND_RUNS])
def test_runtimes_conform_for_gru_and_rnn(name, config):
    if name == "torch-export":
        unsupported_without_dynamic_export(name)
    assert verdict(name, config) == PASSED


def test_onnx_export_conforms_for_gru(onnx_exporter):
    """torch.onnx.export writes GRU nodes with linear_before_reset=1 here (see docs/findings)."""
    assert verdict("onnx-export", KINDS[0]) == PASSED


#: onnxruntime-op on each other kind: dense and packed, time-major (ONNX Runtime's CPU kernels take
#: neither layout=1 nor float64 for the GRU and the RNN).
ONNX_OP_KINDS = [replace(config, input_form=form) for config in KINDS for form in ("dense", "packed")]


@pytest.mark.parametrize("config", ONNX_OP_KINDS, ids=lambda c: c.id)
def test_onnxruntime_op_conforms_for_gru_and_rnn(onnxruntime, config):
    assert verdict("onnxruntime-op", config) == PASSED


def test_onnx_model_of_a_gru_computes_torchs_equation_and_an_rnn_its_nonlinearity(onnxruntime):
    gru = runtimes.onnx_recurrent_model(torch.nn.GRU(4, 6, num_layers=2), packed=False, unbatched=False)
    nodes = [node for node in gru.graph.node if node.op_type == "GRU"]
    assert len(nodes) == 2 and all(
        {a.name: a.i for a in node.attribute}["linear_before_reset"] == 1 for node in nodes)
    rnn = runtimes.onnx_recurrent_model(torch.nn.RNN(4, 6, nonlinearity="relu", bidirectional=True), packed=False,
                                   unbatched=False)
    node = next(node for node in rnn.graph.node if node.op_type == "RNN")
    assert [a.strings for a in node.attribute if a.name == "activations"] == [[b"Relu", b"Relu"]]
    assert [i.name for i in rnn.graph.input] == ["X", "initial_h0"]          # no cell state


@pytest.mark.parametrize(("name", "config", "reason"), [
    ("onnxruntime-op", replace(KINDS[0], dtype="float64"), "GRU operator does not support double"),
    ("onnxruntime-op", replace(KINDS[1], dtype="float64"), "Could not find an implementation for RNN"),
    ("quantized-dynamic", KINDS[1], "no quantized nn.RNN"),
], ids=["onnxruntime-op-GRU-float64", "onnxruntime-op-RNN-float64", "quantized-dynamic-RNN"])
def test_runtimes_unsupported_for_other_kinds(name, config, reason):
    result = check_forward(config, name)
    assert result.status == UNSUPPORTED and reason in result.message, result.describe()

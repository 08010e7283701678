"""The NumPy float64 oracle: three-way agreement with lstm_ref and torch, and its own contract.

Agreement tolerance: the float64 CPU row of :mod:`lstm_ref.tolerances` over the sequence
length (atol 1e-12, rtol 1e-10 + T * 4.4e-16), the bound for two float64 LSTMs that differ only
in summation order. Measured over the matrix: the oracle is within 6e-14 of torch and of
lstm_ref everywhere (max over output, h_n and c_n; 5e-16 outside the saturating cases).
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

import lstm_ref
from lstm_ref import configs, oracle
from lstm_ref.accuracy import oracle_arguments, padded, padded_time_dim, run_oracle
from lstm_ref.compare import compare_tensor
from lstm_ref.conformance import build_reference, make_inputs, torch_path
from lstm_ref.tolerances import tolerance_for

#: The float64 CPU configurations of the default matrix (one per computation: oneDNN does not take
#: float64, so all of them run torch's native loop), eval mode only.
FLOAT64_MATRIX = [
    config for config in configs.default_matrix(devices=("cpu",), dtypes=("float64",))
    if not (config.train and config.dropout > 0)
]
TRAINING_DROPOUT = [
    config for config in configs.special_cases("cpu", "float64") if config.train and config.dropout > 0
]


def run_torch_and_lstm_ref(config: configs.Config) -> tuple[tuple, tuple, np.ndarray | tuple]:
    module = build_reference(config)
    inputs = make_inputs(config)
    with torch.no_grad():
        with torch_path(config.torch_path):
            expected = module(inputs.clone().input, inputs.clone().hx)
        clone = inputs.clone()
        actual = lstm_ref.LSTM.from_torch(copy.deepcopy(module))(clone.input, clone.hx)
    return expected, actual, run_oracle(module, inputs, config)


def dense(result: tuple, config: configs.Config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    output, (h_n, c_n) = result
    return padded(output, config), h_n, c_n


@pytest.mark.parametrize("config", FLOAT64_MATRIX, ids=lambda config: config.id)
def test_oracle_lstm_ref_and_torch_agree_in_float64(config: configs.Config) -> None:
    expected, actual, truth = run_torch_and_lstm_ref(config)
    tolerance = tolerance_for("float64", "cpu").over(config.seq_len)
    implementations = {
        "torch": dense(expected, config),
        "lstm_ref": dense(actual, config),
        "oracle": tuple(torch.from_numpy(np.ascontiguousarray(array)) for array in truth),
    }
    problems = []
    for first, second in [("oracle", "torch"), ("oracle", "lstm_ref"), ("lstm_ref", "torch")]:
        for index, name in enumerate(("output", "h_n", "c_n")):
            report = compare_tensor(name, implementations[first][index], implementations[second][index],
                                    tolerance, time_dim=padded_time_dim(config) if index == 0 else None)
            if not report.passed:
                problems.append(f"{first} vs {second}: {report.describe()}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("config", TRAINING_DROPOUT, ids=lambda config: config.id)
def test_oracle_refuses_dropout_in_training_mode(config: configs.Config) -> None:
    with pytest.raises(NotImplementedError, match="module.eval"):
        oracle.LSTM.from_torch(build_reference(config))


def test_oracle_module_imports_nothing_but_numpy_and_the_standard_library() -> None:
    tree = ast.parse(Path(oracle.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"numpy", "__future__", "collections", "dataclasses"}, imported


def test_oracle_runs_with_torch_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now raises ImportError
    spec = importlib.util.spec_from_file_location("oracle_without_torch", oracle.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    generator = np.random.default_rng(0)
    shapes = {"weight_ih_l0": (16, 3), "weight_hh_l0": (16, 4), "bias_ih_l0": (16,), "bias_hh_l0": (16,)}
    weights = {name: generator.standard_normal(shape) for name, shape in shapes.items()}
    output, (h_n, c_n) = module.LSTM(3, 4, weights)(generator.standard_normal((5, 2, 3)))
    assert output.shape == (5, 2, 4) and h_n.shape == (1, 2, 4) and c_n.shape == (1, 2, 4)
    np.testing.assert_array_equal(h_n[0], output[-1])


def test_from_torch_converts_weights_exactly_to_float64() -> None:
    module = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)  # float32
    model = oracle.LSTM.from_torch(module)
    converted = model.layers[1][1]
    assert converted.w_ih.dtype == np.float64
    np.testing.assert_array_equal(converted.w_ih, module.weight_ih_l1_reverse.detach().double().numpy())
    np.testing.assert_array_equal(converted.w_hr, module.weight_hr_l1_reverse.detach().double().numpy())


def test_output_is_zero_past_each_length_and_each_sequence_runs_alone() -> None:
    config = configs.Config(num_layers=2, bidirectional=True, proj_size=3, input_form="packed",
                            initial_state=True, dtype="float64", seq_len=7, batch_size=4)
    inputs = make_inputs(config)
    model = oracle.LSTM.from_torch(build_reference(config))
    x, (h0, c0), lengths = oracle_arguments(inputs, config)
    output, (h_n, c_n) = model(x, (h0, c0), lengths)
    for n, length in enumerate(lengths):
        assert not output[length:, n].any()
        alone, (h_alone, c_alone) = model(x[:length, n], (h0[:, n], c0[:, n]))  # unbatched, T = length
        np.testing.assert_allclose(output[:length, n], alone, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(h_n[:, n], h_alone, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(c_n[:, n], c_alone, rtol=1e-14, atol=1e-15)


def test_batch_first_is_the_transpose_and_ignored_when_unbatched() -> None:
    generator = np.random.default_rng(1)
    module = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    seq_first = oracle.LSTM.from_torch(module)
    batch_first = oracle.LSTM.from_torch(module.__class__(3, 4, num_layers=2, bidirectional=True,
                                                          batch_first=True, dtype=torch.float64))
    batch_first.layers = seq_first.layers
    x = generator.standard_normal((6, 2, 3))
    output, (h_n, _) = seq_first(x)
    output_bf, (h_n_bf, _) = batch_first(x.transpose(1, 0, 2))
    np.testing.assert_array_equal(output_bf, output.transpose(1, 0, 2))
    np.testing.assert_array_equal(h_n_bf, h_n)
    np.testing.assert_array_equal(batch_first(x[:, 0])[0], seq_first(x[:, 0])[0])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m(np.zeros((2, 3, 4, 3))), ValueError, "Expected input to be 2D or 3D, got 4D"),
        (lambda m: m(np.zeros((5, 2, 4))), RuntimeError, "Expected 3, got 4"),
        (lambda m: m(np.zeros((5, 2, 3)), (np.zeros((1, 3, 4)), np.zeros((1, 2, 4)))), RuntimeError,
         r"Expected hidden\[0\] size \(1, 2, 4\), got \[1, 3, 4\]"),
        (lambda m: m(np.zeros((5, 2, 3)), np.zeros((1, 2, 4))), TypeError, "pair"),
        (lambda m: m(np.zeros((5, 2, 3)), lengths=[5, 6]), ValueError, r"in \[1, T=5\]"),
        (lambda m: m(np.zeros((5, 2, 3)), lengths=[5.0, 2.0]), ValueError, "2 integers"),
        (lambda m: m(np.zeros((5, 3)), lengths=[5]), ValueError, "batched input"),
    ],
    ids=["input_4d", "input_size", "h0_shape", "hx_not_a_pair", "length_past_T", "float_lengths",
         "lengths_unbatched"],
)
def test_bad_call_raises_a_clear_error(call, error: type, message: str) -> None:
    model = oracle.LSTM.from_torch(torch.nn.LSTM(3, 4))
    with pytest.raises(error, match=message):
        call(model)


def test_bad_weights_raise_a_clear_error() -> None:
    weights = {name: np.zeros(shape) for name, shape in
               oracle.LSTM.from_torch(torch.nn.LSTM(3, 4)).parameter_shapes().items()}
    with pytest.raises(KeyError, match="missing \\['bias_hh_l0'\\]"):
        oracle.LSTM(3, 4, {k: v for k, v in weights.items() if k != "bias_hh_l0"})
    with pytest.raises(ValueError, match="weight_hh_l0: shape \\(16, 3\\), expected \\(16, 4\\)"):
        oracle.LSTM(3, 4, dict(weights, weight_hh_l0=np.zeros((16, 3))))
    with pytest.raises(ValueError, match="proj_size"):
        oracle.LSTM(3, 4, weights, proj_size=4)
    with pytest.raises(TypeError, match="expects a torch.nn.LSTM, got GRU"):
        oracle.LSTM.from_torch(torch.nn.GRU(3, 4))


BATCH, HIDDEN = 8, 64


def oracle_peak_bytes(steps: int) -> int:
    """Peak bytes NumPy allocates during one 3-layer oracle call on x (T, N, I=H)."""
    model = oracle.LSTM.from_torch(torch.nn.LSTM(HIDDEN, HIDDEN, num_layers=3))
    x = np.random.default_rng(0).standard_normal((steps, BATCH, HIDDEN))
    tracemalloc.start()
    try:
        model(x)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_oracle_memory_grows_linearly_with_sequence_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oracle, "BLOCK_STEPS", 16)  # the input-projection block: a constant 16 steps
    short, long = oracle_peak_bytes(64), oracle_peak_bytes(320)
    per_step = (long - short) / (320 - 64)
    # Two layer outputs (T, N, H) float64 are alive at a time, whatever the number of layers.
    expected_per_step = 2 * BATCH * HIDDEN * 8
    assert 0.9 * expected_per_step <= per_step <= 1.1 * expected_per_step, (short, long, per_step)


def test_packed_input_is_padded_for_the_oracle_in_batch_order() -> None:
    config = configs.Config(input_form="packed", batch_first=True, dtype="float64", seq_len=6, batch_size=4)
    inputs = make_inputs(config)
    x, hx, lengths = oracle_arguments(inputs, config)
    assert isinstance(inputs.input, PackedSequence) and hx is None
    assert x.shape == (4, 6, config.input_size)
    np.testing.assert_array_equal(lengths, inputs.lengths.numpy())

"""Accuracy against the float64 oracle: the measurements, the verdict and ``lstm-ref accuracy``."""

from __future__ import annotations

import copy
import csv
import math
import re
import sys
import types
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lstm_ref import accuracy, cli, configs, from_torch
from lstm_ref.configs import Config
from lstm_ref.conformance import build_reference, make_inputs
from lstm_ref.fast import from_torch as fast_from_torch
from lstm_ref.tolerances import ACCURACY_FACTOR, ACCURACY_FLOOR

DOCS = Path(__file__).resolve().parents[1] / "docs" / "accuracy.md"

#: Small configurations covering the layouts the accuracy run pads and transposes.
CONFIGS = [
    Config(num_layers=2, bidirectional=True, initial_state=True, seq_len=12, hidden_size=16, input_size=8),
    Config(batch_first=True, proj_size=3, input_form="packed", initial_state=True, seq_len=9, batch_size=4),
    Config(num_layers=2, input_form="unbatched", initial_state=True, seq_len=7),
]


def computed_in(dtype: torch.dtype) -> Callable[[nn.LSTM], Callable]:
    """A candidate factory that computes in ``dtype`` and returns the module's dtype: a port whose
    kernel silently works one precision lower."""
    def factory(module: nn.LSTM) -> Callable:
        low = copy.deepcopy(module).to(dtype)
        original = next(module.parameters()).dtype

        def call(input, hx=None):
            state = None if hx is None else tuple(s.to(dtype) for s in hx)
            output, (h_n, c_n) = low(input.to(dtype), state)
            return output.to(original), (h_n.to(original), c_n.to(original))
        return call
    return factory


def onednn(module: nn.LSTM) -> Callable:
    """torch.nn.LSTM on its oneDNN path as a candidate."""
    def call(input, hx=None):
        with torch.backends.mkldnn.flags(enabled=True):
            return module(input, hx)
    return call


def bias_ih_shifted(shift: float) -> Callable[[nn.LSTM], Callable]:
    """lstm_ref with every ``bias_ih`` shifted by ``shift``: a port whose conversion loses a little."""
    def factory(module: nn.LSTM) -> Callable:
        shifted = copy.deepcopy(module)
        with torch.no_grad():
            for name, parameter in shifted.named_parameters():
                if name.startswith("bias_ih"):
                    parameter.add_(shift)
        return from_torch(shifted)
    return factory


#: Correct float32 LSTMs: each must be as accurate as torch everywhere.
CORRECT = {"lstm_ref": "lstm_ref", "lstm_ref.fast": fast_from_torch, "torch_native": "torch",
           "torch_onednn": onednn}
#: The quick matrix in float32, one configuration per computation, eval mode (the oracle has no dropout).
QUICK = [c for c in configs.quick_matrix(dtypes=("float32",)) if not (c.train and c.dropout)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: config.id)
@pytest.mark.parametrize("impl", ["lstm_ref", "torch"])
def test_lstm_ref_and_torch_other_path_are_as_accurate_as_torch(config: Config, impl: str) -> None:
    report = accuracy.measure_accuracy(config, impl)
    assert report.as_accurate, report.describe()
    output = report.tensor("output")
    assert list(output.torch_paths) == ["onednn", "native"]
    assert len(output.torch.per_step) == len(output.candidate.per_step) == config.seq_len
    for tensor in report.tensors:
        for errors in (*tensor.torch_paths.values(), tensor.candidate):
            assert 0 < errors.max_abs < 1e-5, report.describe()  # float32 rounding: not zero, not large


@pytest.mark.parametrize("impl", CORRECT)
def test_correct_lstms_are_as_accurate_as_torch_over_the_quick_matrix(impl: str) -> None:
    reports = [accuracy.measure_accuracy(config, CORRECT[impl]) for config in QUICK]
    failed = [f"{r.config.id}\n{r.describe()}" for r in reports if not r.as_accurate]
    assert not failed, "\n".join(failed)


def test_bias_ih_shifted_by_6e_7_is_less_accurate_than_torch() -> None:
    """The verdict is tight: a bias off by 6e-7 (5 float32 ULP of 1.0) fails every non-saturated
    quick configuration with a bias (measured: by 1.37x the allowed error or more)."""
    chosen = [c for c in QUICK if c.bias and c.input_scale == 1.0]
    assert len(chosen) >= 10
    for config in chosen:
        report = accuracy.measure_accuracy(config, bias_ih_shifted(6e-7))
        assert not report.as_accurate, report.describe()


#: The quick matrix of the GRU and the RNNs in float32 (torch runs them on its native loop only).
QUICK_OTHER_KINDS = configs.for_modes(QUICK, configs.MODES[1:])


@pytest.mark.parametrize("impl", ["lstm_ref", "torch"])
def test_correct_grus_and_rnns_are_as_accurate_as_torch_over_their_quick_matrices(impl: str) -> None:
    reports = [accuracy.measure_accuracy(config, impl) for config in QUICK_OTHER_KINDS]
    failed = [f"{r.config.id}\n{r.describe()}" for r in reports if not r.as_accurate]
    assert not failed, "\n".join(failed)
    assert all([t.name for t in r.tensors] == ["output", "h_n"] for r in reports)  # no cell state


def test_bias_ih_shifted_by_6e_7_is_a_less_accurate_gru_and_rnn() -> None:
    chosen = [c for c in QUICK_OTHER_KINDS if c.bias and c.input_scale == 1.0]
    assert {c.mode for c in chosen} == set(configs.MODES[1:])
    passed = [c.id for c in chosen if accuracy.measure_accuracy(c, bias_ih_shifted(6e-7)).as_accurate]
    assert not passed


def needs_torch_in(*dtypes: torch.dtype | str) -> None:
    """Skip, with torch's own error, where this torch cannot run its LSTM (on either CPU path) or a
    matrix product in one of ``dtypes`` on the CPU (torch 2.1: no float16 addmm, no bfloat16 oneDNN LSTM)."""
    for dtype in dtypes:
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        try:
            torch.ones(2, 2, dtype=dtype) @ torch.ones(2, 2, dtype=dtype)
            for enabled in (True, False):
                with torch.backends.mkldnn.flags(enabled=enabled), torch.no_grad():
                    nn.LSTM(2, 3).to(dtype)(torch.ones(1, 1, 2, dtype=dtype))
        except RuntimeError as error:
            pytest.skip(f"torch {torch.__version__} cannot compute an LSTM in {dtype} on the CPU: {error}")


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_float32_computed_one_precision_lower_is_less_accurate(low: torch.dtype) -> None:
    needs_torch_in(low)
    report = accuracy.measure_accuracy(CONFIGS[0], computed_in(low))
    assert not report.as_accurate
    output = report.tensor("output")
    assert output.candidate.max_abs > 100 * output.torch.max_abs, report.describe()
    assert "LESS ACCURATE" in report.describe()


HALF = {"lstm_ref": "lstm_ref", "lstm_ref.fast": fast_from_torch, "float32_rounded": computed_in(torch.float32)}


@pytest.mark.parametrize("impl", HALF)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_correct_and_more_accurate_lstms_are_as_accurate_as_torch_in_half_precision(dtype: str, impl: str) -> None:
    """lstm_ref, its fast path, and a candidate computing in float32 and rounding its results."""
    needs_torch_in(dtype)
    config = Config(num_layers=2, bidirectional=True, initial_state=True, seq_len=20, dtype=dtype)
    report = accuracy.measure_accuracy(config, HALF[impl])
    assert report.as_accurate, report.describe()
    epsilon = torch.finfo(config.torch_dtype).eps
    assert report.tensor("output").torch.max_abs > epsilon / 64  # the run really was in half precision


@pytest.mark.parametrize("seq_len", [5, 20, 200])
def test_float16_computed_as_bfloat16_is_less_accurate_at_ordinary_lengths(seq_len: int) -> None:
    needs_torch_in(torch.float16, torch.bfloat16)
    config = Config(num_layers=2, bidirectional=True, initial_state=True, seq_len=seq_len, dtype="float16")
    report = accuracy.measure_accuracy(config, computed_in(torch.bfloat16))
    assert not report.as_accurate, report.describe()


def test_verdict_is_factor_times_the_worse_torch_paths_error_plus_floor() -> None:
    report = accuracy.measure_accuracy(CONFIGS[0], "lstm_ref")
    module, inputs = build_reference(CONFIGS[0]), make_inputs(CONFIGS[0])
    truth = dict(zip(("output", "h_n", "c_n"), accuracy.run_oracle(module, inputs, CONFIGS[0])))
    for tensor in report.tensors:
        worse = max(tensor.torch_paths["onednn"].max_abs, tensor.torch_paths["native"].max_abs)
        assert tensor.torch.max_abs == worse
        scale = max(1.0, float(np.abs(truth[tensor.name]).max()))
        expected = ACCURACY_FACTOR["float32"] * worse + ACCURACY_FLOOR["float32"] * scale
        assert tensor.allowed == pytest.approx(expected)
        tensor.candidate.max_abs = tensor.allowed * 1.01
        assert not tensor.as_accurate
    assert not report.as_accurate


def test_the_floor_is_an_ulp_at_the_values_size_where_they_pass_1() -> None:
    """A relu RNN's h is unbounded: at |h| ~ 2.4 one ULP is 2.4e-7, twice the floor at 1.0, and
    lstm_ref's error of 1.3 ULP there (torch's happening to be 0.36 ULP) is rounding, not a fault."""
    config = Config(mode="RNN_RELU", bidirectional=True, batch_first=True, input_form="unbatched",
                    initial_state=True)
    report = accuracy.measure_accuracy(config, "lstm_ref", seed=2)
    h_n = report.tensor("h_n")
    truth = accuracy.run_oracle(build_reference(config, 2), make_inputs(config, 2), config)[1]
    assert np.abs(truth).max() > 2
    assert h_n.candidate.max_abs > ACCURACY_FACTOR["float32"] * h_n.torch.max_abs + ACCURACY_FLOOR["float32"]
    assert report.as_accurate, report.describe()


def test_float64_is_the_oracle_not_a_measured_dtype() -> None:
    with pytest.raises(ValueError, match="float64 oracle is the reference"):
        accuracy.measure_accuracy(Config(dtype="float64"), "lstm_ref")


def test_error_against_counts_ulps_at_unit_scale_and_matching_non_finite_values_as_exact() -> None:
    one_ulp = 2.0**-23
    truth = np.array([[1.0, 4.0, 1e-3, np.nan, np.inf], [0.5, -2.0, 0.0, 1.0, -np.inf]])
    actual = torch.tensor([[1.0 + one_ulp, 4.0 + 4 * one_ulp, 1e-3, np.nan, np.inf],
                           [0.5, -2.0, 0.0, 1.0, -np.inf]], dtype=torch.float64)
    errors = accuracy.error_against(actual, truth, torch.float32, step_dim=1)
    assert errors.max_abs == 4 * one_ulp
    assert errors.max_ulp == 1.0  # 1 ULP at 1.0 and at 4.0 (whose ULP is 4x larger)
    assert errors.per_step == [one_ulp, 4 * one_ulp, 0.0, 0.0, 0.0]
    actual[1, 3] = math.nan  # NaN where the truth is finite
    assert math.isinf(accuracy.error_against(actual, truth, torch.float32).max_abs)
    with pytest.raises(ValueError, match=r"shape \[2, 4\] against the oracle's \[2, 5\]"):
        accuracy.error_against(actual[:, :4], truth, torch.float32)


def run_cli(*argv: str) -> int:
    return cli.main(["accuracy", "--seq-len", "15", "--batch", "2", "--input-size", "4", "--hidden", "8",
                     *argv])


def test_cli_measures_a_gru(tmp_path, capsys) -> None:
    assert run_cli("--module", "gru", "--layers", "2", "--csv", str(tmp_path / "e.csv")) == 0
    out = capsys.readouterr().out
    assert "torch.nn.GRU" in out and "is as accurate as torch" in out and "c_n" not in out


def test_cli_writes_the_per_step_csv_and_the_plot(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    table, image = tmp_path / "errors.csv", tmp_path / "errors.png"
    assert run_cli("--layers", "2", "--bidirectional", "--csv", str(table), "--plot", str(image)) == 0
    rows = list(csv.reader(table.open()))
    assert rows[0] == ["dtype", "step", "torch_onednn_max_abs_error", "torch_native_max_abs_error",
                       "candidate_max_abs_error"]
    assert [(row[0], int(row[1])) for row in rows[1:]] == [("float32", step) for step in range(15)]
    assert all(0 < float(value) < 1e-5 for row in rows[1:] for value in row[2:])
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "is as accurate as torch" in out and "c_n" in out


def test_cli_runs_each_dtype_of_a_list_into_one_csv(tmp_path, capsys) -> None:
    needs_torch_in(torch.float16, torch.bfloat16)
    table = tmp_path / "errors.csv"
    assert run_cli("--dtype", "float32,bfloat16,float16", "--csv", str(table)) == 0
    rows = list(csv.reader(table.open()))[1:]
    assert [row[0] for row in rows] == ["float32"] * 15 + ["bfloat16"] * 15 + ["float16"] * 15
    errors = {dtype: max(float(row[4]) for row in rows if row[0] == dtype) for dtype in ("float32", "bfloat16")}
    assert errors["bfloat16"] > 1e3 * errors["float32"]  # each dtype really ran in its precision
    out = capsys.readouterr().out
    assert out.count("is as accurate as torch") == 3 and "\nbfloat16:\n" in out


def test_cli_exits_1_for_a_less_accurate_candidate(tmp_path, monkeypatch, capsys) -> None:
    needs_torch_in(torch.bfloat16)
    module = types.ModuleType("half_precision_port")
    module.make = computed_in(torch.bfloat16)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert run_cli("--impl", "half_precision_port:make", "--csv", str(tmp_path / "e.csv")) == 1
    assert "half_precision_port:make is less accurate than torch" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seq-len", "0"], "--seq-len must be a positive integer"),
        (["--dtype", "float32,float64"], "--dtype: unknown float64; choose from float32, float16, bfloat16 or all"),
        (["--device", "tpu"], "--device"),
        (["--impl", "no_such_module_xyz:make"], "cannot import module"),
    ],
    ids=["zero_steps", "float64_dtype", "unknown_device", "unknown_impl"],
)
def test_cli_usage_errors_exit_2(argv: list[str], message: str, tmp_path, capsys) -> None:
    assert run_cli("--csv", str(tmp_path / "e.csv"), *argv) == 2
    assert message in capsys.readouterr().err


def test_cli_plot_without_matplotlib_is_a_usage_error(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert run_cli("--csv", str(tmp_path / "e.csv"), "--plot", str(tmp_path / "e.png")) == 2
    assert "pip install 'lstm-ref[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()  # refused before running anything


def test_cli_reports_a_candidate_that_raises(tmp_path, monkeypatch, capsys) -> None:
    module = types.ModuleType("raising_port")

    def unsupported(lstm: nn.LSTM) -> Callable:
        raise NotImplementedError("no projections")

    def broken(lstm: nn.LSTM) -> Callable:
        raise RuntimeError("kernel launch failed")
    module.unsupported, module.broken = unsupported, broken
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert run_cli("--impl", "raising_port:unsupported", "--csv", str(tmp_path / "e.csv")) == 1
    assert "unsupported by the candidate: no projections" in capsys.readouterr().out
    assert run_cli("--impl", "raising_port:broken", "--csv", str(tmp_path / "e.csv")) == 1
    assert "no verdict: RuntimeError: kernel launch failed" in capsys.readouterr().out


def test_a_candidate_answering_in_another_dtype_gets_no_verdict() -> None:
    with pytest.raises(TypeError, match="output is torch.float64, expected torch.float32"):
        accuracy.measure_accuracy(CONFIGS[0], lambda module: computed_in(torch.float64)(module.double()))


def test_docs_counts_are_the_matrices_measured() -> None:
    """docs/accuracy.md's counts: the float32 configurations the verdict was measured on (as its
    script selects them) and the float64 ones tests/test_oracle.py runs."""
    from tests.test_oracle import FLOAT64_MATRIX

    text = DOCS.read_text()
    float32 = dict.fromkeys(replace(c, torch_path="onednn") for c in configs.default_matrix(("cpu",), ("float32",))
                            if not (c.train and c.dropout))
    assert re.search(r"default matrix's (\d+) distinct CPU configurations", text)[1] == str(len(float32))
    assert re.search(r"configuration of the default matrix \((\d+)\)", text)[1] == str(len(FLOAT64_MATRIX))

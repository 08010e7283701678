"""lstm_ref.testing: the assertions pass and fail as the harness does, with its report; the
README's example runs."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence

import lstm_ref
from lstm_ref import testing
from lstm_ref.configs import Config, quick_gradient_matrix, quick_matrix
from lstm_ref.conformance import FAILED, PASSED, check_forward, reproducer_command
from lstm_ref.testing import assert_close, assert_lstm_close, check_lstm
from tests.mutants import gates_if_swapped

README = Path(__file__).resolve().parents[1] / "README.md"


def randn(seed: int = 0, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A seeded standard normal tensor, (3, 4) unless a shape is given."""
    return torch.randn(*(shape or (3, 4)), generator=torch.Generator().manual_seed(seed), dtype=dtype)


def lstm_pair(**kwargs) -> tuple[nn.LSTM, lstm_ref.LSTM]:
    torch.manual_seed(0)
    reference = nn.LSTM(4, 6, **kwargs)
    return reference, lstm_ref.LSTM.from_torch(reference)


# ----------------------------------------------------------------------------- assert_close

def test_assert_close_passes_within_tolerance_and_returns_the_report():
    expected = randn()
    report = assert_close(expected * (1 + 1e-7), expected, steps=1, name="h_n")
    assert report.passed and report.name == "h_n"
    assert report.describe().startswith("h_n: ok;")


def test_assert_close_raises_with_the_report_of_a_perturbed_tensor():
    expected = randn()
    actual = expected.clone()
    actual[1, 2] += 1e-3
    with pytest.raises(AssertionError) as failure:
        assert_close(actual, expected, steps=5, name="c_n")
    message = str(failure.value)
    assert message.startswith("c_n: 1/12 elements out of tolerance"), message
    assert "worst at [1, 2]" in message and "x tolerance)" in message and "ULP" in message


@pytest.mark.parametrize(("actual", "problem"), [
    (randn(0, 4, 3), "output: shape [4, 3], expected [3, 4]"),
    (randn(0, dtype=torch.float64), "output: dtype torch.float64, expected torch.float32"),
    (randn().numpy(), "output: expected a Tensor, got ndarray"),
], ids=["shape", "dtype", "type"])
def test_assert_close_names_a_structural_mismatch(actual, problem):
    with pytest.raises(AssertionError, match=re.escape(problem)):
        assert_close(actual, randn(), steps=1, name="output")


def test_assert_close_tolerance_grows_with_steps_and_follows_the_given_dtype():
    expected = randn()
    actual = expected * (1 + 1e-5)                 # 1e-5 relative: over one step's float32 rtol
    with pytest.raises(AssertionError):
        assert_close(actual, expected, steps=1, name="x")
    assert_close(actual, expected, steps=1000, name="x")   # rtol + 1000 rtol_per_step = 2.4e-4
    close_in_float32 = expected * (1 + 1e-7)
    assert_close(close_in_float32, expected, steps=1, name="x")
    with pytest.raises(AssertionError, match="x tolerance"):
        assert_close(close_in_float32, expected, steps=1, name="x", dtype=torch.float64)


def test_assert_close_without_a_tolerance_row_says_which_rows_exist():
    with pytest.raises(LookupError, match="no tolerance for float16 on cpu"):
        assert_close(randn(dtype=torch.float16), randn(dtype=torch.float16), steps=1, name="x")


# ----------------------------------------------------------------------------- assert_lstm_close

@pytest.mark.parametrize("form", ["dense", "packed_unsorted", "packed_sorted"])
@torch.no_grad()
def test_assert_lstm_close_passes_lstm_ref_against_torch(form):
    reference, ours = lstm_pair(num_layers=2, bidirectional=True)
    x = randn(1, 5, 3, 4)
    if form == "packed_unsorted":
        x = pack_padded_sequence(x, torch.tensor([2, 5, 3]), enforce_sorted=False)
    elif form == "packed_sorted":                  # sorted_indices and unsorted_indices are None
        x = pack_sequence([randn(1, 5, 4), randn(2, 3, 4)])
    reports = assert_lstm_close(ours(x), reference(x), steps=5)
    assert [report.name for report in reports] == ["output", "h_n", "c_n"]
    assert all(report.passed for report in reports)


@torch.no_grad()
def test_assert_lstm_close_reports_every_tensor_out_of_tolerance():
    reference, _ = lstm_pair()
    x = pack_padded_sequence(randn(1, 5, 3, 4), torch.tensor([2, 5, 3]), enforce_sorted=False)
    with pytest.raises(AssertionError) as failure:
        assert_lstm_close(gates_if_swapped(reference)(x), reference(x), steps=5)
    lines = str(failure.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["output", "h_n", "c_n"]
    assert all("elements out of tolerance" in line and "x tolerance)" in line for line in lines)


@torch.no_grad()
def test_assert_lstm_close_names_structural_mismatches():
    reference, _ = lstm_pair()
    dense = randn(1, 5, 3, 4)
    packed = pack_padded_sequence(dense, torch.tensor([2, 5, 3]), enforce_sorted=False)
    output, (h_n, c_n) = reference(dense)
    with pytest.raises(AssertionError, match="output: expected a PackedSequence, got Tensor"):
        assert_lstm_close((output, (h_n, c_n)), reference(packed), steps=5)
    with pytest.raises(AssertionError, match=re.escape("h_n: shape [3, 6], expected [1, 3, 6]")):
        assert_lstm_close((output, (h_n[0], c_n)), (output, (h_n, c_n)), steps=5)
    with pytest.raises(AssertionError, match=re.escape("result: expected (output, (h_n, c_n)), got Tensor")):
        assert_lstm_close(output, (output, (h_n, c_n)), steps=5)


# ----------------------------------------------------------------------------- check_lstm

SMALL = [Config(), Config(num_layers=2, bidirectional=True, input_form="packed", initial_state=True)]


def test_check_lstm_passes_lstm_ref_forward_and_gradients():
    results = check_lstm(lstm_ref.LSTM.from_torch, SMALL, grad=True)
    assert [(r.config, r.check) for r in results] == [
        (SMALL[0], "forward"), (SMALL[1], "forward"), (SMALL[1], "gradients")]  # gradients need h0, c0
    assert all(r.status == PASSED for r in results), [r.describe() for r in results]


def test_check_lstm_fails_a_broken_factory_with_a_reproducer():
    results = check_lstm("tests.mutants:gates_if_swapped", SMALL)
    assert [r.status for r in results] == [FAILED, FAILED]
    reproducer = reproducer_command(SMALL[1], check_forward, "tests.mutants:gates_if_swapped")
    assert results[1].describe().endswith(f"\n  reproduce: {reproducer}")


def test_check_lstm_in_a_worker_needs_a_factory_it_can_import_by_name():
    """Isolated by default (tests/test_isolation.py: a crash fails a result); a lambda cannot be
    sent to the worker, which says so before any worker starts, and runs in this process when asked."""
    def swapped(module):
        return gates_if_swapped(module)
    with pytest.raises(TypeError, match="cannot be sent to a worker process.*isolate=False"):
        check_lstm(swapped, SMALL[:1])
    [result] = check_lstm(swapped, SMALL[:1], isolate=False)
    assert result.status == FAILED and result.reproduce.startswith("# none: ")


def test_check_lstm_runs_the_quick_matrices_by_default(monkeypatch):
    ran = []
    monkeypatch.setattr(testing.Runner, "check", lambda self, config, check: ran.append((check, config)))
    check_lstm(lstm_ref.LSTM.from_torch, grad=True)
    assert ran == [("forward", c) for c in quick_matrix()] + [("gradients", c) for c in quick_gradient_matrix()]


# ----------------------------------------------------------------------------- the README

def readme_example() -> str:
    """The first python block of the README's "Assertions for your own tests" section."""
    section = README.read_text().split("### Assertions for your own tests", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_readme_example_runs(tmp_path, monkeypatch):
    """As a test module of the user's: importable by name, as check_lstm's worker process needs."""
    (tmp_path / "readme_assertions_example.py").write_text(readme_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "readme_assertions_example", raising=False)
    module = importlib.import_module("readme_assertions_example")
    tests = [value for name, value in vars(module).items() if name.startswith("test_")]
    assert len(tests) == 3
    for test in tests:
        test()

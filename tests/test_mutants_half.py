"""The half-precision criterion (lstm_ref.half) passes every correct half-precision LSTM and fails
each mutant of ``tests/mutants_half.py`` at ordinary lengths.

Correct: torch on its other path, lstm_ref, lstm_ref.fast, and the controls (torch's arithmetic
emulated bit by bit, a float32 computation rounded at the end, oneDNN's autocast behaviour).
Wrong: a lower precision than the one given, a cell state kept too coarse, result dtypes no torch
path returns. Where torch cannot run a configuration (oneDNN under CPU autocast here), the verdict
is untestable and fails no candidate.
"""

from __future__ import annotations

import pytest
import torch

from lstm_ref import configs
from lstm_ref.conformance import (
    FAILED,
    PASSED,
    UNTESTABLE,
    build_reference,
    call_hx,
    check_forward,
    make_inputs,
    torch_path,
)
from lstm_ref.gradients import check_gradients
from lstm_ref.half import autocast_for
from lstm_ref.report import summary_line
from tests import mutants_half

#: The quick half selection: four grid points and T=20 per dtype, autocast's default point and T=50.
QUICK = configs.half_matrix(quick=True)
#: Rows the correct candidates run on: every half dtype, projections on packed input, unbatched
#: input, T=20 and T=50, autocast on both paths.
SAMPLE = [c for c in QUICK if not c.batch_first and (c.dtype, c.autocast, c.tag, c.input_form, c.torch_path) in {
    ("float16", "", "", "packed", "onednn"), ("bfloat16", "", "", "unbatched", "onednn"),
    ("float16", "", "T20", "dense", "onednn"), ("bfloat16", "", "", "dense", "onednn"),
    ("float32", "bfloat16", "", "dense", "native"), ("float32", "float16", "T50", "dense", "native"),
    ("float32", "bfloat16", "", "dense", "onednn")}]
CORRECT = ["torch", "lstm_ref", "lstm_ref.fast:from_torch",
           *(f"tests.mutants_half:{name}" for name in mutants_half.CONTROLS)]


def row(dtype: str, tag: str = "", autocast: bool = False, path: str = "native") -> configs.Config:
    """The row of the half selection in ``dtype`` with ``tag`` (autocast: on ``path``)."""
    matrix = configs.half_matrix()
    found = [c for c in matrix if c.tag == tag and (c.autocast == dtype if autocast else c.dtype == dtype)
             and (not autocast or c.torch_path == path)]
    return found[0]


def runnable_by_torch(config: configs.Config) -> bool:
    """Whether torch runs its own LSTM on ``config`` here: oneDNN refuses CPU autocast on CPUs
    without native bfloat16 (docs/runtimes.md), torch 2.1 computes no half-precision LSTM on the CPU."""
    reference, inputs = build_reference(config), make_inputs(config).clone()
    try:
        with torch.no_grad(), torch_path(config.torch_path), autocast_for(config):
            reference(inputs.input, call_hx(inputs.hx))
    except RuntimeError:
        return False
    return True


def needs_torch_to_run(config: configs.Config) -> None:
    if not runnable_by_torch(config):
        pytest.skip(f"torch {torch.__version__} cannot run {config.id} here: nothing to judge against")


@pytest.mark.parametrize("impl", CORRECT)
@pytest.mark.parametrize("config", SAMPLE, ids=[c.id for c in SAMPLE])
def test_correct_half_precision_lstms_pass(config, impl):
    result = check_forward(config, impl)
    expected = PASSED if runnable_by_torch(config) else UNTESTABLE
    assert result.status == expected, result.describe()
    if result.status == PASSED:  # the figures say how close to the limit: below 1, and measured
        assert 0 < result.worst_ratio <= 1, result.describe()


#: (mutant, rows it must fail at ordinary lengths, what the failure says)
CAUGHT = [
    ("lower_precision", [row("float16"), row("float16", "T20"), row("bfloat16"), row("bfloat16", "T20"),
                         row("float16", autocast=True)], "out of tolerance"),
    ("state_lower_precision", [row("float16", "T20"), row("bfloat16", "T20"), row("float16", "saturating_T50")],
     "out of tolerance"),
    ("float32_results", [row("bfloat16"), row("float16")], "dtype torch.float32, expected torch.bfloat16"),
    ("autocast_mixed_dtypes", [row("bfloat16", autocast=True), row("float16", "T50", autocast=True)],
     "match no torch path"),
    ("autocast_other_half", [row("bfloat16", autocast=True)], "dtype torch.float16, expected torch.float32 or"),
]


@pytest.mark.parametrize("name, rows, says", CAUGHT, ids=[name for name, _, _ in CAUGHT])
def test_half_precision_mutants_fail(name, rows, says):
    for config in rows:
        needs_torch_to_run(config)
        result = check_forward(config, getattr(mutants_half, name))
        assert result.status == FAILED, f"{name} passes {config.id}:\n{result.describe()}"
        if "dtype" in says or "match" in says:
            assert "float" in result.describe() and (says.split(",")[0] in result.describe()
                                                     or says in result.describe()), result.describe()


def test_the_mutants_fail_by_a_margin_the_controls_keep():
    """On the default float16 point (T=5), computing at bfloat16's precision errs several times
    the allowed error; emulating float16 exactly stays well inside it."""
    config = row("float16")
    needs_torch_to_run(config)
    wrong = check_forward(config, mutants_half.lower_precision)
    right = check_forward(config, mutants_half.same_precision)
    assert wrong.worst_ratio > 2 and right.worst_ratio < 1, (wrong.describe(), right.describe())


def test_float32_results_are_right_under_autocast():
    """A float32 result is what torch's native path returns under autocast: not a failure there."""
    needs_torch_to_run(row("bfloat16", autocast=True))
    result = check_forward(row("bfloat16", autocast=True), mutants_half.float32_results)
    assert result.status == PASSED, result.describe()


def test_torch_cannot_run_is_untestable_and_counted_apart():
    config = next(c for c in QUICK if c.autocast == "float16" and c.torch_path == "onednn")
    if runnable_by_torch(config):
        pytest.skip("oneDNN runs float16 autocast on this CPU")
    result = check_forward(config, mutants_half.autocast_other_half)  # a candidate that would fail
    assert result.status == UNTESTABLE
    # torch's own words: oneDNN's "could not create a primitive descriptor" (2.13), "AutocastCPU only
    # support Bfloat16" (2.1)
    assert result.message.startswith("torch cannot run this configuration: RuntimeError: "), result.message
    assert "1 untestable (untestable: torch cannot run them" in summary_line([result], 0.0)


@pytest.mark.parametrize("config", configs.half_gradient_matrix(quick=True),
                         ids=[c.id for c in configs.half_gradient_matrix(quick=True)])
def test_half_precision_gradients(config):
    """lstm_ref passes the gradient rows (or torch cannot run them); computing float16 at
    bfloat16's precision fails them."""
    result = check_gradients(config, "lstm_ref")
    assert result.status == (PASSED if runnable_by_torch(config) else UNTESTABLE), result.describe()
    if config.dtype == "float16" and not config.autocast and runnable_by_torch(config):
        wrong = check_gradients(config, mutants_half.lower_precision)
        assert wrong.status == FAILED, wrong.describe()


def test_autocast_is_an_axis_of_the_id_and_needs_a_float32_module():
    config = configs.Config(autocast="bfloat16", torch_path="native")
    assert config.id == "L1-onedir-seq_first-bias-noproj-dense-zero_state-autocast_bfloat16-float32-cpu-native"
    assert "autocast" not in configs.Config().id
    for bad in (dict(autocast="float64"), dict(autocast="bfloat16", dtype="float16")):
        with pytest.raises(ValueError, match="autocast must be"):
            configs.Config(**bad)


def test_the_default_matrices_hold_no_half_rows():
    """Half rows run only when asked for: the default check's size and time are unchanged."""
    default = configs.default_matrix(("cpu",)) + configs.gradient_matrix(("cpu",)) + configs.quick_matrix()
    assert not [c for c in default if c.dtype in configs.HALF_DTYPES or c.autocast]
    asked = configs.default_matrix(("cpu",), ("float32", "bfloat16"))
    assert {c.autocast or c.dtype for c in asked} == {"float32", "bfloat16"}

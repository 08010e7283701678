"""The gradient check catches what the forward check cannot.

Each mutant of ``tests/mutants_grad.py`` passes ``check_forward`` and fails
``check_gradients`` somewhere on the gradient matrix; the smallest failing
configuration is recorded (``-rA`` / junit property). The hand-written
backward with the true derivative, lstm_ref and torch pass. Candidates
without autograd history are unsupported, never passed.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from lstm_ref import configs
from lstm_ref.conformance import FAILED, PASSED, UNSUPPORTED, check_forward
from lstm_ref.gradients import NO_HISTORY, PARAMETERS_UNREACHED, UNUSABLE_OUTPUTS, check_gradients
from tests.mutants_grad import MUTANTS, TRAINING_LOOP_MUTANTS, dropout_right, handwritten_cell, weights_copied

#: A few configurations that between them take every axis value (the quick matrix's grid part).
SAMPLE = [replace(c, initial_state=True) for c in configs.quick_matrix(("cpu",)) if not c.tag]
SAMPLE_IDS = [c.id for c in SAMPLE]


def size_order(config: configs.Config) -> tuple:
    """Smaller and plainer configurations first: the first failure is the smallest reproducer."""
    return (config.num_layers, config.bidirectional, config.proj_size > 0, config.input_form != "dense",
            config.batch_first, not config.bias, config.dtype != "float64", config.torch_path != "native")


@pytest.mark.parametrize("name", sorted(MUTANTS))
@pytest.mark.parametrize("config", SAMPLE, ids=SAMPLE_IDS)
def test_mutant_forward_is_right(name, config):
    result = check_forward(config, MUTANTS[name])
    assert result.status == PASSED, result.describe()


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_gradients_fail(name, record_property):
    matrix = sorted(configs.gradient_matrix(("cpu",)), key=size_order)
    results = (check_gradients(config, MUTANTS[name]) for config in matrix)
    failing = next((result for result in results if result.status == FAILED), None)
    assert failing is not None, f"mutant {name} passes the whole gradient matrix"
    record_property("smallest_failing_config", failing.config.id)
    failed = {t.name for t in failing.tensors if not t.passed}
    print(f"{name}: smallest failing configuration {failing.config.id}; failing {sorted(failed)}")
    in_training_step = {n.removeprefix("training.") for n in failed if n.startswith("training.")}
    in_first_call = {n for n in failed if not n.startswith("training.")}
    if name == "h0_detached":  # the report points at the one gradient that is cut
        assert failed == {"grad.h0"}, failing.describe()
    elif name == "weight_hh_grad_doubled":  # a plain callable: judged on the module handed to it
        assert in_first_call == in_training_step == {"grad.weight_hh_l0"}, failing.describe()
    elif name == "biases_detached":
        assert in_first_call == in_training_step == {"grad.bias_ih_l0", "grad.bias_hh_l0"}, failing.describe()
        assert "no gradient reached this parameter" in failing.describe()
    elif name == "data_without_grad_detaches_weights":  # right whenever the input requires grad
        assert in_first_call == set() and in_training_step == {
            f"grad.{n}" for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}, failing.describe()
    else:
        assert {"grad.input", "grad.h0"} & failed, failing.describe()


@pytest.mark.parametrize("config", SAMPLE, ids=SAMPLE_IDS)
def test_handwritten_backward_control_passes(config):
    """The mutants' hand-written cell backward with the true sign passes: the mutation is the sign alone."""
    result = check_gradients(config, handwritten_cell)
    assert result.status == PASSED, result.describe()


@pytest.mark.parametrize("impl", ["lstm_ref", "torch"])
@pytest.mark.parametrize("config", SAMPLE, ids=SAMPLE_IDS)
def test_builtin_candidates_pass(impl, config):
    """lstm_ref is an nn.Module with torch's names; torch's other path is a plain callable over the
    module handed to it: both have every parameter gradient compared."""
    result = check_gradients(config, impl)
    assert result.status == PASSED, result.describe()
    assert result.message == ""
    assert {t.name for t in result.tensors} >= {"grad.input", "grad.h0", "grad.c0", "grad.weight_ih_l0",
                                                "grad.weight_hh_l0"}


@pytest.mark.parametrize("config", SAMPLE[:3], ids=SAMPLE_IDS[:3])
def test_parameter_gradients_out_of_reach_are_unsupported_not_passed(config):
    """A plain callable over its own copy of the weights: input and state gradients are right,
    parameter gradients cannot be compared, and the configuration is not counted as passed."""
    result = check_gradients(config, weights_copied)
    assert result.status == UNSUPPORTED, result.describe()
    assert result.message.startswith(PARAMETERS_UNREACHED)
    assert "nn.Module whose parameters have torch's names" in result.message
    assert {t.name for t in result.tensors} == {"grad.input", "grad.h0", "grad.c0",
                                                "training.output", "training.h_n", "training.c_n"}
    assert all(t.passed for t in result.tensors)


def no_history(module):
    """A candidate whose forward runs under no_grad: right values, no autograd history."""
    def call(input, hx=None):
        with torch.no_grad():
            return module(input, hx)
    return call


def unsupported(module):
    raise NotImplementedError("no backward here")


def wrong_state_shape(module):
    def call(input, hx=None):
        output, (h_n, c_n) = module(input, hx)
        return output, (h_n[:1], c_n)
    return call


@pytest.mark.parametrize(
    "factory, status, message",
    [(no_history, UNSUPPORTED, NO_HISTORY), (unsupported, UNSUPPORTED, "no backward here"),
     (wrong_state_shape, FAILED, UNUSABLE_OUTPUTS)],
    ids=["no_autograd_history-unsupported", "NotImplementedError-unsupported", "wrong_h_n_shape-failed"],
)
def test_gradient_verdicts_for_broken_candidates(factory, status, message):
    config = replace(SAMPLE[1], num_layers=2)
    result = check_gradients(config, factory)
    assert (result.status, result.message) == (status, message)


def test_configuration_without_initial_state_is_rejected():
    with pytest.raises(ValueError, match="initial_state=True"):
        check_gradients(configs.Config(), "lstm_ref")


def training_loop_case(axis: str) -> configs.Config:
    """The training-loop case of ``axis``: a tag, or "acc3" (the dense case with three passes)."""
    return next(c for c in configs.training_loop_cases() if c.tag == axis
                or axis == "acc3" and c.backward_passes == 3 and not c.tag and not c.packed)


#: The same case one axis away, where the mutation has nothing to act on.
ONE_AXIS_AWAY = {"long_T100": dict(seq_len=64), "acc3": dict(backward_passes=1),
                 "dropout0.3_train": dict(train=False)}
#: The tensors each kind of mutation shows in: the forward values in the training step, the
#: accumulated parameter gradients, later passes' input gradients.
SHOWS_IN = {
    "truncated_bptt_64": {"grad.input", "grad.weight_hh_l0"},
    "grad_overwritten": {"grad.weight_ih_l0", "grad.weight_hh_l1_reverse"},
    "stale_workspace": {"grad.input [pass 2]", "grad.weight_ih_l0"},
    "dropout_scaled_by_keep": {"training.output", "grad.input"},
    "dropout_unscaled": {"training.output", "grad.input"},
    "dropout_keeps_p": {"training.output", "grad.input"},
    "dropout_masks_reversed": {"training.output", "grad.input"},
    "dropout_own_generator": {"training.output", "grad.input"},
    "dropout_backward_unmasked": {"grad.input", "grad.weight_ih_l0"},
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(TRAINING_LOOP_MUTANTS))
def test_training_loop_mutant_fails_on_its_axis_and_passes_one_axis_away(name, dtype):
    factory, axis = TRAINING_LOOP_MUTANTS[name]
    config = replace(training_loop_case(axis), dtype=dtype, torch_path="native" if dtype == "float64" else "onednn")
    failing = check_gradients(config, factory)
    assert failing.status == FAILED, failing.describe()
    failed = {t.name for t in failing.tensors if not t.passed}
    assert SHOWS_IN[name] <= failed, failing.describe()
    if name == "dropout_backward_unmasked":  # the forward values are right
        assert not {n for n in failed if n.startswith("training.") and "grad" not in n}, failing.describe()
    away = replace(config, **ONE_AXIS_AWAY[axis])
    passing = check_gradients(away, factory)
    assert passing.status == PASSED, passing.describe()


@pytest.mark.parametrize("config", [training_loop_case("dropout0.3_train"),
                                    configs.training_loop_cases(quick=True)[-1]], ids=lambda c: c.id)
@pytest.mark.parametrize("impl", ["torch", "lstm_ref", "lstm_ref.fast:from_torch", dropout_right],
                         ids=["torch", "lstm_ref", "lstm_ref.fast", "dropout_right"])
def test_dropout_drawn_as_torch_draws_it_is_replayed(impl, config):
    """torch's other path, lstm_ref (its differentiable and its in-place path) and a
    layer-by-layer stack calling F.dropout on each layer's output get torch's masks."""
    result = check_gradients(config, impl)
    assert result.status == PASSED, result.describe()


def test_candidate_that_says_it_draws_its_own_masks_is_unsupported_never_passed():
    config = training_loop_case("dropout0.3_train")  # three layers: no check without replay
    result = check_gradients(config, saying_it_draws_its_own_masks(dropout_right))
    assert result.status == UNSUPPORTED and "masks from cuRAND, one per step" in result.message, result.describe()
    assert "no check without replay" in result.message
    assert check_gradients(replace(config, train=False), saying_it_draws_its_own_masks(dropout_right)).status == PASSED


#: The two-layer dropout case: its own masks are checked without replay.
TWO_LAYER_DROPOUT = configs.training_loop_cases(quick=True)[-1]


@pytest.mark.parametrize("name, failing", [
    ("dropout_right", set()), ("dropout_own_generator", set()), ("dropout_masks_reversed", set()),
    ("dropout_scaled_by_keep", {"dropout.output", "dropout.grad.input"}),
    ("dropout_unscaled", {"dropout.output", "dropout.grad.input"}),
    ("dropout_keeps_p", {"dropout.kept_fraction"}),
    ("dropout_backward_unmasked", {"dropout.grad.input", "dropout.grad.weight_ih_l0"}),
])
def test_own_masks_are_checked_without_replay(name, failing):
    """Masks of its own, declared: unsupported, never passed, however right; failed where the
    kept activations are not scaled by 1 / (1 - p), p is not the drop rate, or the backward
    ignores the mask."""
    factory = dropout_right if name == "dropout_right" else TRAINING_LOOP_MUTANTS[name][0]
    result = check_gradients(TWO_LAYER_DROPOUT, saying_it_draws_its_own_masks(factory))
    assert result.status == (FAILED if failing else UNSUPPORTED), result.describe()
    assert failing <= {t.name for t in result.tensors if not t.passed}, result.describe()
    if name == "dropout_backward_unmasked":
        assert all(t.passed for t in result.tensors if t.name in ("dropout.output", "dropout.h_n", "dropout.c_n"))
    assert {"dropout.output", "dropout.grad.input", "dropout.kept_fraction"} <= {t.name for t in result.tensors}


def saying_it_draws_its_own_masks(factory):
    """``factory``'s candidate, with the attribute that says its dropout masks are its own."""
    def said(module):
        call = factory(module)
        call.draws_own_dropout_masks = "masks from cuRAND, one per step"
        return call
    return said


@pytest.mark.parametrize("impl, status", [("torch", PASSED), ("lstm_ref", PASSED), ("lstm_ref.fast:from_torch", PASSED),
                                          (TRAINING_LOOP_MUTANTS["dropout_own_generator"][0], FAILED),
                                          (saying_it_draws_its_own_masks(dropout_right), UNSUPPORTED)],
                         ids=["torch", "lstm_ref", "lstm_ref.fast", "dropout_own_generator", "own_masks_declared"])
def test_forward_check_replays_dropout_too(impl, status):
    """check_forward replays the masks of both its calls (the second one's from another seed)."""
    result = check_forward(training_loop_case("dropout0.3_train"), impl)
    assert result.status == status, result.describe()


def test_dropout_replay_leaves_the_generator_as_it_was():
    from lstm_ref.conformance import dropout_replay
    state = torch.random.get_rng_state()
    with dropout_replay(training_loop_case("dropout0.3_train"), 1234):
        first = torch.rand(3)
    with dropout_replay(training_loop_case("dropout0.3_train"), 1234):
        assert torch.equal(torch.rand(3), first)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_training_loop_mutant_table_is_the_mutant_list():
    import pathlib
    import re
    doc = (pathlib.Path(__file__).parent.parent / "docs" / "mutants.md").read_text()
    section = doc.split("## Training-loop mutants", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE) == list(TRAINING_LOOP_MUTANTS)

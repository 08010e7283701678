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
from lstm_ref.gradients import NO_HISTORY, PLAIN_CALLABLE, UNUSABLE_OUTPUTS, check_gradients
from tests.mutants_grad import MUTANTS, handwritten_cell

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
    if name == "h0_detached":  # the report points at the one gradient that is cut
        assert failed == {"grad.h0"}, failing.describe()
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
    result = check_gradients(config, impl)
    assert result.status == PASSED, result.describe()
    if impl == "torch":  # a plain callable: parameters are not compared, and the Result says so
        assert result.message == PLAIN_CALLABLE
        assert {t.name for t in result.tensors} == {"grad.input", "grad.h0", "grad.c0"}
    else:
        assert {t.name for t in result.tensors} >= {"grad.weight_ih_l0", "grad.weight_hh_l0"}


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

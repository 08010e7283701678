"""The mutation self-test: the conformance matrix fails every deliberately broken LSTM.

For each mutant in ``tests/mutants.py``: its smallest catching configuration fails,
its control (one axis away) passes, and ``lstm-ref check --quick --impl`` on it exits 1.
The matrix's axes are each the catching axis of at least one mutant.
"""

from dataclasses import fields

import pytest

from lstm_ref import cli
from lstm_ref.configs import AXES, default_matrix, quick_matrix
from lstm_ref.conformance import FAILED, PASSED, SKIPPED, check_forward
from tests.mutants import MUTANTS

IDS = [mutant.name for mutant in MUTANTS]


def needs_device(config):
    result = check_forward(config, "lstm_ref")
    if result.status == SKIPPED:
        pytest.skip(result.message)


@pytest.mark.parametrize("mutant", MUTANTS, ids=IDS)
def test_smallest_configuration_catches_the_mutant(mutant):
    needs_device(mutant.smallest)
    result = check_forward(mutant.smallest, mutant.factory)
    assert result.status == FAILED, f"{mutant.name} ({mutant.bug}) was not caught:\n{result.describe()}"


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.control], ids=[m.name for m in MUTANTS if m.control])
def test_control_one_axis_away_passes(mutant):
    needs_device(mutant.control)
    result = check_forward(mutant.control, mutant.factory)
    assert result.status == PASSED, f"{mutant.name}: the bug should need the other axis value:\n{result.describe()}"


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.smallest.device == "cpu"],
                         ids=[m.name for m in MUTANTS if m.smallest.device == "cpu"])
def test_check_quick_exits_1(mutant, capsys):
    assert cli.main(["check", "--quick", "--no-isolate", "--impl", f"tests.mutants:{mutant.name}"]) == 1
    assert " 0 failed" not in capsys.readouterr().out


@pytest.mark.parametrize("impl", ["lstm_ref", "torch", "lstm_ref.fast:from_torch"])
def test_check_quick_exits_0_on_correct_implementations(impl, capsys):
    assert cli.main(["check", "--quick", "--impl", impl]) == 0
    assert " 0 failed" in capsys.readouterr().out


def test_quick_matrix_is_part_of_the_default_matrix():
    default_ids = {config.id for config in default_matrix(("cpu",))}
    assert {config.id for config in quick_matrix()} <= default_ids


def test_every_axis_catches_some_mutant():
    """Each axis of AXES is the one difference between some mutant's catching and passing configs."""
    isolating = set()
    for mutant in MUTANTS:
        if mutant.control:
            differences = {f.name for f in fields(mutant.smallest)
                           if getattr(mutant.smallest, f.name) != getattr(mutant.control, f.name)}
            isolating |= differences
    assert set(AXES) - isolating == set(), f"axes that catch no mutant: {set(AXES) - isolating}"


def test_every_axis_value_catches_some_mutant():
    """Each value of each axis of AXES is the catching value of a mutant whose control differs
    from its catching configuration in that axis: a matrix point that tested nothing its
    neighbours do not would have no such mutant."""
    caught = set()
    for mutant in MUTANTS:
        if mutant.control:
            for f in fields(mutant.smallest):
                if getattr(mutant.smallest, f.name) != getattr(mutant.control, f.name):
                    caught.add((f.name, getattr(mutant.smallest, f.name)))
    uncaught = [(axis, value) for axis, values in AXES.items() for value in values if (axis, value) not in caught]
    assert not uncaught, f"axis values that catch no mutant: {uncaught}"


def test_mutant_names_are_their_factories_names_in_the_module():
    import tests.mutants as module

    for mutant in MUTANTS:
        assert getattr(module, mutant.name) is mutant.factory, mutant.name

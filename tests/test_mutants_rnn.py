"""The mutation self-test for the GRU and the RNN: the matrix of each kind fails every broken one.

For each mutant in ``tests/mutants_rnn.py``: its smallest catching configuration fails, its
control (one axis away) passes, and it is unsupported, not failed, on the kinds it does not
implement. The references and ``--impl torch`` pass every kind's quick matrix points those
mutants run on (false alarms would show there first).
"""

from dataclasses import replace

import pytest

from lstm_ref import cli
from lstm_ref.configs import MODES, for_modes, quick_matrix
from lstm_ref.conformance import FAILED, PASSED, UNSUPPORTED, check_forward
from lstm_ref.gradients import check_gradients
from tests.mutants_rnn import MUTANTS

IDS = [mutant.name for mutant in MUTANTS]


@pytest.mark.parametrize("mutant", MUTANTS, ids=IDS)
def test_smallest_configuration_catches_the_mutant(mutant):
    result = check_forward(mutant.smallest, mutant.factory)
    assert result.status == FAILED, f"{mutant.name} ({mutant.bug}) was not caught:\n{result.describe()}"


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.control], ids=[m.name for m in MUTANTS if m.control])
def test_control_one_axis_away_passes(mutant):
    result = check_forward(mutant.control, mutant.factory)
    assert result.status == PASSED, f"{mutant.name}: the bug should need the other axis value:\n{result.describe()}"


@pytest.mark.parametrize("mutant", MUTANTS, ids=IDS)
def test_other_kinds_are_unsupported_not_failed(mutant):
    """A GRU mutant handed an nn.LSTM or nn.RNN (an RNN mutant an nn.GRU) raises NotImplementedError."""
    other = "LSTM" if mutant.smallest.mode != "LSTM" else "GRU"
    result = check_forward(replace(mutant.smallest, mode=other), mutant.factory)
    assert result.status == UNSUPPORTED, result.describe()
    assert "only, got a torch.nn." in result.message


#: Each kind's float32 quick-matrix points without special cases.
SAMPLE = [c for c in for_modes(quick_matrix(("cpu",), ("float32",)), MODES[1:]) if not c.tag]


@pytest.mark.parametrize("impl", ["lstm_ref", "torch"])
def test_references_pass_every_kind(impl):
    results = [check_forward(config, impl) for config in SAMPLE]
    results += [check_gradients(replace(config, initial_state=True), impl) for config in SAMPLE[::7]]
    failed = [result.describe() for result in results if result.status != PASSED]
    assert not failed, "\n".join(failed)


def test_check_module_option_runs_the_kind_and_rejects_unknown_ones(capsys):
    assert cli.main(["check", "--quick", "--no-isolate", "--dtype", "float32", "--module", "gru",
                     "--impl", "tests.mutants_rnn:reset_update_swapped"]) == 1
    out = capsys.readouterr().out
    assert "mode          GRU" in out and " 0 failed" not in out
    assert cli.main(["check", "--quick", "--module", "lstm,lstmp"]) == 2
    assert "--module: unknown lstmp; choose from lstm, gru, rnn_tanh, rnn_relu or all" in capsys.readouterr().err

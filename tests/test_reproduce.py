"""A failure's reproducer reruns it: the printed command, pasted into a shell, prints the same verdict.

Every failed result (a forward check, a gradient check with its training step, ``check_lstm``'s,
a crash's) carries a shell command that names the configuration, the candidate and the seed
(``Result.reproduce``: the ``reproduce:`` line of ``describe()`` and the JSON report's field).
These tests run printed lines of failing mutants with the interpreter under test
(``sys.executable`` in place of the line's ``python``) and compare what they print with what
``lstm-ref check`` printed. Crash reproducers are run in tests/test_isolation.py.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

import lstm_ref
from lstm_ref import cli
from lstm_ref.configs import Config
from lstm_ref.conformance import FAILED, check_forward, reproducer_command
from lstm_ref.gradients import check_gradients
from lstm_ref.testing import check_lstm
from tests.mutants import gates_if_swapped

REPO = Path(__file__).resolve().parents[1]


def run_reproducer(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a printed reproducer as a shell would, with this interpreter for its leading ``python``."""
    assert command.startswith("python "), command
    return subprocess.run(shlex.quote(sys.executable) + command[len("python"):], shell=True, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def printed_failure(out: str, config_id: str) -> str:
    """The lines ``lstm-ref check`` printed for ``config_id``'s failure, headline to reproducer."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{config_id}: failed"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("  reproduce: "))
    return "\n".join(lines[start:end + 1])


@pytest.mark.parametrize(("impl", "options"), [
    ("tests.mutants:gates_if_swapped", ["--seed", "5"]),
    ("tests.mutants_grad:data_without_grad_detaches_weights", ["--grad"]),
], ids=["forward-gates_if_swapped-seed5", "training_step-data_without_grad_detaches_weights"])
def test_a_printed_reproducer_prints_the_same_verdict(impl: str, options: list[str], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # where MODULE:ATTR is imported from, by the check and by its reproducer
    report = tmp_path / "report.json"
    code = cli.main(["check", "--quick", "--dtype", "float64", "--impl", impl, "--show-failures", "1",
                     "--json", str(report), *options])
    out = capsys.readouterr().out
    assert code == 1, out
    failed = [result for result in json.loads(report.read_text())["results"] if result["status"] == FAILED]
    assert failed and all(f"'{impl}'" in result["reproduce"] for result in failed)
    printed = printed_failure(out, failed[0]["config"]["id"])
    assert printed.endswith(f"  reproduce: {failed[0]['reproduce']}")
    rerun = run_reproducer(failed[0]["reproduce"], REPO)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stdout.rstrip("\n") == printed


def test_check_lstm_failures_name_the_factory_and_the_seed() -> None:
    config = Config(num_layers=2, bidirectional=True, input_form="packed", initial_state=True)
    forward, gradients = check_lstm(gates_if_swapped, [config], grad=True, seed=4)
    assert forward.status == gradients.status == FAILED
    assert forward.reproduce == reproducer_command(config, check_forward, "tests.mutants:gates_if_swapped", 4)
    assert gradients.reproduce == reproducer_command(config, check_gradients, "tests.mutants:gates_if_swapped", 4)
    assert "'tests.mutants:gates_if_swapped', seed=4).describe()" in gradients.describe().splitlines()[-1]


def test_a_factory_without_an_importable_name_says_so_instead() -> None:
    result = check_forward(Config(), lambda module: gates_if_swapped(module))
    assert result.status == FAILED
    assert result.reproduce.startswith("# none: a fresh interpreter cannot import the factory <function")
    assert "MODULE:ATTR" in result.reproduce


def test_a_reproducer_is_one_shell_word_after_c_whatever_the_configuration_holds() -> None:
    config = Config(initial_state=True, tag="it's $HOME `x` \"q\"")
    command = reproducer_command(config, check_forward, "tests.mutants:gates_if_swapped", 2)
    words = shlex.split(command)
    assert words[:4] == ["python", "-X", "faulthandler", "-c"] and len(words) == 5
    assert f"Config(initial_state=True, tag={config.tag!r})" in words[4]


def input_detached_over_copied_weights(module: nn.LSTM):
    """No gradient reaches the input, and the weights live in a copy no gradient check can see."""
    copied = lstm_ref.LSTM.from_torch(module)
    return lambda input, hx=None: copied(input.detach(), hx)


def test_the_headline_names_the_failed_tensors_before_the_note() -> None:
    result = check_gradients(Config(initial_state=True), input_detached_over_copied_weights)
    assert result.status == FAILED
    assert result.message.startswith("parameter gradients not comparable")  # the note, kept for the summary
    headline = result.describe().splitlines()[0]
    assert headline.startswith(f"{result.config.id}: failed: grad.input out of tolerance; parameter gradients "
                               "not comparable: "), headline
    assert "grad.input: 60/60 elements out of tolerance" in result.describe()

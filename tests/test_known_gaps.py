"""Known gaps declared in ``lstm-ref check``: the xfail file, and parameter gradients that
cannot be compared (unsupported, counted and explained, never passed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstm_ref import configs
from lstm_ref.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from lstm_ref.gradients import MAKE_PARAMETERS_COMPARABLE

QUICK = ["check", "--quick", "--module", "lstm", "--device", "cpu", "--dtype", "float32", "--no-isolate"]
UNBATCHED = [c for c in configs.quick_matrix(("cpu",), ("float32",)) if c.input_form == "unbatched"]


def test_listed_failures_are_xfailed_and_the_run_passes(tmp_path: Path, capsys) -> None:
    xfails = tmp_path / "known_failures.txt"
    xfails.write_text("# reads (T, I) as T sequences\n-unbatched-\n")
    code = main([*QUICK, "--impl", "tests.mutants:unbatched_as_batch", "--xfails", str(xfails),
                 "--json", str(tmp_path / "report.json")])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert f"0 failed, 0 unsupported, 0 skipped, {len(UNBATCHED)} xfailed" in out
    summary = json.loads((tmp_path / "report.json").read_text())["summary"]
    assert (summary["xfailed"], summary["xpassed"], summary["failed"]) == (len(UNBATCHED), 0, 0)


def test_a_listed_configuration_that_passes_fails_the_run(tmp_path: Path, capsys) -> None:
    xfails = tmp_path / "known_failures.txt"
    xfails.write_text("-unbatched-   # fixed since\n")
    code = main([*QUICK, "--xfails", str(xfails)])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert f"{len(UNBATCHED)} xpassed" in out
    assert "listed as a known failure (-unbatched-) but passed: remove it from the xfail file" in out


def test_unreadable_xfail_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main([*QUICK, "--xfails", str(tmp_path / "missing.txt")]) == EXIT_USAGE
    assert "--xfails: cannot read" in capsys.readouterr().err


def test_parameter_gradients_out_of_reach_are_counted_and_explained(capsys) -> None:
    code = main([*QUICK, "--grad", "--impl", "tests.mutants_grad:weights_copied"])
    out = capsys.readouterr().out
    gradient_count = len(configs.quick_gradient_matrix(("cpu",), ("float32",)))
    assert code == EXIT_OK  # nothing failed; nothing about parameter gradients passed either
    assert f"{gradient_count} unsupported" in out
    assert f"({gradient_count} of them unsupported for parameter gradients)" in out
    assert MAKE_PARAMETERS_COMPARABLE in out


@pytest.mark.parametrize(("mutant", "tensor"), [("weight_hh_grad_doubled", "grad.weight_hh_l0"),
                                                ("biases_detached", "grad.bias_ih_l0")])
def test_wrong_parameter_gradients_behind_a_plain_callable_exit_1(mutant: str, tensor: str, capsys) -> None:
    assert main([*QUICK, "--grad", "--impl", f"tests.mutants_grad:{mutant}"]) == EXIT_FAILED
    assert f"  {tensor}: " in capsys.readouterr().out

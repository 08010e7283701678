"""The survey: every runtime through the checks, one table, and ``lstm-ref survey``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from lstm_ref import survey
from lstm_ref.cli import main
from lstm_ref.configs import quick_gradient_matrix, quick_matrix, torch_runs_path
from lstm_ref.conformance import FAILED, PASSED, UNSUPPORTED, Result


@pytest.fixture(scope="module")
def oracle_survey() -> survey.Survey:
    """The quick survey of numpy-oracle alone: it passes every forward check and has no gradients."""
    return survey.run_survey(["numpy-oracle"], quick=True, modes=("LSTM",))


def test_survey_runs_both_checks_on_one_torch_path(oracle_survey):
    results = oracle_survey.results["numpy-oracle"]
    def once(matrix):  # each computation on oneDNN, or on the native loop oneDNN falls back to
        return [c for c in matrix if torch_runs_path(replace(c, torch_path="onednn")) == c.torch_path]

    forward = once(quick_matrix())
    assert {c.dtype for c in forward} == {"float32", "float64"} and len(forward) < len(quick_matrix())
    assert len(results) == len(forward) + len(once(quick_gradient_matrix()))
    assert {r.status for r in results if r.check == "forward"} == {PASSED}
    assert {r.status for r in results if r.check == "gradients"} == {UNSUPPORTED}


def test_table_counts_every_axis_value(oracle_survey):
    rows = survey.table(oracle_survey, "forward")
    total = rows["all", ""]["numpy-oracle"]
    assert total.tally[PASSED] == len([r for r in oracle_survey.results["numpy-oracle"] if r.check == "forward"])
    layers = sum(cell["numpy-oracle"].tally[PASSED] for (key, _), cell in rows.items() if key == "num_layers")
    assert layers == total.tally[PASSED]
    assert ("bidirectional", "False") in rows and ("tag", "(grid)") in rows


def test_markdown_and_json_carry_the_versions(oracle_survey, tmp_path):
    survey.write(oracle_survey, tmp_path / "s.md", tmp_path / "s.json")
    text = (tmp_path / "s.md").read_text()
    assert "| all |  |" in text and "numpy-oracle" in text and "torch " in text
    report = json.loads((tmp_path / "s.json").read_text())
    assert {"torch", "onnx", "onnxruntime", "python"} <= set(report["environment"])
    assert report["table"]["forward"][0]["numpy-oracle"]["passed"] > 0


def test_failures_are_listed_smallest_first():
    big, small = quick_matrix()[1], quick_matrix()[0]              # L2 bidirectional, then L1
    failed = survey.Survey(results={"x": [Result(big, FAILED, message="big"), Result(small, FAILED, message="s")]},
                           seconds={"x": 1.0})
    assert [r.message for r in survey.failures(failed)["x"]] == ["s", "big"]
    assert "x: 2 failed; the smallest:" in survey.markdown(failed)


def test_unknown_runtime_is_an_error():
    with pytest.raises(survey.SurveyError, match="unknown runtime nope"):
        survey.run_survey(["nope"], quick=True)


def test_runtime_without_its_packages_is_listed_not_run(monkeypatch):
    monkeypatch.setitem(survey.RUNTIMES, "numpy-oracle", ("no_such_package_for_lstm_ref",))
    result = survey.run_survey(["numpy-oracle"], quick=True)
    assert result.results == {} and "no_such_package_for_lstm_ref" in result.not_installed["numpy-oracle"]


def test_runtimes_at_once_report_as_one_at_a_time(monkeypatch):
    """--jobs: each runtime's results stay its own, in the survey's order, every one reported."""
    few = quick_matrix()[:3], quick_gradient_matrix()[:1]
    monkeypatch.setattr(survey, "matrices", lambda quick, devices=(), dtypes=(), modes=(): few)
    names = ["quantized-dynamic", "numpy-oracle", "torchscript"]
    reported = []
    at_once = survey.run_survey(names, jobs=3, progress=reported.append)
    one_at_a_time = survey.run_survey(names)
    assert list(at_once.results) == names and len(reported) == 3 * 4

    def verdicts(result: survey.Survey) -> dict:
        return {name: [(r.config.id, r.check, r.status) for r in results] for name, results in result.results.items()}

    assert verdicts(at_once) == verdicts(one_at_a_time)
    assert FAILED in {r.status for r in at_once.results["quantized-dynamic"]}, "a failing runtime among passing ones"
    with pytest.raises(survey.SurveyError, match="jobs must be at least 1"):
        survey.run_survey(names, jobs=0)


def test_cli_writes_the_table(tmp_path, capsys, monkeypatch):
    few = tuple([c for dtype in ("float32", "float64") for c in [c for c in matrix if c.dtype == dtype][:2]]
                for matrix in (quick_matrix(), quick_gradient_matrix()))
    monkeypatch.setattr(survey, "matrices", lambda quick, devices=(), dtypes=(), modes=(): tuple(
        [c for c in matrix if c.dtype in dtypes] for matrix in few))
    markdown, report = tmp_path / "t.md", tmp_path / "t.json"
    threads = torch.get_num_threads()
    code = main(["survey", "--quick", "--runtimes", "numpy-oracle", "--markdown", str(markdown),
                 "--json", str(report), "--threads", "3", "--dtype", "float32", "--module", "lstm"])
    assert code == 0 and markdown.exists() and report.exists()
    written = json.loads(report.read_text())
    assert written["environment"]["threads"] == 3 and written["dtypes"] == ["float32"]
    assert {r["config"]["dtype"] for r in written["results"]["numpy-oracle"]} == {"float32"}
    assert "quick matrices of torch.nn.LSTM in float32, seed 0, 3 threads per worker" in markdown.read_text()
    assert written["modes"] == ["LSTM"]
    assert torch.get_num_threads() == threads, "the caller's thread count is restored"
    assert "| num_layers |" in capsys.readouterr().out


def test_survey_of_the_other_kinds_has_their_rows(tmp_path, capsys):
    """--module: each kind's quick matrices, one table with a row per kind; the oracle passes every
    RNN configuration (its one GRU departure, the more exact saturating_T200, is docs/runtimes.md's)."""
    forward, gradients = survey.matrices(quick=True, modes=("GRU", "RNN_TANH"))
    assert {c.mode for c in forward} == {c.mode for c in gradients} == {"GRU", "RNN_TANH"}
    assert not any(c.proj_size for c in forward + gradients)
    assert survey.total_checks(["numpy-oracle"], True, modes=("RNN_TANH",)) == len(
        [c for c in forward + gradients if c.mode == "RNN_TANH"])
    code = main(["survey", "--quick", "--runtimes", "numpy-oracle", "--module", "rnn_tanh,rnn_relu",
                 "--markdown", str(tmp_path / "s.md"), "--json", str(tmp_path / "s.json")])
    assert code == 0
    written = json.loads((tmp_path / "s.json").read_text())
    forward_results = [r for r in written["results"]["numpy-oracle"] if r["check"] == "forward"]
    assert {r["config"]["mode"] for r in forward_results} == {"RNN_TANH", "RNN_RELU"}
    assert {r["status"] for r in forward_results} == {PASSED}
    text = (tmp_path / "s.md").read_text()
    assert "| mode | RNN_RELU |" in text and "torch.nn.RNN(tanh), RNN(relu)" in text
    assert main(["survey", "--module", "lsmt"]) == 2


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["survey", "--runtimes", "nope"]) == 2
    assert main(["survey", "--dtype", "float8"]) == 2
    assert main(["survey", "--json", str(tmp_path / "missing" / "s.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ctrl_c_stops_a_survey_of_runtimes_at_once_and_keeps_what_ran(tmp_path):
    """SIGINT while two runtimes compile and export: the survey stops within seconds, not when
    their matrices are done, writes what ran (marked interrupted), exits 130, and leaves no
    worker behind."""
    from tests.test_isolation import marked_environment, marked_processes

    marker, env = marked_environment()
    survey_run = subprocess.Popen(
        [sys.executable, "-m", "lstm_ref.cli", "survey", "--quick", "--jobs", "2", "--runtimes",
         "numpy-oracle,torch-compile,torch-export", "--module", "lstm", "--markdown", str(tmp_path / "s.md"), "--json",
         str(tmp_path / "s.json")], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        first_progress = survey_run.stderr.readline()  # a tenth of the checks: numpy-oracle's, while torch.compile
        assert first_progress.startswith("["), first_progress  # compiles
        survey_run.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        survey_run.wait(60)
        elapsed = time.monotonic() - stopped
        errors = survey_run.stderr.read()
        assert elapsed < 10, (elapsed, errors[-3000:])  # under 1 s here; one compilation in flight: 20 s
        assert survey_run.returncode == 130 and "interrupted: what ran is written to" in errors, errors[-3000:]
    finally:
        survey_run.kill()
        survey_run.wait()
    leftover = marked_processes(marker)
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert leftover == []
    written = json.loads((tmp_path / "s.json").read_text())
    ran = sum(len(results) for results in written["results"].values())
    planned = 3 * sum(map(len, survey.matrices(quick=True, modes=("LSTM",))))
    assert written["interrupted"] and 0 < ran < written["planned"] == planned
    assert all(r["status"] == PASSED for r in written["results"]["numpy-oracle"] if r["check"] == "forward")
    assert f"**Interrupted**: {ran} of {written['planned']} checks ran." in (tmp_path / "s.md").read_text()

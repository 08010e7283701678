"""``lstm-ref check`` and the pytest plugin when the user or the candidate gets it wrong.

A usage error (a bad ``--impl``, an unwritable ``--json``) is one line on stderr and exit code 2;
a candidate that raises or returns the wrong thing fails its configurations (exit code 1) with a
message and a reproducer; nothing prints a traceback. The JSON report is written whole or not
at all. Candidates come from tests/bad_candidates.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_ref import configs
from lstm_ref.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from lstm_ref.conformance import FAILED, PASSED, Result, check_forward, reproducer_command
from lstm_ref.report import write_json

HERE = Path(__file__).resolve().parent
# the LSTM's quick matrix, in-process (isolation: test_isolation.py)
QUICK = ["check", "--quick", "--module", "lstm", "--device", "cpu", "--dtype", "float32", "--no-isolate"]
QUICK_COUNT = len(configs.quick_matrix(("cpu",), ("float32",)))


@pytest.fixture(autouse=True)
def candidates_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main([*QUICK, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def corrupt_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "corrupt_candidate.py").write_text("def make(module:\n    return module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "corrupt_candidate:make"


BAD_IMPLS = [
    ("no-module", "no_such_candidate_module:make", "cannot import module 'no_such_candidate_module'"),
    ("no-attribute", "bad_candidates:make_lstm", "has no attribute 'make_lstm'"),
    ("no-dotted-attribute", "bad_candidates:hangs.missing", "('missing' not found)"),
    ("not-callable", "bad_candidates:NOT_CALLABLE", "is a int, not a callable factory"),
    ("no-colon", "bad_candidates", "must look like MODULE:ATTR"),
]


@pytest.mark.parametrize(("spec", "says"), [case[1:] for case in BAD_IMPLS],
                         ids=[case[0] for case in BAD_IMPLS])
def test_bad_impl_is_a_one_line_usage_error(capsys, spec: str, says: str) -> None:
    code, out, err = run_cli(capsys, "--impl", spec)
    assert code == EXIT_USAGE
    assert out == ""
    assert err.startswith("lstm-ref check: error: ") and says in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_impl_module_with_a_syntax_error_is_a_usage_error(capsys, corrupt_module: str) -> None:
    code, out, err = run_cli(capsys, "--impl", corrupt_module)
    assert code == EXIT_USAGE
    assert "importing module 'corrupt_candidate'" in err and "SyntaxError" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


FAILING_CANDIDATES = [
    ("raises-in-factory", "raises_in_factory",
     "candidate raised RuntimeError: cannot build the candidate: unsupported weight layout"),
    ("raises-in-call", "raises_in_call", "candidate raised ValueError: kernel launch failed"),
    ("factory-returns-non-callable", "not_callable",
     "candidate raised TypeError: 'int' object is not callable"),
    ("wrong-output-shape", "wrong_output_shape", "output: shape [5, 3, 5], expected [5, 3, 6]"),
    ("non-tensors", "non_tensors", "output: expected a Tensor, got list"),
    ("not-a-pair", "not_a_pair", "result: expected (output, (h_n, c_n)), got NoneType"),
]


@pytest.mark.parametrize(("factory", "says"), [case[1:] for case in FAILING_CANDIDATES],
                         ids=[case[0] for case in FAILING_CANDIDATES])
def test_misbehaving_candidate_fails_the_configuration(factory: str, says: str) -> None:
    """Each misbehaviour is a failure of the configuration with a message, never an exception."""
    import bad_candidates

    result = check_forward(configs.Config(initial_state=True), getattr(bad_candidates, factory))
    assert result.status == FAILED
    description = result.describe()
    assert says in description, description
    reproducer = reproducer_command(configs.Config(initial_state=True), check_forward, f"bad_candidates:{factory}")
    assert description.endswith(f"\n  reproduce: {reproducer}")


def test_failing_candidate_exits_1_with_a_complete_json_report(capsys, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    code, out, err = run_cli(capsys, "--impl", "bad_candidates:raises_in_call", "--show-failures", "1",
                             "--json", str(path))
    assert code == EXIT_FAILED
    assert f"0 passed, {QUICK_COUNT} failed" in out
    assert "candidate raised ValueError: kernel launch failed" in out
    assert "  reproduce: python -X faulthandler -c " in out
    assert f"... and {QUICK_COUNT - 1} more failures" in out
    assert "Traceback" not in out + err
    report = json.loads(path.read_text())
    assert report["summary"][FAILED] == QUICK_COUNT == len(report["results"])
    assert {r["status"] for r in report["results"]} == {FAILED}
    for result in report["results"]:
        config = configs.Config(**{k: v for k, v in result["config"].items() if k != "id"})
        assert result["reproduce"] == reproducer_command(config, check_forward, "bad_candidates:raises_in_call")
    assert report["environment"]["implementation"] == "bad_candidates:raises_in_call"
    assert os.listdir(tmp_path) == ["report.json"]


def test_unsupported_everywhere_is_not_a_failure(capsys) -> None:
    code, out, _ = run_cli(capsys, "--impl", "bad_candidates:unsupported")
    assert code == EXIT_OK
    assert f"0 passed, 0 failed, {QUICK_COUNT} unsupported" in out


def test_json_into_a_missing_directory_is_a_usage_error(capsys, tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "report.json"
    code, _, err = run_cli(capsys, "--impl", "bad_candidates:unsupported", "--json", str(path))
    assert code == EXIT_USAGE
    assert str(path.parent) in err and "Traceback" not in err
    assert not (tmp_path / "no").exists()


def test_json_report_is_whole_or_absent_when_writing_fails(tmp_path: Path) -> None:
    """A failure half-way through the dump leaves the previous report as it was and no temp file."""
    path = tmp_path / "report.json"
    path.write_text('{"previous": "report"}')
    config = configs.Config()
    results = [Result(config, PASSED), Result(config, FAILED, message=object())]  # not JSON-serialisable
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(path, results, 0, "bad_candidates:raises_in_call", 1.0)
    assert path.read_text() == '{"previous": "report"}'
    assert os.listdir(tmp_path) == ["report.json"]
    write_json(path, results[:1], 0, "lstm_ref", 1.0)
    assert json.loads(path.read_text())["summary"][PASSED] == 1


def console_command() -> list[str]:
    script = Path(sys.executable).with_name("lstm-ref")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lstm_ref.cli"]


def test_console_script_end_to_end_usage_error() -> None:
    """The installed command: a bad --impl is one line on stderr, exit code 2, no traceback."""
    completed = subprocess.run(
        [*console_command(), *QUICK, "--impl", "bad_candidates:NOT_CALLABLE"],
        capture_output=True, text=True, timeout=120, cwd=HERE,
    )
    assert completed.returncode == EXIT_USAGE, completed.stderr
    assert completed.stdout == ""
    assert completed.stderr == (
        "lstm-ref check: error: 'bad_candidates:NOT_CALLABLE' is a int, not a callable factory\n"
    )


def test_plugin_bad_impl_is_a_pytest_usage_error(capsys) -> None:
    """pytest (run in-process) stops with its usage-error exit code and the loader's one-line message."""
    code = pytest.main(["-p", "no:cacheprovider", "-p", "no:xdist", "--pyargs", "lstm_ref.suite",
                        "--lstm-impl", "bad_candidates:NOT_CALLABLE", "--collect-only", "-q"])
    captured = capsys.readouterr()
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "'bad_candidates:NOT_CALLABLE' is a int, not a callable factory" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_plugin_missing_skip_file_is_a_usage_error(tmp_path: Path) -> None:
    from lstm_ref.plugin import read_pattern_file

    with pytest.raises(pytest.UsageError, match=r"--lstm-skips: cannot read .*no-such-file"):
        read_pattern_file(str(tmp_path / "no-such-file"), "--lstm-skips")

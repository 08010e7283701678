"""A candidate that hangs fails its configuration after the per-configuration time limit.

In-process (``check_forward(..., timeout=S)``, ``lstm-ref check --no-isolate --timeout S``) a
thread stops being waited for: "candidate timed out after Ss". In a worker process (the plugin's
``--lstm-timeout S``, and tests/test_isolation.py) the worker is killed: "timed out after S s:
worker killed". Either way the run goes on with the next configuration. The hanging candidate
is tests/bad_candidates.py:hangs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lstm_ref import configs
from lstm_ref.cli import EXIT_FAILED, EXIT_USAGE, main
from lstm_ref.conformance import FAILED, PASSED, call_with_timeout, check_forward

HERE = Path(__file__).resolve().parent
LIMIT = 0.3


@pytest.fixture(autouse=True)
def candidates_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def test_hanging_candidate_fails_its_configuration_after_the_limit() -> None:
    from bad_candidates import hangs

    started = time.perf_counter()
    result = check_forward(configs.Config(), hangs, timeout=LIMIT)
    elapsed = time.perf_counter() - started
    assert result.status == FAILED
    assert result.message == f"candidate timed out after {LIMIT:g}s (the per-configuration limit)"
    assert LIMIT <= elapsed < LIMIT + 5
    assert "reproduce: " in result.describe()


def test_a_limit_changes_nothing_for_a_candidate_within_it() -> None:
    config = configs.Config(bidirectional=True, input_form="packed", initial_state=True)
    timed, untimed = check_forward(config, timeout=60), check_forward(config)
    assert timed.status == untimed.status == PASSED
    assert [t.as_dict() for t in timed.tensors] == [t.as_dict() for t in untimed.tensors]


def test_the_worker_hands_back_the_candidates_exception() -> None:
    def broken() -> None:
        raise NotImplementedError("no packed input")

    with pytest.raises(NotImplementedError, match="no packed input"):
        call_with_timeout(broken, 10)


def test_cli_timeout_in_process_fails_each_hanging_configuration(capsys) -> None:
    count = len(configs.quick_matrix(("cpu",), ("float32",)))
    code = main(["check", "--quick", "--module", "lstm", "--device", "cpu", "--dtype", "float32", "--no-isolate",
                 "--impl", "bad_candidates:hangs", "--timeout", "0.05", "--show-failures", "1"])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert f"0 passed, {count} failed" in out
    assert "candidate timed out after 0.05s" in out


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_cli_rejects_a_bad_timeout(capsys, value: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["check", "--quick", "--timeout", value])
    assert stopped.value.code == EXIT_USAGE
    assert "--timeout" in capsys.readouterr().err


def test_plugin_timeout_fails_the_configuration(capsys) -> None:
    config_id = "L1-onedir-seq_first-bias-noproj-dense-zero_state-float64-cpu-native"
    code = pytest.main(["-p", "no:cacheprovider", "-p", "no:xdist", "--pyargs", "lstm_ref.suite",
                        "--lstm-impl", "bad_candidates:hangs", "--lstm-timeout", "0.2",
                        "--lstm-device", "cpu", "--lstm-dtype", "float64", "--lstm-module", "lstm",
                        "-k", f"test_forward and {config_id}", "-q"])
    out = capsys.readouterr().out
    assert code == pytest.ExitCode.TESTS_FAILED
    assert "timed out after 0.2 s: worker killed" in out
    assert "1 failed" in out

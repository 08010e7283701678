"""A candidate that crashes or hangs fails its configuration, not the run.

Real crashing candidates (tests/bad_candidates.py: a ctypes null dereference, ``os.abort()``,
``os._exit(3)``, ``SystemExit``, an infinite Python loop, a ``time.sleep`` in C, allocation
without bound under a memory limit), each misbehaving only on 3-layer bidirectional
configurations, run through :class:`lstm_ref.runner.Runner`, ``lstm-ref check`` and the pytest
plugin under xdist: each is checked for its verdict, the verdicts of the configurations after it
(the same as a clean run's), the exit code, and that no process is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import lstm_ref.suite
from lstm_ref import cli, configs
from lstm_ref.conformance import FAILED, PASSED
from lstm_ref.runner import Runner, exit_description, reproducer_command
from tests.test_reproduce import run_reproducer

HERE = Path(__file__).resolve().parent
TIMEOUT = 2.0
CLEAN = configs.Config(initial_state=True)
CRASHING = configs.Config(num_layers=3, bidirectional=True, initial_state=True)
AFTER = configs.Config(batch_first=True, input_form="packed", initial_state=True)

#: candidate, what its crashing configuration's verdict says, whether faulthandler shows a stack
KINDS = [
    ("segfaults", "crashed: signal 11 (SIGSEGV)", True),
    ("aborts", "crashed: signal 6 (SIGABRT)", True),
    ("exits_3", "worker exited with code 3", False),
    ("raises_system_exit", "worker exited with code 4", False),
    ("spins", f"timed out after {TIMEOUT:g} s: worker killed", True),
    ("sleeps_in_c", f"timed out after {TIMEOUT:g} s: worker killed", True),
]


@pytest.fixture(autouse=True)
def candidates_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def comparable(result) -> dict:
    """A verdict less its run time: what must not depend on what ran before it."""
    return {key: value for key, value in result.as_dict().items() if key != "seconds"}


@pytest.mark.parametrize(("name", "verdict", "has_stack"), KINDS, ids=[kind[0] for kind in KINDS])
def test_crash_fails_only_its_configuration(name: str, verdict: str, has_stack: bool) -> None:
    with Runner(f"bad_candidates:{name}", timeout=TIMEOUT) as runner:
        before = runner.check(CLEAN)
        crashed = runner.check(CRASHING)
        after = runner.check(AFTER)
        worker = runner._worker
    assert crashed.status == FAILED and crashed.message == verdict, crashed.describe()
    assert ("bad_candidates.py" in crashed.details) == has_stack, crashed.details
    assert crashed.reproduce == reproducer_command(CRASHING, "forward", f"bad_candidates:{name}")
    with Runner("bad_candidates:well_behaved", isolate=False) as alone:
        assert comparable(before) == comparable(alone.check(CLEAN))
        assert comparable(after) == comparable(alone.check(AFTER))
    assert before.status == after.status == PASSED
    assert worker is not None and worker.process.poll() is not None  # stopped, not left running


def test_unbounded_allocation_under_a_memory_limit_fails_its_configuration() -> None:
    with Runner("bad_candidates:allocates_without_bound", timeout=60, memory_limit=3 * 2**30) as runner:
        crashed = runner.check(CRASHING)
        after = runner.check(AFTER)
        worker = runner._worker
    assert crashed.status == FAILED
    assert "can't allocate memory" in crashed.message or "MemoryError" in crashed.message, crashed.describe()
    assert after.status == PASSED
    assert worker is not None and worker.process.poll() is not None


def test_the_reproducer_reruns_the_configuration_in_process() -> None:
    command = reproducer_command(AFTER, "forward", "bad_candidates:well_behaved", seed=3)
    shell = run_reproducer(command, HERE)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.startswith(f"{AFTER.id}: passed")


@pytest.mark.parametrize(("code", "says"), [(-11, "crashed: signal 11 (SIGSEGV)"), (-9, "crashed: signal 9 (SIGKILL)"),
                                            (3, "worker exited with code 3")])
def test_exit_descriptions(code: int, says: str) -> None:
    assert exit_description(code) == says


def test_harness_errors_are_raised_not_blamed_on_the_candidate() -> None:
    with Runner("lstm_ref") as runner, pytest.raises(ValueError, match="initial_state=True"):
        runner.check(configs.Config(), "gradients")


def marked_environment() -> tuple[str, dict[str, str]]:
    """A marker, and an environment carrying it that imports the test candidates."""
    marker = f"LSTM_REF_TEST_RUN={uuid.uuid4().hex}"
    return marker, dict(os.environ, LSTM_REF_TEST_RUN=marker.split("=", 1)[1],
                        PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent)]))


def marked_processes(marker: str) -> list[int]:
    """The pids of the processes whose environment carries ``marker``."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


def run_marked(command: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[int]]:
    """Run ``command`` with a marker in its environment; return its outcome and the pids of any
    process still carrying the marker afterwards (its workers, had it left one behind)."""
    marker, env = marked_environment()
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    return done, marked_processes(marker)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker dies with its parent on Linux only")
def test_a_killed_run_leaves_no_hung_worker_behind(tmp_path: Path) -> None:
    """SIGKILL the process that runs the checks while its worker spins with no time limit: the
    worker must not outlive it (a timed-out CI job would leave it spinning for ever)."""
    marker, env = marked_environment()
    spinning = tmp_path / "spinning"
    env.update(LSTM_REF_TEST_SPINNING=str(spinning), TMPDIR=str(tmp_path))  # the worker's fault file, kept here
    script = ("from lstm_ref.runner import Runner; from lstm_ref.configs import Config\n"
              "with Runner('bad_candidates:spins', timeout=0) as runner:\n"
              "    print('checking', flush=True)\n"
              "    runner.check(Config(num_layers=3, bidirectional=True, initial_state=True))\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline() == "checking\n"
        deadline = time.monotonic() + 120
        while not spinning.exists() and time.monotonic() < deadline:  # the worker is in the candidate's loop
            time.sleep(0.2)
        assert spinning.exists() and len(marked_processes(marker)) == 2
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftover = marked_processes(marker)
    for pid in leftover:  # never leave one spinning, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert leftover == []


def test_check_reports_a_segfault_and_judges_the_rest_as_a_clean_run(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "lstm_ref.cli", "check", "--quick", "--module", "lstm", "--dtype", "float32",
            "--timeout", "60"]
    crashed, leftover = run_marked([*base, "--impl", "bad_candidates:segfaults", "--json", "crash.json"], tmp_path)
    assert crashed.returncode == 1, crashed.stderr
    assert leftover == []
    clean = cli.main(["check", "--quick", "--module", "lstm", "--dtype", "float32", "--no-isolate", "--impl",
                      "bad_candidates:well_behaved",
                      "--json", str(tmp_path / "clean.json")])
    assert clean == 0
    crash_results = json.loads((tmp_path / "crash.json").read_text())["results"]
    crash_reproducers = []
    clean_results = json.loads((tmp_path / "clean.json").read_text())["results"]
    assert len(crash_results) == len(clean_results) == len(configs.quick_matrix(("cpu",), ("float32",)))
    for crash, clean_result in zip(crash_results, clean_results):
        config = crash["config"]
        if config["num_layers"] >= 3 and config["bidirectional"]:
            assert (crash["status"], crash["message"]) == (FAILED, "crashed: signal 11 (SIGSEGV)")
            assert "'bad_candidates:segfaults'" in crash["reproduce"]
            crash_reproducers.append(crash["reproduce"])
        else:
            assert crash["tensors"] == clean_result["tensors"] and crash["status"] == clean_result["status"]
            assert crash["reproduce"] == ""
    assert "crashed: signal 11 (SIGSEGV)" in crashed.stdout
    assert f"reproduce: {crash_reproducers[0]}" in crashed.stdout
    rerun = run_reproducer(crash_reproducers[0], HERE)  # in one process: the crash takes it down
    assert rerun.returncode in (-signal.SIGSEGV, 128 + signal.SIGSEGV), rerun.stderr[-2000:]
    assert "Segmentation fault" in rerun.stderr, rerun.stderr[-2000:]


def test_plugin_under_xdist_fails_only_the_crashing_configurations(tmp_path: Path) -> None:
    suite = Path(lstm_ref.suite.__file__).parent / "test_forward.py"
    ids = [f"L{layers}-{direction}-seq_first-bias-noproj-dense-h0-float32-cpu-{path}"
           for layers, direction in ((1, "onedir"), (3, "bidir"), (2, "bidir")) for path in ("onednn", "native")]
    command = [sys.executable, "-m", "pytest", *[f"{suite}::test_forward[{i}]" for i in ids], "-p", "no:cacheprovider",
               "--lstm-impl", "bad_candidates:aborts", "-n", "2", "-q"]
    done, leftover = run_marked(command, tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "2 failed, 4 passed" in done.stdout, done.stdout[-3000:]
    assert done.stdout.count("crashed: signal 6 (SIGABRT)") >= 2
    assert leftover == []


def test_check_lstm_in_a_worker_survives_a_crashing_candidate() -> None:
    from lstm_ref.testing import check_lstm

    results = check_lstm("bad_candidates:segfaults", [CLEAN, CRASHING, AFTER], timeout=60)  # isolated by default
    assert [r.status for r in results] == [PASSED, FAILED, PASSED]
    assert results[1].message == "crashed: signal 11 (SIGSEGV)"

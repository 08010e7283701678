"""The pytest plugin (entry point ``pytest11``): the conformance suite for any LSTM.

    pytest --pyargs lstm_ref.suite --lstm-impl mypkg.lstm:make

Options choose the implementation under test, devices, dtypes, a seed, a
skip file and an xfail file. Tests that take the ``lstm_config`` fixture are
parametrized over the default matrix (``lstm_ref.configs``), with ids that
read like the configuration. The candidate runs in a worker process (the
``lstm_runner`` fixture, one per pytest process; ``--lstm-no-isolate`` runs it
in-process), so a crash or a hang fails one test. Unsupported configurations
(the candidate raised NotImplementedError), configurations on an absent GPU,
and those listed in the skip file are skipped with their reason; those in the
xfail file are strict xfails; all are counted in the summary.
"""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch

from lstm_ref import configs
from lstm_ref.candidates import DEFAULT_IMPL, CandidateError, load_factory
from lstm_ref.conformance import DEFAULT_TIMEOUT, FAILED, SKIPPED, UNSUPPORTED, UNTESTABLE, Result
from lstm_ref.expectations import PatternFileError, matching, read_patterns
from lstm_ref.runner import Runner

UNSUPPORTED_PREFIX = "unsupported by the candidate"
SKIP_FILE_PREFIX = "listed in the skip file"
XFAIL_FILE_PREFIX = "listed in the xfail file"
NO_DEVICE_PREFIX = "device unavailable"
TORCH_CANNOT_RUN_PREFIX = "torch cannot run this configuration"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lstm_ref", "LSTM conformance (lstm_ref)")
    group.addoption("--lstm-impl", default=None, metavar="MODULE:ATTR",
                    help=f"factory of the LSTM under test (default {DEFAULT_IMPL}; 'torch' "
                         "runs torch.nn.LSTM on another code path)")
    group.addoption("--lstm-module", default=",".join(configs.DEFAULT_MODULES), metavar="KINDS",
                    help=f"comma-separated module kinds from {','.join(configs.MODULE_CHOICES)}, or 'all' "
                         f"(default {','.join(configs.DEFAULT_MODULES)}); ids of other kinds start with the kind")
    group.addoption("--lstm-device", default="all", metavar="DEVICES",
                    help="comma-separated devices from cpu,cuda, or 'all' (default; cuda "
                         "configurations are skipped with a reason when no GPU is present)")
    group.addoption("--lstm-dtype", default=",".join(configs.DTYPES), metavar="DTYPES",
                    help=f"comma-separated dtypes from {','.join(configs.ALL_DTYPES)} (default "
                         f"{','.join(configs.DTYPES)}; bfloat16 and float16 run the half-precision "
                         "selection, autocast included)")
    group.addoption("--lstm-seed", type=int, default=0, help="base seed (default 0)")
    group.addoption("--lstm-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help=f"fail a configuration whose candidate takes longer than SECONDS "
                         f"(default {DEFAULT_TIMEOUT:g}; 0: no limit)")
    group.addoption("--lstm-skips", default=None, metavar="FILE",
                    help="file of fnmatch patterns matched anywhere in the test id (one a line, "
                         "# comments): those tests are skipped")
    group.addoption("--lstm-xfails", default=None, metavar="FILE",
                    help="file of fnmatch patterns matched anywhere in the test id, expected to fail "
                         "(strict: one that passes fails the run)")
    group.addoption("--lstm-memory-limit", type=float, default=None, metavar="GIB",
                    help="memory the candidate may allocate in its worker process, in GiB, above what the "
                         "worker holds once torch is imported (RLIMIT_DATA)")
    group.addoption("--lstm-no-isolate", action="store_true",
                    help="run the candidate in the pytest process (for pdb) instead of a worker process")


def parse_choices(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """configs.parse_choices, its ValueError turned into pytest's usage error."""
    try:
        return configs.parse_choices(text, allowed)
    except ValueError as error:
        raise pytest.UsageError(f"--lstm-{what}: {error}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lstm_conformance: a configuration of the LSTM conformance matrix")
    try:
        spec, factory = load_factory(config.getoption("--lstm-impl"))
    except CandidateError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[_FACTORY] = (spec, factory)
    config.stash[_DEVICES] = parse_choices(config.getoption("--lstm-device"), configs.DEVICES, "device")
    config.stash[_DTYPES] = parse_choices(config.getoption("--lstm-dtype"), configs.ALL_DTYPES, "dtype")
    config.stash[_MODES] = tuple(name.upper() for name in parse_choices(
        config.getoption("--lstm-module"), configs.MODULE_CHOICES, "module"))
    timeout = config.getoption("--lstm-timeout")
    if not 0 <= timeout < float("inf"):
        raise pytest.UsageError(f"--lstm-timeout: expected a finite number of seconds >= 0, got {timeout}")
    config.pluginmanager.register(SkipCounter(spec), "lstm_ref-skip-counter")


_FACTORY = pytest.StashKey[tuple]()
_DEVICES = pytest.StashKey[tuple]()
_DTYPES = pytest.StashKey[tuple]()
_MODES = pytest.StashKey[tuple]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    spec, _ = config.stash[_FACTORY]
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "not available"
    return [
        f"lstm_ref: implementation under test {spec}",
        f"lstm_ref: devices {','.join(config.stash[_DEVICES])} (CUDA: {cuda}), "
        f"dtypes {','.join(config.stash[_DTYPES])}, seed {config.getoption('--lstm-seed')}, "
        f"TF32 off for CUDA float32, torch {torch.__version__}",
    ]


#: Fixture name -> the matrix its tests are parametrized over.
MATRICES = {"lstm_config": configs.default_matrix, "lstm_grad_config": configs.gradient_matrix}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, make_matrix in MATRICES.items():
        if fixture in metafunc.fixturenames:
            matrix = make_matrix(metafunc.config.stash[_DEVICES], metafunc.config.stash[_DTYPES])
            if metafunc.config.stash[_MODES] != ("LSTM",):
                matrix = configs.for_modes(matrix, metafunc.config.stash[_MODES])
            metafunc.parametrize(fixture, matrix, ids=[c.id for c in matrix])


@pytest.fixture(scope="session")
def lstm_factory(pytestconfig: pytest.Config):
    """The factory of the implementation under test (``--lstm-impl``)."""
    return pytestconfig.stash[_FACTORY][1]


@pytest.fixture(scope="session")
def lstm_timeout(pytestconfig: pytest.Config) -> float:
    """Seconds the candidate may take on one configuration (``--lstm-timeout``; 0: no limit)."""
    return pytestconfig.getoption("--lstm-timeout")


@pytest.fixture(scope="session")
def lstm_seed(pytestconfig: pytest.Config) -> int:
    return pytestconfig.getoption("--lstm-seed")


@pytest.fixture(scope="session")
def lstm_runner(pytestconfig: pytest.Config, lstm_seed: int, lstm_timeout: float):
    """Runs the candidate's checks (``lstm_runner.check(config, "forward" | "gradients")``) in a
    worker process that a crash or a hang cannot take the test run down with."""
    spec, _ = pytestconfig.stash[_FACTORY]
    gibibytes = pytestconfig.getoption("--lstm-memory-limit")
    memory_limit = int(gibibytes * 2**30) if gibibytes else None
    with Runner(spec, seed=lstm_seed, timeout=lstm_timeout, memory_limit=memory_limit,
                isolate=not pytestconfig.getoption("--lstm-no-isolate")) as runner:
        yield runner


def settle(result: Result) -> None:
    """Turn a conformance Result into a pytest outcome: skip (with reason) or assert."""
    if result.status == UNSUPPORTED:
        pytest.skip(f"{UNSUPPORTED_PREFIX}: {result.message}")
    if result.status == UNTESTABLE:  # its message starts with TORCH_CANNOT_RUN_PREFIX
        pytest.skip(result.message)
    if result.status == SKIPPED:
        pytest.skip(f"{NO_DEVICE_PREFIX}: {result.message}")
    assert result.status != FAILED, result.describe()


def read_pattern_file(path: str, option: str) -> list[str]:
    try:
        return read_patterns(path, option)
    except PatternFileError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for option, mark in (("--lstm-skips", _skip_mark), ("--lstm-xfails", _xfail_mark)):
        path = config.getoption(option)
        if not path:
            continue
        patterns = read_pattern_file(path, option)
        used: set[str] = set()
        for item in items:
            pattern = matching(item.nodeid, patterns)
            if pattern is not None:
                item.add_marker(mark(pattern))
                used.add(pattern)
        for pattern in patterns:
            if pattern not in used:
                warnings.warn(f"{option}: pattern {pattern!r} matches no collected test", stacklevel=1)


def _skip_mark(pattern: str) -> pytest.MarkDecorator:
    return pytest.mark.skip(reason=f"{SKIP_FILE_PREFIX}: {pattern}")


def _xfail_mark(pattern: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(reason=f"{XFAIL_FILE_PREFIX}: {pattern}", strict=True, raises=AssertionError)


class SkipCounter:
    """Counts skipped configurations by kind and prints them at the end of the run."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.counts: Counter = Counter()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "wasxfail", "").startswith(XFAIL_FILE_PREFIX):
            self.counts["xfailed (xfail file)"] += 1
            return
        if report.failed and XFAIL_FILE_PREFIX in str(report.longrepr) and "XPASS" in str(report.longrepr):
            self.counts["xpassed, failing the run (xfail file)"] += 1
            return
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = report.longrepr[2].removeprefix("Skipped: ")
            for prefix in (UNSUPPORTED_PREFIX, SKIP_FILE_PREFIX, NO_DEVICE_PREFIX, TORCH_CANNOT_RUN_PREFIX):
                if reason.startswith(prefix):
                    self.counts[prefix] += 1

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.counts:
            parts = [f"{count} {prefix}" for prefix, count in sorted(self.counts.items())]
            terminalreporter.write_sep("-", f"lstm_ref: skipped and expected-to-fail configurations of {self.spec}")
            terminalreporter.write_line("; ".join(parts))

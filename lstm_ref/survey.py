"""The survey: every installed runtime of :mod:`lstm_ref.runtimes` through the conformance
checks, and one table of where each departs from ``torch.nn.LSTM`` (``nn.GRU``, ``nn.RNN``).

For each runtime, :func:`run_survey` runs :func:`lstm_ref.conformance.check_forward` over the
default matrix (or the quick one) of each module kind asked for and :func:`lstm_ref.gradients.check_gradients` over the
gradient matrix, on each device's default torch path only (the candidate's side does not
depend on which torch path computes the expected values), in a worker process per runtime
(:class:`lstm_ref.runner.Runner`: its export caches live as long as the worker, and a
configuration that takes longer than ``timeout`` seconds fails as timed out); ``jobs`` workers
run at once, each on the caller's torch thread count. A runtime whose
packages are not installed is listed with the reason and not run.

The table (:func:`markdown`, :func:`as_json`) has one row per axis value (the grouping keys
of :mod:`lstm_ref.report`) and one column per runtime; a cell reads
``passed/failed/unsupported`` and the worst error as a multiple of the tolerance.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import platform
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lstm_ref import configs
from lstm_ref.conformance import DEFAULT_TIMEOUT, FAILED, PASSED, SKIPPED, UNSUPPORTED, UNTESTABLE, Result
from lstm_ref.report import GROUP_KEYS
from lstm_ref.runner import Runner

SURVEY_VERSION = 1

#: The surveyed runtimes (short names of lstm_ref.candidates.BUILTIN) and the packages each needs.
RUNTIMES: dict[str, tuple[str, ...]] = {
    "onnx-export": ("onnx", "onnxruntime", "onnxscript"),
    "onnxruntime-op": ("onnx", "onnxruntime"),
    "torch-compile": (),
    "torchscript": (),
    "torch-export": (),
    "quantized-dynamic": (),
    "numpy-oracle": (),
}

#: Versions recorded with every survey.
PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "numpy")

CHECKS = ("forward", "gradients")


class SurveyError(Exception):
    """A survey that cannot run as asked (an unknown runtime name)."""


class SurveyInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_survey`; ``survey`` holds what ran before it, to be written."""

    def __init__(self, survey: Survey) -> None:
        super().__init__("survey interrupted")
        self.survey = survey


def missing_packages(runtime: str) -> list[str]:
    """The packages ``runtime`` needs that are not installed."""
    return [name for name in RUNTIMES[runtime] if importlib.util.find_spec(name) is None]


def matrices(quick: bool, devices: Sequence[str] = ("cpu",), dtypes: Sequence[str] = configs.DTYPES,
             modes: Sequence[str] = configs.MODES) -> tuple[list[configs.Config], list[configs.Config]]:
    """The forward and gradient configurations of a survey: the default (or quick) matrices for
    each kind of ``modes`` (:func:`lstm_ref.configs.for_modes`), each computation once: on each
    device's first torch path, or the path torch falls back to from it (autocast rows: every
    path, as torch's paths differ there)."""
    forward = configs.for_modes((configs.quick_matrix if quick else configs.default_matrix)(devices, dtypes), modes)
    gradients = configs.for_modes(
        (configs.quick_gradient_matrix if quick else configs.gradient_matrix)(devices, dtypes), modes)

    def first_path(matrix: list[configs.Config]) -> list[configs.Config]:
        return [c for c in matrix if c.autocast or c.torch_path == configs.torch_runs_path(
            replace(c, torch_path=configs.TORCH_PATHS[c.device_type][0]))]

    return first_path(forward), first_path(gradients)


@dataclass
class Survey:
    """Every runtime's results, what was not run and why, and the environment."""

    results: dict[str, list[Result]] = field(default_factory=dict)
    not_installed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    quick: bool = False
    seed: int = 0
    timeout: float = DEFAULT_TIMEOUT
    started: str = ""
    threads: int = 0  # each worker's torch intra-op threads
    dtypes: tuple[str, ...] = configs.DTYPES
    modes: tuple[str, ...] = configs.MODES
    planned: int = 0  # checks the survey set out to run; fewer ran if it was interrupted
    interrupted: bool = False

    def environment(self) -> dict:
        versions = {}
        for name in PACKAGES:
            try:
                versions[name] = importlib.import_module(name).__version__
            except ImportError:
                versions[name] = None
        return {"python": platform.python_version(), "platform": platform.platform(),
                "threads": self.threads, **versions}


def run_survey(
    names: Sequence[str] | None = None, quick: bool = False, seed: int = 0,
    devices: Sequence[str] = ("cpu",), dtypes: Sequence[str] = configs.DTYPES,
    progress: Callable[[Result], None] | None = None, timeout: float = DEFAULT_TIMEOUT, jobs: int = 1,
    modes: Sequence[str] = configs.MODES,
) -> Survey:
    """Run the forward and gradient checks for each runtime in ``names`` (default: all of
    :data:`RUNTIMES`) on each module kind of ``modes`` (default: all); ``progress`` is called
    with each Result as it arrives (from one thread at a time); ``timeout``: seconds one
    configuration may take (0: no limit); ``jobs``: how many runtimes run at once, each in its
    own worker process (the survey's order and results do not depend on it). Ctrl-C kills the
    checks in flight and raises :class:`SurveyInterrupted` with the results so far."""
    names = list(RUNTIMES) if names is None else list(names)
    unknown = [name for name in names if name not in RUNTIMES]
    if unknown:
        raise SurveyError(f"unknown runtime {', '.join(unknown)}; choose from {', '.join(RUNTIMES)}")
    if jobs < 1:
        raise SurveyError(f"jobs must be at least 1, got {jobs}")
    forward, gradients = matrices(quick, devices, dtypes, modes)
    checks = [("forward", c) for c in forward] + [("gradients", c) for c in gradients]
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    survey = Survey(quick=quick, seed=seed, timeout=timeout, threads=torch.get_num_threads(), dtypes=tuple(dtypes),
                    modes=tuple(modes), started=started)
    reporting = threading.Lock()
    interrupted = threading.Event()
    runners: list[Runner] = []

    def run(name: str) -> None:
        started = time.perf_counter()
        with Runner(name, seed=seed, timeout=timeout) as runner:
            runners.append(runner)
            for check, config in checks:
                if interrupted.is_set():
                    break
                result = runner.check(config, check)
                if interrupted.is_set():  # killed by Ctrl-C: not a verdict
                    break
                survey.results[name].append(result)
                survey.seconds[name] = time.perf_counter() - started
                if progress:
                    with reporting:
                        progress(result)

    for name in names:
        missing = missing_packages(name)
        if missing:
            survey.not_installed[name] = f"not installed: {', '.join(missing)} (pip install 'lstm-ref[runtimes]')"
        else:
            survey.results[name], survey.seconds[name] = [], 0.0
    survey.planned = len(survey.results) * len(checks)
    pool = ThreadPoolExecutor(max_workers=jobs) if jobs > 1 else None  # its threads only wait on workers
    try:
        if pool is None:  # in this thread: Ctrl-C stops the check in flight at once
            for name in survey.results:
                run(name)
        else:
            for done in [pool.submit(run, name) for name in survey.results]:
                done.result()
    except KeyboardInterrupt:  # end every runtime's check in flight now, not at the end of its matrices
        interrupted.set()
        for runner in runners:
            runner.kill()
        survey.interrupted = True
        raise SurveyInterrupted(survey) from None
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return survey


def total_checks(names: Sequence[str] | None, quick: bool, devices: Sequence[str] = ("cpu",),
                 dtypes: Sequence[str] = configs.DTYPES, modes: Sequence[str] = configs.MODES) -> int:
    """How many Results :func:`run_survey` will report (installed runtimes only), for a progress bar."""
    forward, gradients = matrices(quick, devices, dtypes, modes)
    installed = [n for n in (names or RUNTIMES) if n in RUNTIMES and not missing_packages(n)]
    return len(installed) * (len(forward) + len(gradients))


@dataclass
class Cell:
    """One runtime's verdicts on one axis value: counts per status and the worst error/tolerance."""

    tally: Counter = field(default_factory=Counter)
    worst: float = 0.0

    def add(self, result: Result) -> None:
        self.tally[result.status] += 1
        self.worst = max(self.worst, result.worst_ratio)

    def text(self) -> str:
        counts = f"{self.tally[PASSED]}/{self.tally[FAILED]}/{self.tally[UNSUPPORTED]}"
        worst = f" · {self.worst:.2g}" if self.tally[PASSED] or self.tally[FAILED] else ""
        flag = " **✗**" if self.tally[FAILED] else ""
        untestable = f" + {self.tally[UNTESTABLE]} untestable" if self.tally[UNTESTABLE] else ""
        return counts + untestable + worst + flag

    def as_dict(self) -> dict:
        return {**{s: self.tally[s] for s in (PASSED, FAILED, UNSUPPORTED, SKIPPED, UNTESTABLE)},
                "worst_ratio": self.worst}


def table(survey: Survey, check: str) -> dict[tuple[str, str], dict[str, Cell]]:
    """``{(axis, value): {runtime: Cell}}`` for one check (forward or gradients), plus a
    ``("all", "")`` row of totals."""
    rows: dict[tuple[str, str], dict[str, Cell]] = defaultdict(lambda: defaultdict(Cell))
    for name, results in survey.results.items():
        for result in results:
            if result.check != check:
                continue
            rows["all", ""][name].add(result)
            for key in GROUP_KEYS:
                if key in ("torch_path", "device") or not hasattr(result.config, key):
                    continue
                value = getattr(result.config, key)
                rows[key, "(grid)" if key == "tag" and not value else str(value)][name].add(result)
    return rows


def failures(survey: Survey) -> dict[str, list[Result]]:
    """Each runtime's failed results, smallest configuration first (fewest layers, fewest elements)."""
    def size(result: Result) -> tuple:
        c = result.config
        return (c.num_layers, c.seq_len * c.batch_size * c.hidden_size, c.bidirectional, c.proj_size, c.id)

    return {name: sorted((r for r in results if r.status == FAILED), key=size)
            for name, results in survey.results.items()}


#: Failures listed per runtime under the Markdown table, smallest configuration first.
SHOWN_FAILURES = 3


def _one_line(result: Result) -> str:
    """Why ``result`` failed, in one line: its message, else its worst tensor."""
    failed = [t.describe() for t in result.tensors if not t.passed]
    text = result.message or (failed[0] if failed else "")
    return " ".join(text.split())[:240]


def markdown(survey: Survey) -> str:
    """The survey as Markdown: environment, one table per check, totals, not-installed runtimes."""
    env = survey.environment()
    names = list(survey.results)
    versions = ", ".join(f"{k} {env[k]}" for k in ("python", *PACKAGES) if env.get(k))
    threads = f"{env['threads']} thread{'s' if env['threads'] != 1 else ''} per worker"
    lines = [f"Survey of {survey.started} ({'quick' if survey.quick else 'full'} matrices of "
             f"{configs.module_names(survey.modes)} in {', '.join(survey.dtypes)}, seed {survey.seed}, {threads}, "
             f"{survey.timeout:g} s per configuration): "
             f"{versions}; {env['platform']}.", ""]
    if survey.interrupted:
        ran = sum(len(results) for results in survey.results.values())
        lines += [f"**Interrupted**: {ran} of {survey.planned} checks ran.", ""]
    lines += ["Cells: passed/failed/unsupported (+ untestable: torch cannot run them) · worst error as a "
              "multiple of the tolerance (**✗**: failures).", ""]
    for check in CHECKS:
        rows = table(survey, check)
        if not rows:
            continue
        lines += [f"### {check}", "", "| axis | value | " + " | ".join(names) + " |",
                  "|---|---|" + "---|" * len(names)]
        order = ["all", *(k for k in GROUP_KEYS)]
        for (key, value), cells in sorted(rows.items(), key=lambda r: (order.index(r[0][0]), r[0][1])):
            lines.append(f"| {key} | {value} | " + " | ".join(cells[n].text() if n in cells else "" for n in names)
                         + " |")
        lines.append("")
    lines.append("Time per runtime: " + ", ".join(f"{n} {survey.seconds[n]:.0f}s" for n in names) + ".")
    for name, failed in failures(survey).items():
        if failed:
            lines += ["", f"{name}: {len(failed)} failed; the smallest:", ""]
            lines += [f"- `{r.config.id}` ({r.check}): {_one_line(r)}" for r in failed[:SHOWN_FAILURES]]
    for name, reason in survey.not_installed.items():
        lines.append(f"- {name}: {reason}")
    return "\n".join(lines) + "\n"


def as_json(survey: Survey) -> dict:
    """The survey as a JSON-ready dict: environment, table cells, and every result."""
    return {
        "survey_version": SURVEY_VERSION,
        "started": survey.started,
        "quick": survey.quick,
        "dtypes": list(survey.dtypes),
        "modes": list(survey.modes),
        "seed": survey.seed,
        "timeout": survey.timeout,
        "planned": survey.planned,
        "interrupted": survey.interrupted,
        "environment": survey.environment(),
        "seconds": survey.seconds,
        "not_installed": survey.not_installed,
        "table": {check: [{"axis": key, "value": value, **{n: c.as_dict() for n, c in cells.items()}}
                          for (key, value), cells in table(survey, check).items()] for check in CHECKS},
        "results": {name: [r.as_dict() for r in results] for name, results in survey.results.items()},
    }


def write(survey: Survey, markdown_path: str | Path | None = None, json_path: str | Path | None = None) -> None:
    """Write the Markdown table and/or the JSON report."""
    if markdown_path:
        Path(markdown_path).write_text(markdown(survey))
    if json_path:
        Path(json_path).write_text(json.dumps(as_json(survey), indent=1, allow_nan=True))

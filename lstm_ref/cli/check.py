"""``lstm-ref check``: the conformance matrix against torch.nn.LSTM, GRU and RNN, a table by axis.

The candidate runs in a worker process (``lstm_ref.runner``) unless ``--no-isolate``.
Exit codes: 0 every configuration passed (skipped, unsupported and xfailed ones
allowed), 1 any configuration failed or xpassed, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from lstm_ref import configs
from lstm_ref.candidates import DEFAULT_IMPL, load_factory
from lstm_ref.cli.common import EXIT_FAILED, EXIT_OK, UsageError, torch_threads
from lstm_ref.conformance import DEFAULT_TIMEOUT, FAILED, XPASSED
from lstm_ref.expectations import expected_to_fail, matching, read_patterns
from lstm_ref.gradients import MAKE_PARAMETERS_COMPARABLE, PARAMETERS_UNREACHED
from lstm_ref.report import axis_table, summary_line, write_json
from lstm_ref.runner import Runner


def choices(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    try:
        return configs.parse_choices(text, allowed)
    except ValueError as error:
        raise UsageError(f"--{what}: {error}") from None


def devices_for(text: str) -> tuple[str, ...]:
    """``auto``: the CPU, plus CUDA when a GPU is present."""
    if text == "auto":
        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    return choices(text, configs.DEVICES, "device")


class Progress:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.interactive = sys.stderr.isatty()
        self.started = time.perf_counter()

    def step(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        tenth = max(1, self.total // 10)
        if self.interactive or self.done % tenth == 0 or self.done == self.total:
            width = 30
            filled = width * self.done // self.total
            elapsed = time.perf_counter() - self.started
            line = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                    f"({self.failed} failed, {elapsed:.0f}s)")
            sys.stderr.write(("\r" if self.interactive else "") + line + ("" if self.interactive else "\n"))
            if self.interactive and self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def run_check(args: argparse.Namespace) -> int:
    spec, factory = load_factory(args.impl)
    if args.json and not Path(args.json).absolute().parent.is_dir():  # say so before a long run
        raise UsageError(f"--json: directory {Path(args.json).absolute().parent} does not exist")
    known_failures = read_patterns(args.xfails, "--xfails") if args.xfails else []
    devices = devices_for(args.device)
    dtypes = choices(args.dtype, configs.ALL_DTYPES, "dtype")
    matrix = (configs.quick_matrix if args.quick else configs.default_matrix)(devices, dtypes)
    grad_matrix = []
    if args.grad:
        grad_matrix = (configs.quick_gradient_matrix if args.quick else configs.gradient_matrix)(devices, dtypes)
    modes = tuple(name.upper() for name in choices(args.module, configs.MODULE_CHOICES, "module"))
    if modes != ("LSTM",):
        matrix, grad_matrix = configs.for_modes(matrix, modes), configs.for_modes(grad_matrix, modes)
    print(f"lstm-ref check: {spec} against {configs.module_names(modes)} {torch.__version__}; "
          f"{len(matrix)} configurations on {','.join(devices)} in {','.join(dtypes)}, seed {args.seed}"
          + (f"; gradients on {len(grad_matrix)}" if args.grad else "")
          + ("; in this process" if args.no_isolate else "; in a worker process"))
    progress = Progress(len(matrix) + len(grad_matrix))
    started = time.perf_counter()
    results = []
    memory_limit = int(args.memory_limit * 2**30) if args.memory_limit else None
    with torch_threads(args.threads), Runner(args.impl, seed=args.seed, timeout=args.timeout,
                                             isolate=not args.no_isolate, memory_limit=memory_limit) as runner:
        for check, config in [("forward", c) for c in matrix] + [("gradients", c) for c in grad_matrix]:
            result = runner.check(config, check)
            pattern = matching(config.id, known_failures)
            results.append(expected_to_fail(result, pattern) if pattern else result)
            progress.step(results[-1].status in (FAILED, XPASSED))
    seconds = time.perf_counter() - started
    print(axis_table([r for r in results if r.check == "forward"]))
    if args.grad:
        print("gradients (d loss / d input, h0, c0, parameters):")
        print(axis_table([r for r in results if r.check == "gradients"]))
        if any(r.message.startswith(PARAMETERS_UNREACHED) for r in results):
            print(f"parameter gradients were not comparable on some configurations: {MAKE_PARAMETERS_COMPARABLE}")
    failures = [r for r in results if r.status in (FAILED, XPASSED)]
    for result in failures[: args.show_failures]:
        print(result.describe())
    if len(failures) > args.show_failures:
        print(f"... and {len(failures) - args.show_failures} more failures (--show-failures N, or --json)")
    if args.json:
        write_json(args.json, results, args.seed, spec, seconds)
        print(f"report written to {args.json}")
    print(summary_line(results, seconds))
    return EXIT_FAILED if failures else EXIT_OK


def positive_int(text: str) -> int:
    """A --threads value: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {text!r}")
    return value


def gibibytes(text: str) -> float:
    """A --memory-limit value: GiB > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GiB, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of GiB > 0, got {text!r}")
    return value


def seconds(text: str) -> float:
    """A --timeout value: seconds >= 0 (0: no limit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The ``check`` subcommand."""
    check = commands.add_parser("check", help="run the conformance matrix and print a table by axis")
    check.add_argument("--impl", default=DEFAULT_IMPL, metavar="MODULE:ATTR",
                       help=f"factory of the LSTM under test (default {DEFAULT_IMPL}); "
                            "'torch' runs torch.nn.LSTM on another code path as a baseline")
    check.add_argument("--module", default=",".join(configs.DEFAULT_MODULES), metavar="KINDS",
                       help=f"the module kinds to check, a comma list from {','.join(configs.MODULE_CHOICES)} "
                            f"or all (default {','.join(configs.DEFAULT_MODULES)}): each kind runs the whole "
                            "matrix (no projections outside the LSTM) against torch's nn.LSTM, nn.GRU or nn.RNN; "
                            "a factory of one kind reports the others unsupported")
    check.add_argument("--device", default="auto",
                       help="auto (cpu, plus cuda if present; default), cpu, cuda, all, or a comma list")
    check.add_argument("--dtype", default=",".join(configs.DTYPES),
                       help=f"comma list from {', '.join(configs.ALL_DTYPES)}, or all (default: "
                            f"{','.join(configs.DTYPES)}); bfloat16 and float16 run the half-precision "
                            "selection (configs.half_matrix: the module in that dtype, and the float32 "
                            "module under torch.autocast to it), judged against float64")
    check.add_argument("--quick", action="store_true",
                       help="a small subset: every axis value and torch path at least once, and the special "
                            f"cases {', '.join(configs.QUICK_SPECIAL_CASES)}")
    check.add_argument("--grad", action="store_true",
                       help="also compare gradients with torch's backward over the gradient matrix "
                            "(its quick subset with --quick); a candidate without autograd history "
                            "is reported unsupported")
    check.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    check.add_argument("--json", metavar="PATH", help="write the versioned JSON report to PATH")
    check.add_argument("--show-failures", type=int, default=10, metavar="N",
                       help="describe at most N failures (default 10)")
    check.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"fail a configuration that takes longer than SECONDS, killing its worker "
                            f"(default {DEFAULT_TIMEOUT:g}; 0: no limit)")
    check.add_argument("--xfails", metavar="FILE",
                       help="fnmatch patterns matched anywhere in the configuration id (one a line, # "
                            "comments) expected to fail: reported as xfailed; one that passes is xpassed "
                            "and fails the run")
    check.add_argument("--threads", type=positive_int, default=1, metavar="N",
                       help="torch intra-op threads for both sides (default 1: the matrix's sizes are too "
                            "small to gain from more, and extra threads spin on a busy machine)")
    check.add_argument("--no-isolate", action="store_true",
                       help="run the candidate in this process (for pdb) instead of a worker process; a "
                            "crash then ends the run and a hang is cut off by a thread that keeps running")
    check.add_argument("--memory-limit", type=gibibytes, metavar="GIB",
                       help="memory the candidate may allocate in its worker process, in GiB, above what the "
                            "worker holds once torch is imported (RLIMIT_DATA): a candidate that "
                            "allocates without bound fails its configuration")
    check.set_defaults(run=run_check)

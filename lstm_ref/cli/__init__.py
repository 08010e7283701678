"""The ``lstm-ref`` command: one module per command group, errors turned into exit codes here.

    lstm-ref check [--impl MODULE:ATTR] [--device auto|cpu|cuda|all] [--dtype float32,float64]
                   [--quick] [--grad] [--seed N] [--json PATH] [--show-failures N] [--timeout SECONDS]
                   [--xfails FILE] [--no-isolate] [--memory-limit GIB] [--threads N]
    lstm-ref import | vectors | verify | accuracy | bench-report | survey ...   (see lstm-ref CMD --help)

Exit codes: 0 every configuration passed (skipped, unsupported and xfailed ones
allowed), 1 any configuration failed or xpassed, 2 usage error: a bad flag, file or
``--impl``, reported in one line on stderr without a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from lstm_ref.bench_report import BenchReportError
from lstm_ref.candidates import CandidateError
from lstm_ref.cli import accuracy, bench, check, survey, vectors, weights
from lstm_ref.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from lstm_ref.conformance import QUIET_WARNINGS
from lstm_ref.expectations import PatternFileError
from lstm_ref.survey import SurveyError
from lstm_ref.vectors import VectorsError
from lstm_ref.weights import StateDictError, WeightFileError

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

#: Command groups, in the order of ``lstm-ref --help``.
COMMANDS = (check, weights, vectors, accuracy, bench, survey)

#: Errors the user fixes (a bad flag, --impl, input file or output path): exit code 2.
USAGE_ERRORS = (UsageError, CandidateError, WeightFileError, StateDictError, VectorsError,
                BenchReportError, PatternFileError, OSError, SurveyError)


def build_parser() -> argparse.ArgumentParser:
    """The ``lstm-ref`` parser; each subcommand sets ``run`` (parsed args -> exit code)."""
    parser = argparse.ArgumentParser(prog="lstm-ref", description="conformance against torch.nn.LSTM, GRU and RNN")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in COMMANDS:
        group.add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit code (EXIT_USAGE for a usage error)."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except USAGE_ERRORS as error:
        print(f"lstm-ref {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE

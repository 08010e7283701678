"""``lstm-ref survey``: every installed runtime through the checks, one table (:mod:`lstm_ref.survey`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lstm_ref import configs, survey
from lstm_ref.cli.check import Progress, choices, positive_int, seconds
from lstm_ref.cli.common import EXIT_OK, UsageError, torch_threads
from lstm_ref.conformance import DEFAULT_TIMEOUT, FAILED

#: The exit code of a survey stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The ``survey`` subcommand."""
    parser = commands.add_parser(
        "survey", help="run every installed runtime (onnx-export, torch-compile, ...) and write one table",
        description="Run the forward check over the default matrix (--quick: the quick one) and the gradient "
                    "check over the gradient matrix for each installed runtime of lstm_ref.runtimes, on the "
                    "CPU, and write one table (axis value x runtime: passed/failed/unsupported and the worst "
                    "error over the tolerance) as Markdown and JSON with the versions of torch, onnx, "
                    "onnxruntime and Python. Exit 0 when it ran (failures are its findings), 2 usage error, "
                    "130 when Ctrl-C stopped it (what ran is written).")
    parser.add_argument("--runtimes", default="all", metavar="NAMES",
                        help=f"comma list from {', '.join(survey.RUNTIMES)}, or all (default)")
    parser.add_argument("--quick", action="store_true", help="the quick matrices (every axis value at least once)")
    parser.add_argument("--module", default=",".join(configs.DEFAULT_MODULES), metavar="KINDS",
                        help=f"the module kinds, a comma list from {','.join(configs.MODULE_CHOICES)} or all "
                             f"(default {','.join(configs.DEFAULT_MODULES)}): each kind's matrices, one table")
    parser.add_argument("--dtype", default=",".join(configs.DTYPES),
                        help=f"comma list from {', '.join(configs.ALL_DTYPES)}, or all (default: "
                             f"{','.join(configs.DTYPES)}; bfloat16, float16: the half-precision selection)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"fail a configuration that takes longer than SECONDS (default {DEFAULT_TIMEOUT:g}; "
                             "0: no limit)")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                        help="run N runtimes at once, each in its own worker process (default 1)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N",
                        help="torch and ONNX Runtime intra-op threads per worker (default 1: the matrices' sizes "
                             "are too small to gain from more)")
    parser.add_argument("--markdown", metavar="PATH", default="survey.md", help="Markdown table (default survey.md)")
    parser.add_argument("--json", metavar="PATH", default="survey.json", help="JSON report (default survey.json)")
    parser.set_defaults(run=run_survey)


def run_survey(args: argparse.Namespace) -> int:
    names = choices(args.runtimes, tuple(survey.RUNTIMES), "runtimes")
    dtypes = choices(args.dtype, configs.ALL_DTYPES, "dtype")
    modes = tuple(name.upper() for name in choices(args.module, configs.MODULE_CHOICES, "module"))
    for path in (args.markdown, args.json):
        if not Path(path).absolute().parent.is_dir():  # say so before a long run
            raise UsageError(f"directory {Path(path).absolute().parent} does not exist")
    progress = Progress(survey.total_checks(names, args.quick, dtypes=dtypes, modes=modes))
    try:
        with torch_threads(args.threads):
            result = survey.run_survey(names, quick=args.quick, seed=args.seed, dtypes=dtypes, timeout=args.timeout,
                                       jobs=args.jobs, modes=modes,
                                       progress=lambda r: progress.step(r.status == FAILED))
    except survey.SurveyInterrupted as interruption:  # hours of results are worth keeping
        survey.write(interruption.survey, args.markdown, args.json)
        print(f"\ninterrupted: what ran is written to {args.markdown} and {args.json}", file=sys.stderr)
        return EXIT_INTERRUPTED
    survey.write(result, args.markdown, args.json)
    print(survey.markdown(result))
    print(f"written to {args.markdown} and {args.json}")
    return EXIT_OK

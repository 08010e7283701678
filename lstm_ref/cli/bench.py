"""``lstm-ref bench-report``: tables and a plot from saved pytest-benchmark JSON (:mod:`lstm_ref.bench_report`)."""

from __future__ import annotations

import argparse

from lstm_ref.bench_report import detail_table, load_results, plot, ratio_table
from lstm_ref.cli.common import EXIT_FAILED, EXIT_OK, require_extra


def run_bench_report(args: argparse.Namespace) -> int:
    """Print the ratio tables and the details; 1 with ``--check-targets`` when a target is missed."""
    if args.plot:
        require_extra("--plot", "matplotlib", "plot")
    results = load_results(args.results)
    print(f"## Ratio to nn.LSTM (oneDNN), {args.mode}, medians from {args.results}\n")
    print(ratio_table(results, args.mode))
    for other in dict.fromkeys(r.mode for r in results):
        if other != args.mode:
            print(f"\n## Ratio to nn.LSTM (oneDNN), {other}\n")
            print(ratio_table(results, other))
    print("\n## Details\n")
    print(detail_table(results))
    if args.plot:
        plot(results, args.plot, args.mode)
        print(f"\nplot written to {args.plot}")
    missed = [r for r in results if r.target_met is False]
    return EXIT_FAILED if args.check_targets and missed else EXIT_OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The ``bench-report`` subcommand."""
    parser = commands.add_parser("bench-report", help="tables and a plot from saved pytest-benchmark JSON")
    parser.add_argument("results", metavar="RESULTS.json", help="a file written by --benchmark-json")
    parser.add_argument("--plot", metavar="PNG", help="draw time per step vs size to this PNG (matplotlib)")
    parser.add_argument("--mode", default="forward", choices=("forward", "forward_backward"),
                        help="the mode of the first table and of the plot (default forward)")
    parser.add_argument("--check-targets", action="store_true",
                        help="exit 1 when a fast-path target is missed")
    parser.set_defaults(run=run_bench_report)

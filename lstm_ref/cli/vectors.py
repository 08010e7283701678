"""``lstm-ref vectors`` and ``lstm-ref verify``: golden vectors written and replayed (:mod:`lstm_ref.vectors`)."""

from __future__ import annotations

import argparse
import time

from lstm_ref.candidates import DEFAULT_IMPL, load_factory
from lstm_ref.cli.common import EXIT_FAILED, EXIT_OK
from lstm_ref.conformance import FAILED
from lstm_ref.report import summary_line
from lstm_ref.vectors import MANIFEST, VECTOR_DTYPES, verify_vectors, write_vectors


def run_vectors(args: argparse.Namespace) -> int:
    """Write every case and the manifest to ``args.out``."""
    manifest = write_vectors(args.out, args.seed)
    print(f"wrote {len(manifest['cases'])} cases ({', '.join(VECTOR_DTYPES)}) and {MANIFEST} to {args.out}")
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    """Replay the vectors in ``args.directory`` against ``--impl``: 0 all pass, 1 any fails."""
    spec, factory = load_factory(args.impl)
    started = time.perf_counter()
    results = verify_vectors(args.directory, factory)
    for result in results:
        worst = f"{result.worst_ratio:.3g}x tolerance" if result.tensors else ""
        print(f"{result.status:<12}{result.config.id}  {worst}")
        if result.status == FAILED:
            print("\n".join("  " + line for line in result.describe().splitlines()[1:]))
    print(f"{spec} on {args.directory}: {summary_line(results, time.perf_counter() - started)}")
    return EXIT_FAILED if any(r.status == FAILED for r in results) else EXIT_OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The ``vectors`` and ``verify`` subcommands."""
    vectors = commands.add_parser(
        "vectors", help="write golden vectors (.npz per case + manifest.json) for other implementations")
    vectors.add_argument("--out", required=True, metavar="DIR", help="directory to write (created if needed)")
    vectors.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    vectors.set_defaults(run=run_vectors)
    verify = commands.add_parser("verify", help="replay golden vectors against an implementation")
    verify.add_argument("directory", metavar="DIR", help="a directory written by lstm-ref vectors")
    verify.add_argument("--impl", default=DEFAULT_IMPL, metavar="MODULE:ATTR",
                        help=f"factory of the LSTM under test (default {DEFAULT_IMPL})")
    verify.set_defaults(run=run_verify)

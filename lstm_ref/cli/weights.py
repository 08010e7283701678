"""``lstm-ref import``: the LSTMs in a checkpoint, listed or exported (:mod:`lstm_ref.weights`)."""

from __future__ import annotations

import argparse
import json

from lstm_ref.cli.common import EXIT_OK
from lstm_ref.weights import find_lstms, read_state_dict, select, write_state_dict


def run_import(args: argparse.Namespace) -> int:
    """List every LSTM in ``args.path`` (or the one under ``--prefix``); with ``--out``, export it."""
    found = find_lstms(read_state_dict(args.path))
    chosen = select(found, args.prefix) if args.out or args.prefix is not None else None
    if args.out:
        write_state_dict(chosen.state_dict, args.out)
    shown = [chosen] if chosen is not None else found
    if args.json:
        print(json.dumps([f.as_dict() for f in shown], indent=1))
    else:
        if not found:
            print(f"{args.path}: no LSTM or LSTMCell found")
        for item in shown:
            print(item.describe())
        if args.out:
            print(f"wrote {len(chosen.state_dict)} tensors of {chosen.prefix or '(top level)'} to {args.out}")
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The ``import`` subcommand."""
    parser = commands.add_parser(
        "import", help="find the LSTMs in a checkpoint (.pt/.pth/.safetensors/.npz), print or export one",
        description="List every nn.LSTM / nn.LSTMCell in a weight file with its configuration; "
                    "with --out, write the chosen one's weights under torch's parameter names.",
    )
    parser.add_argument("path", help="a .pt/.pth state_dict, .safetensors or .npz file")
    parser.add_argument("--prefix", metavar="P", help="the module path of the LSTM to show/export, e.g. lstm")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {prefix, kind, input_size, hidden_size, ...}")
    parser.add_argument("--out", metavar="FILE",
                        help="export the chosen LSTM to FILE.npz or FILE.safetensors")
    parser.set_defaults(run=run_import)

"""``lstm-ref import``: the recurrent modules in a checkpoint (LSTM, GRU, RNN and their cells),
listed or exported (:mod:`lstm_ref.weights`)."""

from __future__ import annotations

import argparse
import json

from lstm_ref.cli.common import EXIT_OK
from lstm_ref.weights import find_modules, read_state_dict, select, write_state_dict


def run_import(args: argparse.Namespace) -> int:
    """List every recurrent module in ``args.path`` (or the one under ``--prefix``); with ``--out``,
    export it."""
    found = find_modules(read_state_dict(args.path))
    chosen = select(found, args.prefix) if args.out or args.prefix is not None else None
    if args.out:
        write_state_dict(chosen.state_dict, args.out)
    shown = [chosen] if chosen is not None else found
    if args.json:
        print(json.dumps([f.as_dict() for f in shown], indent=1))
    else:
        if not found:
            print(f"{args.path}: no recurrent module found (nn.LSTM, nn.GRU, nn.RNN or their cells)")
        for item in shown:
            print(item.describe())
        if args.out:
            print(f"wrote {len(chosen.state_dict)} tensors of {chosen.prefix or '(top level)'} to {args.out}")
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The ``import`` subcommand."""
    parser = commands.add_parser(
        "import",
        help="find the LSTMs, GRUs and RNNs in a checkpoint (.pt/.pth/.safetensors/.npz), print or export one",
        description="List every nn.LSTM, nn.GRU, nn.RNN and their cells (LSTMCell, GRUCell, RNNCell) in a "
                    "weight file with its kind and configuration; with --out, write the chosen one's weights "
                    "under torch's parameter names. An RNN's nonlinearity (tanh or relu) is not stored in a "
                    "state_dict: it is not shown, and lstm_ref builds tanh unless told otherwise.",
    )
    parser.add_argument("path", help="a .pt/.pth state_dict, .safetensors or .npz file")
    parser.add_argument("--prefix", metavar="P",
                        help="the module path of the module to show/export, e.g. lstm or encoder.gru")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {prefix, kind, input_size, hidden_size, ...}; "
                             "kind is LSTM, GRU, RNN, LSTMCell, GRUCell or RNNCell")
    parser.add_argument("--out", metavar="FILE",
                        help="export the chosen module to FILE.npz, FILE.safetensors or FILE.pt")
    parser.set_defaults(run=run_import)

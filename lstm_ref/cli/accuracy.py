"""``lstm-ref accuracy``: torch's and a candidate's error against the float64 oracle (:mod:`lstm_ref.accuracy`)."""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from lstm_ref.accuracy import measure_accuracy, plot, write_csv
from lstm_ref.candidates import DEFAULT_IMPL, load_factory
from lstm_ref.cli.common import EXIT_FAILED, EXIT_OK, UsageError, require_extra
from lstm_ref.configs import MODULE_CHOICES, TORCH_PATHS, Config, module_names, parse_choices
from lstm_ref.tolerances import ACCURACY_FACTOR


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The ``accuracy`` subcommand: one configuration, torch and a candidate against the oracle."""
    parser = commands.add_parser(
        "accuracy", help="error of torch and of a candidate against the float64 oracle, per time step",
        description="Run torch.nn.LSTM (--module: GRU, RNN) and the candidate in DTYPE on the same weights and "
                    "inputs, measure both against the float64 NumPy oracle, print max abs/rel/ULP error per tensor "
                    "and the verdict 'as accurate as torch' (against the worse of torch's paths on the device), "
                    "and write the output's max error per time step as CSV (and a PNG plot). Exit 0 as "
                    "accurate, 1 less accurate, 2 usage error.")
    parser.add_argument("--impl", default=DEFAULT_IMPL, metavar="MODULE:ATTR",
                        help=f"factory of the LSTM under test (default {DEFAULT_IMPL})")
    parser.add_argument("--seq-len", type=int, default=1000, metavar="T", help="time steps (default 1000)")
    parser.add_argument("--batch", type=int, default=8, metavar="N", help="batch size (default 8)")
    parser.add_argument("--input-size", type=int, default=64, metavar="I", help="input size (default 64)")
    parser.add_argument("--hidden", type=int, default=256, metavar="H", help="hidden size (default 256)")
    parser.add_argument("--layers", type=int, default=1, metavar="L", help="layers (default 1)")
    parser.add_argument("--bidirectional", action="store_true", help="a bidirectional module")
    parser.add_argument("--module", default="lstm", choices=MODULE_CHOICES,
                        help="the module kind: torch.nn.LSTM (default), GRU, RNN with tanh or with relu")
    parser.add_argument("--dtype", default="float32", metavar="DTYPE[,DTYPE...]",
                        help=f"the dtypes torch and the candidate run in, one run each, comma-separated, from "
                             f"{', '.join(ACCURACY_FACTOR)} or all (default float32)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--input-scale", type=float, default=1.0, metavar="S",
                        help="x ~ S * N(0, 1); ~30 saturates the gates (default 1)")
    parser.add_argument("--hold-input", action="store_true",
                        help="x_t = x_0 for all t (with a large --input-scale, |c| grows ~T)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--csv", required=True, metavar="PATH",
                        help="write dtype, step, torch_<path>_max_abs_error per torch path, "
                             "candidate_max_abs_error per time step")
    parser.add_argument("--plot", metavar="PATH.png",
                        help="write a PNG plot of the same, a panel per dtype (needs matplotlib)")
    parser.set_defaults(run=run_accuracy)


def run_accuracy(args: argparse.Namespace) -> int:
    """The ``accuracy`` subcommand: 0 as accurate as torch, 1 less accurate."""
    for name in ("seq_len", "batch", "input_size", "hidden", "layers"):
        if getattr(args, name) <= 0:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be a positive integer, got {getattr(args, name)}")
    if args.plot:
        require_extra("--plot", "matplotlib", "plot")
    try:
        device_type = torch.device(args.device).type
    except RuntimeError as error:
        raise UsageError(f"--device: {error}") from None
    if device_type not in TORCH_PATHS:
        raise UsageError(f"--device must be cpu or cuda, got {args.device!r}")
    if device_type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available (torch.cuda.is_available() is False)")
    try:
        dtypes = parse_choices(args.dtype, tuple(ACCURACY_FACTOR))
    except ValueError as error:
        raise UsageError(f"--dtype: {error}") from None
    config = Config(
        num_layers=args.layers, bidirectional=args.bidirectional, initial_state=True, dtype=dtypes[0],
        device=args.device, torch_path=TORCH_PATHS[device_type][0], input_size=args.input_size,
        hidden_size=args.hidden, seq_len=args.seq_len, batch_size=args.batch,
        input_scale=args.input_scale, hold_input=args.hold_input, tag="accuracy", mode=args.module.upper(),
    )
    spec, factory = load_factory(args.impl)
    paths = " and ".join(TORCH_PATHS[device_type])
    print(f"lstm-ref accuracy: {spec} and {module_names([config.mode])} {torch.__version__} ({paths}) in "
          f"{', '.join(dtypes)} against the float64 oracle; T={config.seq_len}, N={config.batch_size}, "
          f"I={config.input_size}, H={config.hidden_size}, L={config.num_layers}"
          f"{', bidirectional' if config.bidirectional else ''}, seed {args.seed}")
    reports = []
    for dtype in dtypes:
        try:
            report = measure_accuracy(replace(config, dtype=dtype), factory, args.seed)
        except NotImplementedError as error:
            print(f"{dtype}: unsupported by the candidate: {error or 'NotImplementedError'}")
            return EXIT_FAILED
        except Exception as error:  # the candidate's failure is a verdict, not a crash of the command
            print(f"{dtype}: no verdict: {type(error).__name__}: {error}")
            return EXIT_FAILED
        report.spec = spec
        print(f"\n{dtype}:\n{report.describe()}")
        reports.append(report)
    write_csv(reports, args.csv)
    print(f"per-step errors written to {args.csv}")
    if args.plot:
        plot(reports, args.plot)
        print(f"plot written to {args.plot}")
    print(f"{sum(report.seconds for report in reports):.1f}s")
    return EXIT_OK if all(report.as_accurate for report in reports) else EXIT_FAILED

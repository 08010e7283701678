"""Accuracy against the float64 oracle: torch's error and a candidate's, side by side.

Conformance asks "does the candidate match torch?"; accuracy asks "is it as
close to the exact answer as torch is?". Both torch and the candidate run in
the configuration's dtype (float32, float16, bfloat16) on the same weights and
inputs; :class:`lstm_ref.oracle.LSTM` evaluates those same numbers in float64
(every lower-precision value is exact in float64, so only the arithmetic
differs). Each produced tensor gets its error against the oracle (max
absolute, max relative, max in ULPs of the dtype) and, for ``output``, the
max absolute error per time step, which shows whether error grows along a
long sequence.

Verdict, per tensor: the candidate is *as accurate as torch* when

    candidate max abs error <= ACCURACY_FACTOR * torch max abs error + ACCURACY_FLOOR

with the factor and floor per dtype from :mod:`lstm_ref.tolerances`.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstm_ref import oracle
from lstm_ref.candidates import Factory, load_factory
from lstm_ref.compare import ulp
from lstm_ref.configs import Config
from lstm_ref.conformance import Inputs, build_reference, make_inputs, no_tf32_matmul, torch_path
from lstm_ref.tolerances import ACCURACY_FACTOR, ACCURACY_FLOOR

TENSOR_NAMES = ("output", "h_n", "c_n")


@dataclass
class ErrorStats:
    """One implementation's error on one tensor against the float64 oracle."""

    max_abs: float
    max_rel: float
    max_ulp: float                                         # in ULPs of the dtype at max(|true value|, 1)
    per_step: list[float] = field(default_factory=list)   # max abs error per time step (output only)


@dataclass
class TensorAccuracy:
    """torch's and the candidate's error on one tensor, and the verdict on it."""

    name: str
    torch: ErrorStats
    candidate: ErrorStats
    allowed: float                                         # factor * torch max abs + floor

    @property
    def as_accurate(self) -> bool:
        return self.candidate.max_abs <= self.allowed


@dataclass
class AccuracyReport:
    """The accuracy of a candidate and of torch on one configuration."""

    config: Config
    spec: str
    tensors: list[TensorAccuracy]
    seconds: float = 0.0

    @property
    def as_accurate(self) -> bool:
        return all(t.as_accurate for t in self.tensors)

    def tensor(self, name: str) -> TensorAccuracy:
        return next(t for t in self.tensors if t.name == name)

    def describe(self) -> str:
        """A table: per tensor, torch's and the candidate's errors and the verdict."""
        dtype = self.config.dtype
        header = (f"{'tensor':<8}{'torch abs':>11}{'rel':>10}{'ULP':>9}   "
                  f"{'candidate abs':>13}{'rel':>10}{'ULP':>9}{'allowed':>11}  verdict")
        lines = [header, "-" * len(header)]
        for t in self.tensors:
            lines.append(
                f"{t.name:<8}{t.torch.max_abs:>11.3g}{t.torch.max_rel:>10.3g}{t.torch.max_ulp:>9.3g}   "
                f"{t.candidate.max_abs:>13.3g}{t.candidate.max_rel:>10.3g}{t.candidate.max_ulp:>9.3g}"
                f"{t.allowed:>11.3g}  {'ok' if t.as_accurate else 'LESS ACCURATE'}"
            )
        verdict = "as accurate as torch" if self.as_accurate else "less accurate than torch"
        lines.append(
            f"{self.spec} is {verdict} ({dtype}: candidate max abs error <= "
            f"{ACCURACY_FACTOR[dtype]:g} x torch's + {ACCURACY_FLOOR[dtype]:.3g}, against the float64 oracle)"
        )
        return "\n".join(lines)


def time_dim(config: Config) -> int:
    """The time axis of a (padded) output: 1 for batched batch_first input, else 0."""
    return 1 if config.batch_first and config.input_form != "unbatched" else 0


def padded(output: Tensor | PackedSequence, config: Config) -> Tensor:
    """A dense output in torch's layout; a PackedSequence is padded with zeros to T steps."""
    if isinstance(output, PackedSequence):
        return pad_packed_sequence(output, batch_first=config.batch_first, total_length=config.seq_len)[0]
    return output


def oracle_arguments(inputs: Inputs, config: Config) -> tuple[np.ndarray, tuple | None, np.ndarray | None]:
    """``(x, hx, lengths)`` for the oracle: float64 arrays, a packed input as padded + lengths."""
    x, lengths = inputs.input, None
    if isinstance(x, PackedSequence):
        x, lengths_tensor = pad_packed_sequence(x, config.batch_first, total_length=config.seq_len)
        lengths = lengths_tensor.numpy()
    hx = None if inputs.hx is None else tuple(_float64(state) for state in inputs.hx)
    return _float64(x), hx, lengths


def run_oracle(
    module: torch.nn.LSTM, inputs: Inputs, config: Config
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The oracle's ``output`` (padded), ``h_n``, ``c_n`` for ``module`` on ``inputs``."""
    x, hx, lengths = oracle_arguments(inputs, config)
    output, (h_n, c_n) = oracle.LSTM.from_torch(module)(x, hx, lengths)
    return output, h_n, c_n


def _float64(tensor: Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()


def error_against(
    actual: Tensor, truth: np.ndarray, dtype: torch.dtype, step_dim: int | None = None
) -> ErrorStats:
    """``actual``'s error against the float64 ``truth`` of the same shape.

    Equal non-finite values (NaN and NaN, inf and inf) count as no error; a
    non-finite value on one side only counts as an infinite error. The relative
    error is taken at each true value, so it is large where a true value is near
    zero (cancellation in the gate sums); the ULP error is counted at
    ``max(|true value|, 1)``, the scale of LSTM gates and hidden states.
    """
    actual64 = actual.detach().to("cpu", torch.float64)
    truth64 = torch.from_numpy(np.ascontiguousarray(truth))
    if actual64.shape != truth64.shape:
        raise ValueError(f"shape {list(actual64.shape)} against the oracle's {list(truth64.shape)}")
    if truth64.numel() == 0:
        return ErrorStats(0.0, 0.0, 0.0, [])
    same = (actual64 == truth64) | (actual64.isnan() & truth64.isnan())
    error = torch.where(same, torch.zeros_like(truth64), (actual64 - truth64).abs())
    error = error.nan_to_num(nan=float("inf"))
    magnitude = truth64.abs().nan_to_num(nan=1.0, posinf=torch.finfo(torch.float64).max)
    relative = error / magnitude.clamp_min(torch.finfo(dtype).tiny)
    in_ulps = error / ulp(magnitude.clamp_min(1.0), dtype)
    per_step = [] if step_dim is None else error.movedim(step_dim, 0).flatten(1).amax(1).tolist()
    return ErrorStats(float(error.max()), float(relative.max()), float(in_ulps.max()), per_step)


def measure_accuracy(config: Config, factory: Factory | str | None = None, seed: int = 0) -> AccuracyReport:
    """torch's and the candidate's error against the oracle on ``config``'s forward pass.

    Raises NotImplementedError when the candidate does, ValueError for a
    configuration whose dtype has no accuracy factor (float64 is the oracle's own)
    and TypeError when the candidate's results are not of the configuration's dtype
    (a float32 run answered in float64 would look more accurate than it is).
    """
    if config.dtype not in ACCURACY_FACTOR:
        raise ValueError(
            f"accuracy is measured for {', '.join(ACCURACY_FACTOR)}, not {config.dtype} "
            "(the float64 oracle is the reference)"
        )
    if factory is None or isinstance(factory, str):
        spec, factory = load_factory(factory)
    else:
        spec = getattr(factory, "__qualname__", type(factory).__name__)
    started = time.perf_counter()
    module = build_reference(config, seed)
    inputs = make_inputs(config, seed)
    truth = run_oracle(module, inputs, config)
    with torch.no_grad():
        with torch_path(config.torch_path):
            reference_inputs = inputs.clone()
            expected = module(reference_inputs.input, reference_inputs.hx)
        candidate = factory(copy.deepcopy(module))
        candidate_inputs = inputs.clone()
        with no_tf32_matmul() if config.device_type == "cuda" else contextlib.nullcontext():
            actual = candidate(candidate_inputs.input, candidate_inputs.hx)
    dtype = config.torch_dtype
    floor, factor = ACCURACY_FLOOR[config.dtype], ACCURACY_FACTOR[config.dtype]
    tensors = []
    for index, name in enumerate(TENSOR_NAMES):
        step_dim = time_dim(config) if name == "output" else None
        got_torch = padded(expected[0], config) if index == 0 else expected[1][index - 1]
        got_candidate = padded(actual[0], config) if index == 0 else actual[1][index - 1]
        if got_candidate.dtype != dtype:
            raise TypeError(f"the candidate's {name} is {got_candidate.dtype}, expected {dtype}")
        torch_error = error_against(got_torch, truth[index], dtype, step_dim)
        candidate_error = error_against(got_candidate, truth[index], dtype, step_dim)
        allowed = factor * torch_error.max_abs + floor
        tensors.append(TensorAccuracy(name, torch_error, candidate_error, allowed))
    return AccuracyReport(config, spec, tensors, time.perf_counter() - started)


def write_csv(report: AccuracyReport, path: str | Path) -> None:
    """Columns: step, torch_max_abs_error, candidate_max_abs_error (the output, per time step)."""
    output = report.tensor("output")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "torch_max_abs_error", "candidate_max_abs_error"])
        pairs = zip(output.torch.per_step, output.candidate.per_step, strict=True)
        for step, (torch_error, candidate_error) in enumerate(pairs):
            writer.writerow([step, repr(torch_error), repr(candidate_error)])


def require_matplotlib() -> None:
    """Raise ImportError with the install line when the optional plotting dependency is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib, an optional dependency: pip install 'lstm-ref[plot]' "
            "(or pip install matplotlib)"
        ) from None


def plot(report: AccuracyReport, path: str | Path) -> None:
    """A PNG of the output's max absolute error per time step against the oracle, torch vs candidate."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    config = report.config
    output = report.tensor("output")
    steps = np.arange(len(output.torch.per_step))
    figure, axes = pyplot.subplots(figsize=(9, 4.5), dpi=110)
    window = max(1, len(steps) // 200)
    for label, stats, color in [
        (f"torch.nn.LSTM {config.dtype} ({config.torch_path})", output.torch, "tab:blue"),
        (f"{report.spec} {config.dtype}", output.candidate, "tab:orange"),
    ]:
        errors = np.maximum(np.asarray(stats.per_step), np.finfo(np.float64).tiny)
        axes.plot(steps, errors, color=color, linewidth=0.6, alpha=0.35)
        axes.plot(steps, _running_max(errors, window), color=color, linewidth=1.6,
                  label=f"{label}: max {stats.max_abs:.3g}, {stats.max_ulp:.3g} ULP")
    axes.set_yscale("log")
    axes.set_xlabel("time step t")
    axes.set_ylabel("max |output - float64 oracle| at step t")
    axes.set_title(
        f"Error per time step against the float64 oracle\nT={config.seq_len}, N={config.batch_size}, "
        f"I={config.input_size}, H={config.hidden_size}, layers={config.num_layers}, "
        f"x ~ {config.input_scale:g}·N(0,1){', held' if config.hold_input else ''}", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right", title_fontsize=8,
                title="thin: every step" + (f"; thick: max over {window} steps" if window > 1 else ""))
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def _running_max(values: np.ndarray, window: int) -> np.ndarray:
    """The max over each window of ``window`` steps, repeated across the window (the envelope)."""
    padded_length = -(-len(values) // window) * window
    blocks = np.pad(values, (0, padded_length - len(values)), constant_values=0.0).reshape(-1, window)
    return np.repeat(blocks.max(axis=1), window)[: len(values)]


def add_commands(subparsers) -> None:
    """``lstm-ref accuracy``: one configuration, torch and a candidate against the oracle."""
    from lstm_ref.candidates import DEFAULT_IMPL

    parser = subparsers.add_parser(
        "accuracy", help="error of torch and of a candidate against the float64 oracle, per time step",
        description="Run torch.nn.LSTM and the candidate in DTYPE on the same weights and inputs, measure "
                    "both against the float64 NumPy oracle, print max abs/rel/ULP error per tensor and the "
                    "verdict 'as accurate as torch', and write the output's max error per time step as "
                    "CSV (and a PNG plot). Exit 0 as accurate, 1 less accurate, 2 usage error.")
    parser.add_argument("--impl", default=DEFAULT_IMPL, metavar="MODULE:ATTR",
                        help=f"factory of the LSTM under test (default {DEFAULT_IMPL})")
    parser.add_argument("--seq-len", type=int, default=1000, metavar="T", help="time steps (default 1000)")
    parser.add_argument("--batch", type=int, default=8, metavar="N", help="batch size (default 8)")
    parser.add_argument("--input-size", type=int, default=64, metavar="I", help="input size (default 64)")
    parser.add_argument("--hidden", type=int, default=256, metavar="H", help="hidden size (default 256)")
    parser.add_argument("--layers", type=int, default=1, metavar="L", help="layers (default 1)")
    parser.add_argument("--bidirectional", action="store_true", help="a bidirectional LSTM")
    parser.add_argument("--dtype", default="float32", choices=sorted(ACCURACY_FACTOR),
                        help="the dtype torch and the candidate run in (default float32)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--input-scale", type=float, default=1.0, metavar="S",
                        help="x ~ S * N(0, 1); ~30 saturates the gates (default 1)")
    parser.add_argument("--hold-input", action="store_true",
                        help="x_t = x_0 for all t (with a large --input-scale, |c| grows ~T)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--csv", required=True, metavar="PATH",
                        help="write step, torch_max_abs_error, candidate_max_abs_error per time step")
    parser.add_argument("--plot", metavar="PATH.png", help="write a PNG plot of the same (needs matplotlib)")
    parser.set_defaults(run=run_accuracy)


def run_accuracy(args) -> int:
    """The ``accuracy`` subcommand: 0 as accurate as torch, 1 less accurate."""
    from lstm_ref.cli import UsageError
    from lstm_ref.configs import TORCH_PATHS

    for name in ("seq_len", "batch", "input_size", "hidden", "layers"):
        if getattr(args, name) <= 0:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be a positive integer, got {getattr(args, name)}")
    if args.plot:
        try:
            require_matplotlib()
        except ImportError as error:
            raise UsageError(str(error)) from None
    try:
        device_type = torch.device(args.device).type
    except RuntimeError as error:
        raise UsageError(f"--device: {error}") from None
    if device_type not in TORCH_PATHS:
        raise UsageError(f"--device must be cpu or cuda, got {args.device!r}")
    if device_type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available (torch.cuda.is_available() is False)")
    config = Config(
        num_layers=args.layers, bidirectional=args.bidirectional, initial_state=True, dtype=args.dtype,
        device=args.device, torch_path=TORCH_PATHS[device_type][0], input_size=args.input_size,
        hidden_size=args.hidden, seq_len=args.seq_len, batch_size=args.batch,
        input_scale=args.input_scale, hold_input=args.hold_input, tag="accuracy",
    )
    spec, factory = load_factory(args.impl)
    print(f"lstm-ref accuracy: {spec} and torch.nn.LSTM {torch.__version__} ({config.torch_path}) in "
          f"{config.dtype} against the float64 oracle; T={config.seq_len}, N={config.batch_size}, "
          f"I={config.input_size}, H={config.hidden_size}, L={config.num_layers}"
          f"{', bidirectional' if config.bidirectional else ''}, seed {args.seed}")
    try:
        report = measure_accuracy(config, factory, args.seed)
    except NotImplementedError as error:
        print(f"unsupported by the candidate: {error or 'NotImplementedError'}")
        return 1
    except Exception as error:  # the candidate's failure is a verdict, not a crash of the command
        print(f"no verdict: {type(error).__name__}: {error}")
        return 1
    report.spec = spec
    print(report.describe())
    write_csv(report, args.csv)
    print(f"per-step errors written to {args.csv}")
    if args.plot:
        plot(report, args.plot)
        print(f"plot written to {args.plot}")
    print(f"{report.seconds:.1f}s")
    return 0 if report.as_accurate else 1

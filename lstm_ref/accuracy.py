"""Accuracy against the float64 oracle: torch's error and a candidate's, side by side.

Conformance asks "does the candidate match torch?"; accuracy asks "is it as
close to the exact answer as torch is?". Both torch and the candidate run in
the configuration's dtype (float32, float16, bfloat16) on the same weights and
inputs; the oracle (:func:`lstm_ref.oracle.from_torch`, of an nn.LSTM, GRU or RNN:
``config.mode``) evaluates those same numbers in float64 (every lower-precision
value is exact in float64, so only the arithmetic differs). Each produced
tensor gets its error against the oracle (max absolute, max relative, max in
ULPs of the dtype) and, for ``output``, the max absolute error per time step,
which shows whether error grows along a long sequence.

torch runs on every code path of the device (:data:`lstm_ref.configs.TORCH_PATHS`:
oneDNN and the native loop on CPU), and its error is the worse of theirs: two
correct torch paths differ by up to ~6x on a tensor, so one path alone would
call the other less accurate than torch.

Verdict, per tensor: the candidate is *as accurate as torch* when

    candidate max abs error <= ACCURACY_FACTOR * torch max abs error + ACCURACY_FLOOR * scale

torch max abs error being the worse of its paths', ``scale = max(1, max |true value|)`` over
the tensor (:func:`scale_of`: the floor is an ULP at the values' size), with the factor and
floor per dtype from :mod:`lstm_ref.tolerances` (where their measurement is written down).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstm_ref import oracle
from lstm_ref.candidates import Factory, load_factory
from lstm_ref.compare import split_result, state_names, ulp
from lstm_ref.configs import TORCH_PATHS, Config, module_names
from lstm_ref.conformance import Inputs, build_reference, call_hx, make_inputs, no_tf32_matmul, torch_path
from lstm_ref.tolerances import ACCURACY_FACTOR, ACCURACY_FLOOR


@dataclass
class ErrorStats:
    """One implementation's error on one tensor against the float64 oracle."""

    max_abs: float
    max_rel: float
    max_ulp: float                                         # in ULPs of the dtype at max(|true value|, 1)
    per_step: list[float] = field(default_factory=list)   # max abs error per time step (output only)
    rel_l2: float = 0.0                                    # ||error||_2 / ||true values||_2 over the tensor


@dataclass
class TensorAccuracy:
    """torch's and the candidate's error on one tensor, and the verdict on it."""

    name: str
    torch_paths: dict[str, ErrorStats]                     # per torch path of the device
    candidate: ErrorStats
    allowed: float                                         # factor * torch max abs + floor * scale

    @property
    def torch_path(self) -> str:
        """The torch path with the larger max abs error on this tensor (the verdict's reference)."""
        return max(self.torch_paths, key=lambda path: self.torch_paths[path].max_abs)

    @property
    def torch(self) -> ErrorStats:
        """torch's error: the worse of its paths'."""
        return self.torch_paths[self.torch_path]

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
        paths = list(self.tensors[0].torch_paths)
        header = (f"{'tensor':<8}" + "".join(f"{'torch ' + path:>14}" for path in paths)
                  + f"{'rel':>10}{'rel L2':>10}{'ULP':>9}   {'candidate abs':>13}{'rel':>10}{'rel L2':>10}{'ULP':>9}"
                  f"{'allowed':>11}  verdict")
        lines = [header, "-" * len(header)]
        for t in self.tensors:
            lines.append(
                f"{t.name:<8}" + "".join(f"{t.torch_paths[path].max_abs:>14.3g}" for path in paths)
                + f"{t.torch.max_rel:>10.3g}{t.torch.rel_l2:>10.3g}{t.torch.max_ulp:>9.3g}   "
                f"{t.candidate.max_abs:>13.3g}{t.candidate.max_rel:>10.3g}{t.candidate.rel_l2:>10.3g}"
                f"{t.candidate.max_ulp:>9.3g}{t.allowed:>11.3g}  {'ok' if t.as_accurate else 'LESS ACCURATE'}"
            )
        verdict = "as accurate as torch" if self.as_accurate else "less accurate than torch"
        lines.append(
            f"{self.spec} is {verdict} ({dtype}: candidate max abs error <= "
            f"{ACCURACY_FACTOR[dtype]:g} x torch's (the worse of its paths; rel and ULP are that path's) + "
            f"{ACCURACY_FLOOR[dtype]:.3g} x max(1, max |true value|), against the float64 oracle)"
        )
        return "\n".join(lines)


def padded(sequence: Tensor | PackedSequence, config: Config) -> Tensor:
    """A dense input or output in torch's layout; a PackedSequence is padded with zeros to T steps."""
    if isinstance(sequence, PackedSequence):
        return pad_packed_sequence(sequence, batch_first=config.batch_first, total_length=config.seq_len)[0]
    return sequence


def padded_time_dim(config: Config) -> int:
    """The time axis of :func:`padded`'s result: 1 for batch_first batched input, dense or
    packed, else 0 (``Config.time_dim`` is 0 for packed input, which has no time axis)."""
    return 1 if config.batch_first and config.input_form != "unbatched" else 0


def oracle_arguments(inputs: Inputs, config: Config) -> tuple[np.ndarray, tuple | None, np.ndarray | None]:
    """``(x, hx, lengths)`` for the oracle: float64 arrays, a packed input as padded + lengths."""
    x, lengths = inputs.input, None
    if isinstance(x, PackedSequence):
        x, lengths_tensor = pad_packed_sequence(x, config.batch_first, total_length=config.seq_len)
        lengths = lengths_tensor.numpy()
    hx = None if inputs.hx is None else tuple(_float64(state) for state in inputs.hx)
    return _float64(x), hx, lengths


def run_oracle(module: torch.nn.Module, inputs: Inputs, config: Config) -> tuple[np.ndarray, ...]:
    """The oracle's ``output`` (padded), ``h_n`` and, for the LSTM, ``c_n`` for ``module``
    (nn.LSTM, nn.GRU or nn.RNN) on ``inputs``."""
    x, hx, lengths = oracle_arguments(inputs, config)
    result = oracle.from_torch(module)(x, call_hx(hx), lengths)
    output, states = split_result(result, ("h_n",) if config.mode != "LSTM" else ("h_n", "c_n"))
    return (output, *states)


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
    ``max(|true value|, 1)``, the scale of LSTM gates and hidden states; the relative L2
    error ``||actual - truth||_2 / ||truth||_2`` is the whole tensor's (the measure users
    often quote, e.g. float16 against float32).
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
    error_norm, norm = float(error.norm()), float(truth64.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0).norm())
    rel_l2 = error_norm / norm if norm > 0 else (0.0 if error_norm == 0 else math.inf)
    return ErrorStats(float(error.max()), float(relative.max()), float(in_ulps.max()), per_step, rel_l2)


def scale_of(truth: np.ndarray) -> float:
    """``max(1, max |truth|)`` over the finite true values: the floor's unit is one ULP there (the
    gates and the LSTM's and GRU's h lie in [-1, 1]; a cell state or a relu RNN's h need not)."""
    finite = np.abs(truth[np.isfinite(truth)])
    return max(1.0, float(finite.max())) if finite.size else 1.0


def measure_accuracy(config: Config, factory: Factory | str | None = None, seed: int = 0) -> AccuracyReport:
    """torch's and the candidate's error against the oracle on ``config``'s forward pass.

    torch runs on every path of the configuration's device (``config.torch_path`` is
    not used); the candidate runs once.
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
    paths = TORCH_PATHS[config.device_type]
    expected = {}
    with torch.no_grad():
        for path in paths:
            with torch_path(path):
                reference_inputs = inputs.clone()
                expected[path] = module(reference_inputs.input, call_hx(reference_inputs.hx))
        candidate = factory(copy.deepcopy(module))
        candidate_inputs = inputs.clone()
        with no_tf32_matmul() if config.device_type == "cuda" else contextlib.nullcontext():
            actual = candidate(candidate_inputs.input, call_hx(candidate_inputs.hx))
    dtype = config.torch_dtype
    floor, factor = ACCURACY_FLOOR[config.dtype], ACCURACY_FACTOR[config.dtype]
    names = ("output", *state_names(expected[paths[0]]))
    tensors = []
    for index, name in enumerate(names):
        step_dim = padded_time_dim(config) if name == "output" else None

        def tensor_of(result: tuple, index: int = index) -> Tensor:
            output, states = split_result(result, names[1:])
            return padded(output, config) if index == 0 else states[index - 1]
        got_candidate = tensor_of(actual)
        if got_candidate.dtype != dtype:
            raise TypeError(f"the candidate's {name} is {got_candidate.dtype}, expected {dtype}")
        torch_errors = {path: error_against(tensor_of(expected[path]), truth[index], dtype, step_dim)
                        for path in paths}
        worst = max(error.max_abs for error in torch_errors.values())
        candidate_error = error_against(got_candidate, truth[index], dtype, step_dim)
        allowed = factor * worst + floor * scale_of(truth[index])
        tensors.append(TensorAccuracy(name, torch_errors, candidate_error, allowed))
    return AccuracyReport(config, spec, tensors, time.perf_counter() - started)


def write_csv(reports: AccuracyReport | list[AccuracyReport], path: str | Path) -> None:
    """Columns: dtype, step, torch_<path>_max_abs_error for each torch path, candidate_max_abs_error
    (the output's max absolute error against the oracle, per time step), the reports one after another."""
    reports = [reports] if isinstance(reports, AccuracyReport) else list(reports)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        paths = list(reports[0].tensor("output").torch_paths)
        writer.writerow(["dtype", "step", *(f"torch_{path}_max_abs_error" for path in paths),
                         "candidate_max_abs_error"])
        for report in reports:
            output = report.tensor("output")
            columns = [output.torch_paths[path].per_step for path in paths] + [output.candidate.per_step]
            for step, errors in enumerate(zip(*columns, strict=True)):
                writer.writerow([report.config.dtype, step, *map(repr, errors)])


PATH_COLORS = {"onednn": "tab:blue", "native": "tab:green", "cudnn": "tab:purple"}


def plot(reports: AccuracyReport | list[AccuracyReport], path: str | Path) -> None:
    """A PNG of the output's max absolute error per time step against the oracle: one panel per
    report (a dtype each, same configuration otherwise), a curve per torch path and one for the
    candidate (needs matplotlib, the ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    reports = [reports] if isinstance(reports, AccuracyReport) else list(reports)
    config = reports[0].config
    figure, panels = pyplot.subplots(len(reports), 1, figsize=(9, 1.0 + 3.5 * len(reports)), dpi=110,
                                     sharex=True, squeeze=False)
    for report, axes in zip(reports, panels[:, 0], strict=True):
        output = report.tensor("output")
        steps = np.arange(len(output.candidate.per_step))
        window = max(1, len(steps) // 200)
        curves = [(f"{module_names([config.mode])} ({torch_path})", stats, PATH_COLORS.get(torch_path, "tab:gray"))
                  for torch_path, stats in output.torch_paths.items()]
        curves.append((report.spec, output.candidate, "tab:orange"))
        for number, (label, stats, color) in enumerate(curves):
            errors = np.maximum(np.asarray(stats.per_step), np.finfo(np.float64).tiny)
            axes.plot(steps, errors, color=color, linewidth=0.6, alpha=0.3)
            axes.plot(steps, _running_max(errors, window), color=color, linewidth=1.6,
                      linestyle="--" if number % 2 else "-",  # curves that coincide stay visible
                      label=f"{label}: max {stats.max_abs:.3g}, {stats.max_ulp:.3g} ULP, rel L2 {stats.rel_l2:.2g}")
        axes.set_yscale("log")
        axes.set_ylabel(f"{report.config.dtype}: max |error| at t")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8, loc="lower right", title_fontsize=8,
                    title=f"{report.config.dtype}; thin: every step"
                          + (f", thick: max over {window} steps" if window > 1 else ""))
    panels[-1, 0].set_xlabel("time step t")
    panels[0, 0].set_title(
        f"Max |output - float64 oracle| per time step\nT={config.seq_len}, N={config.batch_size}, "
        f"I={config.input_size}, H={config.hidden_size}, layers={config.num_layers}, "
        f"x ~ {config.input_scale:g}·N(0,1){', held' if config.hold_input else ''}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def _running_max(values: np.ndarray, window: int) -> np.ndarray:
    """The max over each window of ``window`` steps, repeated across the window (the envelope)."""
    padded_length = -(-len(values) // window) * window
    blocks = np.pad(values, (0, padded_length - len(values)), constant_values=0.0).reshape(-1, window)
    return np.repeat(blocks.max(axis=1), window)[: len(values)]

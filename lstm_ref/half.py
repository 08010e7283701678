"""Half precision and autocast: a candidate judged by its error against float64.

Two correct bfloat16 (or float16) LSTMs differ by far more than any element-wise
tolerance that still catches a bug: each rounds every gate, state and output to 8
(11) significant bits, in its own order. So the half-precision rows (``Config.dtype``
bfloat16 or float16, and ``Config.autocast``) are not compared with torch element by
element; each produced tensor is compared with the exact answer instead:

    truth           the same weights, inputs and initial states upcast to float64 (exact:
                    every half and float32 value is a float64 value), run by torch in float64
    torch's error   max |torch - truth| over the tensor, on every torch behaviour of the
                    configuration (below), the worst of them
    passes when     max |candidate - truth| <= HALF_FACTOR * torch's error + floor * scale

with ``scale = max(1, max |truth|)``, ``floor`` HALF_FLOOR (HALF_GRADIENT_FLOOR for a
gradient) and the numbers from :mod:`lstm_ref.tolerances` (the half-precision block, with
the measurements behind them). A candidate that is more accurate than torch passes; one
that computes at a lower precision than it was given fails. The report's
``tolerance_ratio`` is the candidate's max error over the allowed error (> 1 fails) and its
``max_ulp`` counts ULPs of the computing dtype at ``max(|truth|, 1)``.

Torch behaviours, per device type (``configs.TORCH_PATHS``):

* bfloat16 / float16 module: the module on each torch path (oneDNN and native on CPU).
* ``autocast``: the float32 module called under ``torch.autocast(device, dtype)`` on each
  path, and the module and inputs converted to the autocast dtype on each path: what
  torch's oneDNN LSTM does under CPU bfloat16 autocast on a CPU with native bfloat16
  (its results bfloat16), which oneDNN refuses on a CPU without it (see
  docs/runtimes.md).

Result dtypes: a candidate's (output, h_n, c_n) must be a combination one of torch's
behaviours returned on the same call. Under CPU autocast the native path returns all three
in float32, but with projections output and h_n in the autocast dtype and c_n in float32;
oneDNN (or the converted module) all three in the autocast dtype. Any other combination
matches no torch path and fails.

A configuration torch itself cannot run on its own path (it raises) is not judged:
:data:`lstm_ref.conformance.UNTESTABLE`, "torch cannot run this configuration: ...".
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.compare import TensorReport, ulp
from lstm_ref.configs import HALF_DTYPES, TORCH_PATHS, Config
from lstm_ref.tolerances import HALF_FACTOR, HALF_FLOOR, HALF_GRADIENT_FLOOR

#: The names of the three results of a forward call, in order.
RESULT_NAMES = ("output", "h_n", "c_n")


def judged_against_float64(config: Config) -> bool:
    """Whether ``config`` is a half-precision row (half dtype or autocast), judged by this module."""
    return config.dtype in HALF_DTYPES or bool(config.autocast)


def computing_dtype(config: Config) -> torch.dtype:
    """The precision torch computes ``config`` in: the autocast dtype, else the module's."""
    return getattr(torch, config.autocast or config.dtype)


@contextlib.contextmanager
def autocast_for(config: Config) -> Iterator[None]:
    """``torch.autocast(device type, autocast dtype)`` for an autocast row, nothing otherwise."""
    if config.autocast:
        with torch.autocast(config.device_type, dtype=getattr(torch, config.autocast)):
            yield
    else:
        yield


def converted(value: object, dtype: torch.dtype) -> object:
    """``value`` (a tensor, PackedSequence, tuple of them or None) with its floating tensors in ``dtype``."""
    if isinstance(value, PackedSequence):
        return value._replace(data=value.data.to(dtype))
    if isinstance(value, Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(converted(v, dtype) for v in value)
    return value


@dataclass(frozen=True)
class Behaviour:
    """One way torch computes a configuration: a torch path, and the dtype the module and its
    inputs are converted to first (None: as given, under the configuration's autocast)."""

    path: str
    convert_to: torch.dtype | None = None

    @property
    def name(self) -> str:
        return self.path + (f" in {str(self.convert_to).removeprefix('torch.')}" if self.convert_to else "")

    def context(self, config: Config) -> contextlib.AbstractContextManager:
        from lstm_ref.conformance import torch_path  # conformance calls this module

        stack = contextlib.ExitStack()
        stack.enter_context(torch_path(self.path))
        if self.convert_to is None:
            stack.enter_context(autocast_for(config))
        return stack


def behaviours(config: Config) -> list[Behaviour]:
    """torch's behaviours on ``config`` (see the module docstring), the configuration's own path first."""
    paths = [config.torch_path, *(p for p in TORCH_PATHS[config.device_type] if p != config.torch_path)]
    found = [Behaviour(path) for path in paths]
    if config.autocast:
        found += [Behaviour(path, getattr(torch, config.autocast)) for path in paths]
    return found


@dataclass
class HalfCriterion:
    """The half-precision verdict on each produced tensor (``output``, ``h_n``, ``c_n``,
    ``grad.<name>``; a ``training.`` prefix is the same tensor from the training step):
    ``max |actual - truth| <= factor * torch_error + floor * max(1, max |truth|)``.

    Used where a :class:`lstm_ref.tolerances.Tolerance` is: :func:`lstm_ref.compare.compare_tensor`
    hands the comparison to :meth:`compare_tensor`.
    """

    config: Config
    truth: dict[str, Tensor]                       # name -> float64 value, on the CPU
    torch_errors: dict[str, dict[str, float]]      # name -> {behaviour name: max abs error}
    unavailable: dict[str, str] = field(default_factory=dict)  # behaviour name -> why torch failed there
    #: the (output, h_n, c_n) dtypes each behaviour returned: the combinations a candidate may return
    result_combinations: set[tuple[torch.dtype, ...]] = field(default_factory=set)
    _seen_dtypes: dict[str, dict[str, torch.dtype]] = field(default_factory=dict, repr=False)

    @property
    def dtype(self) -> torch.dtype:
        return computing_dtype(self.config)

    def torch_error(self, name: str) -> tuple[float, str]:
        """torch's worst max abs error on ``name`` and the behaviour that has it."""
        errors = self.torch_errors[_key(name)]
        worst = max(errors, key=errors.__getitem__)
        return errors[worst], worst

    def allowed(self, name: str) -> float:
        """The most max abs error a candidate may have on ``name``."""
        dtype_name = str(self.dtype).removeprefix("torch.")
        truth = self.truth[_key(name)]
        scale = max(1.0, float(truth.abs().nan_to_num(nan=0.0, posinf=0.0).max())) if truth.numel() else 1.0
        floor = (HALF_GRADIENT_FLOOR if _key(name).startswith("grad.") else HALF_FLOOR)[dtype_name]
        return HALF_FACTOR[dtype_name] * self.torch_error(name)[0] + floor * scale

    def compare_tensor(self, name: str, actual: object, expected: Tensor, time_dim: int | None = None,
                       batch_sizes: Tensor | None = None) -> TensorReport:
        """``actual`` against the float64 truth of ``name``; ``expected`` (torch's result on the
        configuration's path) gives the shape and device; dtypes are checked against torch's."""
        if not isinstance(actual, Tensor):
            return TensorReport(name, False, f"expected a Tensor, got {type(actual).__name__}")
        for attribute in ("shape", "device"):
            got, want = getattr(actual, attribute), getattr(expected, attribute)
            if got != want:
                shown = (list(got), list(want)) if attribute == "shape" else (got, want)
                return TensorReport(name, False, f"{attribute} {shown[0]}, expected {shown[1]}")
        problem = self._dtype_problem(name, actual.dtype, expected.dtype)
        if problem:
            return TensorReport(name, False, problem)
        truth = self.truth[_key(name)]
        report = TensorReport(name, True, numel=truth.numel())
        if truth.numel() == 0:
            return report
        actual64 = actual.detach().to("cpu", torch.float64)
        same = (actual64 == truth) | (actual64.isnan() & truth.isnan())
        error = torch.where(same, torch.zeros_like(truth), (actual64 - truth).abs()).nan_to_num(nan=float("inf"))
        allowed = self.allowed(name)
        torch_error, behaviour = self.torch_error(name)
        report.mismatched = int((error > allowed).sum())
        report.passed = report.mismatched == 0
        report.max_abs = float(error.max())
        report.max_rel = float((error / truth.abs().clamp_min(torch.finfo(self.dtype).tiny)).max())
        report.max_ulp = float((error / ulp(truth.abs().nan_to_num(nan=1.0).clamp_min(1.0), self.dtype)).max())
        report.tolerance_ratio = report.max_abs / allowed
        worst = int(error.flatten().argmax())
        report.worst_index = tuple(int(i) for i in np.unravel_index(worst, tuple(truth.shape)))
        dtype_name = str(self.dtype).removeprefix("torch.")
        floor = (allowed - HALF_FACTOR[dtype_name] * torch_error)
        report.note = (f"against float64: allowed {allowed:.3g} = {HALF_FACTOR[dtype_name]:g} x torch's "
                       f"{torch_error:.3g} ({behaviour}) + floor {floor:.3g}")
        if batch_sizes is not None:
            report.per_step = [float(step.max()) for step in error.split(batch_sizes.tolist())]
        elif time_dim is not None:
            report.per_step = error.movedim(time_dim, 0).flatten(1).amax(1).tolist()
        return report

    def _dtype_problem(self, name: str, got: torch.dtype, expected: torch.dtype) -> str:
        """Why ``got`` is not a dtype torch gives ``name`` ("" when it is). A forward result must
        have a dtype one of torch's behaviours gave it and, once output, h_n and c_n of one call are
        seen, be a combination one behaviour returned; a gradient must have torch's dtype."""
        prefix, _, base = name.rpartition(".")
        if base not in RESULT_NAMES:
            return "" if got == expected else f"dtype {got}, expected {expected}"
        index = RESULT_NAMES.index(base)
        accepted = sorted({combination[index] for combination in self.result_combinations}, key=str)
        if got not in accepted:
            return f"dtype {got}, expected {' or '.join(map(str, accepted))} (what torch returns here)"
        seen = self._seen_dtypes.setdefault(prefix, {})
        seen[base] = got
        if len(seen) == len(RESULT_NAMES):
            self._seen_dtypes.pop(prefix)
            combination = tuple(seen[n] for n in RESULT_NAMES)
            if combination not in self.result_combinations:
                returned = " or ".join(map(_dtype_names, sorted(self.result_combinations, key=str)))
                return f"result dtypes {_dtype_names(combination)} match no torch path (torch returns {returned})"
        return ""


def _dtype_names(combination: tuple[torch.dtype, ...]) -> str:
    """``output bfloat16, h_n bfloat16, c_n float32``."""
    return ", ".join(f"{n} {str(d).removeprefix('torch.')}" for n, d in zip(RESULT_NAMES, combination))


def _key(name: str) -> str:
    """The truth's key for a report name: ``training.output`` is ``output``, ``training.grad.x`` is ``grad.x``."""
    return name.removeprefix("training.")


def float64_module(module: nn.Module) -> nn.Module:
    """A copy of ``module`` in float64 (its half or float32 parameters upcast exactly)."""
    return copy.deepcopy(module).to(torch.float64)


def _max_errors(results: dict[str, Tensor], truth: dict[str, Tensor]) -> dict[str, float]:
    return {name: float((value.detach().to("cpu", torch.float64) - truth[name]).abs().nan_to_num(nan=float("inf"))
                        .max()) if value.numel() else 0.0 for name, value in results.items()}


def _forward_results(module: nn.Module, inputs, dtype: torch.dtype | None, previous=None) -> dict[str, Tensor]:
    """output (a packed one's data), h_n, c_n of ``module`` (converted to ``dtype`` if given) on a
    fresh copy of ``inputs``, without grad; with ``previous``, the call's state is the one a call on
    ``previous`` returned (a stream of two calls)."""
    if dtype is not None:
        module = copy.deepcopy(module).to(dtype)
    with torch.no_grad():
        hx = converted(inputs.clone().hx, dtype) if dtype else inputs.clone().hx
        if previous is not None:
            first = previous.clone()
            hx = module(converted(first.input, dtype) if dtype else first.input,
                        converted(first.hx, dtype) if dtype else first.hx)[1]
        fresh = inputs.clone()
        output, (h_n, c_n) = module(converted(fresh.input, dtype) if dtype else fresh.input, hx)
    output = output.data if isinstance(output, PackedSequence) else output
    return dict(zip(RESULT_NAMES, (output, h_n, c_n)))


def forward_criterion(config: Config, reference: nn.Module, inputs, previous=None) -> HalfCriterion:
    """The criterion for ``reference`` (torch's module of ``config``) on ``inputs`` (pristine
    :class:`lstm_ref.conformance.Inputs`): the float64 truth and torch's error on each behaviour.
    With ``previous`` (the inputs of the call before), each side's call continues from the state
    its own call on ``previous`` returned: the truth is the float64 stream, torch's error its own."""
    truth = {name: value.to("cpu") for name, value in
             _forward_results(float64_module(reference), inputs, torch.float64, previous).items()}
    return _criterion(config, truth, lambda behaviour: _forward_results(reference, inputs, behaviour.convert_to,
                                                                         previous))


def gradient_criterion(config: Config, reference: nn.Module, inputs, weights: tuple[Tensor, ...]) -> HalfCriterion:
    """The criterion for a gradient check: the forward results and d loss / d {input, h0, c0,
    parameters} (``grad.<name>``) in float64 and on each of torch's behaviours, for the loss
    of :func:`lstm_ref.gradients.weighted_loss` with the loss ``weights``."""
    def run(module: nn.Module, dtype: torch.dtype | None) -> dict[str, Tensor]:
        module = module if dtype is None else copy.deepcopy(module).to(dtype)
        given = inputs if dtype is None else replace(inputs, input=converted(inputs.input, dtype),
                                                     hx=converted(inputs.hx, dtype))
        # the loss weights stay as given (torch's output dtype): only the truth's are upcast
        loss_weights = converted(weights, dtype) if dtype == torch.float64 else weights
        expected, grads = _torch_gradients(module, given, loss_weights)
        output = expected[0].data if isinstance(expected[0], PackedSequence) else expected[0]
        return {**dict(zip(RESULT_NAMES, (output, *expected[1]))), **{f"grad.{n}": g for n, g in grads.items()}}

    with contextlib.ExitStack() as stack:
        from lstm_ref.conformance import torch_path

        stack.enter_context(torch_path("native"))
        truth = {name: value.detach().to("cpu") for name, value in run(reference, torch.float64).items()}
    return _criterion(config, truth, lambda behaviour: run(reference, behaviour.convert_to))


def _torch_gradients(module: nn.Module, inputs, weights: tuple[Tensor, ...]) -> tuple[tuple, dict[str, Tensor]]:
    """``module``'s results on ``inputs`` (input, h0, c0 requiring grad) and d loss / d {input, h0,
    c0, parameters} for :func:`lstm_ref.gradients.weighted_loss` with ``weights``."""
    from lstm_ref.gradients import _gradients, _Leaves, weighted_loss  # gradients calls this module

    leaves = _Leaves(inputs, laid_out=False)
    with torch.enable_grad():
        expected = module(leaves.input, leaves.received.hx)
        output = expected[0].data if isinstance(expected[0], PackedSequence) else expected[0]
        grads = _gradients(weighted_loss([output, *expected[1]], weights),
                           leaves.named() + list(module.named_parameters()), materialize=True)
    return expected, grads


def _criterion(config: Config, truth: dict[str, Tensor],
               run: Callable[[Behaviour], dict[str, Tensor]]) -> HalfCriterion:
    errors: dict[str, dict[str, float]] = {name: {} for name in truth}
    unavailable, combinations = {}, set()
    for behaviour in behaviours(config):
        try:
            with behaviour.context(config):
                results = run(behaviour)
        except RuntimeError as error:
            if behaviour.path == config.torch_path and behaviour.convert_to is None:
                raise
            unavailable[behaviour.name] = f"{type(error).__name__}: {error}"
            continue
        for name, value in _max_errors(results, truth).items():
            errors[name][behaviour.name] = value
        combinations.add(tuple(results[name].dtype for name in RESULT_NAMES))
    return HalfCriterion(config, truth, errors, unavailable, combinations)


def torch_cannot_run(error: BaseException) -> str:
    """The message of a configuration torch itself cannot run (the UNTESTABLE status)."""
    return f"torch cannot run this configuration: {type(error).__name__}: {str(error).splitlines()[0]}"

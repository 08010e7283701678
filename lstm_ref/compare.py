"""Element-wise comparison of one tensor, or an LSTM's ``(output, (h_n, c_n))``, against its expected value.

The pass criterion is ``torch.isclose``'s (the one ``torch.testing.assert_close``
applies): ``|actual - expected| <= atol + rtol * |expected|`` element-wise, NaN
equal to NaN, infinities equal only to themselves. On top of the verdict a
:class:`TensorReport` carries what a person needs to locate a bug: max
absolute and relative error, the error in ULPs of the dtype, the worst
element's index, the worst error as a multiple of its tolerance, and the max
error per time step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.tolerances import Tolerance

if TYPE_CHECKING:
    from lstm_ref.half import HalfCriterion


@dataclass
class TensorReport:
    """How one produced tensor (``output``, ``h_n``, ``c_n``, a gradient, ...) compares."""

    name: str
    passed: bool
    problem: str = ""                 # a structural mismatch (type, shape, dtype, device, NaN placement)
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    tolerance_ratio: float = 0.0      # max over elements of |a-e| / (atol + rtol*|e|); > 1 fails
    worst_index: tuple[int, ...] = ()
    mismatched: int = 0
    numel: int = 0
    per_step: list[float] = field(default_factory=list)  # max |a-e| per time step, if timed
    note: str = ""                    # how the allowed error was set, where not by a Tolerance row

    def describe(self) -> str:
        if self.problem:
            return f"{self.name}: {self.problem}"
        verdict = "ok" if self.passed else f"{self.mismatched}/{self.numel} elements out of tolerance"
        return (
            f"{self.name}: {verdict}; max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}, "
            f"{self.max_ulp:.3g} ULP, worst at {list(self.worst_index)} "
            f"({self.tolerance_ratio:.3g}x tolerance)" + (f"; {self.note}" if self.note else "")
        )

    def as_dict(self) -> dict:
        return {
            "name": self.name, "passed": self.passed, "problem": self.problem,
            "max_abs": self.max_abs, "max_rel": self.max_rel, "max_ulp": self.max_ulp,
            "tolerance_ratio": self.tolerance_ratio, "worst_index": list(self.worst_index),
            "mismatched": self.mismatched, "numel": self.numel, "per_step": self.per_step,
            "note": self.note,
        }


def ulp(values: Tensor, dtype: torch.dtype) -> Tensor:
    """The spacing of ``dtype``'s numbers at |values| (float64 result), floored at the smallest normal."""
    info = torch.finfo(dtype)
    magnitude = values.abs().clamp_min(info.tiny)
    return info.eps * torch.exp2(torch.floor(torch.log2(magnitude)))


def compare_tensor(
    name: str,
    actual: object,
    expected: Tensor,
    tolerance: Tolerance | HalfCriterion,
    time_dim: int | None = None,
    batch_sizes: Tensor | None = None,
) -> TensorReport:
    """Compare ``actual`` with ``expected``: type, shape, dtype, device, then values.

    ``time_dim`` (a dense output's time axis) or ``batch_sizes`` (a packed
    output's per-step row counts) make the report carry the max error per step.
    A half-precision row's criterion (:class:`lstm_ref.half.HalfCriterion`, passed as
    ``tolerance``) does the comparison itself, against the float64 truth.
    """
    if hasattr(tolerance, "compare_tensor"):
        return tolerance.compare_tensor(name, actual, expected, time_dim, batch_sizes)
    if not isinstance(actual, Tensor):
        return TensorReport(name, False, f"expected a Tensor, got {type(actual).__name__}")
    for attribute in ("shape", "dtype", "device"):
        got, want = getattr(actual, attribute), getattr(expected, attribute)
        if got != want:
            shown = (list(got), list(want)) if attribute == "shape" else (got, want)
            return TensorReport(name, False, f"{attribute} {shown[0]}, expected {shown[1]}")
    report = TensorReport(name, True, numel=expected.numel())
    if expected.numel() == 0:
        return report
    actual64 = actual.detach().to("cpu", torch.float64)
    expected64 = expected.detach().to("cpu", torch.float64)
    close = torch.isclose(actual64, expected64, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True)
    report.mismatched = int((~close).sum())
    report.passed = report.mismatched == 0

    both_finite = torch.isfinite(actual64) & torch.isfinite(expected64)
    error = torch.where(both_finite, (actual64 - expected64).abs(), torch.zeros_like(actual64))
    error = torch.where(close | both_finite, error, torch.full_like(error, float("inf")))
    allowed = tolerance.atol + tolerance.rtol * expected64.abs()
    ratio = error / allowed
    worst = int(ratio.flatten().argmax())
    report.worst_index = tuple(int(i) for i in np.unravel_index(worst, tuple(expected.shape)))
    report.max_abs = float(error.max())
    report.max_rel = float((error / expected64.abs().clamp_min(torch.finfo(expected.dtype).tiny)).max())
    report.max_ulp = float((error / ulp(expected64, expected.dtype)).max())
    report.tolerance_ratio = float(ratio.max())
    if not report.passed and report.mismatched and not torch.isfinite(error).all():
        report.problem = "NaN or infinity where the expected value differs"
    if batch_sizes is not None:
        report.per_step = [float(step.max()) for step in error.split(batch_sizes.tolist())]
    elif time_dim is not None:
        report.per_step = error.movedim(time_dim, 0).flatten(1).amax(1).tolist()
    return report


def compare_lstm_outputs(
    actual: object, expected: tuple, tolerance: Tolerance, time_dim: int | None = None
) -> list[TensorReport]:
    """``actual``'s ``(output, (h_n, c_n))`` against ``expected``'s, tensor by tensor (``(output, h_n)``
    where torch's module has no cell state: GRU, RNN).

    A packed expected output needs a packed actual one with equal ``batch_sizes``,
    ``sorted_indices`` and ``unsorted_indices``; its data is compared per step.
    ``time_dim`` is a dense output's time axis (for the per-step errors).
    """
    names = state_names(expected)
    out_expected, states_expected = split_result(expected, names)
    try:
        out_actual, states_actual = split_result(actual, names)
    except (TypeError, ValueError):
        return [TensorReport("result", False, f"expected {result_form(names)}, got {type(actual).__name__}")]
    reports = []
    if isinstance(out_expected, PackedSequence):
        if not isinstance(out_actual, PackedSequence):
            reports.append(TensorReport("output", False,
                                        f"expected a PackedSequence, got {type(out_actual).__name__}"))
        else:
            for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
                got, want = getattr(out_actual, name), getattr(out_expected, name)
                if not _same_indices(got, want):
                    reports.append(TensorReport(f"output.{name}", False, f"{got}, expected {want}"))
            reports.append(compare_tensor("output", out_actual.data, out_expected.data, tolerance,
                                          batch_sizes=out_expected.batch_sizes))
    else:
        reports.append(compare_tensor("output", out_actual, out_expected, tolerance, time_dim=time_dim))
    for name, got, want in zip(names, states_actual, states_expected, strict=True):
        reports.append(compare_tensor(name, got, want, tolerance))
    return reports


def state_names(expected: tuple) -> tuple[str, ...]:
    """The final-state tensors of torch's result ``(output, state)``: h_n and c_n for the LSTM's
    pair, h_n alone for the GRU's and the RNN's tensor."""
    return ("h_n",) if isinstance(expected[1], Tensor) else ("h_n", "c_n")


def split_result(result: object, names: tuple[str, ...]) -> tuple[object, tuple]:
    """A module's result as ``(output, (h_n, c_n))`` or ``(output, (h_n,))`` by ``names``;
    TypeError or ValueError when it is not of that form."""
    output, state = result  # type: ignore[misc]
    if len(names) == 1:
        return output, (state,)
    h_n, c_n = state
    return output, (h_n, c_n)


def result_form(names: tuple[str, ...]) -> str:
    """How a result with these state tensors reads: ``(output, (h_n, c_n))`` or ``(output, h_n)``."""
    return "(output, (h_n, c_n))" if len(names) == 2 else "(output, h_n)"


def _same_indices(got: Tensor | None, want: Tensor | None) -> bool:
    """A PackedSequence's index tensors agree (both None when packed with enforce_sorted=True)."""
    if got is None or want is None:
        return got is want
    return torch.equal(got.cpu(), want.cpu())

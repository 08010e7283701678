"""The one comparison the examples use: lstm_ref's tolerance table and compare_tensor."""

from __future__ import annotations

from torch import Tensor

from lstm_ref.compare import TensorReport, compare_tensor
from lstm_ref.tolerances import tolerance_for


def assert_matches(name: str, actual: Tensor, expected: Tensor, steps: int) -> TensorReport:
    """``actual`` equals ``expected`` within the table's tolerance for their dtype and device
    over ``steps`` time steps; AssertionError with the report's description otherwise."""
    tolerance = tolerance_for(expected.dtype, expected.device).over(steps)
    report = compare_tensor(name, actual, expected, tolerance)
    if not report.passed:
        raise AssertionError(report.describe())
    return report

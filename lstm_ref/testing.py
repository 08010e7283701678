"""Assertions for your own tests: the harness's comparison as ``assert`` functions.

``assert_close`` (one tensor) and ``assert_lstm_close`` (an ``(output, (h_n, c_n))`` pair)
compare within the tolerance table's row for the dtype and device over ``steps`` time steps
(:mod:`lstm_ref.tolerances`) and raise ``AssertionError`` with the report ``lstm-ref check``
prints per tensor: elements out of tolerance, max abs and rel error, ULPs, the worst index
and the worst error as a multiple of its tolerance. ``check_lstm`` runs the conformance
configurations against torch.nn.LSTM and returns their results::

    import torch
    from torch import nn

    import lstm_ref
    from lstm_ref.testing import assert_lstm_close, check_lstm

    def test_my_lstm():
        reference = nn.LSTM(4, 6, num_layers=2)
        mine = lstm_ref.LSTM.from_torch(reference)       # the LSTM under test
        x = torch.randn(5, 3, 4)                         # (T, N, I)
        with torch.no_grad():
            assert_lstm_close(mine(x), reference(x), steps=5)

    def test_my_lstm_on_the_quick_matrix():
        failed = [r.describe() for r in check_lstm(lstm_ref.LSTM.from_torch) if r.status == "failed"]
        assert not failed, "\\n".join(failed)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.candidates import Factory
from lstm_ref.compare import TensorReport, compare_lstm_outputs, compare_tensor
from lstm_ref.configs import Config, quick_gradient_matrix, quick_matrix
from lstm_ref.conformance import DEFAULT_TIMEOUT, Result
from lstm_ref.runner import Runner
from lstm_ref.tolerances import Tolerance, tolerance_for

__all__ = ["assert_close", "assert_lstm_close", "check_lstm"]


def _tolerance(expected: Tensor, steps: int, dtype: torch.dtype | str | None,
               device: torch.device | str | None) -> Tolerance:
    """The table's row for ``dtype`` and ``device`` (default: ``expected``'s) over ``steps`` steps."""
    return tolerance_for(dtype or expected.dtype, device or expected.device).over(steps)


def _raise_if_failed(reports: list[TensorReport]) -> None:
    failed = [report.describe() for report in reports if not report.passed]
    if failed:
        raise AssertionError("\n".join(failed))


def assert_close(
    actual: object, expected: Tensor, *, steps: int, name: str,
    dtype: torch.dtype | str | None = None, device: torch.device | str | None = None,
) -> TensorReport:
    """Assert that ``actual`` equals ``expected`` within the table's tolerance over ``steps`` steps.

    Checks type, shape, dtype and device, then values (NaN equal to NaN). Raises
    AssertionError with the report, e.g. ``h_n: 3/18 elements out of tolerance; max abs
    0.0123, ..., worst at [1, 0, 4] (95.3x tolerance)``; returns the report when it passes.

        assert_close(my_h_n, torch_h_n, steps=x.shape[0], name="h_n")
    """
    report = compare_tensor(name, actual, expected, _tolerance(expected, steps, dtype, device))
    _raise_if_failed([report])
    return report


def assert_lstm_close(
    actual: object, expected: tuple, *, steps: int,
    dtype: torch.dtype | str | None = None, device: torch.device | str | None = None,
) -> list[TensorReport]:
    """Assert that an LSTM's ``(output, (h_n, c_n))`` equals ``expected`` within the table's
    tolerance over ``steps`` steps, tensor by tensor.

    ``output`` may be a PackedSequence: then batch_sizes and indices must be equal and its
    data close. Raises AssertionError with one report line per tensor out of tolerance;
    returns the reports (output, h_n, c_n) when all pass.

        assert_lstm_close(my_lstm(x, hx), torch_lstm(x, hx), steps=x.shape[0])
    """
    output = expected[0]
    output_data = output.data if isinstance(output, PackedSequence) else output
    reports = compare_lstm_outputs(actual, expected, _tolerance(output_data, steps, dtype, device))
    _raise_if_failed(reports)
    return reports


def check_lstm(
    factory: Factory | str, configs: Iterable[Config] | None = None, *, grad: bool = False, seed: int = 0,
    isolate: bool = True, timeout: float = DEFAULT_TIMEOUT,
) -> list[Result]:
    """Run ``factory``'s LSTM against torch.nn.LSTM on ``configs`` (default: the quick matrix).

    ``factory`` is what ``--lstm-impl`` names: called with an initialised torch.nn.LSTM, it
    returns a callable with ``nn.LSTM.forward``'s signature (or a ``"MODULE:ATTR"`` string).
    One forward :class:`~lstm_ref.conformance.Result` per configuration; with ``grad``, then
    one gradient result per configuration that has initial states (gradients are taken with
    respect to h0 and c0 too), by default those of the quick gradient matrix. A failed
    result's ``describe()`` ends in a shell command that reruns it (``Result.reproduce``).

        results = check_lstm(my_factory, [Config(num_layers=2, bidirectional=True)])
        assert all(result.status == "passed" for result in results)

    As under ``lstm-ref check`` and the pytest plugin, the candidate runs in a worker process
    (:mod:`lstm_ref.runner`; starting one imports torch, about 2 s), so a crash or a hang
    (``timeout`` seconds, 0: none) fails its configuration instead of the calling test process.
    The worker imports the factory by name: give a ``"MODULE:ATTR"`` string or a module-level
    function (a lambda or a closure is a TypeError). ``isolate=False`` runs it in this process
    (for pdb, or a factory that has no name), where a hang is cut off by a thread and a crash
    ends the process.
    """
    forward = quick_matrix() if configs is None else list(configs)
    backward = []
    if grad:
        backward = quick_gradient_matrix() if configs is None else [c for c in forward if c.initial_state]
    with Runner(factory, seed=seed, timeout=timeout, isolate=isolate) as runner:
        return ([runner.check(config, "forward") for config in forward]
                + [runner.check(config, "gradients") for config in backward])

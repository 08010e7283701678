"""Fixtures of the benchmarks: the GEMM peak, the modules and inputs per size, the baseline.

Everything measured once per session is cached here, so each result's ratios and
roofline fractions come from the same run.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from benchmarks.implementations import BASELINE, IMPLEMENTATIONS
from benchmarks.roofline import gemm_peak_gflops, median_seconds
from benchmarks.sizes import Size


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-threads", type=int, default=None, metavar="N",
                     help="torch (and ONNX Runtime) intra-op threads for the benchmarks "
                          "(default: torch's default, one per core)")


def pytest_configure(config: pytest.Config) -> None:
    threads = config.getoption("--bench-threads")
    if threads is not None:
        if threads < 1:
            raise pytest.UsageError(f"--bench-threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
        _limit_numpy_threads(config, threads)
    config.addinivalue_line("markers", "bench_quick: the CI subset (run with --benchmark-disable)")
    config.addinivalue_line("markers", "bench_large: over 100 GFLOP per forward pass (seconds per call)")


def _limit_numpy_threads(config: pytest.Config, threads: int) -> None:
    """The same thread count for NumPy's BLAS (the oracle, onnx.reference), via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        config.stash[_NUMPY_THREADS] = "NumPy BLAS threads not limited (pip install threadpoolctl)"
        return
    config.stash[_LIMITER] = threadpool_limits(limits=threads)
    config.stash[_NUMPY_THREADS] = f"NumPy BLAS limited to {threads} thread(s)"


_LIMITER = pytest.StashKey[object]()
_NUMPY_THREADS = pytest.StashKey[str]()


def pytest_report_header(config: pytest.Config) -> str:
    numpy_threads = config.stash.get(_NUMPY_THREADS, "NumPy BLAS threads: its default")
    return (f"lstm_ref benchmarks: torch {torch.__version__}, {torch.get_num_threads()} intra-op "
            f"threads; {numpy_threads}")


@pytest.fixture(scope="session")
def gemm_peak() -> float:
    """This machine's float32 GEMM GFLOP/s, measured once per session."""
    return gemm_peak_gflops()


class Workload:
    """The nn.LSTM (float32, CPU, eval, seeded) and input x (T, N, I) of one size, and the
    baseline's results and median times, measured once per session."""

    def __init__(self, size: Size) -> None:
        generator = torch.Generator().manual_seed(1234)
        self.size = size
        self.module = nn.LSTM(size.input_size, size.hidden_size, num_layers=size.num_layers,
                              bidirectional=size.bidirectional).eval()
        bound = size.hidden_size ** -0.5
        with torch.no_grad():
            for parameter in self.module.parameters():
                parameter.uniform_(-bound, bound, generator=generator)
        self.x = torch.randn(size.seq_len, size.batch, size.input_size, generator=generator)
        self._baseline = IMPLEMENTATIONS[BASELINE](self.module, self.x)
        self.expected: tuple[Tensor, Tensor, Tensor] = self._baseline.results(self._baseline.forward())
        self.baseline_seconds: dict[str, float] = {}

    def baseline_median(self, mode: str, repeats: int) -> float:
        """nn.LSTM's (oneDNN) median time for ``mode`` in this session (measured on first use)."""
        if mode not in self.baseline_seconds:
            call = self._baseline.forward if mode == "forward" else self._baseline.forward_backward
            self.baseline_seconds[mode] = median_seconds(call, repeats, min_seconds=0.5)
        return self.baseline_seconds[mode]


@pytest.fixture(scope="session")
def workloads() -> dict[str, Workload]:
    return {}


@pytest.fixture
def workload(workloads: dict[str, Workload], size: Size) -> Workload:
    if size.id not in workloads:
        workloads[size.id] = Workload(size)
    return workloads[size.id]

"""The machine's limit: a measured GEMM peak, and the figures each benchmark result carries.

The roofline of an LSTM's time-step loop: whatever else it does, each step needs the
recurrent GEMM h W_hh^T, (N x H) @ (H x 4H), which cannot be batched over time. Its
cost at this machine's GEMM peak is the best time per step any implementation can
reach; the input projection and elementwise work come on top.
"""

from __future__ import annotations

import statistics
import time

import torch


def median_seconds(call, repeats: int, min_seconds: float = 0.0) -> float:
    """The median wall time of ``call()`` over ``repeats`` runs (more while under ``min_seconds``)."""
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_seconds:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def gemm_peak_gflops(size: int = 1024, repeats: int = 9) -> float:
    """float32 GFLOP/s of a square ``size`` GEMM (out=, no allocation): this machine's peak."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    return 2.0 * size**3 / median_seconds(lambda: torch.mm(a, b, out=out), repeats) / 1e9


def step_gemm_seconds(batch: int, hidden: int, repeats: int = 51) -> float:
    """Median time of the recurrent GEMM itself at this size: (N x H) @ (H x 4H) into a buffer."""
    h, w = torch.randn(batch, hidden), torch.randn(hidden, 4 * hidden)
    out = torch.empty(batch, 4 * hidden)
    return median_seconds(lambda: torch.mm(h, w, out=out), repeats, min_seconds=0.01)

"""The time-step loop of every implementation at every size: one group per size.

    pytest benchmarks --benchmark-json results.json        # the full run
    pytest benchmarks -m bench_quick --benchmark-disable   # CI: every benchmark runs once and agrees
    lstm-ref bench-report results.json --plot times.png    # table and plot

Each result's ``extra_info``: seconds per call (one batch of N sequences), per sequence and
per time step, GFLOP/s, the fraction of this machine's GEMM peak (measured in the same
session), the roofline time per step (one N x H x 4H GEMM at that peak), the ratio to
nn.LSTM (oneDNN) measured in the same session, the target ratio where one is set, and the
worst error against nn.LSTM in units of the tolerance.
"""

from __future__ import annotations

import time

import pytest
import torch

from benchmarks.implementations import BASELINE, IMPLEMENTATIONS, Unavailable, candidate
from benchmarks.roofline import step_gemm_seconds
from benchmarks.sizes import QUICK, SIZES, TARGETS, Size
from lstm_ref.candidates import CandidateError, load_factory
from lstm_ref.compare import compare_tensor
from lstm_ref.tolerances import tolerance_for

#: Wall time to spend on one benchmark's timed rounds: rounds = this / one call, in [3, 15];
#: a single round for calls over SLOW_CALL_SECONDS.
ROUND_BUDGET_SECONDS = 2.0
SLOW_CALL_SECONDS = 5.0
CANDIDATE = "--lstm-impl candidate"
MODES = ("forward", "forward_backward")


def size_params() -> list:
    params = []
    for size in SIZES:
        marks = [pytest.mark.bench_quick] if size.id in QUICK else []
        if size.flops() > 1e11:
            marks.append(pytest.mark.bench_large)
        params.append(pytest.param(size, id=size.id, marks=marks))
    return params


def build_runner(request: pytest.FixtureRequest, name: str, workload):
    if name == CANDIDATE:
        spec = request.config.getoption("--lstm-impl")
        if not spec:
            pytest.skip("no --lstm-impl given")
        try:
            builder = candidate(load_factory(spec)[1])
        except CandidateError as error:
            pytest.fail(str(error))
    else:
        builder = IMPLEMENTATIONS[name]
    try:
        return builder(workload.module, workload.x)
    except Unavailable as error:
        pytest.skip(str(error))


def rounds_for(seconds: float) -> int:
    if seconds > SLOW_CALL_SECONDS:
        return 1
    return max(3, min(15, round(ROUND_BUDGET_SECONDS / max(seconds, 1e-9))))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("implementation", [*IMPLEMENTATIONS, CANDIDATE])
@pytest.mark.parametrize("size", size_params())
def test_lstm_speed(benchmark, request, size: Size, implementation: str, mode: str, workload, gemm_peak):
    runner = build_runner(request, implementation, workload)
    call = runner.forward if mode == "forward" else runner.forward_backward
    if call is None:
        pytest.skip(f"{implementation} has no autograd")
    benchmark.group = f"{size.id} {mode}"
    benchmark.extra_info.update(implementation=implementation, size=size.id, mode=mode,
                                seq_len=size.seq_len, batch=size.batch, hidden_size=size.hidden_size,
                                threads=torch.get_num_threads())

    started = time.perf_counter()
    result = call()  # warm-up, and the agreement check's values
    rounds = rounds_for(time.perf_counter() - started)
    if mode == "forward":
        agreement = check_agreement(runner.results(result), workload)
        benchmark.extra_info["error_vs_nn_lstm"] = agreement

    benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing timed
        return
    median = benchmark.stats.stats.median
    if implementation == BASELINE:
        workload.baseline_seconds.setdefault(mode, median)
    baseline = workload.baseline_median(mode, rounds)
    flops = size.flops() * (3 if mode == "forward_backward" else 1)
    roofline_step = size.recurrent_gemm_flops() * size.num_layers * size.num_directions / (gemm_peak * 1e9)
    benchmark.extra_info.update(
        seconds_per_call=median,
        seconds_per_sequence=median / size.batch,
        seconds_per_step=median / size.seq_len,
        gflops=flops / median / 1e9,
        gemm_peak_gflops=gemm_peak,
        fraction_of_gemm_peak=flops / median / 1e9 / gemm_peak,
        roofline_seconds_per_step=roofline_step,
        step_gemm_seconds=step_gemm_seconds(size.batch, size.hidden_size),
        ratio_to_nn_lstm=median / baseline,
    )
    if implementation == "lstm_ref-fast" and size.id in TARGETS and mode == "forward":
        benchmark.extra_info["target_ratio"] = TARGETS[size.id]


def check_agreement(actual, workload) -> float:
    """Assert output, h_n and c_n agree with nn.LSTM's within the float32 CPU tolerance over T
    steps (lstm_ref.tolerances); return the worst error as a multiple of that tolerance."""
    tolerance = tolerance_for(torch.float32, "cpu").over(workload.size.seq_len)
    reports = [compare_tensor(name, got.to(want.dtype), want, tolerance)
               for name, got, want in zip(("output", "h_n", "c_n"), actual, workload.expected, strict=True)]
    failed = [r.describe() for r in reports if not r.passed]
    assert not failed, "disagrees with nn.LSTM: " + "; ".join(failed)
    return max(r.tolerance_ratio for r in reports)

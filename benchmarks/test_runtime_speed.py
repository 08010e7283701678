"""The real runtimes of lstm_ref.runtimes beside nn.LSTM: time per step and ratio to nn.LSTM.

    pytest benchmarks/test_runtime_speed.py --benchmark-json runtimes.json
    pytest benchmarks/test_runtime_speed.py -m bench_quick --benchmark-disable   # CI: runs once, agrees

Each runtime is built through the candidate protocol (``lstm_ref.candidates.load_factory``),
so an exporter's export, a compiler's compilation or a quantization happens in the build and
the warm-up call, before the timed rounds. Results share ``test_lstm_speed``'s groups
(``{size} {mode}``) and its per-size workload and nn.LSTM baseline, so one JSON holds both
and ``ratio_to_nn_lstm`` is measured in the same session. The exporters trace every time step
(docs/runtimes.md), so the sizes are short sequences. quantized-dynamic is not expected to
agree within the float tolerance: its error is recorded, not asserted.
"""

from __future__ import annotations

import time

import pytest
import torch

from benchmarks.implementations import Unavailable, candidate
from benchmarks.sizes import TINY_STACKED, Size
from benchmarks.test_lstm_speed import MODES, check_agreement, rounds_for
from lstm_ref.candidates import load_factory
from lstm_ref.compare import compare_tensor
from lstm_ref.survey import RUNTIMES, missing_packages
from lstm_ref.tolerances import tolerance_for

#: Runtimes whose agreement with nn.LSTM is measured but not required.
APPROXIMATE = {"quantized-dynamic"}

SIZES = [pytest.param(TINY_STACKED, id=TINY_STACKED.id, marks=pytest.mark.bench_quick),
         *(pytest.param(size, id=size.id) for size in (Size(16, 64, 256, 256), Size(128, 64, 256, 256)))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("runtime", list(RUNTIMES))
@pytest.mark.parametrize("size", SIZES)
def test_runtime_speed(benchmark, size: Size, runtime: str, mode: str, workload):
    missing = missing_packages(runtime)
    if missing:
        pytest.skip(f"{runtime} needs {', '.join(missing)} (pip install 'lstm-ref[runtimes]')")
    try:
        runner = candidate(load_factory(runtime)[1])(workload.module, workload.x)
    except Unavailable as error:
        pytest.skip(str(error))
    call = runner.forward if mode == "forward" else runner.forward_backward
    if call is None:
        pytest.skip(f"{runtime} has no autograd")
    benchmark.group = f"{size.id} {mode}"
    benchmark.extra_info.update(implementation=runtime, size=size.id, mode=mode, seq_len=size.seq_len,
                                batch=size.batch, hidden_size=size.hidden_size, threads=torch.get_num_threads())
    result = call()  # warm-up (an export or compilation for this shape), and the agreement check's values
    started = time.perf_counter()
    call()  # the number of rounds comes from a call at steady state, not from the export's time
    rounds = rounds_for(time.perf_counter() - started)
    if mode == "forward":
        benchmark.extra_info["error_vs_nn_lstm"] = (
            worst_ratio(runner.results(result), workload) if runtime in APPROXIMATE
            else check_agreement(runner.results(result), workload))
    benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing timed
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        seconds_per_call=median,
        seconds_per_sequence=median / size.batch,
        seconds_per_step=median / size.seq_len,
        ratio_to_nn_lstm=median / workload.baseline_median(mode, rounds),
    )


def worst_ratio(actual, workload) -> float:
    """The worst error against nn.LSTM as a multiple of the float32 tolerance, not asserted."""
    tolerance = tolerance_for(torch.float32, "cpu").over(workload.size.seq_len)
    return max(compare_tensor(name, got.to(want.dtype), want, tolerance).tolerance_ratio
               for name, got, want in zip(("output", "h_n", "c_n"), actual, workload.expected, strict=True))

"""Benchmark results: saved pytest-benchmark JSON -> tables and a plot (``lstm-ref bench-report``).

    pytest benchmarks --benchmark-json results.json
    lstm-ref bench-report results.json [--plot times.png] [--mode forward]

Prints two markdown tables: the ratio of every implementation's median to nn.LSTM's
(oneDNN, same run) per size, with the fast path's target beside it, and the details
per result (time per call and per step, GFLOP/s, fraction of the GEMM peak). ``--plot``
draws time per step against size, one line per implementation (needs matplotlib).
The figures are read from each result's ``extra_info`` (see benchmarks/test_lstm_speed.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BASELINE = "nn.LSTM-onednn"
FAST = "lstm_ref-fast"


class BenchReportError(ValueError):
    """A file that is not pytest-benchmark JSON holding timed lstm_ref benchmarks."""


@dataclass(frozen=True)
class BenchResult:
    """One timed benchmark: an implementation at a size, in a mode."""

    implementation: str
    size: str
    mode: str                      # forward | forward_backward
    seconds_per_call: float
    seconds_per_step: float
    gflops: float
    fraction_of_gemm_peak: float
    ratio_to_nn_lstm: float
    target_ratio: float | None = None

    @property
    def target_met(self) -> bool | None:
        return None if self.target_ratio is None else self.ratio_to_nn_lstm <= self.target_ratio


def load_results(path: str | Path) -> list[BenchResult]:
    """The timed results of a ``--benchmark-json`` file, in the file's order (untimed ones dropped).

    Raises BenchReportError for a file that is not such JSON or holds nothing timed.
    """
    text = Path(path).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BenchReportError(f"{path} is not JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BenchReportError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    results = []
    for entry in data["benchmarks"]:
        info = entry.get("extra_info", {})
        if "seconds_per_call" not in info:
            continue
        results.append(BenchResult(
            implementation=info["implementation"], size=info["size"], mode=info["mode"],
            seconds_per_call=info["seconds_per_call"], seconds_per_step=info["seconds_per_step"],
            gflops=info["gflops"], fraction_of_gemm_peak=info["fraction_of_gemm_peak"],
            ratio_to_nn_lstm=info["ratio_to_nn_lstm"], target_ratio=info.get("target_ratio"),
        ))
    if not results:
        raise BenchReportError(f"{path} holds no timed lstm_ref benchmark (was it run with --benchmark-disable?)")
    return results


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def ratio_table(results: list[BenchResult], mode: str = "forward") -> str:
    """Markdown: one row per size, one column per implementation (median / nn.LSTM's median),
    then the fast path's target and whether it is met."""
    chosen = [r for r in results if r.mode == mode]
    implementations = _ordered(r.implementation for r in chosen)
    by_key = {(r.size, r.implementation): r for r in chosen}
    lines = ["| size | " + " | ".join(implementations) + " | fast-path target | met |",
             "|---" * (len(implementations) + 3) + "|"]
    for size in _ordered(r.size for r in chosen):
        cells = [f"{by_key[size, i].ratio_to_nn_lstm:.2f}x" if (size, i) in by_key else "-"
                 for i in implementations]
        fast = by_key.get((size, FAST))
        target = f"<= {fast.target_ratio:g}x" if fast and fast.target_ratio else ""
        met = {True: "yes", False: "**no**", None: ""}[fast.target_met if fast else None]
        lines.append(f"| {size} | " + " | ".join(cells) + f" | {target} | {met} |")
    return "\n".join(lines)


def detail_table(results: list[BenchResult]) -> str:
    """Markdown: every result with its time per call and per step, GFLOP/s and share of the GEMM peak."""
    lines = ["| size | mode | implementation | per call | per step | GFLOP/s | of GEMM peak | vs nn.LSTM |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.size} | {r.mode} | {r.implementation} | {_duration(r.seconds_per_call)} | "
                     f"{_duration(r.seconds_per_step)} | {r.gflops:.1f} | {r.fraction_of_gemm_peak:.0%} | "
                     f"{r.ratio_to_nn_lstm:.2f}x |")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-6:.3g} µs"


def plot(results: list[BenchResult], path: str | Path, mode: str = "forward") -> None:
    """Time per step (log scale) against size, one line per implementation, saved as PNG
    (needs matplotlib, the ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    chosen = [r for r in results if r.mode == mode]
    sizes = _ordered(r.size for r in chosen)
    figure, axes = pyplot.subplots(figsize=(max(6.0, 0.6 * len(sizes) + 2), 5))
    for implementation in _ordered(r.implementation for r in chosen):
        points = {r.size: r.seconds_per_step for r in chosen if r.implementation == implementation}
        xs = [i for i, s in enumerate(sizes) if s in points]
        axes.plot(xs, [points[sizes[i]] * 1e6 for i in xs], marker="o", label=implementation)
    axes.set_xticks(range(len(sizes)), sizes, rotation=60, ha="right", fontsize=8)
    axes.set_yscale("log")
    axes.set_ylabel("time per time step (µs, median)")
    axes.set_title(f"LSTM {mode.replace('_', '+')} time per step")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)

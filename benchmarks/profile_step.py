"""Where lstm_ref's fast path spends each time step, against nn.LSTM: a markdown table.

    python -m benchmarks.profile_step --seq-len 128 --batch 1 --hidden 32 --threads 1

Runs both under torch.profiler and divides every ATen op's self CPU time by the number
of time steps profiled. The fast path's loop issues a fixed number of ops per step
(addmm_, sigmoid_, tanh_, mul_, addcmul_, tanh, mul); at small N*H each costs its
dispatch overhead rather than its arithmetic, while nn.LSTM runs all steps inside one
oneDNN call (mkldnn_rnn_layer).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from lstm_ref.fast import from_torch

Row = tuple[str, float, float]


def per_step_table(call: Callable[[], object], steps: int, repeats: int) -> tuple[list[Row], float]:
    """[(op, calls per step, µs per step)] by self CPU time, and the total µs per step."""
    for _ in range(3):
        call()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            call()
    rows = [(e.key, e.count / (repeats * steps), e.self_cpu_time_total / (repeats * steps))
            for e in prof.key_averages() if e.self_cpu_time_total > 0]
    rows.sort(key=lambda row: -row[2])
    return rows, sum(row[2] for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module = nn.LSTM(args.hidden, args.hidden).eval()
    x = torch.randn(args.seq_len, args.batch, args.hidden)
    fast = from_torch(module)
    print(f"T={args.seq_len} N={args.batch} I=H={args.hidden}, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}; self CPU time per time step (torch.profiler)\n")
    with torch.no_grad():
        for name, call in (("lstm_ref-fast", lambda: fast(x)), ("nn.LSTM-onednn", lambda: module(x))):
            rows, total = per_step_table(call, args.seq_len, args.repeats)
            print(f"{name}: {total:.2f} µs per step\n")
            print("| op | calls per step | µs per step |\n|---|---:|---:|")
            for op, calls, micros in rows[:10]:
                print(f"| {op} | {calls:.2f} | {micros:.2f} |")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

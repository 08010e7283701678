"""The benchmark sizes: the one list, used by the benchmarks, the CI subset and bench-report.

A size is the LSTM's shape and the input's: T time steps, batch N, input I, hidden H,
layers and directions. Its ``id`` reads like it (``T100-N64-I512-H512``) and names the
pytest-benchmark group.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """One benchmark point."""

    seq_len: int                # T
    batch: int                  # N
    input_size: int             # I
    hidden_size: int            # H
    num_layers: int = 1
    bidirectional: bool = False

    @property
    def id(self) -> str:
        text = f"T{self.seq_len}-N{self.batch}-I{self.input_size}-H{self.hidden_size}"
        if self.num_layers > 1:
            text += f"-L{self.num_layers}"
        if self.bidirectional:
            text += "-bidir"
        return text

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def flops(self) -> float:
        """Forward multiply-adds x 2 of every GEMM: per layer and direction and step,
        x_t W_ih^T (N x I_l x 4H) and h W_hh^T (N x H x 4H). Elementwise work is not counted."""
        total = 0.0
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            per_step = 2 * self.batch * (layer_input + self.hidden_size) * 4 * self.hidden_size
            total += self.num_directions * self.seq_len * per_step
        return total

    def recurrent_gemm_flops(self) -> float:
        """The roofline's unit: one N x H x 4H GEMM, the work no step can skip or batch over time."""
        return 2.0 * self.batch * self.hidden_size * 4 * self.hidden_size


#: The fastrnns default (benchmarks/fastrnns in PyTorch).
FASTRNNS = Size(100, 64, 512, 512)

#: The grid: T x N x H with I = H.
GRID = [Size(t, n, h, h) for t, n, h in itertools.product((16, 128, 1024), (1, 64), (32, 256, 1024))]

#: Stacking and direction at one size.
STACKED = [Size(128, 64, 256, 256, num_layers=2), Size(128, 64, 256, 256, bidirectional=True)]

#: A small point with every code path (two layers, bidirectional) for the CI subset.
TINY_STACKED = Size(8, 4, 16, 16, num_layers=2, bidirectional=True)

SIZES: list[Size] = [FASTRNNS, *GRID, *STACKED, TINY_STACKED]

#: The CI subset (run with --benchmark-disable): every implementation runs once and must agree.
QUICK: set[str] = {Size(16, 1, 32, 32).id, TINY_STACKED.id}

#: The targets for lstm_ref's fast path: size id -> the largest allowed ratio to nn.LSTM (oneDNN).
TARGETS: dict[str, float] = {
    FASTRNNS.id: 1.25,
    Size(128, 64, 256, 256).id: 1.5,
    Size(128, 1, 32, 32).id: 3.0,
}

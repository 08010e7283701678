"""Stepping ``nn.LSTMCell`` by hand: one layer, and a two-layer stack, equal to ``nn.LSTM``.

The loop must write the cell's result back into the state it reads next step:

    for x_t in x:                      # x: (T, N, I)
        h, c = cell(x_t, (h, c))       # h, c: (N, H)

(``b, c = cell(x_t, (h, c))`` keeps h at its initial zeros: every step then sees h_{t-1} = 0,
which is not an LSTM.) A cell stack feeds each layer's new h to the layer above at the same
step. With one hidden size per layer this is ``nn.LSTM(num_layers=2)``; with different sizes
(100 -> 30 -> 20 in the tutorial) it is two single-layer ``nn.LSTM`` run one after the other.

    python examples/lstm_cell_stepping.py
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import lstm_ref
from lstm_ref.testing import assert_close

State = tuple[Tensor, Tensor]


def step_cell(cell: nn.Module, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
    """Run ``cell`` over x (T, N, I); returns the outputs (T, N, H) and the final (h, c)."""
    h, c = state if state is not None else (x.new_zeros(x.shape[1], cell.hidden_size),) * 2
    outputs = []
    for x_t in x:
        h, c = cell(x_t, (h, c))
        outputs.append(h)
    return torch.stack(outputs), (h, c)


def step_cell_seed_bug(cell: nn.Module, x: Tensor) -> State:
    """The seed's loop, ``b, c = cell(xt, (h, c))``: h is never updated. Returns the last (b, c)."""
    h = c = x.new_zeros(x.shape[1], cell.hidden_size)
    for x_t in x:
        b, c = cell(x_t, (h, c))
    return b, c


def step_stack(cells: list[nn.Module], x: Tensor) -> tuple[Tensor, list[State]]:
    """A stack of cells stepped together: layer k reads layer k-1's new h at the same step."""
    states = [(x.new_zeros(x.shape[1], cell.hidden_size),) * 2 for cell in cells]
    outputs = []
    for x_t in x:
        layer_input = x_t
        for k, cell in enumerate(cells):
            states[k] = cell(layer_input, states[k])
            layer_input = states[k][0]
        outputs.append(layer_input)
    return torch.stack(outputs), states


def lstm_from_cells(cells: list[nn.LSTMCell]) -> nn.LSTM:
    """nn.LSTM(num_layers=len(cells)) with layer k's weights taken from cells[k] (equal hidden sizes)."""
    lstm = nn.LSTM(cells[0].input_size, cells[0].hidden_size, num_layers=len(cells))
    with torch.no_grad():
        for k, cell in enumerate(cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(lstm, f"{name}_l{k}").copy_(getattr(cell, name))
    return lstm


def main() -> None:
    torch.manual_seed(4)
    x = torch.randn(10, 3, 100)                              # (T, N, I)
    steps = x.shape[0]
    with torch.no_grad():
        cell = nn.LSTMCell(100, 20)
        outputs, (h, c) = step_cell(cell, x)
        expected, (h_n, c_n) = lstm_from_cells([cell])(x)
        print(assert_close(outputs, expected, steps=steps, name="1 cell stepped vs nn.LSTM").describe())
        assert_close(c, c_n[0], steps=steps, name="c")
        ref_outputs, _ = step_cell(lstm_ref.LSTMCell.from_torch(cell), x)
        report = assert_close(ref_outputs, expected, steps=steps, name="lstm_ref.LSTMCell stepped vs nn.LSTM")
        print(report.describe())
        b, _ = step_cell_seed_bug(cell, x)
        print(f"seed loop (h never updated): last h off by {(b - h_n[0]).abs().max():.3g}")

        cells = [nn.LSTMCell(100, 20), nn.LSTMCell(20, 20)]
        outputs, states = step_stack(cells, x)
        expected, (h_n, _) = lstm_from_cells(cells)(x)
        report = assert_close(outputs, expected, steps=steps, name="2-cell stack vs nn.LSTM(num_layers=2)")
        print(report.describe())
        assert_close(states[0][0], h_n[0], steps=steps, name="h of layer 0")

        cells = [nn.LSTMCell(100, 30), nn.LSTMCell(30, 20)]
        outputs, _ = step_stack(cells, x)
        expected, _ = lstm_from_cells(cells[1:])(lstm_from_cells(cells[:1])(x)[0])
        report = assert_close(outputs, expected, steps=steps, name="100->30->20 stack vs two nn.LSTM")
        print(report.describe())


if __name__ == "__main__":
    main()

"""LSTMCell conformance, and cells stepped over time against the whole-sequence nn.LSTM."""

import pytest
import torch
from torch import nn

import lstm_ref
from lstm_ref.testing import assert_close

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("form", ["batched", "unbatched", "no_hx"])
def test_cell_matches_torch_cell(form, bias, dtype):
    generator = torch.Generator().manual_seed(7)
    cell = nn.LSTMCell(4, 6, bias=bias, dtype=dtype)
    ref = lstm_ref.LSTMCell.from_torch(cell)
    shape = (3,) if form != "unbatched" else ()
    x = torch.randn(*shape, 4, generator=generator, dtype=dtype)
    hx = None if form == "no_hx" else (torch.randn(*shape, 6, generator=generator, dtype=dtype),
                                        torch.randn(*shape, 6, generator=generator, dtype=dtype))
    with torch.no_grad():
        expected, actual = cell(x, hx), ref(x, hx)
    assert_close(actual[0], expected[0], steps=1, name="h_1")
    assert_close(actual[1], expected[1], steps=1, name="c_1")


def step_cells(cells, x, states):
    """Run a stack of cells over x (T, N, I): layer k's h feeds layer k+1; returns output, states."""
    outputs = []
    for x_t in x:
        for layer, cell in enumerate(cells):
            h, c = cell(x_t, states[layer])  # h *is* updated: the seed's `b, c = cell(...)` is the bug
            states[layer] = (h, c)
            x_t = h
        outputs.append(x_t)
    return torch.stack(outputs), states


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("num_layers", [1, 2, 3], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("cell_impl", ["torch", "lstm_ref"])
def test_stacked_cells_stepped_over_time_equal_nn_lstm(cell_impl, num_layers, dtype):
    generator = torch.Generator().manual_seed(num_layers)
    lstm = nn.LSTM(5, 7, num_layers=num_layers, dtype=dtype)
    cells = []
    for layer in range(num_layers):
        cell = nn.LSTMCell(5 if layer == 0 else 7, 7, dtype=dtype)
        cell.load_state_dict({name: getattr(lstm, f"{name}_l{layer}") for name in
                              ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        cells.append(lstm_ref.LSTMCell.from_torch(cell) if cell_impl == "lstm_ref" else cell)
    T, N = 12, 3
    x = torch.randn(T, N, 5, generator=generator, dtype=dtype)
    h0 = torch.randn(num_layers, N, 7, generator=generator, dtype=dtype)
    c0 = torch.randn(num_layers, N, 7, generator=generator, dtype=dtype)
    with torch.no_grad():
        expected, (h_n, c_n) = lstm(x, (h0, c0))
        output, states = step_cells(cells, x, [(h0[k], c0[k]) for k in range(num_layers)])
    assert_close(output, expected, steps=T, name="output")
    assert_close(torch.stack([s[0] for s in states]), h_n, steps=T, name="h_n")
    assert_close(torch.stack([s[1] for s in states]), c_n, steps=T, name="c_n")


def test_cell_rejects_wrong_rank_and_size_like_torch():
    ref = lstm_ref.LSTMCell(4, 6)
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D"):
        ref(torch.randn(1, 2, 4))
    with pytest.raises(RuntimeError, match="input_size"):
        ref(torch.randn(2, 5))

"""lstm_ref's fast path (lstm_ref.fast) against torch.nn.LSTM over the whole CPU default matrix.

Split into chunks by dtype and layer count so pytest-xdist spreads them; each chunk asserts
that every one of its configurations passes, and prints the first failures' reports.
"""

import pytest
import torch
from torch import nn

from lstm_ref import configs
from lstm_ref.conformance import PASSED, check_forward
from lstm_ref.fast import from_torch, reorder_gates

MATRIX = configs.default_matrix(("cpu",))
CHUNKS = sorted({(c.dtype, c.num_layers) for c in MATRIX})


@pytest.mark.parametrize(("dtype", "num_layers"), CHUNKS, ids=[f"{d}-L{n}" for d, n in CHUNKS])
def test_fast_path_passes_the_default_matrix(dtype, num_layers):
    chunk = [c for c in MATRIX if (c.dtype, c.num_layers) == (dtype, num_layers)]
    results = [check_forward(config, from_torch) for config in chunk]
    failed = [r for r in results if r.status != PASSED]
    assert chunk and not failed, f"{len(failed)}/{len(chunk)} not passed:\n" + "\n".join(
        r.describe() for r in failed[:5])


def test_the_matrix_is_covered_by_the_chunks():
    assert sum(1 for c in MATRIX if (c.dtype, c.num_layers) in CHUNKS) == len(MATRIX) > 1000


def test_reorder_gates_moves_the_output_gate_before_the_cell_gate():
    rows = torch.arange(8.0).view(8, 1)  # H=2: i=0,1 f=2,3 g=4,5 o=6,7
    assert reorder_gates(rows).flatten().tolist() == [0, 1, 2, 3, 6, 7, 4, 5]


def test_gradients_reach_the_torch_module_parameters():
    torch.manual_seed(0)
    module = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    expected = torch.autograd.grad(module(x)[0].sum(), [x, *module.parameters()])
    actual = torch.autograd.grad(from_torch(module)(x)[0].sum(), [x, *module.parameters()])
    for got, want in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_a_weight_update_on_the_module_is_seen_by_the_next_call():
    module = nn.LSTM(3, 4)
    fast = from_torch(module)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        before = fast(x)[0].clone()
        module.weight_hh_l0.mul_(2)
        after, expected = fast(x)[0], module(x)[0]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected)


@pytest.mark.parametrize(("bad_input", "error", "message"), [
    (torch.randn(5, 2, 7), RuntimeError, "Expected 3, got 7"),
    (torch.randn(5, 2, 3, 1), ValueError, "Expected input to be 2D or 3D, got 4D"),
    (torch.randn(5, 2, 3, dtype=torch.float64), ValueError, "torch.float32"),
], ids=["wrong_input_size", "4d_input", "float64_input_float32_module"])
def test_bad_input_gets_a_clear_error(bad_input, error, message):
    with pytest.raises(error, match=message):
        from_torch(nn.LSTM(3, 4))(bad_input)


def test_a_wrong_state_shape_is_named():
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 2, 4\), got \[1, 3, 4\]"):
        from_torch(nn.LSTM(3, 4))(torch.randn(5, 2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 2, 4)))


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="expects a torch.nn.LSTM, got GRU"):
        from_torch(nn.GRU(3, 4))

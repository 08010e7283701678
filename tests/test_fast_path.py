"""lstm_ref's fast path (lstm_ref.fast) against torch.nn.LSTM over the whole CPU default matrix.

Split into chunks by dtype and layer count so pytest-xdist spreads them; each chunk asserts
that every one of its configurations passes, and prints the first failures' reports. Bad input
is in tests/test_bad_input.py's table, valid unusual input in tests/test_edge_cases.py.
"""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

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


def test_the_chunks_reach_every_cpu_axis_value_torch_path_and_special_case():
    """The chunks run all of MATRIX; MATRIX must hold every value of every axis but the device
    (special cases add others), both CPU torch paths and every special case, so none of them goes
    untested on the fast path."""
    for axis, values in configs.AXES.items():
        if axis != "device":
            assert set(values) <= {getattr(c, axis) for c in MATRIX}, axis
    assert {c.torch_path for c in MATRIX} == set(configs.TORCH_PATHS["cpu"])
    assert {c.tag for c in MATRIX if c.tag} == {c.tag for c in configs.special_cases()}


def test_reorder_gates_moves_the_output_gate_before_the_cell_gate():
    rows = torch.arange(8.0).view(8, 1)  # H=2: i=0,1 f=2,3 g=4,5 o=6,7
    assert reorder_gates(rows).flatten().tolist() == [0, 1, 2, 3, 6, 7, 4, 5]


def packed_input() -> PackedSequence:
    return pack_padded_sequence(torch.randn(5, 3, 3, dtype=torch.float64), torch.tensor([2, 5, 3]),
                                enforce_sorted=False)


@pytest.mark.parametrize(("kwargs", "make_input"), [
    (dict(num_layers=2, bidirectional=True), lambda: torch.randn(5, 2, 3, dtype=torch.float64)),
    (dict(bidirectional=True, proj_size=2), packed_input),
    (dict(batch_first=True, bias=False), lambda: torch.randn(5, 3, dtype=torch.float64)),
], ids=["dense-L2-bidir", "packed-unsorted-bidir-proj", "unbatched-no-bias"])
def test_gradients_reach_the_torch_module_parameters(kwargs, make_input):
    """The autograd branch (run_direction with premul_cell) gives torch's outputs and gradients."""
    torch.manual_seed(0)
    module = nn.LSTM(3, 4, dtype=torch.float64, **kwargs)
    x = make_input()
    wrt = [(x.data if isinstance(x, PackedSequence) else x).requires_grad_(True), *module.parameters()]
    expected, actual = results(module(x)), results(from_torch(module)(x))
    for got, want in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    expected_grads = torch.autograd.grad(sum(t.sum() for t in expected), wrt)
    actual_grads = torch.autograd.grad(sum(t.sum() for t in actual), wrt)
    for got, want in zip(actual_grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def results(call_result) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """output (a PackedSequence's data), h_n, c_n."""
    output, (h_n, c_n) = call_result
    return (output.data if isinstance(output, PackedSequence) else output), h_n, c_n


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


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="expects a torch.nn.LSTM, got Linear"):
        from_torch(nn.Linear(3, 4))
    with pytest.raises(NotImplementedError, match="torch.nn.LSTM only, got a torch.nn.GRU"):
        from_torch(nn.GRU(3, 4))

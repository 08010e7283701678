"""Self-consistency, not conformance: lstm_ref's analytic gradients against its own finite differences.

``torch.autograd.gradcheck`` and ``gradgradcheck`` in float64 compare the
gradients autograd computes through lstm_ref's ops with finite differences of
*lstm_ref's own forward pass*, and the same for second derivatives, with respect
to the input (the packed data of a PackedSequence), h0, c0 and every parameter.
They show that lstm_ref's backward is the derivative of its forward; they say
nothing about whether that forward is torch's: an LSTM with two gates swapped
passes every test here. Conformance of gradients to torch.nn.LSTM is
``lstm_ref.gradients`` (tests/test_mutants_grad.py, the plugin's gradient matrix).
Sizes are tiny (T=3, N=2, input 3, hidden 4) so the finite differences stay
cheap; fast mode (random projections of the Jacobian) keeps the larger stacks quick.
"""

from __future__ import annotations

import zlib

import pytest
import torch
from torch.autograd.gradcheck import GradcheckError
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import lstm_ref

T, N, IN, H = 3, 2, 3, 4

# (num_layers, bidirectional, proj_size, input form, batch_first)
CASES = [
    (1, False, 0, "dense", False),
    (1, False, 0, "dense", True),
    (2, True, 0, "dense", False),
    (1, True, 2, "dense", False),
    (2, False, 2, "unbatched", False),
    (1, False, 0, "packed", False),
    (2, True, 2, "packed", True),
]


def case_id(case: tuple) -> str:
    layers, bidirectional, proj, form, batch_first = case
    parts = [f"L{layers}", "bidir" if bidirectional else "onedir",
             "batch_first" if batch_first else "seq_first", f"proj{proj}" if proj else "noproj", form]
    return "-".join(parts)


def lstm_function(case: tuple):
    """The LSTM as a function (input data, h0, c0, *parameters) -> (output data, h_n, c_n), and its args."""
    layers, bidirectional, proj, form, batch_first = case
    generator = torch.Generator().manual_seed(zlib.crc32(case_id(case).encode()))
    module = lstm_ref.LSTM(IN, H, num_layers=layers, bidirectional=bidirectional, proj_size=proj,
                           batch_first=batch_first, dtype=torch.float64)
    names = [name for name, _ in module.named_parameters()]
    params = [torch.empty_like(p).uniform_(-0.5, 0.5, generator=generator).requires_grad_(True)
              for p in module.parameters()]
    states = layers * (2 if bidirectional else 1)
    batch_shape = () if form == "unbatched" else (N,)
    x = torch.randn((N, T, IN) if batch_first and form != "unbatched" else (T, *batch_shape, IN),
                    generator=generator, dtype=torch.float64)
    h0 = torch.randn(states, *batch_shape, proj or H, generator=generator, dtype=torch.float64)
    c0 = torch.randn(states, *batch_shape, H, generator=generator, dtype=torch.float64)
    packed = None
    if form == "packed":  # unequal lengths, unsorted, so the permutations are exercised
        packed = pack_padded_sequence(x, torch.tensor([2, 3]), batch_first=batch_first, enforce_sorted=False)
        x = packed.data

    def run(data, h, c, *weights):
        input = data if packed is None else PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                                                           packed.unsorted_indices)
        output, (h_n, c_n) = functional_call(module, dict(zip(names, weights, strict=True)), (input, (h, c)))
        return (output.data if packed is not None else output), h_n, c_n

    args = [t.requires_grad_(True) for t in (x, h0, c0)] + params
    return run, args


@pytest.mark.parametrize("case", CASES, ids=map(case_id, CASES))
def test_lstm_ref_gradients_match_its_own_finite_differences(case):
    run, args = lstm_function(case)
    assert torch.autograd.gradcheck(run, args, fast_mode=True)


SECOND_ORDER = [CASES[0], CASES[3], CASES[5]]


@pytest.mark.parametrize("case", SECOND_ORDER, ids=map(case_id, SECOND_ORDER))
def test_lstm_ref_second_derivatives_match_its_own_finite_differences(case):
    run, args = lstm_function(case)
    assert torch.autograd.gradgradcheck(run, args, fast_mode=True)


def test_lstm_ref_full_jacobian_matches_its_own_finite_differences():
    """The full (not fast-mode) Jacobian once, on the smallest stack."""
    run, args = lstm_function(CASES[0])
    assert torch.autograd.gradcheck(run, args)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_lstm_ref_cell_derivatives_match_its_own_finite_differences(bias, batched):
    generator = torch.Generator().manual_seed(7)
    cell = lstm_ref.LSTMCell(IN, H, bias=bias, dtype=torch.float64)
    names = [name for name, _ in cell.named_parameters()]
    shape = (N,) if batched else ()
    x, h, c = (torch.randn(*shape, size, generator=generator, dtype=torch.float64) for size in (IN, H, H))
    args = [t.requires_grad_(True) for t in (x, h, c)]
    args += [torch.empty_like(p).uniform_(-0.5, 0.5, generator=generator).requires_grad_(True)
             for p in cell.parameters()]

    def step(x, h, c, *weights):
        return functional_call(cell, dict(zip(names, weights, strict=True)), (x, (h, c)))

    assert torch.autograd.gradcheck(step, args)
    assert torch.autograd.gradgradcheck(step, args, fast_mode=True)


def test_self_consistency_catches_a_backward_that_is_not_the_forwards_derivative():
    """The check itself can fail: a forward-exact LSTM whose forget-gate derivative has the wrong sign."""
    from tests.mutants_grad import ForgetGateSignLSTM

    run, args = lstm_function(CASES[0])
    module = ForgetGateSignLSTM(IN, H, dtype=torch.float64)
    names = [name for name, _ in module.named_parameters()]

    def mutant(data, h, c, *weights):
        output, (h_n, c_n) = functional_call(module, dict(zip(names, weights, strict=True)), (data, (h, c)))
        return output, h_n, c_n

    for expected, actual in zip(run(*args), mutant(*args), strict=True):  # same forward values...
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    with pytest.raises(GradcheckError):  # ...different backward
        torch.autograd.gradcheck(mutant, args, fast_mode=True)

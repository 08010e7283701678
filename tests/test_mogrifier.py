"""MogrifierLSTM: conformance with rounds=0, and the rounds' equations with rounds > 0."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_ref.configs import default_matrix, quick_matrix
from lstm_ref.conformance import PASSED, check_forward
from lstm_ref.mogrifier import MogrifierLSTM, from_torch_rounds0, mogrify
from lstm_ref.testing import assert_close

#: Every axis value of the grid (float32, oneDNN reference, with initial states), the special
#: cases up to T=20 (dropout, N=1, T=1, H=128), and the quick matrix in float64.
CONFORMANCE_CONFIGS = [
    c for c in default_matrix(("cpu",), ("float32",))
    if c.torch_path == "onednn" and (c.initial_state or c.tag) and c.seq_len <= 20
] + [c for c in quick_matrix(("cpu",), ("float64",)) if c.seq_len <= 20]


@pytest.mark.parametrize("config", CONFORMANCE_CONFIGS, ids=[c.id for c in CONFORMANCE_CONFIGS])
def test_rounds0_conforms_to_torch(config):
    """MogrifierLSTM supports every axis, so nothing may come out unsupported."""
    result = check_forward(config, from_torch_rounds0)
    assert result.status == PASSED, result.describe()


@pytest.mark.parametrize("rank", [None, 2], ids=["full_rank", "rank2"])
@pytest.mark.parametrize("layout", ["seq_first", "batch_first", "unbatched", "packed"])
def test_rounds_shapes_and_effect(layout, rank):
    torch.manual_seed(0)
    T, N, IN, H, P = 5, 3, 4, 6, 0
    torch_lstm = nn.LSTM(IN, H, num_layers=2, bidirectional=True, batch_first=layout == "batch_first")
    mog = MogrifierLSTM.from_torch(torch_lstm, rounds=4, rank=rank)
    x = torch.randn(N, T, IN) if layout == "batch_first" else torch.randn(T, IN) if layout == "unbatched" \
        else torch.randn(T, N, IN)
    if layout == "packed":
        x = pack_padded_sequence(x, torch.tensor([5, 2, 4]), enforce_sorted=False)
    with torch.no_grad():
        out, (h_n, c_n) = mog(x)
        expected_out, (expected_h, expected_c) = torch_lstm(x)
    if layout == "packed":
        out, expected_out = out.data, expected_out.data
    for name, actual, expected in [("output", out, expected_out), ("h_n", h_n, expected_h),
                                   ("c_n", c_n, expected_c)]:
        assert actual.shape == expected.shape, name
        assert (actual - expected).abs().max() > 1e-3, f"{name}: the rounds changed nothing"
    h_out = P or H
    for layer, layer_input in enumerate([IN, 2 * h_out]):
        for round_number in range(1, 5):
            rows, cols = (layer_input, h_out) if round_number % 2 else (h_out, layer_input)
            stem = f"mogrifier_{'q' if round_number % 2 else 'r'}{round_number}"
            if rank is None:
                assert getattr(mog, f"{stem}_l{layer}_reverse").shape == (rows, cols)
            else:
                assert getattr(mog, f"{stem}_left_l{layer}").shape == (rows, rank)
                assert getattr(mog, f"{stem}_right_l{layer}").shape == (rank, cols)


def test_rounds_with_projection_shapes():
    mog = MogrifierLSTM(4, 6, proj_size=3, rounds=3)
    assert mog.mogrifier_q1_l0.shape == (4, 3) and mog.mogrifier_r2_l0.shape == (3, 4)
    out, (h_n, c_n) = mog(torch.randn(5, 2, 4))
    assert out.shape == (5, 2, 3) and h_n.shape == (1, 2, 3) and c_n.shape == (1, 2, 6)


def test_equations_on_a_hand_checkable_step():
    """One step, I=2, H=1, 3 rounds, every weight set by hand; the expected value is written
    out from the paper's equations with plain floats."""
    def sigmoid(v):
        return 1 / (1 + math.exp(-v))

    def f64(values):
        return torch.tensor(values, dtype=torch.float64)

    mog = MogrifierLSTM(2, 1, rounds=3, dtype=torch.float64)
    with torch.no_grad():
        mog.weight_ih_l0.copy_(f64([[0.5, -0.25], [0.1, 0.2], [0.3, -0.4], [-0.6, 0.7]]))
        mog.weight_hh_l0.copy_(f64([[0.2], [-0.3], [0.4], [0.1]]))
        mog.bias_ih_l0.copy_(f64([0.05, 0.0, -0.05, 0.1]))
        mog.bias_hh_l0.zero_()
        mog.mogrifier_q1_l0.copy_(f64([[1.0], [-2.0]]))    # (I, H)
        mog.mogrifier_r2_l0.copy_(f64([[0.5, 1.5]]))       # (H, I)
        mog.mogrifier_q3_l0.copy_(f64([[-1.0], [0.5]]))
    x, h, c = [0.8, -0.6], 0.3, -0.2
    # round 1: x = 2 sigmoid(Q1 h) * x
    x = [2 * sigmoid(q * h) * xi for q, xi in zip([1.0, -2.0], x, strict=True)]
    # round 2: h = 2 sigmoid(R2 x) * h
    h = 2 * sigmoid(0.5 * x[0] + 1.5 * x[1]) * h
    # round 3: x = 2 sigmoid(Q3 h) * x
    x = [2 * sigmoid(q * h) * xi for q, xi in zip([-1.0, 0.5], x, strict=True)]
    rows = [[0.5, -0.25], [0.1, 0.2], [0.3, -0.4], [-0.6, 0.7]]
    pre = [r[0] * x[0] + r[1] * x[1] + w * h + b
           for r, w, b in zip(rows, [0.2, -0.3, 0.4, 0.1], [0.05, 0.0, -0.05, 0.1], strict=True)]
    c_next = sigmoid(pre[1]) * c + sigmoid(pre[0]) * math.tanh(pre[2])
    h_next = sigmoid(pre[3]) * math.tanh(c_next)

    hx = (torch.tensor([[[0.3]]], dtype=torch.float64), torch.tensor([[[-0.2]]], dtype=torch.float64))
    out, (h_n, c_n) = mog(torch.tensor([[[0.8, -0.6]]], dtype=torch.float64), hx)
    assert_close(c_n, torch.tensor([[[c_next]]], dtype=torch.float64), steps=1, name="c_n")
    assert_close(h_n, torch.tensor([[[h_next]]], dtype=torch.float64), steps=1, name="h_n")
    assert_close(out, h_n, steps=1, name="output")


def test_low_rank_rounds_are_the_product_of_their_factors():
    torch.manual_seed(1)
    x, h = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    factors = [(torch.randn(4, 2, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)),
               (torch.randn(6, 2, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64))]
    low_rank = mogrify(x, h, factors)
    full = mogrify(x, h, [left @ right for left, right in factors])
    for name, actual, expected in zip(("x", "h"), low_rank, full, strict=True):
        assert_close(actual, expected, steps=1, name=name)


def test_from_torch_copies_the_lstm_part_and_rejects_other_modules():
    torch_lstm = nn.LSTM(4, 6, num_layers=2)
    mog = MogrifierLSTM.from_torch(torch_lstm, rounds=2)
    for name, parameter in torch_lstm.named_parameters():
        assert torch.equal(getattr(mog, name), parameter), name
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        MogrifierLSTM.from_torch(nn.Linear(4, 6))
    with pytest.raises(NotImplementedError, match="torch.nn.LSTM only, got a torch.nn.GRU"):
        MogrifierLSTM.from_torch(nn.GRU(4, 6))


@pytest.mark.parametrize("kwargs, error", [
    ({"rounds": -1}, ValueError), ({"rounds": 1.5}, TypeError), ({"rank": 0}, ValueError),
    ({"rank": "2"}, TypeError),
], ids=["negative_rounds", "float_rounds", "zero_rank", "str_rank"])
def test_bad_rounds_or_rank(kwargs, error):
    with pytest.raises(error, match="rounds|rank"):
        MogrifierLSTM(4, 6, **kwargs)


@torch.no_grad()
def test_packed_batch_equals_each_sequence_run_alone():
    """With rounds > 0, a packed batch gives each sequence what it gets on its own (unbatched,
    its own length), in both directions."""
    torch.manual_seed(2)
    mog = MogrifierLSTM(4, 5, num_layers=2, bidirectional=True, rounds=3, rank=2, dtype=torch.float64)
    lengths = torch.tensor([3, 6, 1])
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    output, (h_n, c_n) = mog(pack_padded_sequence(x, lengths, enforce_sorted=False))
    padded, _ = pad_packed_sequence(output)
    for n, length in enumerate(lengths.tolist()):
        alone, (h_alone, c_alone) = mog(x[:length, n])
        assert_close(padded[:length, n], alone, steps=length, name=f"output of sequence {n}")
        assert_close(h_n[:, n], h_alone, steps=length, name=f"h_n of sequence {n}")
        assert_close(c_n[:, n], c_alone, steps=length, name=f"c_n of sequence {n}")


def test_gradients_reach_the_round_matrices():
    mog = MogrifierLSTM(4, 5, rounds=2, rank=2)
    output, _ = mog(torch.randn(3, 2, 4))
    output.sum().backward()
    for name in ("mogrifier_q1_left_l0", "mogrifier_q1_right_l0", "mogrifier_r2_left_l0", "weight_ih_l0"):
        assert getattr(mog, name).grad.abs().sum() > 0, name

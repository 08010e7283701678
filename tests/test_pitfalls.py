"""The mistakes of docs/pitfalls.md, each shown to go wrong (and its fix to go right)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstm_ref
from lstm_ref.compare import compare_tensor
from lstm_ref.tolerances import tolerance_for

MODULES = {"nn.LSTM": nn.LSTM, "lstm_ref.LSTM": lstm_ref.LSTM}


def matches(actual, expected, steps):
    tolerance = tolerance_for(expected.dtype, expected.device).over(steps)
    return compare_tensor("x", actual, expected, tolerance).passed


@pytest.mark.parametrize("module", MODULES.values(), ids=MODULES.keys())
def test_lstm_result_is_a_tuple_not_a_tensor(module):
    lstm = module(3, 4, batch_first=True)
    lstm_out = lstm(torch.randn(2, 5, 3))
    with pytest.raises(TypeError, match="tuple indices"):
        lstm_out[:, -1, :]
    output, (h_n, c_n) = lstm_out
    assert output.shape == (2, 5, 4) and h_n.shape == c_n.shape == (1, 2, 4)


@torch.no_grad()
def test_cell_loop_must_write_back_h():
    torch.manual_seed(0)
    cell, x = nn.LSTMCell(3, 4), torch.randn(6, 2, 3)
    lstm = lstm_ref.LSTM(3, 4)
    lstm.load_state_dict({f"{name}_l0": value for name, value in cell.state_dict().items()})
    _, (h_n, _) = lstm(x)
    h = c = torch.zeros(2, 4)
    for xt in x:
        b, c = cell(xt, (h, c))           # the seed's loop
    assert not matches(b, h_n[0], 6)
    h = c = torch.zeros(2, 4)
    for xt in x:
        h, c = cell(xt, (h, c))           # the fix
    assert matches(h, h_n[0], 6)


@pytest.mark.parametrize("module", MODULES.values(), ids=MODULES.keys())
@torch.no_grad()
def test_seq_first_index_picks_a_sentence_not_a_step(module):
    output, _ = module(3, 4)(torch.randn(5, 2, 3))  # (T=5, N=2, H=4)
    assert output[:, -1, :].shape == (5, 4)        # the last sentence at every step
    assert output[-1].shape == (2, 4)              # the last step of every sentence


@pytest.mark.parametrize("module", MODULES.values(), ids=MODULES.keys())
@torch.no_grad()
def test_last_step_of_padded_output_is_zeros_for_short_sequences(module):
    torch.manual_seed(1)
    lstm, lengths = module(3, 4), torch.tensor([5, 2, 4])
    packed = pack_padded_sequence(torch.randn(5, 3, 3), lengths, enforce_sorted=False)
    output, (h_n, _) = lstm(packed)
    padded, _ = pad_packed_sequence(output)
    assert torch.all(padded[-1, 1:] == 0)          # sequences of length 2 and 4 at t=4
    assert matches(padded[lengths - 1, torch.arange(3)], h_n[0], 5)


@pytest.mark.parametrize("module", MODULES.values(), ids=MODULES.keys())
@torch.no_grad()
def test_bidirectional_last_step_is_not_the_reverse_final_state(module):
    torch.manual_seed(2)
    lstm = module(3, 4, bidirectional=True)
    output, (h_n, _) = lstm(torch.randn(5, 2, 3))
    assert matches(output[-1, :, :4], h_n[0], 5)   # forward: final state at t=T-1
    assert not matches(output[-1, :, 4:], h_n[1], 5)
    assert matches(output[0, :, 4:], h_n[1], 5)    # reverse: final state at t=0


class SeedLSTMModel(nn.Module):
    """The seed's model: sizes passed to nn.LSTM, never stored on the module."""

    def __init__(self, input_size, hidden_size, num_layers, output_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size)
        c0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size)
        lstm_out, _ = self.lstm(x, (h0, c0))
        return self.fc(lstm_out[:, -1, :])


def test_unset_num_layers_is_an_attribute_error():
    model, x = SeedLSTMModel(3, 4, 2, 1), torch.randn(2, 5, 3)
    with pytest.raises(AttributeError, match="num_layers"):
        model(x)
    lstm_out, _ = model.lstm(x)                    # the fix: no state, or the LSTM's own sizes
    assert model.fc(lstm_out[:, -1, :]).shape == (2, 1)
    assert (model.lstm.num_layers, model.lstm.hidden_size) == (2, 4)


@pytest.mark.parametrize("module", MODULES.values(), ids=MODULES.keys())
def test_batch_first_does_not_change_state_shapes(module):
    lstm, x = module(3, 16, num_layers=2, batch_first=True), torch.randn(4, 5, 3)  # N=4, T=5
    state = (torch.zeros(4, 2, 16), torch.zeros(4, 2, 16))                          # (N, L, H): wrong
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 4, 16\), got \[4, 2, 16\]"):
        lstm(x, state)
    output, (h_n, c_n) = lstm(x, (torch.zeros(2, 4, 16), torch.zeros(2, 4, 16)))    # (L, N, H)
    assert output.shape == (4, 5, 16) and h_n.shape == c_n.shape == (2, 4, 16)

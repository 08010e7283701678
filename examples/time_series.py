"""batch_first time-series models: input (N, T, features) -> LSTM -> a linear head.

Two shapes of head from the tutorials:

* ``LSTMModel``: the last time step's output ``out[:, -1, :]`` (N, H) -> Linear -> (N, outputs);
  optionally takes and returns ``(h, c)``, so a long series can be fed window by window.
  With ``batch_first=True`` only input and output are (N, T, ·): h and c stay
  (num_layers, N, H).
* ``LSTMNet``: every step's output flattened, (N, T*H) -> Linear -> ReLU -> Linear, for a
  fixed window length T (24 hourly readings in the tutorial).

    python examples/time_series.py
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

import lstm_ref
from lstm_ref.testing import assert_close

State = tuple[Tensor, Tensor]


class LSTMModel(nn.Module):
    """(N, T, I) -> LSTM(batch_first) -> last step (N, H) -> Linear -> (N, outputs)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, output_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor, hidden: State | None = None) -> tuple[Tensor, State]:
        """x (N, T, I); hidden None (zeros) or (h, c) each (num_layers, N, H), not batch-first."""
        out, hidden = self.lstm(x, hidden)                   # out (N, T, H)
        return self.fc(out[:, -1, :]), hidden


class LSTMNet(nn.Module):
    """(N, T, I) -> LSTM(batch_first) -> (N, T*H) -> Linear(256) -> ReLU -> Linear -> (N, outputs)."""

    def __init__(self, input_size: int, hidden_size: int, window: int, num_outputs: int) -> None:
        super().__init__()
        self.window = window
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.dense = nn.Linear(hidden_size * window, 256)
        self.dense2 = nn.Linear(256, num_outputs)
        self.dropout, self.dropout2 = nn.Dropout(0.3), nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.rnn(x)                                   # (N, T, H): the output, not h_n
        h = h.reshape(x.shape[0], -1)                        # (N, T*H), T must equal window
        return self.dense2(torch.relu(self.dropout2(self.dense(self.dropout(h)))))


def with_reference_lstm(model: nn.Module, attribute: str) -> nn.Module:
    """A copy of ``model`` with its nn.LSTM ``attribute`` replaced by lstm_ref.LSTM."""
    swapped = copy.deepcopy(model)
    setattr(swapped, attribute, lstm_ref.LSTM.from_torch(getattr(model, attribute)))
    return swapped


def predict_in_windows(model: LSTMModel, series: Tensor, window: int) -> tuple[Tensor, State]:
    """Feed ``series`` (N, T, I) ``window`` steps at a time carrying (h, c); the last prediction."""
    hidden = None
    for start in range(0, series.shape[1], window):
        prediction, hidden = model(series[:, start:start + window], hidden)
    return prediction, hidden


def main() -> None:
    torch.manual_seed(3)
    series = torch.randn(4, 24, 5)                           # (N, T, I)
    steps = series.shape[1]
    model = LSTMModel(5, 16, num_layers=2, output_size=1).eval()
    reference = with_reference_lstm(model, "lstm")
    net = LSTMNet(5, 8, window=24, num_outputs=3).eval()
    reference_net = with_reference_lstm(net, "rnn")
    with torch.no_grad():
        prediction, (h_n, c_n) = model(series)
        print("h_n shape with batch_first=True:", tuple(h_n.shape), "(num_layers, N, H)")
        ref_prediction, _ = reference(series)
        report = assert_close(ref_prediction, prediction, steps=steps, name="LSTMModel (lstm_ref vs nn.LSTM)")
        print(report.describe())
        windowed, (h_windowed, _) = predict_in_windows(reference, series, window=6)
        report = assert_close(windowed, prediction, steps=steps, name="4 windows with carried state")
        print(report.describe())
        assert_close(h_windowed, h_n, steps=steps, name="h_n after windows")
        report = assert_close(reference_net(series), net(series), steps=steps, name="LSTMNet (lstm_ref vs nn.LSTM)")
        print(report.describe())


if __name__ == "__main__":
    main()

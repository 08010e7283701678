"""lstm_ref: from-scratch LSTM, GRU and RNN modules and a conformance harness against torch's."""

from lstm_ref.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, from_torch
from lstm_ref.mogrifier import MogrifierLSTM

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "MogrifierLSTM", "RNN", "RNNCell", "from_torch"]
__version__ = "0.1.0"

"""lstm_ref: a from-scratch LSTM and a conformance harness against torch.nn.LSTM."""

from lstm_ref.modules import LSTM, LSTMCell
from lstm_ref.mogrifier import MogrifierLSTM

__all__ = ["LSTM", "LSTMCell", "MogrifierLSTM"]
__version__ = "0.1.0"

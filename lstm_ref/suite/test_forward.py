"""Forward conformance: output, h_n and c_n of the candidate against torch.nn.LSTM.

One test per configuration of ``lstm_ref.configs.default_matrix``: the grid
over every axis, then the special cases (dropout in eval and train mode,
saturating inputs, T=1000, N=1, T=1, a realistic width).
"""

from lstm_ref.conformance import check_forward
from lstm_ref.plugin import settle


def test_forward(lstm_config, lstm_factory, lstm_seed, lstm_timeout):
    settle(check_forward(lstm_config, lstm_factory, lstm_seed, timeout=lstm_timeout))

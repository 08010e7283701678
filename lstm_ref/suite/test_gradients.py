"""Gradient conformance: d loss / d {input, h0, c0, parameters} against torch.nn.LSTM's backward.

One test per configuration of ``lstm_ref.configs.gradient_matrix`` (layers 1
and 2, every other axis, initial states on); ``loss`` is a random weighted
sum of output, h_n and c_n (see :mod:`lstm_ref.gradients`). A candidate whose
outputs carry no autograd history is skipped as unsupported.
"""

from lstm_ref.gradients import check_gradients
from lstm_ref.plugin import settle


def test_gradients(lstm_grad_config, lstm_factory, lstm_seed):
    settle(check_gradients(lstm_grad_config, lstm_factory, lstm_seed))

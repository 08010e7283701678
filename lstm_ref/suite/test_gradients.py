"""Gradient conformance: d loss / d {input, h0, c0, parameters} against torch.nn.LSTM's backward.

One test per configuration of ``lstm_ref.configs.gradient_matrix`` (layers 1 and 2 over the full
grid, one layer over the packing and layout sub-grids, initial states on); ``loss`` is a random
weighted sum of output, h_n and c_n (see :mod:`lstm_ref.gradients`). A candidate whose outputs
carry no autograd history, or whose parameter gradients cannot be compared, is skipped as
unsupported.
"""

from lstm_ref.plugin import settle


def test_gradients(lstm_grad_config, lstm_runner):
    settle(lstm_runner.check(lstm_grad_config, "gradients"))

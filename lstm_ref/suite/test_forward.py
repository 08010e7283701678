"""Forward conformance: output, h_n and c_n of the candidate against torch.nn.LSTM.

One test per configuration of ``lstm_ref.configs.default_matrix``: the full grid, the packing
and memory-layout sub-grids, then the special cases (dropout in eval and train mode, saturating
inputs, T=1000, N=1, T=1, realistic and odd widths, a batch run in two halves). The candidate
runs in the ``lstm_runner``'s worker process.
"""

from lstm_ref.plugin import settle


def test_forward(lstm_config, lstm_runner):
    settle(lstm_runner.check(lstm_config, "forward"))

"""Hypothesis strategies over the whole configuration space (needs the ``test`` extra).

``configs()`` draws :class:`lstm_ref.configs.Config` objects: sizes from 1 (input, hidden, batch,
sequence length), 1-3 layers, every flag, projections of every size below hidden_size, dense /
unbatched / packed input (packed lengths are drawn per configuration by
``lstm_ref.conformance.make_inputs``, all distinct where the sequence length allows), dropout in
eval and in deterministic train mode (p = 0 or 1), saturating and held inputs, float32 and
float64, every torch path of the device. Hypothesis shrinks a failure towards the first value
of each choice: one layer, one direction, no flags, sizes 1, float32, the first torch path.

    from hypothesis import given
    from lstm_ref.strategies import configs

    @given(configs())
    def test_mine(config):
        result = lstm_ref.conformance.check_forward(config, my_factory)
        assert result.status == "passed", result.describe()
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hypothesis import strategies as st

from lstm_ref.configs import INPUT_FORMS, TORCH_PATHS, Config

#: The largest size drawn (input, hidden, batch, sequence length): small enough for hundreds of
#: examples a second, large enough for every shape relation (I < H, I > H, N > T, ...).
MAX_SIZE = 7
MAX_LAYERS = 3


@st.composite
def configs(
    draw: st.DrawFn,
    devices: Sequence[str] = ("cpu",),
    dtypes: Sequence[str] = ("float32", "float64"),
    max_size: int = MAX_SIZE,
) -> Config:
    """A random conformance configuration over the whole space (see the module docstring)."""
    device = draw(st.sampled_from(tuple(devices)))
    hidden_size = draw(st.integers(1, max_size))
    num_layers = draw(st.integers(1, MAX_LAYERS))
    # dropout acts between layers only (torch warns about it with one layer)
    dropout = draw(st.sampled_from((0.0, 0.5, 1.0))) if num_layers > 1 else 0.0
    return Config(
        num_layers=num_layers,
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bias=draw(st.booleans()),
        proj_size=draw(st.integers(0, hidden_size - 1)),
        input_form=draw(st.sampled_from(INPUT_FORMS)),
        initial_state=draw(st.booleans()),
        dtype=draw(st.sampled_from(tuple(dtypes))),
        device=device,
        torch_path=draw(st.sampled_from(TORCH_PATHS[torch.device(device).type])),
        input_size=draw(st.integers(1, max_size)),
        hidden_size=hidden_size,
        seq_len=draw(st.integers(1, max_size)),
        batch_size=draw(st.integers(1, max_size)),
        dropout=dropout,
        # dropout is random in training mode unless p is 0 or 1: train only then
        train=dropout != 0.5 and draw(st.booleans()),
        input_scale=draw(st.sampled_from((1.0, 30.0))),
        hold_input=draw(st.booleans()),
    )

"""Hypothesis strategies over the whole configuration space (needs the ``test`` extra).

``configs()`` draws :class:`lstm_ref.configs.Config` objects: sizes from 1 (input, hidden, batch,
sequence length), 1-3 layers, every flag, projections of every size below hidden_size, dense /
unbatched / packed input (packed lengths are drawn per configuration by
``lstm_ref.conformance.make_inputs``, all distinct where the sequence length allows), dropout in
eval and in deterministic train mode (p = 0 or 1), saturating and held inputs, float32 and
float64, every torch path of the device. Hypothesis shrinks a failure towards the first value
of each choice: one layer, one direction, every boolean False (bias off, no initial state),
sizes 1, dense input, float32, the first torch path.

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
    # Every choice is drawn unconditionally and in a fixed order, so the shrinker can move
    # each one independently; combinations torch rejects or randomises are masked afterwards.
    device = draw(st.sampled_from(tuple(devices)))
    num_layers = draw(st.integers(1, MAX_LAYERS))
    hidden_size = draw(st.integers(1, max_size))
    proj_size = draw(st.integers(0, max_size - 1))
    dropout = draw(st.sampled_from((0.0, 0.5, 1.0)))
    train = draw(st.booleans())
    return Config(
        num_layers=num_layers,
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bias=draw(st.booleans()),
        proj_size=proj_size if proj_size < hidden_size else 0,
        input_form=draw(st.sampled_from(INPUT_FORMS)),
        initial_state=draw(st.booleans()),
        dtype=draw(st.sampled_from(tuple(dtypes))),
        device=device,
        torch_path=draw(st.sampled_from(TORCH_PATHS[torch.device(device).type])),
        input_size=draw(st.integers(1, max_size)),
        hidden_size=hidden_size,
        seq_len=draw(st.integers(1, max_size)),
        batch_size=draw(st.integers(1, max_size)),
        # dropout acts between layers only (torch warns about it with one layer)
        dropout=dropout if num_layers > 1 else 0.0,
        # dropout is random in training mode unless p is 0 or 1: train only then
        train=train and dropout != 0.5,
        input_scale=draw(st.sampled_from((1.0, 30.0))),
        hold_input=draw(st.booleans()),
    )

"""lstm_ref.torch_compat answers the same on every supported torch (run under each edge: tox -e torch-oldest)."""

from __future__ import annotations

import torch

from lstm_ref.torch_compat import autocast_dtype, autocast_enabled


def test_autocast_on_the_cpu_is_seen_with_its_dtype() -> None:
    """bfloat16: the one CPU autocast dtype torch 2.1 has."""
    assert not autocast_enabled("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert autocast_enabled("cpu")
        assert not autocast_enabled("cuda")
        assert autocast_dtype("cpu") == torch.bfloat16
    assert not autocast_enabled("cpu")

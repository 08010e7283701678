"""NaN, ±Inf and extreme magnitudes in the input, h0 or c0: lstm_ref does what torch does.

The comparison is the conformance one (:func:`lstm_ref.conformance.compare_outputs`): NaN
must meet NaN at exactly the same positions, an infinity only the same infinity, and the
finite values agree within the tolerance table. A NaN in x at (t, n) spreads through sequence
n from step t on (forward) and back to step 0 (reverse), and through every later layer; +Inf
in x saturates the gates it feeds (outputs stay finite); Inf in c0 stays in c for the whole
sequence while h = o * tanh(c) stays finite.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

import lstm_ref
from lstm_ref.accuracy import padded, run_oracle
from lstm_ref.configs import TORCH_PATHS, Config
from lstm_ref.conformance import Inputs, build_reference, compare_outputs, make_inputs, torch_path

SHAPES = [
    Config(num_layers=2, bidirectional=True, batch_first=True, seq_len=6),
    Config(num_layers=2, bidirectional=True, proj_size=3, input_form="packed", seq_len=6, batch_size=4),
    Config(num_layers=2, bidirectional=True, input_form="unbatched", seq_len=6),
]
#: Every shape in float64 and in float32 on each CPU path of torch, with initial states.
CONFIGS = [
    replace(shape, initial_state=True, dtype=dtype, torch_path=path)
    for shape in SHAPES
    for dtype, paths in [("float32", TORCH_PATHS["cpu"]), ("float64", TORCH_PATHS["cpu"][:1])]
    for path in paths
]
#: float32, where 1e30 is within 1e9 of overflow and 1e-30 within 1e8 of the subnormals.
FLOAT32_CONFIGS = [config for config in CONFIGS if config.dtype == "float32"]
PLACES = ("input", "h0", "c0")
VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def inject(inputs: Inputs, place: str, value: float) -> None:
    """Set one element of x (mid-sequence, second sequence), h0 or c0 (last layer, second sequence)."""
    if place == "input":
        x = inputs.input.data if isinstance(inputs.input, PackedSequence) else inputs.input
        if x.dim() == 2:           # unbatched (T, I) or packed data (sum of lengths, I)
            x[x.shape[0] // 2, 0] = value
        else:                      # (T, N, I) or (N, T, I): index [1, 1] is inside either way
            x[1, 1, 0] = value
    else:
        state = inputs.hx[PLACES.index(place) - 1]
        state[(-1, 1, 0) if state.dim() == 3 else (-1, 0)] = value


def run_both(config: Config, inputs: Inputs) -> tuple[tuple, tuple, torch.nn.LSTM]:
    module = build_reference(config)
    with torch.no_grad():
        with torch_path(config.torch_path):
            reference_inputs = inputs.clone()
            expected = module(reference_inputs.input, reference_inputs.hx)
        candidate_inputs = inputs.clone()
        actual = lstm_ref.LSTM.from_torch(copy.deepcopy(module))(candidate_inputs.input, candidate_inputs.hx)
    return expected, actual, module


def non_finite(result: tuple, config: Config) -> list[torch.Tensor]:
    output, (h_n, c_n) = result
    return [~torch.isfinite(tensor) for tensor in (padded(output, config), h_n, c_n)]


@pytest.mark.parametrize("value", VALUES, ids=str)
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: config.id)
def test_special_value_lands_where_torch_puts_it(config: Config, place: str, value: str) -> None:
    inputs = make_inputs(config)
    inject(inputs, place, VALUES[value])
    expected, actual, module = run_both(config, inputs)
    reports = compare_outputs(config, actual, expected, inputs)
    assert all(report.passed for report in reports), "\n".join(r.describe() for r in reports if not r.passed)
    output, h_n, c_n = non_finite(expected, config)
    if value == "nan" or place == "c0":  # these reach the results; +-Inf in x or h0 only saturates gates
        assert bool(output.any() or h_n.any() or c_n.any())
    # the float64 oracle puts NaN and Inf at the same positions too
    truth = run_oracle(module, inputs, config)
    for name, expected_mask, array in zip(("output", "h_n", "c_n"), (output, h_n, c_n), truth, strict=True):
        np.testing.assert_array_equal(~np.isfinite(array), expected_mask.numpy(), err_msg=name)


@pytest.mark.parametrize("scale", [1e30, 1e-30], ids=["1e30", "1e-30"])
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("config", FLOAT32_CONFIGS, ids=lambda config: config.id)
def test_extreme_magnitudes_behave_like_torch(config: Config, place: str, scale: float) -> None:
    inputs = make_inputs(config)
    if place == "input":
        target = inputs.input.data if isinstance(inputs.input, PackedSequence) else inputs.input
    else:
        target = inputs.hx[PLACES.index(place) - 1]
    target.mul_(scale)
    expected, actual, _ = run_both(config, inputs)
    reports = compare_outputs(config, actual, expected, inputs)
    assert all(report.passed for report in reports), "\n".join(r.describe() for r in reports if not r.passed)
    assert not any(mask.any() for mask in non_finite(expected, config))  # nothing overflowed in torch

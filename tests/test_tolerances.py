"""The tolerance table is tight enough to catch one precision lower, loose enough for torch vs torch."""

from dataclasses import replace

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

from lstm_ref import LSTM
from lstm_ref.configs import Config, special_cases
from lstm_ref.conformance import FAILED, PASSED, check_forward
from lstm_ref.tolerances import TOLERANCES, tolerance_for


def computed_in(dtype: torch.dtype):
    """A factory for lstm_ref computing in ``dtype`` behind casts (a lower-precision kernel)."""

    def factory(module):
        ref = LSTM.from_torch(module).to(dtype)

        def cast(value, to):
            if isinstance(value, PackedSequence):
                return PackedSequence(value.data.to(to), value.batch_sizes, value.sorted_indices,
                                      value.unsorted_indices)
            return value.to(to)

        def forward(input, hx=None):
            original = input.data.dtype if isinstance(input, PackedSequence) else input.dtype
            output, (h_n, c_n) = ref(cast(input, dtype), None if hx is None else tuple(cast(s, dtype) for s in hx))
            return cast(output, original), (cast(h_n, original), cast(c_n, original))
        return forward
    return factory


SHORT = Config(num_layers=2, bidirectional=True, initial_state=True, input_form="packed")
LONG = next(c for c in special_cases() if c.tag == "long_T1000")
SATURATING = next(c for c in special_cases() if c.tag == "saturating_T200")
LOWER = [("float64", torch.float32), ("float32", torch.float16), ("float32", torch.bfloat16)]


@pytest.mark.parametrize("base", [SHORT, LONG, SATURATING], ids=["T5", "T1000", "saturating_T200"])
@pytest.mark.parametrize(("dtype", "lower"), LOWER, ids=[f"{d}_via_{str(low)[6:]}" for d, low in LOWER])
def test_one_precision_lower_is_caught(base, dtype, lower):
    try:  # torch 2.1 has no float16 matrix product on the CPU: no such kernel to catch there
        torch.ones(1, 1, dtype=lower) @ torch.ones(1, 1, dtype=lower)
    except RuntimeError as error:
        pytest.skip(f"torch {torch.__version__} cannot compute in {lower} on the CPU: {error}")
    config = replace(base, dtype=dtype)
    result = check_forward(config, computed_in(lower))
    assert result.status == FAILED, result.describe()
    assert result.worst_ratio > 3, f"caught only narrowly: {result.worst_ratio:.3g}x tolerance"


@pytest.mark.parametrize("base", [SHORT, LONG, SATURATING], ids=["T5", "T1000", "saturating_T200"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_precision_passes_with_margin(base, dtype):
    result = check_forward(replace(base, dtype=dtype), computed_in(getattr(torch, dtype)))
    assert result.status == PASSED, result.describe()
    assert result.worst_ratio < 0.5, f"lstm_ref uses {result.worst_ratio:.3g}x of the tolerance"


#: Special cases on which oneDNN really computes torch's reference: float32, dense or unbatched
#: input, no projections (for packed input and projections torch runs its native loop under
#: either path's name, and the two paths would compare a computation with itself).
ONEDNN_RUNS = [c for c in special_cases() if not c.input_form.startswith("packed") and not c.proj_size]
#: The float64 special cases up to H=128, but dropout in training mode (random masks: the oracle
#: refuses it). The wider realistic-size cases cost seconds each in the NumPy oracle; tests/test_oracle.py
#: checks them (with every float64 configuration of the default matrix) against torch at the same row.
FLOAT64_CASES = [c for c in special_cases(dtype="float64") if not (c.train and c.dropout) and c.hidden_size <= 128]


def max_abs_error(result) -> float:
    return max(t.max_abs for t in result.tensors)


@pytest.mark.parametrize("config", ONEDNN_RUNS, ids=lambda c: c.id)
def test_torch_native_path_against_onednn_path(config):
    """Loose enough for torch against torch in float32: the native loop against oneDNN passes,
    including saturation and T=1000, and the two paths really differ (else nothing was tested)."""
    result = check_forward(config, "torch")
    assert result.status == PASSED, result.describe()
    assert max_abs_error(result) > 0, f"{config.id}: both torch paths gave identical results"


@pytest.mark.parametrize("config", FLOAT64_CASES, ids=lambda c: c.id)
def test_torch_against_the_numpy_oracle_in_float64(config):
    """Loose enough for two correct float64 LSTMs: torch has one float64 CPU path (its native
    loop), so the float64 row is tried on torch against the NumPy oracle (lstm_ref.oracle, its
    own summation order), and the two really differ."""
    result = check_forward(config, "numpy-oracle")
    assert result.status == PASSED, result.describe()
    assert max_abs_error(result) > 0, f"{config.id}: torch and the oracle gave identical results"


def test_every_row_states_its_reasoning():
    for key, tolerance in TOLERANCES.items():
        assert len(tolerance.why) > 40, key
        assert 0 < tolerance.atol and 0 < tolerance.rtol and 0 <= tolerance.rtol_per_step, key


def test_per_step_term_grows_with_sequence_length():
    row = tolerance_for(torch.float32, "cpu")
    assert row.over(1000).rtol == pytest.approx(row.rtol + 1000 * row.rtol_per_step)
    assert row.over(1000).rtol_per_step == 0


def test_missing_row_is_a_lookup_error_naming_the_table():
    with pytest.raises(LookupError, match="no tolerance for float16 on cpu; the table has"):
        tolerance_for(torch.float16, "cpu")

"""Every invalid call to lstm_ref's LSTMs fails like torch's, with a message that says why.

One table: each row builds a module (``lambda lib: lib.LSTM(...)`` with ``lib`` torch.nn or one
of ours) and, for a forward-pass case, calls it. Each row runs on torch.nn and on every LSTM it
applies to: lstm_ref (LSTM, LSTMCell), the fast path (``lstm_ref.fast``, forward-pass rows: its
constructor is torch's) and MogrifierLSTM (LSTM rows). The exception types must be identical,
and our message must name the expected and the found value (the ``names`` column).

Where torch's exception is an accident of its implementation (an IndexError from indexing a
malformed hx, an AttributeError from calling ``.dim()`` on a list), the row records torch's type
in ``torch_accident`` and lstm_ref raises the type a user would expect; the test checks both.

Older torch departs on a few rows (``old_torch``): torch 2.1 checks the input's size only when
hx is given and the input's dtype nowhere, and takes ``input_size=0``. On torch before
:data:`CHECKED_SINCE` such a row checks that torch does what the row says old torch did (that
exception type, or no error at all) and that ours still raise the type newer torch raises;
whatever else torch does fails the row, and from :data:`CHECKED_SINCE` on the row is strict.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import lstm_ref
from lstm_ref import fast
from lstm_ref.mogrifier import from_torch_rounds0

LENGTHS = [5, 4, 2]
#: The oldest torch measured to raise as the table says on every row (torch 2.1.2 departs on the
#: ``old_torch`` rows; 2.13.0 and 2.14.1 do not; versions between were not measured).
CHECKED_SINCE = "2.13"


def packed(T: int = 5, N: int = 3, features: int = 4, dtype: torch.dtype = torch.float32):
    return pack_padded_sequence(torch.randn(T, N, features, dtype=dtype), LENGTHS[:N])


def state(*shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    return torch.randn(*shape, dtype=dtype, device=device)


def lstm(**kwargs) -> Callable:
    return lambda lib: lib.LSTM(4, 6, **kwargs)


def cell(input_size: int = 4, hidden_size: int = 6) -> Callable:
    return lambda lib: lib.LSTMCell(input_size, hidden_size)


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable                      # lib -> module (raises for a bad constructor argument)
    call: Callable | None               # module -> output; None for a constructor case
    names: tuple[str, ...]              # substrings of lstm_ref's message: what was expected, what came
    torch_accident: type[Exception] | None = None   # torch's own (accidental) type, where it differs
    raises: type[Exception] | None = None           # lstm_ref's type in such a row
    old_torch: OldTorch | None = None               # what torch before CHECKED_SINCE does instead


@dataclass(frozen=True)
class OldTorch:
    """A row's behaviour in torch before CHECKED_SINCE: the exception type it raises, or None
    for no error at all, and the type newer torch (and ours, on every torch) raises."""
    raises: type[Exception] | None
    newer: type[Exception]


#: torch 2.1 checks the input's size only when hx is given: without hx its oneDNN path computes
#: on an input of the wrong size without an error.
UNCHECKED_SIZE = OldTorch(None, RuntimeError)
#: torch 2.1 does not check the input's dtype: its matrix product (or oneDNN) fails instead.
UNCHECKED_DTYPE = OldTorch(RuntimeError, ValueError)


def x(*shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    return torch.randn(shape, dtype=dtype, device=device)


CASES = [
    # input rank
    Case("LSTM-input-4D", lstm(), lambda m: m(x(2, 5, 3, 4)), ("2D or 3D", "4D")),
    Case("LSTM-input-1D", lstm(), lambda m: m(x(4)), ("2D or 3D", "1D")),
    Case("LSTM-input-not-a-tensor", lstm(), lambda m: m([[1.0] * 4]), ("Tensor or PackedSequence", "list"),
         torch_accident=AttributeError, raises=TypeError),
    # input_size
    Case("LSTM-input_size-batched", lstm(), lambda m: m(x(5, 3, 7)), ("Expected 4", "got 7"),
         old_torch=UNCHECKED_SIZE),
    Case("LSTM-input_size-unbatched", lstm(), lambda m: m(x(5, 7)), ("Expected 4", "got 7"),
         old_torch=UNCHECKED_SIZE),
    Case("LSTM-input_size-batch_first", lstm(batch_first=True), lambda m: m(x(3, 5, 7)),
         ("Expected 4", "got 7"), old_torch=UNCHECKED_SIZE),
    Case("LSTM-input_size-packed", lstm(), lambda m: m(packed(features=7)), ("Expected 4", "got 7")),
    # h0 / c0 shapes
    Case("LSTM-h0-hidden_size", lstm(), lambda m: m(x(5, 3, 4), (state(1, 3, 7), state(1, 3, 6))),
         ("hidden[0]", "(1, 3, 6)", "[1, 3, 7]")),
    Case("LSTM-c0-hidden_size", lstm(), lambda m: m(x(5, 3, 4), (state(1, 3, 6), state(1, 3, 7))),
         ("hidden[1]", "(1, 3, 6)", "[1, 3, 7]")),
    Case("LSTM-h0-batch", lstm(), lambda m: m(x(5, 3, 4), (state(1, 2, 6), state(1, 3, 6))),
         ("hidden[0]", "(1, 3, 6)", "[1, 2, 6]")),
    Case("LSTM-h0-batch-batch_first", lstm(batch_first=True),
         lambda m: m(x(3, 5, 4), (state(1, 5, 6), state(1, 3, 6))), ("hidden[0]", "(1, 3, 6)", "[1, 5, 6]")),
    Case("LSTM-h0-layers", lstm(num_layers=2), lambda m: m(x(5, 3, 4), (state(1, 3, 6), state(2, 3, 6))),
         ("hidden[0]", "(2, 3, 6)", "[1, 3, 6]")),
    Case("LSTM-h0-bidirectional-layers", lstm(bidirectional=True),
         lambda m: m(x(5, 3, 4), (state(1, 3, 6), state(1, 3, 6))), ("hidden[0]", "(2, 3, 6)", "[1, 3, 6]")),
    Case("LSTM-h0-proj_size", lstm(proj_size=3), lambda m: m(x(5, 3, 4), (state(1, 3, 6), state(1, 3, 6))),
         ("hidden[0]", "(1, 3, 3)", "[1, 3, 6]")),
    Case("LSTM-c0-proj_size", lstm(proj_size=3), lambda m: m(x(5, 3, 4), (state(1, 3, 3), state(1, 3, 3))),
         ("hidden[1]", "(1, 3, 6)", "[1, 3, 3]")),
    Case("LSTM-h0-unbatched", lstm(), lambda m: m(x(5, 4), (state(1, 7), state(1, 6))),
         ("hidden[0]", "(1, 1, 6)", "[1, 1, 7]")),
    Case("LSTM-h0-packed-batch", lstm(), lambda m: m(packed(), (state(1, 2, 6), state(1, 2, 6))),
         ("hidden[0]", "(1, 3, 6)", "[1, 2, 6]")),
    Case("LSTM-h0-packed-hidden_size", lstm(), lambda m: m(packed(), (state(1, 3, 7), state(1, 3, 6))),
         ("hidden[0]", "(1, 3, 6)", "[1, 3, 7]")),
    # state rank against input rank
    Case("LSTM-3D-input-2D-states", lstm(), lambda m: m(x(5, 3, 4), (state(1, 6), state(1, 6))),
         ("should also be 3-D", "(2-D, 2-D)")),
    Case("LSTM-2D-input-3D-states", lstm(), lambda m: m(x(5, 4), (state(1, 1, 6), state(1, 1, 6))),
         ("should also be 2-D", "(3-D, 3-D)")),
    Case("LSTM-packed-input-2D-states", lstm(), lambda m: m(packed(), (state(1, 6), state(1, 6))),
         ("should also be 3-D", "(2-D, 2-D)"), torch_accident=IndexError, raises=RuntimeError),
    Case("LSTM-hx-not-a-pair", lstm(), lambda m: m(x(5, 3, 4), state(1, 3, 6)),
         ("tuple (h_0, c_0)", "Tensor"), torch_accident=IndexError, raises=TypeError),
    # dtypes
    Case("LSTM-input-float64-weights-float32", lstm(), lambda m: m(x(5, 3, 4, dtype=torch.float64)),
         ("torch.float32", "got type torch.float64"), old_torch=UNCHECKED_DTYPE),
    Case("LSTM-input-float32-weights-float64", lambda lib: lib.LSTM(4, 6, dtype=torch.float64),
         lambda m: m(x(5, 3, 4)), ("torch.float64", "got type torch.float32"), old_torch=UNCHECKED_DTYPE),
    Case("LSTM-input-int64", lstm(), lambda m: m(torch.ones(5, 3, 4, dtype=torch.long)),
         ("torch.float32", "got type torch.int64"), old_torch=UNCHECKED_DTYPE),
    Case("LSTM-packed-input-float64", lstm(), lambda m: m(packed(dtype=torch.float64)),
         ("torch.float32", "got type torch.float64")),
    Case("LSTM-h0-float64", lstm(),
         lambda m: m(x(5, 3, 4), (state(1, 3, 6, dtype=torch.float64), state(1, 3, 6))),
         ("hx[0]", "torch.float32", "got type torch.float64")),
    Case("LSTM-h0-float32-weights-float64", lambda lib: lib.LSTM(4, 6, dtype=torch.float64),
         lambda m: m(x(5, 3, 4, dtype=torch.float64), (state(1, 3, 6), state(1, 3, 6, dtype=torch.float64))),
         ("hx[0]", "torch.float64", "got type torch.float32")),
    # devices (the meta device stands in for a second device)
    Case("LSTM-input-on-another-device", lstm(), lambda m: m(x(5, 3, 4, device="meta")),
         ("input tensor at meta", "parameter tensor at cpu")),
    Case("LSTM-h0-on-another-device", lstm(),
         lambda m: m(x(5, 3, 4), (state(1, 3, 6, device="meta"), state(1, 3, 6))),
         ("input tensor at cpu", "hidden tensor hx[0] at meta")),
    # empty sequences
    Case("LSTM-T0", lstm(), lambda m: m(x(0, 3, 4)), ("at least 1", "length 0")),
    Case("LSTM-T0-unbatched", lstm(), lambda m: m(x(0, 4)), ("at least 1", "length 0")),
    Case("LSTM-T0-batch_first", lstm(batch_first=True), lambda m: m(x(3, 0, 4)), ("at least 1", "length 0")),
    # constructor arguments
    Case("LSTM-hidden_size-0", lambda lib: lib.LSTM(4, 0), None, ("hidden_size", "greater than zero")),
    Case("LSTM-hidden_size-negative", lambda lib: lib.LSTM(4, -1), None,
         ("hidden_size", "greater than zero")),
    Case("LSTM-hidden_size-float", lambda lib: lib.LSTM(4, 6.0), None, ("hidden_size", "int", "float")),
    Case("LSTM-input_size-0", lambda lib: lib.LSTM(0, 6), None, ("input_size", "greater than zero"),
         old_torch=OldTorch(None, ValueError)),  # torch 2.1 builds it
    Case("LSTM-num_layers-0", lstm(num_layers=0), None, ("num_layers", "greater than zero"),
         old_torch=OldTorch(IndexError, ValueError)),  # torch 2.1 indexes its empty weight list
    Case("LSTM-num_layers-float", lstm(num_layers=1.5), None, ("num_layers", "int", "float")),
    Case("LSTM-proj_size-negative", lstm(proj_size=-1), None, ("proj_size", "zero", "got -1")),
    Case("LSTM-proj_size-equal-hidden_size", lstm(proj_size=6), None,
         ("smaller than hidden_size", "proj_size=6", "hidden_size=6")),
    Case("LSTM-proj_size-above-hidden_size", lstm(proj_size=7), None,
         ("smaller than hidden_size", "proj_size=7", "hidden_size=6")),
    Case("LSTM-dropout-negative", lstm(dropout=-0.1), None, ("[0, 1]", "got -0.1")),
    Case("LSTM-dropout-above-1", lstm(dropout=1.5), None, ("[0, 1]", "got 1.5")),
    Case("LSTM-dropout-string", lstm(num_layers=2, dropout="0.5"), None, ("[0, 1]", "got '0.5'")),
    Case("LSTM-dropout-bool", lstm(num_layers=2, dropout=True), None, ("[0, 1]", "got True")),
    # LSTMCell
    Case("LSTMCell-input-3D", cell(), lambda m: m(x(2, 3, 4)), ("1D or 2D", "3D")),
    Case("LSTMCell-input-0D", cell(), lambda m: m(x()), ("1D or 2D", "0D")),
    Case("LSTMCell-input_size-batched", cell(), lambda m: m(x(3, 7)), ("got 7", "expected 4")),
    Case("LSTMCell-input_size-unbatched", cell(), lambda m: m(x(7)), ("got 7", "expected 4")),
    Case("LSTMCell-h-hidden_size", cell(), lambda m: m(x(3, 4), (state(3, 7), state(3, 6))),
         ("hx[0]", "(3, 6)", "[3, 7]")),
    Case("LSTMCell-c-hidden_size", cell(), lambda m: m(x(3, 4), (state(3, 6), state(3, 7))),
         ("hx[1]", "(3, 6)", "[3, 7]")),
    Case("LSTMCell-h-batch", cell(), lambda m: m(x(3, 4), (state(2, 6), state(2, 6))),
         ("hx[0]", "(3, 6)", "[2, 6]")),
    Case("LSTMCell-h-3D", cell(), lambda m: m(x(3, 4), (state(1, 3, 6), state(1, 3, 6))),
         ("hx[0]", "1D or 2D", "3D")),
    Case("LSTMCell-2D-input-1D-states", cell(), lambda m: m(x(3, 4), (state(6), state(6))),
         ("should also be 2-D", "(1-D, 1-D)")),
    Case("LSTMCell-1D-input-2D-states", cell(), lambda m: m(x(4), (state(1, 6), state(1, 6))),
         ("should also be 1-D", "(2-D, 2-D)")),
    Case("LSTMCell-hx-not-a-pair", cell(), lambda m: m(x(3, 4), state(3, 6)), ("tuple (h_0, c_0)", "Tensor")),
    Case("LSTMCell-input-float64", cell(), lambda m: m(x(3, 4, dtype=torch.float64)),
         ("torch.float32", "got type torch.float64")),
    Case("LSTMCell-input-int64", cell(), lambda m: m(torch.ones(3, 4, dtype=torch.long)),
         ("torch.float32", "got type torch.int64")),
    Case("LSTMCell-h-float64", cell(), lambda m: m(x(3, 4), (state(3, 6, dtype=torch.float64), state(3, 6))),
         ("hx[0]", "torch.float32", "got type torch.float64")),
    Case("LSTMCell-input-on-another-device", cell(), lambda m: m(x(3, 4, device="meta")),
         ("input tensor at meta", "parameter tensor at cpu")),
    Case("LSTMCell-h-on-another-device", cell(),
         lambda m: m(x(3, 4), (state(3, 6, device="meta"), state(3, 6))),
         ("input tensor at cpu", "hidden tensor hx[0] at meta")),
    Case("LSTMCell-hidden_size-float", cell(hidden_size=6.0), None, ("hidden_size", "int", "float")),
    Case("LSTMCell-hidden_size-negative", cell(hidden_size=-1), None, ("hidden_size", "got -1")),
]


def fast_lstm(*args, **kwargs) -> fast.FastLSTM:
    return fast.from_torch(nn.LSTM(*args, **kwargs))


def mogrifier_lstm(*args, **kwargs) -> lstm_ref.MogrifierLSTM:
    return lstm_ref.MogrifierLSTM(*args, rounds=2, **kwargs)


#: Our LSTMs, each a namespace like torch.nn (``lib.LSTM(...)`` builds one), and the rows each
#: applies to.
IMPLEMENTATIONS = {
    "lstm_ref": (lstm_ref, lambda case: True),
    "fast": (SimpleNamespace(LSTM=fast_lstm), lambda case: case.id.startswith("LSTM-") and case.call is not None),
    "mogrifier": (SimpleNamespace(LSTM=mogrifier_lstm), lambda case: case.id.startswith("LSTM-")),
}
RUNS = [pytest.param(name, case, id=f"{name}-{case.id}")
        for name, (_, applies) in IMPLEMENTATIONS.items() for case in CASES if applies(case)]


def raised_by(case: Case, lib) -> Exception | None:
    """The exception ``case`` raises with ``lib`` (torch.nn or ours), None if none is raised."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dropout-with-one-layer warning; oneDNN notes
        try:
            module = case.make(lib)
            if case.call is not None:
                case.call(module)
        except Exception as error:
            return error
    return None


def old_torch_departs(case: Case, torch_error: Exception | None) -> bool:
    """Whether this torch is older than CHECKED_SINCE and does what ``case`` says old torch does
    (fails the test if it does neither that nor what newer torch does)."""
    if case.old_torch is None or torch.__version__ >= CHECKED_SINCE or type(torch_error) is case.old_torch.newer:
        return False
    did = None if torch_error is None else type(torch_error)
    assert did is case.old_torch.raises, f"torch {torch.__version__} raised {did}, not {case.old_torch.raises}"
    return True


@pytest.mark.parametrize(("implementation", "case"), RUNS)
def test_bad_input_fails_like_torch(implementation: str, case: Case) -> None:
    torch_error = raised_by(case, nn)
    ours = raised_by(case, IMPLEMENTATIONS[implementation][0])
    assert ours is not None, f"{implementation} raised nothing"
    if old_torch_departs(case, torch_error):
        assert type(ours) is case.old_torch.newer, f"{implementation} raised {type(ours).__name__}({ours})"
    elif case.torch_accident is None:
        assert torch_error is not None, "torch raised nothing"
        assert type(ours) is type(torch_error), (
            f"torch raised {type(torch_error).__name__}({torch_error}), "
            f"{implementation} {type(ours).__name__}({ours})"
        )
    else:
        assert type(torch_error) is case.torch_accident, f"torch now raises {type(torch_error).__name__}"
        assert type(ours) is case.raises, f"{implementation} raised {type(ours).__name__}({ours})"
    message = str(ours)
    missing = [name for name in case.names if name not in message]
    assert not missing, f"{implementation}'s message {message!r} does not name {missing}"


@pytest.mark.parametrize("size", [(0, 6), (4, 0)], ids=["LSTMCell-input_size-0", "LSTMCell-hidden_size-0"])
def test_empty_lstm_cell_is_accepted_like_torch(size: tuple[int, int]) -> None:
    """torch accepts an LSTMCell with a zero size (empty weights); so does lstm_ref, with the same output."""
    torch_cell = nn.LSTMCell(*size)
    cell_ = lstm_ref.LSTMCell.from_torch(torch_cell)
    batch = torch.randn(3, size[0])
    expected, got = torch_cell(batch), cell_(batch)
    for want, have in zip(expected, got, strict=True):
        assert have.shape == want.shape == (3, size[1])
        torch.testing.assert_close(have, want)


@pytest.mark.parametrize("factory", [lstm_ref.LSTM.from_torch, fast.from_torch, from_torch_rounds0],
                         ids=["lstm_ref", "fast", "mogrifier"])
def test_c0_of_another_dtype_is_rejected_where_torch_promotes(factory: Callable) -> None:
    """A deliberate difference: torch's native CPU loop type-promotes a float32 c_0 against float64
    weights (no error, c_n comes back float64); ours reject the mixed state like a mixed h_0."""
    torch_lstm = nn.LSTM(4, 6, dtype=torch.float64)
    inputs = x(5, 3, 4, dtype=torch.float64)
    hx = (state(1, 3, 6, dtype=torch.float64), state(1, 3, 6))
    _, (_, c_n) = torch_lstm(inputs, hx)
    assert c_n.dtype == torch.float64
    with pytest.raises(RuntimeError, match=r"hx\[1\] must have the type of the parameters, torch.float64, "
                                           r"got type torch.float32"):
        factory(torch_lstm)(inputs, hx)

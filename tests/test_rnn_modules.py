"""lstm_ref's GRU, RNN, GRUCell and RNNCell against torch's: parameters, initialisation, from_torch,
forward values in every input form, and every invalid call failing with torch's exception type."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import lstm_ref
from lstm_ref import fast, oracle
from lstm_ref.accuracy import oracle_arguments, padded
from lstm_ref.compare import compare_tensor
from lstm_ref.configs import MODES, REALISTIC, Config, for_modes, quick_matrix
from lstm_ref.conformance import build_reference, call_hx, make_inputs
from lstm_ref.mogrifier import from_torch_rounds0
from lstm_ref.tolerances import tolerance_for

#: (name, lib -> module) for each kind and construction
CONSTRUCTIONS: list[tuple[str, Callable]] = [
    ("GRU", lambda lib: lib.GRU(4, 6)),
    ("GRU-L2-bidir-nobias", lambda lib: lib.GRU(4, 6, num_layers=2, bias=False, bidirectional=True)),
    ("RNN_TANH-L3-batch_first", lambda lib: lib.RNN(4, 6, 3, batch_first=True)),
    ("RNN_RELU-L2-bidir", lambda lib: lib.RNN(4, 6, 2, nonlinearity="relu", bidirectional=True)),
    ("RNN_RELU-keyword", lambda lib: lib.RNN(4, 6, nonlinearity="relu", bias=False)),
    ("GRUCell", lambda lib: lib.GRUCell(4, 6)),
    ("GRUCell-nobias", lambda lib: lib.GRUCell(4, 6, bias=False)),
    ("RNNCell-relu", lambda lib: lib.RNNCell(4, 6, nonlinearity="relu")),
    ("RNNCell-nobias", lambda lib: lib.RNNCell(4, 6, False)),
]


@pytest.mark.parametrize("make", [c[1] for c in CONSTRUCTIONS], ids=[c[0] for c in CONSTRUCTIONS])
def test_parameters_initialisation_and_repr_match_torch(make: Callable) -> None:
    """Same names, shapes, order; from the same seed the same values (U(-1/sqrt(H), 1/sqrt(H)) drawn
    in registration order); the same repr; torch's state dict loads strictly."""
    torch.manual_seed(0)
    theirs = make(nn)
    torch.manual_seed(0)
    ours = make(lstm_ref)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    for (name, mine), their in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.equal(mine, their), name
    assert repr(ours) == repr(theirs)
    if isinstance(theirs, nn.RNNBase):
        assert ours.mode == theirs.mode
    ours.load_state_dict(theirs.state_dict(), strict=True)


@pytest.mark.parametrize("make", [c[1] for c in CONSTRUCTIONS], ids=[c[0] for c in CONSTRUCTIONS])
def test_from_torch_copies_configuration_weights_dtype_and_mode(make: Callable) -> None:
    theirs = make(nn).to(torch.float64).eval()
    ours = lstm_ref.from_torch(theirs)
    assert type(ours).__name__ == type(theirs).__name__
    assert repr(ours) == repr(theirs) and not ours.training
    assert getattr(ours, "nonlinearity", "tanh") == getattr(theirs, "nonlinearity", "tanh")
    for (name, mine), their in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.equal(mine, their) and mine.dtype == torch.float64, name
        assert mine.data_ptr() != their.data_ptr(), f"{name} is shared, not copied"


@pytest.mark.parametrize("factory", [lstm_ref.LSTM.from_torch, fast.from_torch, from_torch_rounds0],
                         ids=["LSTM.from_torch", "fast", "mogrifier"])
@pytest.mark.parametrize("module", [nn.GRU(4, 6), nn.RNN(4, 6), nn.RNN(4, 6, nonlinearity="relu")],
                         ids=["GRU", "RNN_TANH", "RNN_RELU"])
def test_lstm_only_factories_report_other_kinds_not_implemented(factory: Callable, module: nn.Module) -> None:
    """An LSTM-only factory handed another kind raises NotImplementedError (the harness's
    "unsupported"), naming what it takes and what it got; anything else stays a TypeError."""
    with pytest.raises(NotImplementedError, match=rf"torch.nn.LSTM only, got a torch.nn.{type(module).__name__}"):
        factory(module)
    with pytest.raises(TypeError, match="expects a torch.nn.LSTM, got Linear"):
        factory(nn.Linear(4, 6))


def test_each_kind_only_copies_its_own() -> None:
    with pytest.raises(NotImplementedError, match="GRU.from_torch copies a torch.nn.GRU only, got a torch.nn.RNN"):
        lstm_ref.GRU.from_torch(nn.RNN(4, 6))
    with pytest.raises(NotImplementedError, match="RNN.from_torch copies a torch.nn.RNN only, got a torch.nn.LSTM"):
        lstm_ref.RNN.from_torch(nn.LSTM(4, 6))
    with pytest.raises(TypeError, match="expects a torch.nn.GRUCell, got RNNCell"):
        lstm_ref.GRUCell.from_torch(nn.RNNCell(4, 6))
    with pytest.raises(TypeError, match="recurrent modules"):
        lstm_ref.from_torch(nn.Linear(4, 6))


def _inputs(batch_first: bool, form: str, layers: int, with_h0: bool) -> tuple[object, torch.Tensor | None]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 4, generator=generator, dtype=torch.float64)  # (N, T, I)
    h0 = torch.randn(layers, 3, 6, generator=generator, dtype=torch.float64) if with_h0 else None
    if form == "unbatched":
        return x[1], None if h0 is None else h0[:, 1]
    if form == "packed":
        return pack_padded_sequence(x, [3, 5, 2], batch_first=True, enforce_sorted=False), h0
    return (x if batch_first else x.transpose(0, 1).contiguous()), h0


@pytest.mark.parametrize("with_h0", [False, True], ids=["zero_state", "h0"])
@pytest.mark.parametrize("form", ["dense", "unbatched", "packed"])
@pytest.mark.parametrize("make", [c[1] for c in CONSTRUCTIONS[:5]], ids=[c[0] for c in CONSTRUCTIONS[:5]])
def test_forward_matches_torch_in_float64(make: Callable, form: str, with_h0: bool) -> None:
    """Every input form, with and without h0, to 1e-13 in float64, and the same output structure."""
    theirs = make(nn).to(torch.float64)
    ours = lstm_ref.from_torch(theirs)
    layers = theirs.num_layers * (2 if theirs.bidirectional else 1)
    input, h0 = _inputs(theirs.batch_first, form, layers, with_h0)
    (want_out, want_h), (got_out, got_h) = theirs(input, h0), ours(input, h0)
    if form == "packed":
        assert isinstance(got_out, PackedSequence)
        assert torch.equal(got_out.unsorted_indices, want_out.unsorted_indices)
        got_out, want_out = got_out.data, want_out.data
    torch.testing.assert_close(got_out, want_out, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(got_h, want_h, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("make", [c[1] for c in CONSTRUCTIONS[5:]], ids=[c[0] for c in CONSTRUCTIONS[5:]])
def test_cells_match_torch_batched_and_unbatched(make: Callable) -> None:
    theirs = make(nn).to(torch.float64)
    ours = lstm_ref.from_torch(theirs)
    x, h = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    for args in ((x, h), (x,), (x[0], h[0]), (x[0],)):
        torch.testing.assert_close(ours(*args), theirs(*args), rtol=1e-13, atol=1e-13)


def test_gradients_reach_every_parameter_like_torch() -> None:
    theirs = nn.GRU(4, 6, num_layers=2, bidirectional=True, dtype=torch.float64)
    ours = lstm_ref.from_torch(theirs)
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    for module in (theirs, ours):
        output, h_n = module(x)
        (output.sum() + h_n.pow(2).sum()).backward()
    for (name, mine), their in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, their.grad, rtol=1e-12, atol=1e-12, msg=name)


def test_no_torch_recurrent_kernel_runs() -> None:
    """The profiler sees only matmuls and pointwise ops: no aten::gru / rnn_tanh / *_cell."""
    modules = [lstm_ref.GRU(4, 6, 2, bidirectional=True), lstm_ref.RNN(4, 6, nonlinearity="relu"),
               lstm_ref.GRUCell(4, 6), lstm_ref.RNNCell(4, 6)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for module in modules[:2]:
            module(torch.randn(5, 3, 4))[1].sum().backward()
        for module in modules[2:]:
            module(torch.randn(3, 4))
    names = {event.name for event in profile.events()}
    assert [n for n in names if "mm" in n]
    assert not [n for n in names if "gru" in n.lower() or "rnn" in n.lower()]


def x(*shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    return torch.randn(shape, dtype=dtype, device=device)


def packed(features: int = 4, dtype: torch.dtype = torch.float32) -> PackedSequence:
    return pack_padded_sequence(x(5, 3, features, dtype=dtype), [5, 4, 2])


#: (id, lib -> module, module -> call or None, substrings of our message, torch's accidental type or None,
#: ours where torch's is an accident). Each row runs for GRU and RNN (``kind`` builds the module).
BAD_CALLS: list[tuple] = [
    ("input-4D", None, lambda m: m(x(2, 5, 3, 4)), ("2D or 3D", "4D"), None),
    ("input-not-a-tensor", None, lambda m: m([[1.0] * 4]), ("Tensor or PackedSequence", "list"), AttributeError),
    ("input_size", None, lambda m: m(x(5, 3, 7)), ("Expected 4", "got 7"), None),
    ("input_size-packed", None, lambda m: m(packed(features=7)), ("Expected 4", "got 7"), None),
    ("input-float64", None, lambda m: m(x(5, 3, 4, dtype=torch.float64)), ("torch.float32", "torch.float64"), None),
    ("packed-float64", None, lambda m: m(packed(dtype=torch.float64)), ("torch.float32", "torch.float64"), None),
    ("input-length-0", None, lambda m: m(x(0, 3, 4)), ("length",), None),
    ("h0-hidden_size", None, lambda m: m(x(5, 3, 4), x(1, 3, 7)), ("(1, 3, 6)", "[1, 3, 7]"), None),
    ("h0-layers", None, lambda m: m(x(5, 3, 4), x(2, 3, 6)), ("(1, 3, 6)", "[2, 3, 6]"), None),
    ("h0-2D-for-batch", None, lambda m: m(x(5, 3, 4), x(3, 6)), ("3-D", "2-D"), None),
    ("h0-3D-unbatched", None, lambda m: m(x(5, 4), x(1, 1, 6)), ("2-D", "3-D"), None),
    ("h0-2D-packed", None, lambda m: m(packed(), x(3, 6)), ("3-D", "2-D"), None),
    ("h0-tuple", None, lambda m: m(x(5, 3, 4), (x(1, 3, 6), x(1, 3, 6))), ("Tensor", "tuple"), AttributeError),
    ("h0-float64", None, lambda m: m(x(5, 3, 4), x(1, 3, 6, dtype=torch.float64)), ("torch.float32", "float64"),
     None),
    ("h0-on-another-device", None, lambda m: m(x(5, 3, 4), x(1, 3, 6, device="meta")), ("cpu", "meta"), None),
    ("proj_size", lambda lib, kind: kind(lib)(4, 6, proj_size=2), None, ("proj_size", "LSTM"), None),
    ("hidden_size-0", lambda lib, kind: kind(lib)(4, 0), None, ("hidden_size",), None),
    ("input_size-float", lambda lib, kind: kind(lib)(4.0, 6), None, ("input_size", "float"), None),
    ("dropout-2", lambda lib, kind: kind(lib)(4, 6, dropout=2.0), None, ("dropout", "2.0"), None),
    ("bias-string", lambda lib, kind: kind(lib)(4, 6, bias="yes"), None, ("bias", "str"), None),
]
KINDS = {"GRU": lambda lib: lib.GRU, "RNN": lambda lib: lib.RNN}
CELL_BAD_CALLS: list[tuple] = [
    ("input-3D", lambda m: m(x(2, 3, 4)), ("1D or 2D", "3D"), None),
    ("hidden-3D", lambda m: m(x(3, 4), x(1, 3, 6)), ("1D or 2D", "3D"), None),
    ("input_size", lambda m: m(x(3, 5)), ("input_size", "got 5"), None),
    ("hidden_size", lambda m: m(x(3, 4), x(3, 7)), ("(3, 6)", "[3, 7]"), None),
    ("hidden-batch", lambda m: m(x(3, 4), x(2, 6)), ("(3, 6)", "[2, 6]"), None),
    ("hidden-1D-for-batch", lambda m: m(x(3, 4), x(6)), ("(3, 6)", "[6]"), None),
    ("input-float64", lambda m: m(x(3, 4, dtype=torch.float64)), ("torch.float32", "float64"), None),
    ("hidden-float64", lambda m: m(x(3, 4), x(3, 6, dtype=torch.float64)), ("torch.float32", "float64"), None),
    ("hidden-tuple", lambda m: m(x(3, 4), (x(3, 6),)), ("Tensor", "tuple"), AttributeError),
]
CELLS = {"GRUCell": lambda lib: lib.GRUCell(4, 6), "RNNCell": lambda lib: lib.RNNCell(4, 6),
         "RNNCell-sigmoid": lambda lib: lib.RNNCell(4, 6, nonlinearity="sigmoid")}


def _raised(function: Callable) -> Exception:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as caught:  # noqa: B017 - the type is compared by the caller
            function()
    return caught.value


def _assert_fails_like_torch(theirs: Exception, ours: Exception, names: tuple[str, ...],
                             accident: type[Exception] | None) -> None:
    if accident is None:
        assert type(ours) is type(theirs), f"torch raised {type(theirs).__name__}({theirs}), " \
                                           f"lstm_ref {type(ours).__name__}({ours})"
    else:
        assert type(theirs) is accident, f"torch now raises {type(theirs).__name__}"
        assert type(ours) is TypeError, f"lstm_ref raised {type(ours).__name__}({ours})"
    missing = [name for name in names if name not in str(ours)]
    assert not missing, f"lstm_ref's message {str(ours)!r} does not name {missing}"


@pytest.mark.parametrize("row", BAD_CALLS, ids=[row[0] for row in BAD_CALLS])
@pytest.mark.parametrize("kind", KINDS, ids=list(KINDS))
def test_bad_input_fails_like_torch(kind: str, row: tuple) -> None:
    _, make, call, names, accident = row
    make = make or (lambda lib, kind_of: kind_of(lib)(4, 6))

    def run(lib) -> Exception:
        torch.manual_seed(0)
        return _raised(lambda: call(make(lib, KINDS[kind])) if call else make(lib, KINDS[kind]))

    if row[0] == "bias-string" and _builds(lambda: KINDS[kind](nn)(4, 6, bias="yes")):  # torch 2.1 does
        pytest.skip("this torch accepts a string bias for nn.GRU and nn.RNN; lstm_ref raises newer torch's TypeError")
    _assert_fails_like_torch(run(nn), run(lstm_ref), names, accident)


def _builds(function: Callable) -> bool:
    try:
        function()
    except Exception:
        return False
    return True


def test_positional_nonlinearity_as_torch_takes_it() -> None:
    theirs = nn.RNN(4, 6, 2, "relu")
    if not isinstance(theirs.bias, bool):  # torch 2.1 has RNN(4, 6, num_layers=2, bias=relu)
        pytest.skip(f"this torch reads a positional nonlinearity as bias ({theirs!r}); lstm_ref takes newer torch's")
    ours = lstm_ref.RNN(4, 6, 2, "relu")
    assert repr(ours) == repr(theirs) and ours.nonlinearity == theirs.nonlinearity == "relu"


def test_unknown_nonlinearity_fails_like_torch() -> None:
    for lib in (nn, lstm_ref):
        with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'."):
            lib.RNN(4, 6, nonlinearity="sigmoid")


@pytest.mark.parametrize("row", CELL_BAD_CALLS, ids=[row[0] for row in CELL_BAD_CALLS])
@pytest.mark.parametrize("cell", CELLS, ids=list(CELLS))
def test_cell_bad_input_fails_like_torch(cell: str, row: tuple) -> None:
    _, call, names, accident = row
    if cell == "RNNCell-sigmoid" and row[0] not in ("input-3D", "hidden-3D", "hidden-tuple"):
        names = ("nonlinearity", "sigmoid")  # checked after the ranks, before anything else
    theirs = _raised(lambda: call(CELLS[cell](nn)))
    ours = _raised(lambda: call(CELLS[cell](lstm_ref)))
    _assert_fails_like_torch(theirs, ours, names, accident)


#: Each kind's float64 quick matrix, less the realistic-size tier and T=200 (seconds each in NumPy).
ORACLE_SAMPLE = [c for c in for_modes(quick_matrix(("cpu",), ("float64",)), MODES[1:])
                 if not c.train and not c.tag.startswith(REALISTIC) and c.seq_len <= 50]


@pytest.mark.parametrize("config", ORACLE_SAMPLE, ids=lambda config: config.id)
def test_oracle_lstm_ref_and_torch_agree_in_float64(config: Config) -> None:
    """The NumPy oracle (nothing shared with lstm_ref.functional), lstm_ref and torch, three ways."""
    module = build_reference(config)
    inputs = make_inputs(config)
    with torch.no_grad():
        output, h_n = module(inputs.clone().input, call_hx(inputs.clone().hx))
        ours, our_h = lstm_ref.from_torch(module)(inputs.clone().input, call_hx(inputs.clone().hx))
    x, hx, lengths = oracle_arguments(inputs, config)
    truth, true_h = oracle.from_torch(module)(x, None if hx is None else hx[0], lengths)
    tolerance = tolerance_for("float64", "cpu").over(config.seq_len)
    reports = [compare_tensor(f"{name} {who}", got, torch.from_numpy(np.ascontiguousarray(want)), tolerance)
               for who, out, h in (("torch", output, h_n), ("lstm_ref", ours, our_h))
               for name, got, want in (("output", padded(out, config), truth), ("h_n", h, true_h))]
    assert all(r.passed for r in reports), "\n".join(r.describe() for r in reports if not r.passed)


def test_oracle_kinds_refuse_each_other() -> None:
    with pytest.raises(TypeError, match="expects a torch.nn.LSTM, got GRU"):
        oracle.LSTM.from_torch(nn.GRU(4, 6))
    with pytest.raises(TypeError, match="expects a torch.nn.GRU, got RNN"):
        oracle.GRU.from_torch(nn.RNN(4, 6))
    with pytest.raises(TypeError, match="hx must be the array h0"):
        oracle.from_torch(nn.GRU(4, 6))(np.zeros((5, 3, 4)), (np.zeros((1, 3, 6)), np.zeros((1, 3, 6))))

"""Valid but unusual calls: lstm_ref.LSTM and the fast path give what torch.nn.LSTM gives.

Each case builds a torch LSTM, hands it to our factory, runs both on the same input and
compares output, h_n and c_n with lstm_ref.testing.assert_lstm_close at the tolerance table's
row for the dtype (over the sequence length).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence

import lstm_ref
from lstm_ref import fast
from lstm_ref.testing import assert_close, assert_lstm_close


@dataclass(frozen=True)
class Edge:
    id: str
    make_input: Callable[[], Tensor | PackedSequence]
    steps: int
    module: dict = field(default_factory=dict)   # nn.LSTM keyword arguments beyond (4, 6)
    hx: Callable[[], tuple[Tensor, Tensor]] | None = None


def noncontiguous_seq_first() -> Tensor:
    batch_major = torch.randn(3, 5, 4)        # (N, T, I)
    x = batch_major.transpose(0, 1)           # (T, N, I) view, not contiguous
    assert not x.is_contiguous()
    return x


def strided_features() -> Tensor:
    x = torch.randn(5, 3, 8)[:, :, ::2]       # every other feature: stride 2 on the last dim
    assert not x.is_contiguous()
    return x


def expanded() -> Tensor:
    x = torch.randn(1, 1, 4).expand(5, 3, 4)  # stride 0 over time and batch
    assert x.stride()[:2] == (0, 0)
    return x


def expanded_state() -> tuple[Tensor, Tensor]:
    return torch.randn(1, 1, 6).expand(2, 3, 6), torch.randn(6).expand(2, 3, 6)


EDGES = [
    Edge("batch0-seq_first", lambda: torch.randn(5, 0, 4), 5),
    Edge("batch0-batch_first", lambda: torch.randn(0, 5, 4), 5, dict(batch_first=True)),
    Edge("batch0-bidir-L2-h0", lambda: torch.randn(5, 0, 4), 5, dict(num_layers=2, bidirectional=True),
         hx=lambda: (torch.randn(4, 0, 6), torch.randn(4, 0, 6))),
    Edge("T1-dense", lambda: torch.randn(1, 3, 4), 1, dict(num_layers=2, bidirectional=True)),
    Edge("T1-unbatched-proj", lambda: torch.randn(1, 4), 1, dict(proj_size=3, bidirectional=True)),
    Edge("T1-batch_first", lambda: torch.randn(3, 1, 4), 1, dict(batch_first=True)),
    Edge("noncontiguous-transposed", noncontiguous_seq_first, 5, dict(bidirectional=True)),
    Edge("noncontiguous-strided-features", strided_features, 5),
    Edge("noncontiguous-batch_first-transposed", lambda: torch.randn(5, 3, 4).transpose(0, 1), 5,
         dict(batch_first=True)),
    Edge("expanded-stride0-input", expanded, 5, dict(num_layers=2)),
    Edge("expanded-stride0-states", lambda: torch.randn(5, 3, 4), 5, dict(num_layers=2), hx=expanded_state),
    Edge("packed-one-sequence", lambda: pack_sequence([torch.randn(5, 4)]), 5, dict(bidirectional=True)),
    Edge("packed-one-sequence-length1", lambda: pack_sequence([torch.randn(1, 4)]), 1, dict(num_layers=2)),
    Edge("packed-enforce_sorted", lambda: pack_padded_sequence(torch.randn(5, 3, 4), [5, 3, 2]), 5,
         dict(bidirectional=True)),
    Edge("packed-enforce_sorted-h0", lambda: pack_padded_sequence(torch.randn(5, 3, 4), [5, 5, 1]), 5,
         dict(proj_size=2), hx=lambda: (torch.randn(1, 3, 2), torch.randn(1, 3, 6))),
]


#: Our LSTMs, as factories called with a configured nn.LSTM.
FACTORIES = {"lstm_ref": lstm_ref.LSTM.from_torch, "fast": fast.from_torch}
factories = pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())


def pair(factory: Callable, **kwargs) -> tuple[nn.LSTM, Callable]:
    torch.manual_seed(0)
    reference = nn.LSTM(4, 6, **kwargs)
    return reference, factory(reference)


@factories
@pytest.mark.parametrize("edge", EDGES, ids=[edge.id for edge in EDGES])
def test_edge_case_matches_torch(edge: Edge, factory: Callable) -> None:
    reference, ours = pair(factory, **edge.module)
    torch.manual_seed(1)
    x = edge.make_input()
    hx = edge.hx() if edge.hx else None
    with torch.no_grad():
        assert_lstm_close(ours(x, hx), reference(x, hx), steps=edge.steps)


@factories
def test_input_requiring_grad_gives_torch_outputs_and_gradients(factory: Callable) -> None:
    reference, ours = pair(factory, num_layers=2, bidirectional=True)
    x = torch.randn(5, 3, 4, requires_grad=True)
    h0 = torch.randn(4, 3, 6, requires_grad=True)
    c0 = torch.randn(4, 3, 6, requires_grad=True)
    expected = reference(x, (h0, c0))
    actual = ours(x, (h0, c0))
    assert actual[0].requires_grad
    assert_lstm_close(actual, expected, steps=5)
    for leaf in (x, h0, c0):
        want = torch.autograd.grad(expected[0].sum() + expected[1][1].sum(), leaf, retain_graph=True)[0]
        got = torch.autograd.grad(actual[0].sum() + actual[1][1].sum(), leaf, retain_graph=True)[0]
        assert_close(got, want, steps=5, name="grad")


@factories
@pytest.mark.parametrize("form", ["dense", "packed"])
def test_inference_mode_matches_torch(form: str, factory: Callable) -> None:
    reference, ours = pair(factory, num_layers=2, bidirectional=True, proj_size=3)
    x = torch.randn(5, 3, 4)
    if form == "packed":
        x = pack_padded_sequence(x, torch.tensor([2, 5, 3]), enforce_sorted=False)
    with torch.inference_mode():
        expected = reference(x)
        actual = ours(x)
    assert (actual[0].data if form == "packed" else actual[0]).is_inference()
    assert_lstm_close(actual, expected, steps=5)

"""Truncated backpropagation through time, the way language models are trained.

A poetry model as people write it (embedding -> 3-layer LSTM -> classifier,
sequence-first, ``hidden`` carried from call to call) is trained on a token
stream cut into chunks: before each chunk the carried ``(h, c)`` is detached,
so each chunk's backward stops at the chunk boundary, then one SGD step.
The torch model and the same model with lstm_ref's LSTM must give the same
per-chunk loss, carried state and gradient of every parameter (LSTM,
embedding, classifier), chunk after chunk, within the one tolerance table.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

import lstm_ref
from lstm_ref.compare import TensorReport, compare_tensor
from lstm_ref.conformance import torch_path
from lstm_ref.tolerances import tolerance_for

VOCAB, EMBEDDING, HIDDEN, LAYERS = 30, 8, 16, 3
BATCH, CHUNK, CHUNKS = 4, 8, 4
LEARNING_RATE = 0.5


class PoetryModel(nn.Module):
    """tokens (T, N) -> logits (T*N, vocab), hidden ((L, N, H), (L, N, H))."""

    def __init__(self, lstm: nn.Module) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBEDDING)
        self.lstm = lstm
        self.classifier = nn.Sequential(nn.Linear(HIDDEN, 32), nn.ReLU(), nn.Linear(32, VOCAB))

    def forward(self, tokens: Tensor, hidden: tuple[Tensor, Tensor] | None = None):
        seq_len, batch_size = tokens.shape
        embeds = self.embedding(tokens)                      # (T, N, E)
        output, hidden = self.lstm(embeds, hidden)           # (T, N, H)
        logits = self.classifier(output.reshape(seq_len * batch_size, -1))
        return logits, hidden


def models(dtype: torch.dtype) -> tuple[PoetryModel, PoetryModel]:
    """The torch model and its twin with lstm_ref's LSTM, identical weights."""
    torch.manual_seed(1234)
    reference = PoetryModel(nn.LSTM(EMBEDDING, HIDDEN, num_layers=LAYERS)).to(dtype)
    twin = copy.deepcopy(reference)
    twin.lstm = lstm_ref.LSTM.from_torch(reference.lstm)
    return reference, twin


def token_stream() -> Tensor:
    """(CHUNKS*CHUNK + 1, N) random tokens: inputs are [t], targets [t+1]."""
    generator = torch.Generator().manual_seed(99)
    return torch.randint(0, VOCAB, (CHUNKS * CHUNK + 1, BATCH), generator=generator)


def train_tbptt(model: PoetryModel, path: str, carry: bool = True) -> list[dict[str, Tensor]]:
    """One SGD step per chunk with the carried state detached (``carry=False``: zeros each chunk);
    per chunk: loss, final state and every parameter's gradient."""
    tokens = token_stream()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    records = []
    hidden = None
    for start in range(0, CHUNKS * CHUNK, CHUNK):
        if not carry:
            hidden = None
        elif hidden is not None:
            hidden = tuple(state.detach() for state in hidden)   # truncate: no gradient past the chunk
            assert all(state.grad_fn is None for state in hidden)
        inputs, targets = tokens[start:start + CHUNK], tokens[start + 1:start + CHUNK + 1]
        with torch_path(path):
            logits, hidden = model(inputs, hidden)
            loss = nn.functional.cross_entropy(logits, targets.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
        record = {"loss": loss.detach(), "h": hidden[0].detach(), "c": hidden[1].detach()}
        record.update({f"grad.{name}": p.grad.clone() for name, p in model.named_parameters()})
        records.append(record)
        optimizer.step()
    return records


def compare_chunks(actual: list[dict], expected: list[dict], dtype: torch.dtype) -> list[TensorReport]:
    tolerance = tolerance_for(dtype, "cpu").over(CHUNKS * CHUNK)
    return [compare_tensor(f"chunk{k}.{name}", got[name], want[name], tolerance)
            for k, (got, want) in enumerate(zip(actual, expected, strict=True)) for name in want]


PATHS = [("float32", "onednn"), ("float32", "native"), ("float64", "native")]


@pytest.mark.parametrize("dtype, path", PATHS, ids=[f"{d}-{p}" for d, p in PATHS])
def test_tbptt_chunk_gradients_match_torch(dtype, path):
    reference, twin = models(getattr(torch, dtype))
    expected = train_tbptt(reference, path)
    actual = train_tbptt(twin, path)
    reports = compare_chunks(actual, expected, getattr(torch, dtype))
    assert {r.name for r in reports} >= {f"chunk{CHUNKS - 1}.grad.lstm.weight_hh_l{LAYERS - 1}"}
    failed = [r.describe() for r in reports if not r.passed]
    assert not failed, "\n".join(failed)


def test_carried_state_reaches_the_gradients():
    """The carried (h, c) is used: zeros at each chunk instead change every later chunk's gradient."""
    _, twin = models(torch.float64)
    carried = train_tbptt(copy.deepcopy(twin), "native")
    reset = train_tbptt(copy.deepcopy(twin), "native", carry=False)
    name = "grad.lstm.weight_hh_l0"
    assert torch.equal(carried[0][name], reset[0][name])  # the first chunk starts from zeros either way
    for k in range(1, CHUNKS):
        assert not torch.allclose(carried[k][name], reset[k][name]), f"chunk {k}"

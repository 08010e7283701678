"""A character-level poetry language model: embedding -> 3-layer LSTM -> MLP over the vocabulary.

The model of the poetry-generation tutorials (seq-first input (T, N) of token ids, logits
(T*N, vocab)). Shown here:

* ``lstm_ref.LSTM`` is a drop-in for its ``nn.LSTM``: the same state_dict gives the same logits;
* generating in chunks while carrying ``(h, c)`` from one chunk to the next gives the same
  logits as running the whole sequence at once, which is what makes sampling one token at a
  time (feeding each sampled token back with the carried state) correct.

    python examples/poetry_language_model.py
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

import lstm_ref
from lstm_ref.testing import assert_close

State = tuple[Tensor, Tensor]


class PoetryModel(nn.Module):
    """embedding (vocab -> E) -> LSTM (E -> H, 3 layers) -> Linear-ReLU-Linear-ReLU-Linear (-> vocab)."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_dim: int, num_layers: int = 3) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, num_layers=num_layers)
        self.classifier = nn.Sequential(
            nn.Linear(hidden_dim, 512), nn.ReLU(inplace=True),
            nn.Linear(512, 2048), nn.ReLU(inplace=True),
            nn.Linear(2048, vocab_size),
        )

    def forward(self, tokens: Tensor, hidden: State | None = None) -> tuple[Tensor, State]:
        """tokens (T, N) -> logits (T*N, vocab), (h_n, c_n) each (num_layers, N, H).

        ``hidden=None`` starts from zeros (nn.LSTM's default: no need to build them by hand,
        and built by hand they must be float, shape (num_layers, N, H), on the input's device).
        """
        seq_len, batch_size = tokens.shape
        embeds = self.embedding(tokens)                       # (T, N, E)
        output, hidden = self.lstm(embeds, hidden)            # (T, N, H)
        logits = self.classifier(output.reshape(seq_len * batch_size, -1))
        return logits, hidden


def with_reference_lstm(model: PoetryModel) -> PoetryModel:
    """A copy of ``model`` whose LSTM is ``lstm_ref.LSTM``, loaded from the same state_dict."""
    swapped = copy.deepcopy(model)
    reference = lstm_ref.LSTM(model.lstm.input_size, model.lstm.hidden_size, num_layers=model.lstm.num_layers)
    reference.load_state_dict(model.lstm.state_dict())
    swapped.lstm = reference
    return swapped


def run_in_chunks(model: PoetryModel, tokens: Tensor, chunk: int) -> tuple[Tensor, State]:
    """Feed ``tokens`` (T, N) ``chunk`` steps at a time, carrying (h, c); logits in time order."""
    hidden, pieces = None, []
    for start in range(0, tokens.shape[0], chunk):
        logits, hidden = model(tokens[start:start + chunk], hidden)
        pieces.append(logits.view(-1, tokens.shape[1], logits.shape[-1]))
    return torch.cat(pieces).view(-1, pieces[0].shape[-1]), hidden


def generate(model: PoetryModel, start: Tensor, length: int) -> Tensor:
    """Greedy generation: prime with ``start`` (T0, N), then feed back each argmax token
    with the carried state. Returns (T0 + length, N) token ids."""
    tokens = [start]
    logits, hidden = model(start)
    for _ in range(length):
        next_token = logits.view(-1, start.shape[1], logits.shape[-1])[-1].argmax(-1, keepdim=True).T
        tokens.append(next_token)                              # (1, N)
        logits, hidden = model(next_token, hidden)
    return torch.cat(tokens)


def main() -> None:
    torch.manual_seed(0)
    vocab, steps, batch = 50, 24, 2
    model = PoetryModel(vocab, embedding_dim=16, hidden_dim=32).eval()
    reference = with_reference_lstm(model)
    tokens = torch.randint(vocab, (steps, batch))
    with torch.no_grad():
        logits, (h_n, c_n) = model(tokens)
        ref_logits, (ref_h, ref_c) = reference(tokens)
        print(assert_close(ref_logits, logits, steps=steps, name="logits (lstm_ref vs nn.LSTM)").describe())
        assert_close(ref_h, h_n, steps=steps, name="h_n")
        assert_close(ref_c, c_n, steps=steps, name="c_n")
        for chunk in (1, 5, 8):
            chunked, (h_chunked, _) = run_in_chunks(reference, tokens, chunk)
            print(assert_close(chunked, logits, steps=steps, name=f"logits in chunks of {chunk}").describe())
            assert_close(h_chunked, h_n, steps=steps, name=f"h_n in chunks of {chunk}")
        generated = generate(reference, tokens[:4], length=10)
        assert torch.equal(generated, generate(model, tokens[:4], length=10)), "generations differ"
        print("greedy generation (lstm_ref == nn.LSTM):", generated[:, 0].tolist())


if __name__ == "__main__":
    main()

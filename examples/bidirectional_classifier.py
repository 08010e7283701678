"""A bidirectional LSTM text classifier on a padded, variable-length batch.

Token ids (T, N) padded to the longest sentence, with their lengths, go through an embedding,
``pack_padded_sequence`` (lengths in any order with ``enforce_sorted=False``; lengths on the
CPU) and a bidirectional LSTM. The sentence representation is

    cat(h_n[-2], h_n[-1])    (N, 2H): the last layer's forward state after each sentence's
                             last real token, and its reverse state after reading back to t=0

which equals ``output[length-1, n, :H]`` ‖ ``output[0, n, H:]`` of the padded output. The
seed's ``lstm_out[:, -1, :]`` on seq-first output is a different thing: the last *sentence*'s
outputs at every step, (T, 2H); and even ``lstm_out[-1]`` (the last time step) holds zeros for
every sentence shorter than T and only the first reverse step of the rest.

    python examples/bidirectional_classifier.py
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstm_ref
from lstm_ref.testing import assert_close


class TextClassifier(nn.Module):
    """embedding -> bidirectional LSTM (packed) -> dropout -> Linear(2H -> classes); returns logits."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, num_classes: int,
                 num_layers: int = 2, dropout: float = 0.5) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=num_layers, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * hidden_dim, num_classes)

    def sentence_representation(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (T, N), lengths (N,) -> (N, 2H): last layer, forward final ‖ reverse final."""
        packed = pack_padded_sequence(self.embedding(tokens), lengths.cpu(), enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)                  # h_n: (num_layers * 2, N, H), batch order
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Logits (N, classes); nn.CrossEntropyLoss takes these directly (no softmax before it)."""
        return self.fc(self.dropout(self.sentence_representation(tokens, lengths)))


def padded_outputs(model: TextClassifier, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """The last layer's padded output (T, N, 2H) (zeros past each length) and the lengths."""
    packed = pack_padded_sequence(model.embedding(tokens), lengths.cpu(), enforce_sorted=False)
    output, _ = model.lstm(packed)
    return pad_packed_sequence(output, total_length=tokens.shape[0])


def representation_from_output(output: Tensor, lengths: Tensor, hidden: int) -> Tensor:
    """The same representation read off the padded output: forward half at t = length-1,
    reverse half at t = 0. output (T, N, 2H) -> (N, 2H)."""
    batch = torch.arange(output.shape[1])
    return torch.cat([output[lengths - 1, batch, :hidden], output[0, :, hidden:]], dim=-1)


def seed_last_step(output: Tensor) -> Tensor:
    """What the seed code computes: ``lstm_out[:, -1, :]`` on seq-first output -> (T, 2H)."""
    return output[:, -1, :]


def with_reference_lstm(model: TextClassifier) -> TextClassifier:
    swapped = copy.deepcopy(model)
    swapped.lstm = lstm_ref.LSTM.from_torch(model.lstm)
    return swapped


def make_batch(vocab: int, lengths: list[int], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random token ids in 1..vocab-1, padded with 0 to max(lengths): (T, N), and the lengths."""
    generator = torch.Generator().manual_seed(seed)
    lengths_t = torch.tensor(lengths)
    tokens = torch.randint(1, vocab, (max(lengths), len(lengths)), generator=generator)
    tokens[torch.arange(max(lengths))[:, None] >= lengths_t] = 0
    return tokens, lengths_t


def main() -> None:
    torch.manual_seed(1)
    model = TextClassifier(vocab_size=30, embed_dim=8, hidden_dim=6, num_classes=3).eval()
    reference = with_reference_lstm(model)
    tokens, lengths = make_batch(30, [4, 7, 2, 7, 5])
    steps = tokens.shape[0]
    with torch.no_grad():
        logits = model(tokens, lengths)
        ref_logits = reference(tokens, lengths)
        print(assert_close(ref_logits, logits, steps=steps, name="logits (lstm_ref vs nn.LSTM)").describe())
        representation = model.sentence_representation(tokens, lengths)
        output, _ = padded_outputs(model, tokens, lengths)
        from_output = representation_from_output(output, lengths, hidden=6)
        report = assert_close(from_output, representation, steps=steps, name="h_n representation vs output")
        print(report.describe())
        print(f"seed's lstm_out[:, -1, :] has shape {tuple(seed_last_step(output).shape)}, "
              f"the representation {tuple(representation.shape)}")
        last_step = output[-1]
        differs = (last_step - representation).abs().amax(-1)
        print("lstm_out[-1] vs the representation, max difference per sentence:",
              [round(v, 3) for v in differs.tolist()], "lengths", lengths.tolist())


if __name__ == "__main__":
    main()

"""``MogrifierLSTM``: the Mogrifier LSTM of Melis, Kočiský and Blunsom (ICLR 2020, arXiv:1909.01792).

Before each LSTM step the input x_t and the previous output h_{t-1} gate each
other in ``rounds`` alternating rounds (x: (B, I), h: (B, H_out)):

    x^{-1} = x_t,  h^0 = h_{t-1}
    round i odd:   x^i = 2 * sigmoid(h^{i-1} Q^i^T) * x^{i-2}      Q^i: (I, H_out)
    round i even:  h^i = 2 * sigmoid(x^{i-1} R^i^T) * h^{i-2}      R^i: (H_out, I)

(the value a round does not update is carried over unchanged), then a
standard LSTM step on the mogrified pair, with c_{t-1} untouched:

    h_t, c_t = lstm_cell(x^*, h^*, c_{t-1})     x^*, h^*: the last x^i and h^i

Each round has its own matrix. With ``rank=k`` every matrix is the product of
two thin ones, Q^i = Q^i_left Q^i_right with Q^i_left: (I, k), Q^i_right:
(k, H_out) (R^i likewise, (H_out, k) and (k, I)). There is no bias in the
rounds, as in the paper. With ``rounds=0`` the model is exactly ``nn.LSTM``.

Everything nn.LSTM has is supported: layers (layer k > 0 mogrifies the previous
layer's output, both directions concatenated), bidirectional (each direction
has its own matrices), projections (h^i has H_out = proj_size rows), packed
sequences, unbatched input, batch_first, dropout between layers. The LSTM part
has nn.LSTM's parameter names, so ``MogrifierLSTM.from_torch(torch_lstm, rounds=..., rank=...)``
(or ``load_state_dict(torch_lstm.state_dict(), strict=False)``) imports trained
weights, the round matrices freshly initialised; the rounds' parameters are
named ``mogrifier_{q|r}{i}[_left|_right]_l{k}[_reverse]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lstm_ref.configs import parameter_suffix
from lstm_ref.functional import DirectionWeights, lstm_cell
from lstm_ref.modules import LSTM

#: One direction's rounds: the matrix of each round, (left, right) factors when low rank.
RoundMatrices = Sequence[Tensor | tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class MogrifierWeights(DirectionWeights):
    """One direction's LSTM weights (torch's shapes) and its round matrices, round 1 first."""

    rounds: tuple = ()


def mogrify(x: Tensor, h: Tensor, matrices: RoundMatrices) -> tuple[Tensor, Tensor]:
    """The rounds: ``x, h -> x^*, h^*``; x: (B, I), h: (B, H_out).

    Round i (from 1) with matrix M^i: odd i, x = 2 sigmoid(h M^i^T) * x;
    even i, h = 2 sigmoid(x M^i^T) * h. A low-rank M^i = (left, right) is
    applied as (v right^T) left^T.
    """
    for round_number, matrix in enumerate(matrices, start=1):
        source = h if round_number % 2 == 1 else x
        if isinstance(matrix, tuple):
            left, right = matrix
            gate = 2 * torch.sigmoid(source @ right.T @ left.T)
        else:
            gate = 2 * torch.sigmoid(source @ matrix.T)
        if round_number % 2 == 1:
            x = gate * x
        else:
            h = gate * h
    return x, h


def mogrifier_cell(x: Tensor, h: Tensor, c: Tensor, weights: MogrifierWeights) -> tuple[Tensor, Tensor]:
    """One Mogrifier LSTM step: the rounds, then :func:`lstm_ref.functional.lstm_cell`.

    x: (B, I), h: (B, H_out), c: (B, H) -> h': (B, H_out), c': (B, H)

        x^*, h^* = mogrify(x, h, rounds)
        h', c' = lstm_cell(x^*, h^*, c)       (c enters the step unchanged)
    """
    x_mog, h_mog = mogrify(x, h, weights.rounds)
    return lstm_cell(x_mog, h_mog, c, weights)


class MogrifierLSTM(LSTM):
    """nn.LSTM's interface plus ``rounds`` (r >= 0) and ``rank`` (None: full-rank matrices).

    For each layer and direction, at each step t:

        x^{-1} = x_t, h^0 = h_{t-1}
        x^i = 2 sigmoid(Q^i h^{i-1}) ⊙ x^{i-2}     odd i in 1..r
        h^i = 2 sigmoid(R^i x^{i-1}) ⊙ h^{i-2}     even i in 1..r
        i_t, f_t, g_t, o_t from x^*, h^* (gate order i, f, g, o, nn.LSTM's weights)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t,  h_t = o_t ⊙ tanh(c_t)   (then W_hr h_t with proj_size)

    Q^i: (I_k, H_out), R^i: (H_out, I_k), I_k the layer's input size; with
    rank k, Q^i = Q^i_left (I_k, k) @ Q^i_right (k, H_out). Shapes of input,
    output, h_n and c_n are nn.LSTM's.
    """

    cell = staticmethod(mogrifier_cell)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        rounds: int = 5,
        rank: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)
        for name, value in (("rounds", rounds), ("rank", 1 if rank is None else rank)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}")
        if rank is not None and rank <= 0:
            raise ValueError(f"rank must be None (full rank) or > 0, got {rank}")
        self.rounds = rounds
        self.rank = rank
        factory = {"device": device, "dtype": dtype}
        h_out = proj_size or hidden_size
        num_directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else h_out * num_directions
            for direction in range(num_directions):
                for round_number in range(1, rounds + 1):
                    odd = round_number % 2 == 1
                    rows, cols = (layer_input_size, h_out) if odd else (h_out, layer_input_size)
                    stem = _round_stem(round_number)
                    shapes = ({stem: (rows, cols)} if rank is None
                              else {f"{stem}_left": (rows, rank), f"{stem}_right": (rank, cols)})
                    for name, shape in shapes.items():
                        parameter = nn.Parameter(torch.empty(shape, **factory))
                        self.register_parameter(name + parameter_suffix(layer, direction), parameter)
        self.reset_mogrifier_parameters()

    def reset_parameters(self) -> None:
        """The LSTM part as nn.LSTM, the rounds' matrices as nn.Linear weights."""
        super().reset_parameters()
        self.reset_mogrifier_parameters()

    def reset_mogrifier_parameters(self) -> None:
        """Each round's matrix (or factor) ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as nn.Linear."""
        for name, parameter in self.named_parameters():
            if name.startswith("mogrifier_"):
                bound = 1.0 / math.sqrt(parameter.shape[1])
                nn.init.uniform_(parameter, -bound, bound)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", rounds={self.rounds}" + (f", rank={self.rank}" if self.rank else "")

    def _round_matrices(self, layer: int, direction: int) -> tuple[Tensor | tuple[Tensor, Tensor], ...]:
        """One direction's matrix of each round, round 1 first: (left, right) factors when low rank."""
        suffix = parameter_suffix(layer, direction)

        def matrix(stem: str) -> Tensor | tuple[Tensor, Tensor]:
            if self.rank is None:
                return getattr(self, stem + suffix)
            return getattr(self, f"{stem}_left{suffix}"), getattr(self, f"{stem}_right{suffix}")

        return tuple(matrix(_round_stem(round_number)) for round_number in range(1, self.rounds + 1))

    def _layer_weights(self) -> list[list[MogrifierWeights]]:
        """nn.LSTM's weights of each layer and direction, with that direction's round matrices."""
        return [
            [MogrifierWeights(**vars(weights), rounds=self._round_matrices(layer, direction))
             for direction, weights in enumerate(directions)]
            for layer, directions in enumerate(super()._layer_weights())
        ]


def _round_stem(round_number: int) -> str:
    """A round's parameter name before the factor and layer suffixes: ``mogrifier_q1``, ``mogrifier_r2``, ..."""
    return f"mogrifier_{'q' if round_number % 2 == 1 else 'r'}{round_number}"


def from_torch_rounds0(module: nn.LSTM) -> MogrifierLSTM:
    """Conformance factory (``--lstm-impl lstm_ref.mogrifier:from_torch_rounds0``): zero rounds,
    which must reproduce ``module`` exactly."""
    return MogrifierLSTM.from_torch(module, rounds=0)

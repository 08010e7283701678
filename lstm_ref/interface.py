"""The one adapter between the interface of torch's recurrent modules and the flat computation.

``nn.LSTM.forward`` (``nn.GRU``, ``nn.RNN``) takes a 3-D batch (time- or batch-major),
a 2-D unbatched sequence or a PackedSequence, and an optional initial state: the
tuple ``(h_0, c_0)`` for the LSTM, the tensor ``h_0`` for the GRU and the RNN. Every
recurrent module here (:class:`lstm_ref.LSTM`, :class:`lstm_ref.GRU`, :class:`lstm_ref.RNN`,
:class:`lstm_ref.MogrifierLSTM`, :mod:`lstm_ref.fast`) computes on one form instead,
the packed one:

    data: (rows, I), step t's B_t rows after step t-1's; rows = sum_t B_t
    batch_sizes: [B_0, ..., B_{T-1}], non-increasing (all N for a dense batch)
    state0: h0 (L*D, B_0, H_out) and, for the LSTM, c0 (L*D, B_0, H), rows in data's order

:func:`flatten_call` validates a call as torch does (the same exception types,
messages naming what was expected and what came) and returns it in that form;
:meth:`FlatCall.unflatten` puts the results back into the caller's form. The
module is anything with the attributes and parameter names of torch's modules
(``nn.LSTM`` itself, :class:`lstm_ref.LSTM`, ...), its kind in ``mode`` as torch's
RNNBase has it (``LSTM``, ``GRU``, ``RNN_TANH``, ``RNN_RELU``; ``LSTM`` when absent);
:func:`layer_weights` reads its parameters by those names.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.configs import parameter_suffix
from lstm_ref.functional import DirectionWeights

State = tuple[Tensor, Tensor]


def module_mode(module: nn.Module) -> str:
    """The module's kind, as torch's RNNBase names it: LSTM, GRU, RNN_TANH or RNN_RELU."""
    return getattr(module, "mode", "LSTM")


def module_name(module: nn.Module) -> str:
    """The name torch's messages give the module's kind: LSTM, GRU or RNN."""
    return module_mode(module).split("_")[0]


def layer_weights(module: nn.Module) -> list[list[DirectionWeights]]:
    """``weights[layer][direction]``, read by torch's names (``weight_ih_l{k}[_reverse]``, ...)."""
    names = ["weight_ih", "weight_hh", *(["bias_ih", "bias_hh"] if module.bias else []),
             *(["weight_hr"] if getattr(module, "proj_size", 0) > 0 else [])]
    return [[DirectionWeights(**{name: getattr(module, name + parameter_suffix(layer, direction)) for name in names})
             for direction in range(2 if module.bidirectional else 1)]
            for layer in range(module.num_layers)]


def check_input_tensor(input: Tensor, weight: Tensor, dtype_error: type[Exception] = RuntimeError) -> None:
    """The input lives on the parameters' device and has their dtype (torch raises ValueError
    for a dense LSTM input of another dtype, RuntimeError for packed input and LSTMCell)."""
    if input.device != weight.device:
        raise RuntimeError(
            f"Input and parameter tensors are not at the same device, found input tensor "
            f"at {input.device} and parameter tensor at {weight.device}"
        )
    if input.dtype != weight.dtype:
        raise dtype_error(
            f"input must have the type {weight.dtype}, got type {input.dtype}. "
            f"Convert input: input.to({weight.dtype}), or convert model: model.to({input.dtype})"
        )


def check_state_tensor(name: str, state: Tensor, input: Tensor, weight: Tensor) -> None:
    """An initial state (h_0 or c_0) lives on the input's device and has the parameters' dtype."""
    if state.device != input.device:
        raise RuntimeError(
            f"Input and hidden tensors are not at the same device, found input tensor "
            f"at {input.device} and hidden tensor {name} at {state.device}"
        )
    if state.dtype != weight.dtype:
        raise RuntimeError(
            f"{name} must have the type of the parameters, {weight.dtype}, got type {state.dtype}"
        )


def check_state_pair(hx: object, module: str) -> None:
    """hx is a tuple or list (h_0, c_0) of two tensors."""
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        found = type(hx).__name__
        if isinstance(hx, (tuple, list)):
            found = f"a {found} of length {len(hx)}"
        raise TypeError(f"{module}: Expected hx to be a tuple (h_0, c_0) of two tensors, got {found}")
    for index, state in enumerate(hx):
        if not isinstance(state, Tensor):
            raise TypeError(f"{module}: Expected hx[{index}] to be a Tensor, got {type(state).__name__}")


def _check_state_rank(hx: object, rank: int, mode: str) -> None:
    """The initial state has the input's rank: 3 for a batch (dense or packed), 2 unbatched.
    For the LSTM, hx is the pair (h_0, c_0); for the GRU and the RNN, the tensor h_0."""
    if hx is None:
        return
    kind = "batched 3-D (or packed)" if rank == 3 else "unbatched 2-D"
    if mode != "LSTM":
        if not isinstance(hx, Tensor):
            name = mode.split("_")[0]
            raise TypeError(f"{name}: Expected hx to be a Tensor h_0, got {type(hx).__name__}")
        if hx.dim() != rank:
            raise RuntimeError(f"For {kind} input, hx should also be {rank}-D but got {hx.dim()}-D tensor")
        return
    check_state_pair(hx, "LSTM")
    if hx[0].dim() != rank or hx[1].dim() != rank:  # type: ignore[index]
        raise RuntimeError(
            f"For {kind} input, hx and cx should also be {rank}-D but got "
            f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"  # type: ignore[index]
        )


def _state_tuple(hx: object, mode: str) -> tuple[Tensor, ...]:
    """The caller's hx as a state tuple: (h_0, c_0) for the LSTM, (h_0,) otherwise."""
    return tuple(hx) if mode == "LSTM" else (hx,)  # type: ignore[arg-type]


def _permute_state(state: tuple[Tensor, ...], permutation: Tensor | None) -> tuple[Tensor, ...]:
    """Reorder the batch dimension (dim 1) of each state tensor; identity when None."""
    if permutation is None:
        return state
    return tuple(s.index_select(1, permutation) for s in state)


@dataclass(frozen=True)
class FlatCall:
    """One validated call of a recurrent module in the packed form, and how to give its results back.

    data: (rows, I); batch_sizes: B_t per step; state0: h0 (L*D, B_0, H_out) and, for the
    LSTM, c0 (L*D, B_0, H) (zeros, or the caller's states, never written to). ``packed`` is
    the caller's PackedSequence (None for a dense input); a dense result goes back batch-major
    when ``batch_first``, without its batch dimension when not ``batched``; the final state as
    ``(h_n, c_n)`` for the LSTM (``mode``), the tensor h_n otherwise.
    """

    data: Tensor
    batch_sizes: list[int]
    state0: tuple[Tensor, ...]
    packed: PackedSequence | None
    batch_first: bool
    batched: bool
    mode: str = "LSTM"

    @property
    def h0(self) -> Tensor:
        return self.state0[0]

    @property
    def c0(self) -> Tensor:
        """The LSTM's initial cell state."""
        return self.state0[1]

    def steps(self) -> list[Tensor]:
        """The per-step inputs ``steps[t]: (B_t, I)``, views of data."""
        return list(self.data.split(self.batch_sizes))

    def unflatten(self, output: Tensor, *state: Tensor) -> tuple[Tensor | PackedSequence, State | Tensor]:
        """output (rows, D*H_out) and the final state, h_n (L*D, B_0, H_out) (and c_n (L*D, B_0, H)
        for the LSTM) -> the module's results: a PackedSequence with the input's indices and the
        state in the caller's batch order; or output (T, N, D*H_out) ((N, T, ...) batch_first;
        (T, D*H_out) and states without the batch dimension unbatched). The state is
        ``(h_n, c_n)`` for the LSTM, the tensor ``h_n`` otherwise."""
        if self.packed is not None:
            sorted_indices, unsorted_indices = self.packed.sorted_indices, self.packed.unsorted_indices
            result = PackedSequence(output, self.packed.batch_sizes, sorted_indices, unsorted_indices)
            return result, self._caller_state(_permute_state(state, unsorted_indices))
        output = output.view(len(self.batch_sizes), self.batch_sizes[0], output.shape[-1])  # (T, N, D*H_out)
        if not self.batched:
            return output.squeeze(1), self._caller_state(tuple(s.squeeze(1) for s in state))
        return (output.transpose(0, 1) if self.batch_first else output), self._caller_state(state)

    def _caller_state(self, state: tuple[Tensor, ...]) -> State | Tensor:
        return state if self.mode == "LSTM" else state[0]  # type: ignore[return-value]


def flatten_call(module: nn.Module, input: Tensor | PackedSequence, hx: State | Tensor | None) -> FlatCall:
    """Validate ``module(input, hx)`` as torch's module of that kind does and put it in the packed form."""
    weight = module.weight_ih_l0
    mode = module_mode(module)
    if isinstance(input, PackedSequence):
        packed, batched = input, True
        _check_state_rank(hx, 3, mode)
        data, batch_sizes = _packed_data(input, weight, RuntimeError if mode == "LSTM" else ValueError)
    else:
        packed, batched = None, _check_dense_input(input, module_name(module))
        _check_state_rank(hx, 3 if batched else 2, mode)
        if batched:
            time_major = input.transpose(0, 1) if module.batch_first else input  # (T, N, I)
        else:
            time_major = input.unsqueeze(1)  # (T, 1, I)
        data, batch_sizes = _dense_data(time_major, weight, module_name(module))
    state = None if hx is None else _state_tuple(hx, mode)
    if state is not None and not batched:
        state = tuple(s.unsqueeze(1) for s in state)
    if data.shape[-1] != module.input_size:
        raise RuntimeError(
            f"input.size(-1) must be equal to input_size. Expected {module.input_size}, got {data.shape[-1]}"
        )
    state0 = _initial_states(module, state, data, batch_sizes[0] if batch_sizes else 0,
                             None if packed is None else packed.sorted_indices)
    return FlatCall(data, batch_sizes, state0, packed, module.batch_first and batched, batched, mode)


def _packed_data(input: PackedSequence, weight: Tensor, dtype_error: type[Exception]) -> tuple[Tensor, list[int]]:
    """A PackedSequence's data (rows, I) and batch sizes, checked against the parameters."""
    if input.data.dim() != 2:
        raise RuntimeError(f"input must have 2 dimensions, got {input.data.dim()}")
    check_input_tensor(input.data, weight, dtype_error)
    return input.data, input.batch_sizes.tolist()


def _check_dense_input(input: object, name: str = "LSTM") -> bool:
    """A dense input is a 3-D (batched) or 2-D (unbatched) tensor; returns whether batched."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: Expected input to be a Tensor or PackedSequence, got {type(input).__name__}")
    if input.dim() not in (2, 3):
        raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D instead")
    return input.dim() == 3


def _dense_data(time_major: Tensor, weight: Tensor, name: str = "LSTM") -> tuple[Tensor, list[int]]:
    """(T, N, I) -> data (T*N, I), batch sizes [N] * T; the input checked against the parameters."""
    check_input_tensor(time_major, weight, ValueError)
    steps, batch, features = time_major.shape
    if steps == 0:
        raise RuntimeError(f"{name}: Expected a sequence of length at least 1, got length 0")
    return time_major.reshape(steps * batch, features), [batch] * steps


def _initial_states(
    module: nn.Module, state: tuple[Tensor, ...] | None, data: Tensor, batch: int, sorted_indices: Tensor | None
) -> tuple[Tensor, ...]:
    """h_0 (L*D, B, H_out) and, for the LSTM, c_0 (L*D, B, H): zeros, or the caller's (checked,
    then permuted into the packed order by ``sorted_indices``)."""
    layers = module.num_layers * (2 if module.bidirectional else 1)
    lstm = module_mode(module) == "LSTM"
    h_out = (getattr(module, "proj_size", 0) or module.hidden_size)
    shapes = [(layers, batch, h_out)] + ([(layers, batch, module.hidden_size)] if lstm else [])
    if state is None:
        return tuple(data.new_zeros(shape) for shape in shapes)
    for index, (tensor, shape) in enumerate(zip(state, shapes, strict=True)):
        if tensor.shape != shape:
            hidden = f"hidden[{index}]" if lstm else "hidden"
            raise RuntimeError(f"Expected {hidden} size {shape}, got {list(tensor.shape)}")
        check_state_tensor(f"hx[{index}]" if lstm else "hx", tensor, data, module.weight_ih_l0)
    return _permute_state(state, sorted_indices)

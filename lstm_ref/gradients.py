"""Gradient conformance: the candidate's backward pass against torch.nn.LSTM's.

For one configuration both sides compute the scalar

    loss = sum(w_out * output) + sum(w_h * h_n) + sum(w_c * c_n)

(no c_n term and no c0 for nn.GRU and nn.RNN, which have no cell state) with the same
random weights ``w_*`` (drawn from the configuration's own seed),
and its gradient with respect to the input (the packed data of a
PackedSequence), h0, c0 and every parameter. torch's side runs on the
configuration's torch path (oneDNN or native on CPU, cuDNN on CUDA); the
candidate's side is autograd through whatever the candidate computes, with
its input and states in the configuration's memory layout.

Gradients are compared with the forward pass's tolerance row (one table, see
:mod:`lstm_ref.tolerances`) and reported as ``grad.input``, ``grad.h0``,
``grad.c0`` and ``grad.<parameter name>``. A parameter's gradient is taken
from the candidate's own parameter of torch's name when the candidate is an
``nn.Module`` that has one, else from the parameter of the ``nn.LSTM`` handed
to the factory: whatever the candidate's type, the harness knows those. A
parameter no gradient reaches fails (a detached bias); when no parameter at
all is reached (the candidate copied the weights into storage of its own) the
parameter gradients cannot be compared and the configuration is *unsupported*,
never passed. So is a candidate whose outputs carry no autograd history.

A second call is a training step: the same data, h0 and c0 *not* requiring
grad, the parameters requiring it, as in ``loss(lstm(batch)).backward()``.
Its output, h_n and c_n and its parameter gradients are compared too
(reported as ``training.output``, ``training.grad.weight_ih_l0``, ...): a
kernel may take another path when only the weights need gradients, and the
forward check, run under ``no_grad``, never takes it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.candidates import Factory, load_factory
from lstm_ref.compare import TensorReport, compare_tensor, result_form, split_result, state_names
from lstm_ref.configs import Config
from lstm_ref.conformance import (
    FAILED,
    PASSED,
    SKIPPED,
    UNSUPPORTED,
    Inputs,
    Result,
    build_reference,
    call_hx,
    cuda_no_tf32,
    cuda_skip_reason,
    make_inputs,
    reproducible,
    seed_for,
    torch_path,
)
from lstm_ref.tolerances import tolerance_for

NO_HISTORY = "no autograd history: output, h_n and c_n do not require grad"
UNUSABLE_OUTPUTS = "the candidate's outputs cannot be differentiated against torch's"
#: The start of the message of a configuration whose parameter gradients could not be compared.
PARAMETERS_UNREACHED = "parameter gradients not comparable"
MAKE_PARAMETERS_COMPARABLE = (
    "to make parameter gradients comparable, compute with the parameters of the nn.LSTM handed to "
    "the factory, or return an nn.Module whose parameters have torch's names (weight_ih_l0, ...)")


class _Leaves:
    """Leaf tensors that require grad, in the configuration's memory layout: the input (or
    packed data), h0 and c0. ``received`` is what the call is given (for the in-place check)."""

    def __init__(self, inputs: Inputs, laid_out: bool = True) -> None:
        assert inputs.hx is not None, "gradient configurations always carry initial states"
        self.received = inputs.laid_out() if laid_out else inputs.clone()
        source = self.received.input
        if isinstance(source, PackedSequence):
            self.input_leaf = source.data.detach().requires_grad_(True)
            self.input: Tensor | PackedSequence = source._replace(data=self.input_leaf)
        else:
            self.input_leaf = source.detach().requires_grad_(True)
            self.input = self.input_leaf
        # (h0, c0) for the LSTM, (h0,) for the GRU and the RNN
        self.states = tuple(state.detach().requires_grad_(True) for state in self.received.hx)  # type: ignore[union-attr]
        self.received = replace(self.received, input=self.input, hx=self.states)

    @property
    def hx(self) -> tuple[Tensor, ...] | Tensor:
        """The states as torch's module of the kind takes them: (h0, c0), or the tensor h0."""
        return call_hx(self.states)  # type: ignore[return-value]

    def named(self) -> list[tuple[str, Tensor]]:
        return [("input", self.input_leaf), *zip(("h0", "c0"), self.states)]


def _flat(expected: tuple) -> list[Tensor]:
    """torch's result as [output (its packed data), h_n, c_n] ([output, h_n]: GRU, RNN)."""
    output, state = split_result(expected, state_names(expected))
    return [output.data if isinstance(output, PackedSequence) else output, *state]  # type: ignore[union-attr]


def loss_weights(config: Config, expected: tuple, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """``w_out, w_h, w_c ~ N(0, 1)``, shaped like torch's output (its packed data), h_n and c_n."""
    generator = torch.Generator().manual_seed(seed_for(config, seed) + 2)
    return tuple(
        torch.randn(t.shape, generator=generator, dtype=torch.float64).to(device=t.device, dtype=t.dtype)
        for t in _flat(expected)
    )


def _unpack(result: object, expected: tuple) -> tuple[list[Tensor], list[TensorReport]]:
    """The candidate's (output data, h_n, c_n), or reports saying why they cannot be used."""
    names = state_names(expected)
    try:
        output, states = split_result(result, names)
    except (TypeError, ValueError):
        got = type(result).__name__
        return [], [TensorReport("result", False, f"expected {result_form(names)}, got {got}")]
    out_expected, states_expected = split_result(expected, names)
    if isinstance(out_expected, PackedSequence):
        if not isinstance(output, PackedSequence):
            got = type(output).__name__
            return [], [TensorReport("output", False, f"expected a PackedSequence, got {got}")]
        output, out_expected = output.data, out_expected.data
    problems = []
    pairs = (("output", output, out_expected), *zip(names, states, states_expected))
    for name, got, want in pairs:
        if not isinstance(got, Tensor):
            problems.append(TensorReport(name, False, f"expected a Tensor, got {type(got).__name__}"))
        elif got.shape != want.shape:
            shapes = f"shape {list(got.shape)}, expected {list(want.shape)}"
            problems.append(TensorReport(name, False, shapes))
    return [output, *states], problems


def weighted_loss(tensors: list[Tensor], weights: tuple[Tensor, ...]) -> Tensor:
    """``sum_k sum(w_k * t_k)``; tensors without autograd history contribute a constant."""
    return sum((tensor * weight).sum() for tensor, weight in zip(tensors, weights, strict=True))  # type: ignore[return-value]


def _gradients(loss: Tensor, named: list[tuple[str, Tensor]], materialize: bool = False) -> dict[str, Tensor | None]:
    """d loss / d tensor for each named tensor; for one the loss does not reach, None (or zeros)."""
    grads = torch.autograd.grad(loss, [t for _, t in named], allow_unused=True, materialize_grads=materialize)
    return {name: grad for (name, _), grad in zip(named, grads, strict=True)}


def candidate_parameters(candidate: object, given: nn.Module) -> list[tuple[str, Tensor]]:
    """Each of torch's parameter names with the tensor whose gradient is the candidate's.

    For an ``nn.Module`` candidate, its own parameter of that name (an exact match, else a
    unique ``*.name`` suffix: a wrapper holding the LSTM as a submodule); otherwise, and for
    names the candidate module lacks, the parameter of ``given``, the module handed to the factory.
    """
    own = dict(candidate.named_parameters()) if isinstance(candidate, nn.Module) else {}
    matched = []
    for name, handed in given.named_parameters():
        found = own.get(name)
        if found is None:
            suffixed = [p for n, p in own.items() if n.endswith("." + name)]
            found = suffixed[0] if len(suffixed) == 1 else handed
        matched.append((name, found))
    return matched


def _tagged(result: Result) -> Result:
    """Mark ``result`` as a gradient verdict (``Result.check``), for tables and JSON that mix both checks."""
    result.check = "gradients"
    return result


def _time_axis(inputs: Inputs, config: Config) -> dict:
    """How :func:`compare_tensor` finds the time steps of a tensor shaped like the input (its
    gradient, the output): a packed input's batch_sizes, else the configuration's time dimension."""
    if isinstance(inputs.input, PackedSequence):
        return {"batch_sizes": inputs.input.batch_sizes}
    return {"time_dim": config.time_dim}


def _training_step(candidate: object, inputs: Inputs, expected: tuple, weights: tuple[Tensor, ...],
                   expected_grads: dict[str, Tensor], parameters: list[tuple[str, Tensor]], tolerance,
                   config: Config) -> list[TensorReport]:
    """Call the candidate on fresh copies of the data that do not require grad, with grad
    enabled; reports on its output, h_n, c_n and on the gradients reaching ``parameters``
    (torch's are the same as with every leaf requiring grad)."""
    data = inputs.laid_out()
    with torch.enable_grad(), cuda_no_tf32(config):
        result = candidate(data.input, call_hx(data.hx))
        tensors, problems = _unpack(result, expected)
        if problems:
            return [replace(problem, name=f"training.{problem.name}") for problem in problems]
        loss = weighted_loss(tensors, weights)
        grads = (_gradients(loss, parameters) if loss.requires_grad and parameters
                 else dict.fromkeys(name for name, _ in parameters))  # no history: none reached
    reports = inputs.modified_in(data)
    for name, actual, want in zip(("output", *state_names(expected)), tensors, _flat(expected), strict=True):
        reports.append(compare_tensor(f"training.{name}", actual.detach(), want, tolerance,
                                      **(_time_axis(inputs, config) if name == "output" else {})))
    for name, grad in grads.items():
        if grad is not None:
            reports.append(compare_tensor(f"training.grad.{name}", grad, expected_grads[name], tolerance))
        elif expected_grads[name].any():
            reports.append(TensorReport(f"training.grad.{name}", False, "no gradient reached this parameter"))
    return reports


@reproducible
def check_gradients(config: Config, factory: Factory | str | None = None, seed: int = 0) -> Result:
    """Compare the candidate's gradients with torch.nn.LSTM's on ``config``.

    d loss / d {input, h0, c0, parameters} for ``loss`` of :func:`weighted_loss`,
    torch's computed on ``config.torch_path``, each compared with
    ``tolerance_for(dtype, device).over(seq_len)``.
    """
    if factory is None or isinstance(factory, str):
        factory = load_factory(factory)[1]
    skip = cuda_skip_reason(config)
    if skip:
        return _tagged(Result(config, SKIPPED, message=skip))
    if not config.initial_state:
        raise ValueError(f"{config.id}: gradient configurations need initial_state=True (for h0, c0)")
    started = time.perf_counter()

    def finish(status: str, reports: list[TensorReport] | None = None, message: str = "") -> Result:
        return _tagged(Result(config, status, reports or [], message, time.perf_counter() - started))

    reference = build_reference(config, seed)
    inputs = make_inputs(config, seed)
    expected_leaves = _Leaves(inputs, laid_out=False)
    with torch.enable_grad(), torch_path(config.torch_path):
        expected = reference(expected_leaves.input, expected_leaves.hx)
        weights = loss_weights(config, expected, seed)
        expected_flat = _flat(expected)
        expected_grads = _gradients(weighted_loss(expected_flat, weights),
                                    expected_leaves.named() + list(reference.named_parameters()), materialize=True)

    given = copy.deepcopy(reference)
    try:
        candidate = factory(given)
        leaves = _Leaves(inputs)
        with torch.enable_grad(), cuda_no_tf32(config):
            result = candidate(leaves.input, leaves.hx)
            tensors, problems = _unpack(result, expected)
            if problems:
                return finish(FAILED, inputs.modified_in(leaves.received) + problems, UNUSABLE_OUTPUTS)
            loss = weighted_loss(tensors, weights)
            if not loss.requires_grad:
                return finish(UNSUPPORTED, message=NO_HISTORY)
            parameters = candidate_parameters(candidate, given)
            frozen = {name for name, p in parameters if not p.requires_grad}
            actual_grads = _gradients(loss, leaves.named() + [(n, p) for n, p in parameters if n not in frozen])
    except NotImplementedError as error:
        return finish(UNSUPPORTED, message=str(error) or "NotImplementedError")
    except Exception as error:  # a candidate that raises, forward or backward, fails the configuration
        return finish(FAILED, message=f"candidate raised {type(error).__name__}: {error}")

    tolerance = tolerance_for(config.dtype, config.device).over(config.seq_len)
    reports = inputs.modified_in(leaves.received)
    message = reports[0].problem if reports else ""
    parameter_names = [name for name, _ in given.named_parameters()]
    if all(actual_grads.get(name) is None for name in parameter_names):
        message = message or (f"{PARAMETERS_UNREACHED}: no gradient reached a parameter of the nn.LSTM "
                              f"handed to the factory or of the candidate module; {MAKE_PARAMETERS_COMPARABLE}")
        actual_grads = {name: grad for name, grad in actual_grads.items() if name not in parameter_names}
        parameter_names = []
    try:
        training = _training_step(candidate, inputs, expected, weights, expected_grads,
                                  [(n, p) for n, p in parameters if n in parameter_names and n not in frozen],
                                  tolerance, config)
    except Exception as error:
        return finish(FAILED, reports, f"candidate raised {type(error).__name__} in a training step (data, h0 "
                                       f"and c0 without grad): {error}")
    for name, actual in actual_grads.items():
        if actual is None:
            actual = torch.zeros_like(expected_grads[name])
            if name in parameter_names and expected_grads[name].any():
                reports.append(TensorReport(f"grad.{name}", False, "no gradient reached this parameter "
                                            "(detached, or not used in the computation)"))
                continue
        timing = _time_axis(inputs, config) if name == "input" else {}
        reports.append(compare_tensor(f"grad.{name}", actual, expected_grads[name], tolerance, **timing))
    reports += [TensorReport(f"grad.{name}", False, "parameter has requires_grad=False") for name in sorted(frozen)]
    reports += training
    if not all(r.passed for r in reports):
        return finish(FAILED, reports, message)
    return finish(UNSUPPORTED if not parameter_names else PASSED, reports, message)

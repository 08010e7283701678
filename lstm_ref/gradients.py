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

With ``Config.backward_passes`` = k > 1 the first call is k calls on k batches (pass j draws
its inputs with base seed ``seed + j - 1``), differentiated with ``.backward()`` into the
parameters' ``.grad``, never zeroed in between: forward 1, backward 1; forward 2, ..., forward
k; backward k, ..., backward 2 (:func:`_accumulated_passes`). The parameters' ``.grad`` is then
compared with the sum of torch's k gradients (``grad.weight_ih_l0``, ...), each pass's input and
state gradients with torch's (``grad.input [pass 2]``, ...).

Training-mode dropout with 0 < p < 1 is judged by replay: torch's call and the candidate's each
run with torch's generator seeded alike (:func:`lstm_ref.conformance.dropout_replay`); a
candidate drawing its masks as torch does (docs/dropout.md) gets torch's masks. One that draws
them otherwise says so with the attribute ``draws_own_dropout_masks`` (its reason) and is
unsupported, never passed, after a check that needs no replay (:func:`_judged_without_replay`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.candidates import Factory, load_factory
from lstm_ref.compare import TensorReport, compare_tensor, result_form, split_result, state_names
from lstm_ref.configs import Config, parameter_suffix
from lstm_ref.conformance import (
    DROPOUT_NOT_REPLAYED,
    FAILED,
    OWN_DROPOUT_MASKS,
    PASSED,
    SKIPPED,
    UNSUPPORTED,
    UNTESTABLE,
    Inputs,
    Result,
    build_reference,
    call_hx,
    cuda_no_tf32,
    cuda_skip_reason,
    dropout_replay,
    make_inputs,
    matched_parameters,
    replay_seed,
    reproducible,
    seed_for,
    torch_path,
)
from lstm_ref.half import autocast_for, gradient_criterion, judged_against_float64, torch_cannot_run
from lstm_ref.tolerances import Tolerance, tolerance_for

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
    return [(name, handed if own is None else own)
            for (name, handed), own in zip(given.named_parameters(), matched_parameters(candidate, given))]


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


@dataclass
class _Pass:
    """One call and backward pass of torch's module: its inputs (drawn with base seed
    ``seed + index``), torch's results, the loss weights, torch's gradients (leaves and
    parameters) and the seed its dropout masks are replayed from."""

    inputs: Inputs
    expected: tuple
    weights: tuple[Tensor, ...]
    grads: dict[str, Tensor]
    replay_seed: int


def _torch_pass(config: Config, reference: nn.Module, seed: int, index: int) -> _Pass:
    """torch's pass ``index`` (0, 1, ...) of ``config``: call, loss, gradients."""
    pass_seed = seed + index
    inputs = make_inputs(config, pass_seed)
    leaves = _Leaves(inputs, laid_out=False)
    replay = replay_seed(config, pass_seed)
    with torch.enable_grad(), torch_path(config.torch_path), dropout_replay(config, replay), autocast_for(config):
        expected = reference(leaves.input, leaves.hx)
        weights = loss_weights(config, expected, pass_seed)
        grads = _gradients(weighted_loss(_flat(expected), weights),
                           leaves.named() + list(reference.named_parameters()), materialize=True)
    return _Pass(inputs, expected, weights, grads, replay)


def _accumulated_passes(candidate: object, passes: list[_Pass], first_loss: Tensor, first_leaves: _Leaves,
                        parameters: list[tuple[str, Tensor]], config: Config,
                        tolerance) -> tuple[dict[str, Tensor | None], list[TensorReport]]:
    """The candidate's side of ``config.backward_passes`` = k > 1 passes, gradients through
    ``.backward()`` into ``.grad`` (never zeroed in between), in this order:

        forward 1, backward 1; forward 2, ..., forward k; backward k, ..., backward 2

    The first pair is one plain accumulation step; then k - 1 graphs are alive at once and
    are differentiated last-in first-out, as the backward of a loss summed over them would.
    A kernel that overwrites ``.grad``, zeroes it on a new forward, or keeps its saved
    activations in a workspace the next forward reuses gets a wrong sum. Pass ``j`` has its own
    inputs (packed: other lengths) and its own dropout masks. Returns the parameters' ``.grad``
    after the last pass (and pass 1's leaf gradients) by name, and a report on each later pass's
    input, h0 and c0 gradients (``grad.input [pass 2]``, ...).
    """
    for _, parameter in parameters:
        parameter.grad = None
    first_loss.backward()
    later = []
    for step in passes[1:]:
        leaves = _Leaves(step.inputs)
        with dropout_replay(config, step.replay_seed), autocast_for(config):
            result = candidate(leaves.input, leaves.hx)
        tensors, problems = _unpack(result, step.expected)
        if problems:
            raise ValueError(f"pass {len(later) + 2}: {problems[0].name}: {problems[0].problem}")
        later.append((step, leaves, weighted_loss(tensors, step.weights)))
    reports = []
    for number, (step, leaves, loss) in reversed(list(enumerate(later, start=2))):
        loss.backward()
        reports += step.inputs.modified_in(leaves.received)
        for name, leaf in leaves.named():
            timing = _time_axis(step.inputs, config) if name == "input" else {}
            actual = torch.zeros_like(step.grads[name]) if leaf.grad is None else leaf.grad
            reports.append(compare_tensor(f"grad.{name} [pass {number}]", actual, step.grads[name], tolerance,
                                          **timing))
    grads = {name: leaf.grad for name, leaf in first_leaves.named()}
    grads.update((name, parameter.grad) for name, parameter in parameters)
    return grads, reports


#: The probe layer's gate biases (i, f, o pinned at 1, 0, 1) and the gain of its g gate.
PROBE_BIAS, PROBE_GAIN = 40.0, 0.5


def _probe(config: Config, seed: int) -> nn.LSTM:
    """``config``'s module whose second layer shows the input it receives, element by element:
    W_hh = 0, gate biases +40, -40, 0, +40 (i = o = 1, f = 0 to the last bit of float64), and
    direction d's g gate reading feature d*H + j of the input with gain a = PROBE_GAIN alone,
    so that its output is ``phi(u) = tanh(tanh(a * u))`` of its input u, feature by feature."""
    module = build_reference(config, seed)
    hidden = config.hidden_size
    features = torch.arange(hidden, device=config.device)
    with torch.no_grad():
        for direction in range(config.num_directions):
            suffix = parameter_suffix(1, direction)
            for name in ("weight_ih", "weight_hh", "bias_hh"):
                getattr(module, name + suffix).zero_()
            getattr(module, "weight_ih" + suffix)[2 * hidden + features, direction * hidden + features] = PROBE_GAIN
            getattr(module, "bias_ih" + suffix).copy_(torch.tensor([PROBE_BIAS, -PROBE_BIAS, 0.0, PROBE_BIAS])
                                                      .repeat_interleave(hidden))
    return module


def _layer(module: nn.LSTM, layer: int) -> nn.LSTM:
    """Layer ``layer`` of ``module`` as a one-layer nn.LSTM of its own (parameters copied)."""
    single = nn.LSTM(module.weight_ih_l0.shape[1] if layer == 0 else module.hidden_size * (1 + module.bidirectional),
                     module.hidden_size, 1, bias=module.bias, batch_first=module.batch_first,
                     bidirectional=module.bidirectional, device=module.weight_ih_l0.device,
                     dtype=module.weight_ih_l0.dtype)
    with torch.no_grad():
        for name, parameter in single.named_parameters():
            parameter.copy_(getattr(module, name.replace("_l0", f"_l{layer}")))
    return single


def gradient_tolerance(tolerance: object, name: str, expected: Tensor, inputs: Inputs, passes: int = 1) -> object:
    """The tolerance for d loss / d ``name``: a parameter's gradient is a sum over every row (a
    time step of a sequence) of each of ``passes`` backward passes, so it gets
    :meth:`Tolerance.summed_over` those rows at the scale of its largest element; the input's, h0's
    and c0's gradients keep ``tolerance`` (so does a half-precision criterion)."""
    if name in ("input", "h0", "c0") or not isinstance(tolerance, Tolerance) or not expected.numel():
        return tolerance
    data = inputs.input.data if isinstance(inputs.input, PackedSequence) else inputs.input
    rows = data.numel() // max(data.shape[-1], 1) * passes
    return tolerance.summed_over(rows, float(expected.detach().abs().max()), expected.dtype)


def _judged_without_replay(config: Config, factory: Factory, seed: int, reason: str) -> tuple:
    """(status, reports, message) for a candidate that draws its own dropout masks: never
    passed; failed where what it computes is no dropout of torch's kind whatever the masks.

    On 2-layer LSTMs with biases and no projection, the candidate runs :func:`_probe` of the
    configuration. With y the first layer's output (torch's), every element of the second
    layer's input must be 0 or y / (1 - p), so every element of the output is 0 or
    ``phi(y / (1 - p))``: the nearer one names the candidate's mask m. Then, with that mask,
    torch computes output, h_n, c_n and every gradient of the loss (the mask a constant),
    compared as usual (``dropout.output``, ``dropout.grad.input``, ...), and the kept fraction
    is checked against 1 - p (within 5 standard deviations of the binomial count, on the
    elements where the two values differ by more than the tolerance allows). Scaling by 1 or
    by 1 - p, dropping with probability 1 - p, or a backward that ignores the mask all fail.
    """
    message = f"{DROPOUT_NOT_REPLAYED}: {reason}"
    if config.num_layers != 2 or config.proj_size or not config.bias or config.mode != "LSTM":
        return UNSUPPORTED, [], (f"{message}; no check without replay here "
                                 "(it needs 2 LSTM layers, biases, no projection)")
    p, directions = config.dropout, config.num_directions
    probe, inputs = _probe(config, seed), make_inputs(config, seed)
    first, second = _layer(probe, 0), _layer(probe, 1)
    given = copy.deepcopy(probe)
    candidate = factory(given)
    leaves = _Leaves(inputs)
    with torch.enable_grad(), cuda_no_tf32(config):
        result = candidate(leaves.input, leaves.hx)
    with torch.no_grad(), torch_path(config.torch_path):
        reference = first(inputs.clone().input, tuple(state[:directions] for state in inputs.hx))[0]
    reference = reference.data if isinstance(reference, PackedSequence) else reference  # y, layer 1's output
    kept_value = torch.tanh(torch.tanh(PROBE_GAIN * reference / (1 - p)))            # phi(y / (1 - p))
    output = result[0] if isinstance(result, tuple) and result else None
    output = output.data if isinstance(output, PackedSequence) else output
    if not isinstance(output, Tensor) or output.shape != reference.shape:
        return FAILED, [TensorReport("dropout.output", False, "not shaped like torch's output")], message
    mask = ((output.detach() - kept_value).abs() < output.detach().abs()).to(reference.dtype)

    expected_leaves = _Leaves(inputs, laid_out=False)
    states = expected_leaves.states
    with torch.enable_grad(), torch_path(config.torch_path):
        out0, (h0_n, c0_n) = first(expected_leaves.input, tuple(s[:directions] for s in states))
        dropped = (out0.data if isinstance(out0, PackedSequence) else out0) * mask / (1 - p)
        out1, (h1_n, c1_n) = second(out0._replace(data=dropped) if isinstance(out0, PackedSequence) else dropped,
                                    tuple(s[directions:] for s in states))
        expected = (out1, (torch.cat([h0_n, h1_n]), torch.cat([c0_n, c1_n])))
        weights = loss_weights(config, expected, seed)
        parameters = [*first.named_parameters(), *((n.replace("_l0", "_l1"), q) for n, q in second.named_parameters())]
        expected_grads = _gradients(weighted_loss(_flat(expected), weights), expected_leaves.named() + parameters,
                                    materialize=True)
    tensors, problems = _unpack(result, expected)
    if problems:
        return FAILED, [replace(r, name=f"dropout.{r.name}") for r in problems], message
    with torch.enable_grad():
        loss = weighted_loss(tensors, weights)
        if not loss.requires_grad:
            return UNSUPPORTED, [], f"{message}; {NO_HISTORY}"
        actual_grads = _gradients(loss, leaves.named() + candidate_parameters(candidate, given))
    tolerance = tolerance_for(config.dtype, config.device).over(config.seq_len)
    reports = [compare_tensor(f"dropout.{name}", actual.detach(), want, tolerance)
               for name, actual, want in zip(("output", "h_n", "c_n"), tensors, _flat(expected), strict=True)]
    for name, actual in actual_grads.items():
        if actual is None and expected_grads[name].any():
            reports.append(TensorReport(f"dropout.grad.{name}", False, "no gradient reached it"))
        elif actual is not None:
            reports.append(compare_tensor(f"dropout.grad.{name}", actual, expected_grads[name],
                                          gradient_tolerance(tolerance, name, expected_grads[name], inputs)))
    informative = (kept_value.abs() > 100 * (tolerance.atol + tolerance.rtol * kept_value.abs())).cpu()
    count, kept = int(informative.sum()), int(mask.cpu()[informative].sum())
    mean, spread = count * (1 - p), 5 * (count * p * (1 - p)) ** 0.5 + 1
    plausible = abs(kept - mean) <= spread
    reports.append(TensorReport("dropout.kept_fraction", plausible, "" if plausible else (
        f"{kept} of {count} elements kept, expected {mean:.0f} +- {spread:.0f} for p = {p}")))
    status = FAILED if not all(r.passed for r in reports) else UNSUPPORTED
    return status, reports, message + "; the check without replay (scaling, kept fraction, gradients) " + (
        "failed" if status == FAILED else "passed")


def _training_step(candidate: object, inputs: Inputs, expected: tuple, weights: tuple[Tensor, ...],
                   expected_grads: dict[str, Tensor], parameters: list[tuple[str, Tensor]], tolerance,
                   config: Config, replay: int) -> list[TensorReport]:
    """Call the candidate on fresh copies of the data that do not require grad, with grad
    enabled (dropout masks replayed from ``replay``); reports on its output, h_n, c_n and on
    the gradients reaching ``parameters`` (torch's are the same as with every leaf requiring grad)."""
    data = inputs.laid_out()
    with torch.enable_grad(), cuda_no_tf32(config), dropout_replay(config, replay), autocast_for(config):
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
            reports.append(compare_tensor(f"training.grad.{name}", grad, expected_grads[name],
                                          gradient_tolerance(tolerance, name, expected_grads[name], inputs)))
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
    try:
        passes = [_torch_pass(config, reference, seed, index) for index in range(config.backward_passes)]
    except RuntimeError as error:  # torch refuses it: nothing to judge the candidate against
        return finish(UNTESTABLE, message=torch_cannot_run(error))
    inputs, expected, weights = passes[0].inputs, passes[0].expected, passes[0].weights
    expected_grads = dict(passes[0].grads)  # the leaves' of pass 1, the parameters' summed over the passes
    for name, _ in reference.named_parameters():
        expected_grads[name] = sum((step.grads[name] for step in passes[1:]), expected_grads[name])

    tolerance = (gradient_criterion(config, reference, inputs, weights) if judged_against_float64(config)
                 else tolerance_for(config.dtype, config.device).over(config.seq_len))
    given = copy.deepcopy(reference)
    later_passes: list[TensorReport] = []
    try:
        candidate = factory(given)
        own_masks = config.dropout_replayed and getattr(candidate, OWN_DROPOUT_MASKS, None)
        if own_masks:
            return finish(*_judged_without_replay(config, factory, seed, str(own_masks)))
        leaves = _Leaves(inputs)
        with torch.enable_grad(), cuda_no_tf32(config), dropout_replay(config, passes[0].replay_seed), \
                autocast_for(config):
            result = candidate(leaves.input, leaves.hx)
            tensors, problems = _unpack(result, expected)
            if problems:
                return finish(FAILED, inputs.modified_in(leaves.received) + problems, UNUSABLE_OUTPUTS)
            loss = weighted_loss(tensors, weights)
            if not loss.requires_grad:
                return finish(UNSUPPORTED, message=NO_HISTORY)
            parameters = candidate_parameters(candidate, given)
            frozen = {name for name, p in parameters if not p.requires_grad}
        with torch.enable_grad(), cuda_no_tf32(config):
            if config.backward_passes == 1:
                actual_grads = _gradients(loss, leaves.named() + [(n, p) for n, p in parameters if n not in frozen])
            else:
                actual_grads, later_passes = _accumulated_passes(
                    candidate, passes, loss, leaves, [(n, p) for n, p in parameters if n not in frozen], config,
                    tolerance)
    except NotImplementedError as error:
        return finish(UNSUPPORTED, message=str(error) or "NotImplementedError")
    except Exception as error:  # a candidate that raises, forward or backward, fails the configuration
        return finish(FAILED, message=f"candidate raised {type(error).__name__}: {error}")

    reports = inputs.modified_in(leaves.received)
    message = reports[0].problem if reports else ""
    parameter_names = [name for name, _ in given.named_parameters()]
    if all(actual_grads.get(name) is None for name in parameter_names):
        message = message or (f"{PARAMETERS_UNREACHED}: no gradient reached a parameter of the nn.LSTM "
                              f"handed to the factory or of the candidate module; {MAKE_PARAMETERS_COMPARABLE}")
        actual_grads = {name: grad for name, grad in actual_grads.items() if name not in parameter_names}
        parameter_names = []
    try:
        training = _training_step(candidate, inputs, expected, weights, passes[0].grads,
                                  [(n, p) for n, p in parameters if n in parameter_names and n not in frozen],
                                  tolerance, config, passes[0].replay_seed)
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
        reports.append(compare_tensor(f"grad.{name}", actual, expected_grads[name], gradient_tolerance(
            tolerance, name, expected_grads[name], inputs, config.backward_passes), **timing))
    reports += [TensorReport(f"grad.{name}", False, "parameter has requires_grad=False") for name in sorted(frozen)]
    reports += later_passes + training
    if not all(r.passed for r in reports):
        return finish(FAILED, reports, message)
    return finish(UNSUPPORTED if not parameter_names else PASSED, reports, message)

"""Run one configuration: torch.nn.LSTM against a candidate, tensor by tensor.

The single place where a configuration becomes a module, inputs, two runs and
a verdict. The pytest plugin and ``lstm-ref check`` both call
:func:`check_forward`; nothing else builds inputs or compares outputs.

Every configuration seeds its own generator from ``(seed, config.seed_key)``, so a
result does not depend on which other configurations ran, in which order or
in which process.

A candidate that hangs fails its configuration after ``timeout`` seconds: the
candidate runs in a worker thread that the harness stops waiting for (Python
cannot stop a thread: a timed-out worker is a daemon left running in the
background, and exits with the process).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import shlex
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence

from lstm_ref.candidates import Factory, importable_name, load_factory
from lstm_ref.compare import TensorReport, compare_lstm_outputs
from lstm_ref.configs import Config
from lstm_ref.half import autocast_for, forward_criterion, judged_against_float64, torch_cannot_run
from lstm_ref.tolerances import tolerance_for

PASSED, FAILED, UNSUPPORTED, SKIPPED = "passed", "failed", "unsupported", "skipped"
#: Verdicts on configurations listed as known failures (lstm_ref.expectations): xpassed fails the run.
XFAILED, XPASSED = "xfailed", "xpassed"
#: A configuration torch itself cannot run (its own path raises): not judged, failing no candidate.
UNTESTABLE = "untestable"

#: Seconds a candidate may take on one configuration (factory and forward call) before the
#: configuration fails as timed out; the CLI's --timeout and the plugin's --lstm-timeout.
DEFAULT_TIMEOUT = 300.0

#: How many failed tensors a failed configuration's headline names before "and N more".
HEADLINE_TENSORS = 4

#: torch's notices about its own dispatch, not about the candidate: kept out of reports.
QUIET_WARNINGS = ("TF32 acceleration on top of oneDNN", "LSTM with projections is not supported with oneDNN")


@dataclass
class Inputs:
    """A configuration's input and initial state: contiguous values, and the memory layout the
    candidate receives them in (``Config.layout``). The values are the pristine copy against
    which the candidate's tensors are checked for in-place changes after each call."""

    input: Tensor | PackedSequence
    hx: tuple[Tensor, ...] | None   # (h0, c0) for the LSTM, (h0,) for the GRU and the RNN
    lengths: Tensor | None = None   # per-sequence lengths of a packed input, in batch order
    layout: str = "contiguous"
    stride0_dims: tuple[int, int] = (0, 0)  # the input's and the states' expanded dimension
    batch_index: list[int] | None = None    # for a part of the batch: which sequences of the whole

    def batch_part(self, index: Tensor, config: Config) -> Inputs:
        """The sequences ``index`` names (a dense input's batch dimension, the states' dimension 1)."""
        device_index = index.to(self.input.device)
        return replace(self, input=self.input.index_select(config.time_dim ^ 1, device_index),  # type: ignore[union-attr]
                       hx=None if self.hx is None else tuple(s.index_select(1, device_index) for s in self.hx),
                       batch_index=index.tolist())

    def negated(self) -> Inputs:
        """The same sequences with every input value negated and no initial state: the input of a
        further call of the same shape (the streaming call, whose state is the previous call's)."""
        negated = self.input._replace(data=-self.input.data) if isinstance(self.input, PackedSequence) else -self.input
        return replace(self, input=negated, hx=None, batch_index=None)

    def clone(self) -> Inputs:
        """Contiguous copies of the values (what torch's side runs on)."""
        return self._copied("contiguous")

    def laid_out(self) -> Inputs:
        """Fresh copies of the values in the configuration's layout (what the candidate receives)."""
        return self._copied(self.layout)

    def _copied(self, layout: str) -> Inputs:
        input_dim, state_dim = self.stride0_dims
        if isinstance(self.input, PackedSequence):
            copied: Tensor | PackedSequence = PackedSequence(
                lay_out(self.input.data, layout, input_dim), self.input.batch_sizes.clone(),
                *(None if i is None else i.clone() for i in (self.input.sorted_indices, self.input.unsorted_indices)))
        else:
            copied = lay_out(self.input, layout, input_dim)
        hx = None if self.hx is None else tuple(lay_out(s, layout, state_dim) for s in self.hx)
        return replace(self, input=copied, hx=hx)  # type: ignore[arg-type]

    def named(self) -> list[tuple[str, Tensor | None]]:
        """Every tensor a call receives, by the name a report gives it."""
        if isinstance(self.input, PackedSequence):
            named: list[tuple[str, Tensor | None]] = [
                ("input.data", self.input.data), ("input.batch_sizes", self.input.batch_sizes),
                ("input.sorted_indices", self.input.sorted_indices),
                ("input.unsorted_indices", self.input.unsorted_indices)]
        else:
            named = [("input", self.input)]
        if self.hx is not None:
            named += list(zip(("h0", "c0"), self.hx))
        return named

    def modified_in(self, received: Inputs) -> list[TensorReport]:
        """A failed report for each tensor of ``received`` (what a candidate was given) whose
        values or shape are no longer this pristine copy's: torch never writes to its arguments."""
        reports = []
        for (name, pristine), (_, got) in zip(self.named(), received.named()):
            if pristine is None or got is None:
                continue
            if got.shape != pristine.shape:
                reports.append(TensorReport(name, False, f"candidate resized {name} in place: "
                                            f"{list(pristine.shape)} became {list(got.shape)}"))
                continue
            now, before = got.detach().cpu(), pristine.cpu()
            changed = changed_elements(now, before)
            count = int(changed.sum())
            if count:
                first = [int(i) for i in changed.nonzero()[0]]
                reports.append(TensorReport(name, False, f"candidate modified {name} in place: "
                                            f"{count}/{changed.numel()} elements changed, first at {first}"))
        return reports


def lay_out(tensor: Tensor, layout: str, stride0_dim: int = 0) -> Tensor:
    """A fresh tensor (or a view of one) holding ``tensor``'s values in the memory ``layout`` names.

    contiguous: a plain copy. transposed: dimensions 0 and 1 swapped in memory (what
    ``x.transpose(0, 1)`` of a batch_first tensor gives). strided: every other element of the
    last dimension of a larger NaN-filled tensor, at storage offset 1 (a slice of a bigger
    buffer). expanded: dimension ``stride0_dim`` has stride 0 (``tensor`` must be constant along it).
    """
    if layout == "contiguous":
        return tensor.clone(memory_format=torch.contiguous_format)
    if layout == "transposed":
        return tensor.transpose(0, 1).contiguous().transpose(0, 1)
    if layout == "strided":
        wider = torch.full((*tensor.shape[:-1], 2 * tensor.shape[-1] + 1), float("nan"),
                           dtype=tensor.dtype, device=tensor.device)
        view = wider[..., 1::2]
        view.copy_(tensor)
        return view
    if layout == "expanded":
        return tensor.narrow(stride0_dim, 0, 1).clone().expand_as(tensor)
    raise ValueError(f"unknown layout {layout!r}")


@dataclass
class Result:
    """The verdict on one configuration."""

    config: Config
    status: str
    tensors: list[TensorReport] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0
    check: str = "forward"            # which check produced it: forward | gradients
    details: str = ""                 # a crashed or timed-out worker's faulthandler traceback
    reproduce: str = ""               # a failure's shell command rerunning just this configuration

    @property
    def worst_ratio(self) -> float:
        """The worst error over all tensors as a multiple of its tolerance (>1 fails)."""
        return max((t.tolerance_ratio for t in self.tensors), default=0.0)

    @property
    def headline(self) -> str:
        """Why the configuration has its status, in one line: for a failure, the tensors that
        failed first (in report order), then the message (an exception, a crash, a note)."""
        failed = [t for t in self.tensors if not t.passed]
        if self.status != FAILED or not failed:
            return self.message
        names = ", ".join(t.name for t in failed[:HEADLINE_TENSORS])
        if len(failed) > HEADLINE_TENSORS:
            names += f" and {len(failed) - HEADLINE_TENSORS} more"
        verdict = f"{names} {'wrong' if any(t.problem for t in failed) else 'out of tolerance'}"
        return f"{verdict}; {self.message}" if self.message else verdict

    def describe(self) -> str:
        """The headline, a line per failed tensor, a crashed worker's stack, and the reproducer."""
        headline = self.headline
        lines = [f"{self.config.id}: {self.status}" + (f": {headline}" if headline else "")]
        lines += [f"  {t.describe()}" for t in self.tensors if not t.passed]
        lines += [f"  | {line}" for line in self.details.splitlines()]
        if self.reproduce:
            lines.append(f"  reproduce: {self.reproduce}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "config": self.config.as_dict(), "check": self.check, "status": self.status,
            "message": self.message, "details": self.details, "reproduce": self.reproduce,
            "seconds": self.seconds, "tensors": [t.as_dict() for t in self.tensors],
        }


def reproducer_command(config: Config, check: Callable[..., Result] | str, factory: Factory | str | None,
                       seed: int = 0) -> str:
    """A shell command that reruns ``check`` (a check function, or its dotted name) on ``config``
    against the candidate ``factory`` with base ``seed`` in one process, with faulthandler on,
    and prints the verdict: the same one, run from the directory the check ran in (a
    ``MODULE:ATTR`` is imported from there). Under ``gdb --args`` or ``python -m pdb`` it shows
    where a crash or a hang happens. A factory a fresh interpreter cannot import by name gets a
    shell comment saying so instead."""
    function = check if isinstance(check, str) else f"{check.__module__}.{check.__name__}"
    spec = importable_name(factory)
    if spec is None:
        return (f"# none: a fresh interpreter cannot import the factory {factory!r} by name; "
                "give the check its MODULE:ATTR name for a reproducer")
    code = (f"import lstm_ref.configs, {function.rpartition('.')[0]}; "
            f"print({config.reproducer(function, spec, seed)}.describe())")
    quoted = f'"{code}"' if not set(code) & set('"$`\\!') else shlex.quote(code)
    return f"python -X faulthandler -c {quoted}"


def reproducible(check: Callable[..., Result]) -> Callable[..., Result]:
    """``check`` (called as ``check(config, factory, seed, ...)``) with a reproducer on every
    failed result: :func:`reproducer_command` of the configuration, candidate and seed."""

    @functools.wraps(check)
    def checked(config: Config, factory: Factory | str | None = None, seed: int = 0, *args, **kwargs) -> Result:
        result = check(config, factory, seed, *args, **kwargs)
        if result.status == FAILED and not result.reproduce:
            result.reproduce = reproducer_command(config, checked, factory, seed)
        return result
    return checked


def seed_for(config: Config, seed: int = 0) -> int:
    """The configuration's own seed: a hash of ``seed`` and its id (less dtype, device and
    torch path, so a float32 configuration has its float64 twin's weights and inputs)."""
    return zlib.crc32(f"{seed}:{config.seed_key}".encode())


def cuda_skip_reason(config: Config) -> str | None:
    if config.device_type == "cuda" and not torch.cuda.is_available():
        return "CUDA is not available (torch.cuda.is_available() is False)"
    return None


@contextlib.contextmanager
def torch_path(path: str) -> Iterator[None]:
    """Make torch's LSTM take ``path``: onednn, native (CPU) or cudnn (TF32 off)."""
    if path == "native":
        with torch.backends.mkldnn.flags(enabled=False):
            yield
    elif path == "onednn":
        with torch.backends.mkldnn.flags(enabled=True):
            yield
    elif path == "cudnn":
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False), no_tf32_matmul():
            yield
    else:
        raise ValueError(f"unknown torch path {path!r}")


#: The attribute by which a candidate (the callable its factory returns) says that it draws its
#: training-mode dropout masks other than torch does (the replay protocol of docs/dropout.md): a
#: string, the reason. Configurations with such dropout are then unsupported, never passed.
OWN_DROPOUT_MASKS = "draws_own_dropout_masks"
DROPOUT_NOT_REPLAYED = "dropout masks drawn other than torch draws them, so not judged by replay"


def replay_seed(config: Config, seed: int = 0) -> int:
    """The seed torch's generator is set to for a call on ``config`` with base ``seed``
    (:func:`dropout_replay`): the same for torch's call and the candidate's."""
    return seed_for(config, seed) + 3


@contextlib.contextmanager
def dropout_replay(config: Config, seed: int) -> Iterator[None]:
    """Where ``config.dropout_replayed`` (training-mode dropout, 0 < p < 1): torch's default
    generator of the configuration's device seeded with ``seed`` for the duration, and its
    previous state restored afterwards; elsewhere nothing.

    The replay protocol (docs/dropout.md): torch's call and the candidate's call each run in
    this context with the same seed. torch, oneDNN and native paths alike, draws one mask per
    layer boundary, ``F.dropout(layer_output, p, training=True)`` on the whole output of layers
    0, ..., L-2 (both directions concatenated, time-major: (T, N, D*H_out), or the packed data's
    rows), and nothing else: a candidate that draws its masks the same way gets the same masks.
    """
    if not config.dropout_replayed:
        yield
        return
    cuda = config.device_type == "cuda"
    with torch.random.fork_rng(devices=[torch.device(config.device).index or 0] if cuda else []):
        if cuda:
            torch.cuda.manual_seed(seed)
        else:
            torch.random.default_generator.manual_seed(seed)
        yield


@contextlib.contextmanager
def no_tf32_matmul() -> Iterator[None]:
    """Plain float32 matmuls on CUDA for the duration (TF32 would fail the float32 row)."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def call_hx(hx: tuple[Tensor, ...] | None) -> tuple[Tensor, ...] | Tensor | None:
    """A state tuple as torch's module of its kind takes it: (h0, c0) for the LSTM, the tensor h0
    for the GRU and the RNN (whose state tuple is (h0,))."""
    return hx[0] if hx is not None and len(hx) == 1 else hx


def build_reference(config: Config, seed: int = 0) -> nn.LSTM:
    """The torch.nn.LSTM (nn.GRU, nn.RNN: ``config.mode``) of ``config`` with weights drawn from
    the configuration's seed."""
    generator = torch.Generator().manual_seed(seed_for(config, seed))
    module = config.module_class(**config.module_kwargs(), dtype=torch.float64)
    bound = 1.0 / config.hidden_size ** 0.5
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.uniform_(-bound, bound, generator=generator)
    return module.to(device=config.device, dtype=config.torch_dtype).train(config.train)


def make_inputs(config: Config, seed: int = 0) -> Inputs:
    """Input x ~ input_scale*N(0,1) (held at x_0 if hold_input) and, if asked,
    h0, c0 ~ N(0,1) drawn independently.

    dense: (T, N, I) or (N, T, I); unbatched: (T, I); packed: N sequences of distinct lengths
    in [1, T] (the longest T) in shuffled order, packed with enforce_sorted=False; packed_sorted:
    the lengths sorted by decreasing length, enforce_sorted=True; packed_list: ``pack_sequence``
    of the N sequences as a list, their lengths tied in pairs (:func:`tied_lengths`). For the
    expanded layout the values are constant along the dimension that will have stride 0 (the
    batch; time when unbatched; the packed rows).
    """
    generator = torch.Generator().manual_seed(seed_for(config, seed) + 1)
    T, N, I = config.seq_len, config.batch_size, config.input_size
    h_out = config.proj_size or config.hidden_size
    layers = config.num_layers * config.num_directions

    def draw(*shape: int, scale: float = 1.0) -> Tensor:
        values = torch.randn(*shape, generator=generator, dtype=torch.float64) * scale
        return values.to(device=config.device, dtype=config.torch_dtype)

    steps = 1 if config.hold_input else T
    lengths = None
    if config.input_form == "unbatched":
        x = draw(steps, I, scale=config.input_scale).expand(T, I)
        state_shape: tuple[int, ...] = (layers,)
    elif config.batch_first:
        x = draw(N, steps, I, scale=config.input_scale).expand(N, T, I)
        state_shape = (layers, N)
    else:
        x = draw(steps, N, I, scale=config.input_scale).expand(T, N, I)
        state_shape = (layers, N)
    cell_state = (draw(*state_shape, config.hidden_size),) if config.mode == "LSTM" and config.initial_state else ()
    hx = (draw(*state_shape, h_out), *cell_state) if config.initial_state else None
    input_dim, state_dim = stride0_dims(config)
    if config.layout == "expanded":
        if not config.packed:
            x = x.narrow(input_dim, 0, 1).expand_as(x)
        hx = None if hx is None else tuple(s.narrow(state_dim, 0, 1).expand_as(s).contiguous() for s in hx)
    x = x.contiguous()
    if config.packed:
        draw_lengths = tied_lengths if config.input_form == "packed_list" else unequal_lengths
        lengths = draw_lengths(T, N, generator)
        x = pack(x, lengths, config)
        if config.layout == "expanded":
            x = x._replace(data=x.data[:1].expand_as(x.data).contiguous())
        if config.input_form == "packed_sorted":
            lengths = lengths.sort(descending=True).values
    return Inputs(x, hx, lengths, config.layout, (input_dim, state_dim))  # type: ignore[arg-type]


def pack(padded: Tensor, lengths: Tensor, config: Config) -> PackedSequence:
    """``padded`` (T, N, I) or (N, T, I) packed the way ``config.input_form`` says."""
    batch_first = config.batch_first
    if config.input_form == "packed_sorted":  # a "sort the batch by length" recipe
        order = lengths.sort(descending=True, stable=True).indices
        padded = padded.index_select(0 if batch_first else 1, order.to(padded.device))
        return pack_padded_sequence(padded, lengths[order], batch_first=batch_first, enforce_sorted=True)
    if config.input_form == "packed_list":
        sequences = padded.unbind(0 if batch_first else 1)
        return pack_sequence([s[:length] for s, length in zip(sequences, lengths.tolist())], enforce_sorted=False)
    return pack_padded_sequence(padded, lengths, batch_first=batch_first, enforce_sorted=False)


def stride0_dims(config: Config) -> tuple[int, int]:
    """The dimensions the expanded layout gives stride 0: the input's (batch for dense input, time
    when unbatched, rows of a packed input's data) and the states' (batch; layers when unbatched)."""
    if config.packed or config.input_form == "unbatched":
        input_dim = 0
    else:
        input_dim = 0 if config.batch_first else 1
    return input_dim, 0 if config.input_form == "unbatched" else 1


def unequal_lengths(max_length: int, batch: int, generator: torch.Generator) -> Tensor:
    """``batch`` lengths in [1, max_length], one of them max_length, as distinct as the
    range allows, in an order that is not sorted by decreasing length (so packing has to
    permute the batch and the final states have to be put back)."""
    pool = torch.randperm(max_length - 1, generator=generator)[: batch - 1] + 1 if max_length > 1 else torch.ones(0)
    lengths = torch.cat([torch.tensor([max_length]), pool.long()])
    while len(lengths) < batch:  # more sequences than distinct lengths
        lengths = torch.cat([lengths, torch.randint(1, max_length + 1, (1,), generator=generator)])
    lengths = lengths[torch.randperm(batch, generator=generator)]
    if batch > 1 and bool((lengths[:-1] >= lengths[1:]).all()):
        lengths = lengths.roll(1)  # already sorted by decreasing length: unsort it
    return lengths


def tied_lengths(max_length: int, batch: int, generator: torch.Generator) -> Tensor:
    """``batch`` lengths in [1, max_length] in unsorted order, each length shared by two sequences
    (one sequence left over when ``batch`` is odd): several sequences end at the same step, so a
    packed batch's size drops by more than one at a step, and sorting by length has ties."""
    distinct_lengths = unequal_lengths(max_length, (batch + 1) // 2, generator)
    lengths = distinct_lengths.repeat_interleave(2)[:batch]
    lengths = lengths[torch.randperm(batch, generator=generator)]
    if batch > 1 and bool((lengths[:-1] >= lengths[1:]).all()):
        lengths = lengths.roll(1)
    return lengths


def compare_outputs(
    config: Config, actual: object, expected: tuple, inputs: Inputs | None = None, steps: int | None = None,
    reference: nn.Module | None = None, previous: Inputs | None = None,
) -> list[TensorReport]:
    """Check the candidate's ``(output, (h_n, c_n))`` against torch's, tensor by tensor, with the
    tolerance for ``steps`` time steps of recurrence (default: the configuration's sequence length);
    a half-precision row against the float64 truth of ``reference`` on ``inputs`` (lstm_ref.half;
    ``previous``: the inputs of the call whose returned state this call continues from)."""
    if reference is not None and inputs is not None and judged_against_float64(config):
        criterion = forward_criterion(config, reference, inputs, previous)
        return compare_lstm_outputs(actual, expected, criterion, config.time_dim)
    tolerance = tolerance_for(config.dtype, config.device).over(steps or config.seq_len)
    return compare_lstm_outputs(actual, expected, tolerance, config.time_dim)


class CandidateTimeout(Exception):
    """The candidate did not return within the configuration's time limit."""


def call_with_timeout(function: Callable[[], object], timeout: float | None) -> object:
    """``function()``'s result (or its exception, re-raised) if it returns within ``timeout``
    seconds, else CandidateTimeout. ``None`` or 0: no limit, called in this thread.

    With a limit it runs in a daemon worker thread; a worker that outlives its limit is left
    behind (Python threads cannot be stopped) and does not keep the process alive.
    """
    if not timeout:
        return function()
    outcome: dict[str, object] = {}
    threads = torch.get_num_threads()  # the intra-op thread count is per thread: carry it over

    def work() -> None:
        torch.set_num_threads(threads)
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error

    worker = threading.Thread(target=work, name="lstm-ref-candidate", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise CandidateTimeout(f"timed out after {timeout:g}s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


@reproducible
def check_forward(
    config: Config, factory: Factory | str | None = None, seed: int = 0, timeout: float | None = None
) -> Result:
    """Compare the candidate made by ``factory`` with torch.nn.LSTM on ``config``'s forward pass.

    The factory first gets a decoy (:func:`decoy_of`), called once, then the configuration's
    module; its candidate makes the first call and a second of the same shape (see below).

    ``timeout``: seconds the candidate (factory and call together) may take before the
    configuration fails as timed out; None or 0 for no limit.
    """
    if factory is None or isinstance(factory, str):
        factory = load_factory(factory)[1]
    skip = cuda_skip_reason(config)
    if skip:
        return Result(config, SKIPPED, message=skip)
    started = time.perf_counter()
    reference = build_reference(config, seed)
    inputs = make_inputs(config, seed)
    reference_inputs = inputs.clone()
    try:
        with torch.no_grad(), torch_path(config.torch_path), autocast_for(config), \
                dropout_replay(config, replay_seed(config, seed)):
            expected = reference(reference_inputs.input, call_hx(reference_inputs.hx))
    except RuntimeError as error:  # torch refuses it: nothing to judge the candidate against
        return Result(config, UNTESTABLE, message=torch_cannot_run(error), seconds=time.perf_counter() - started)
    parts = [(inputs, expected)] if not config.batch_split else [
        (inputs.batch_part(index, config), batch_part_of_result(expected, index, config))
        for index in batch_halves(config)]
    # A second call of the same shape while the first call's results are held: the negated input,
    # where the configuration passes states the state the first call returned as hx (streaming), and
    # an nn.Module candidate's parameters stepped in place (WEIGHT_STEP). The batch-split pair is two
    # calls already.
    stream_input = None if config.batch_split else inputs.negated()

    given = copy.deepcopy(reference)
    decoy = decoy_of(reference)

    def run_candidate() -> tuple[list[tuple[Inputs, object]], list, tuple | None, bool]:  # no_grad is per thread
        # First a decoy: the factory and one call on another module of the configuration (its
        # weights negated), so that a candidate keeping what it built or compiled per shape, across
        # modules, computes the configuration's call with the decoy's weights, and fails here, in
        # this configuration alone, rather than wherever two configurations of a run share a shape.
        decoy_candidate = factory(decoy)
        with torch.no_grad(), cuda_no_tf32(config), autocast_for(config):
            decoy_part = parts[0][0].laid_out()
            with dropout_replay(config, replay_seed(config, seed)):
                decoy_candidate(decoy_part.input, call_hx(decoy_part.hx))
        del decoy_candidate
        candidate = factory(given)
        own_masks = config.dropout_replayed and getattr(candidate, OWN_DROPOUT_MASKS, None)
        if own_masks:
            raise NotImplementedError(f"{DROPOUT_NOT_REPLAYED}: {own_masks}")
        calls, returned, stream, stepped = [], [], None, False
        with torch.no_grad(), cuda_no_tf32(config), autocast_for(config):
            for part, _ in parts:
                received = part.laid_out()
                with dropout_replay(config, replay_seed(config, seed)):
                    result = candidate(received.input, call_hx(received.hx))
                calls.append((received, snapshot(result)))  # the values as returned, compared below
                returned.append(result)                     # held by the caller through the next calls
            if stream_input is not None:
                received = stream_input.laid_out()
                state = None
                if config.initial_state and isinstance(returned[0], (tuple, list)) and len(returned[0]) == 2:
                    state = returned[0][1]
                # (a half-precision row's float64 truth follows the first call's weights: not stepped)
                parameters = None if judged_against_float64(config) else own_parameters(candidate, given)
                stepped = parameters is not None
                try:
                    with scaled_in_place(parameters or [], WEIGHT_STEP), \
                            dropout_replay(config, replay_seed(config, seed + 1)):
                        stream = (received, candidate(received.input, state))
                except NotImplementedError as error:
                    raise NotImplementedError(f"a second call of the same shape: {error}") from error
                except Exception as error:  # reported as a failed tensor, with the first call's verdict
                    stream = (received, error)
        return calls, returned, stream, stepped

    try:
        calls, returned, stream, stepped = call_with_timeout(run_candidate, timeout)
    except CandidateTimeout as error:
        return Result(config, FAILED, message=f"candidate {error} (the per-configuration limit)",
                      seconds=time.perf_counter() - started)
    except NotImplementedError as error:
        return Result(config, UNSUPPORTED, message=str(error) or "NotImplementedError",
                      seconds=time.perf_counter() - started)
    except Exception as error:  # a candidate that raises fails the configuration
        return Result(config, FAILED, message=f"candidate raised {type(error).__name__}: {error}",
                      seconds=time.perf_counter() - started)
    reports, modified = [], []
    for (part, expected_part), (received, actual) in zip(parts, calls):  # type: ignore[arg-type]
        part_reports = compare_outputs(config, actual, expected_part, part, reference=reference)
        modified += part.modified_in(received)
        if config.batch_split:
            for report in part_reports:
                report.name = f"{report.name} [sequences {part.batch_index}]"
        reports += part_reports
    for (_, as_returned), held, (part, _) in zip(calls, returned, parts):
        suffix = f" [sequences {part.batch_index}]" if config.batch_split else ""
        reports += changed_since_returned(as_returned, held, suffix)
    if stream is not None:
        stepped_reference = copy.deepcopy(reference) if stepped else reference
        with torch.no_grad(), torch_path(config.torch_path), autocast_for(config), \
                dropout_replay(config, replay_seed(config, seed + 1)):
            for parameter in stepped_reference.parameters() if stepped else ():
                parameter.mul_(WEIGHT_STEP)
            stream_expected = stepped_reference(stream_input.clone().input,
                                                expected[1] if config.initial_state else None)
        received, actual = stream
        modified += stream_input.modified_in(received)
        if isinstance(actual, Exception):
            fed = ", fed the state the first returned as hx," if config.initial_state else ""
            reports.append(TensorReport("second", False, f"a second call of the same shape{fed} raised "
                                        f"{type(actual).__name__}: {actual}"))
        else:
            for report in compare_outputs(config, actual, stream_expected, stream_input, 2 * config.seq_len,
                                          reference=reference, previous=inputs if config.initial_state else None):
                report.name = f"second.{report.name}"
                reports.append(report)
    modified += parameters_modified(given, reference)
    status = PASSED if all(r.passed for r in reports + modified) else FAILED
    message = modified[0].problem if modified else ""
    return Result(config, status, modified + reports, message, seconds=time.perf_counter() - started)


#: Before the second call an ``nn.Module`` candidate's own parameters of torch's names are scaled
#: by this in place, as an optimizer step changes them (and restored after it, exactly: a power of
#: two): a kernel that packed or cached its weights at its first call computes with stale ones.
WEIGHT_STEP = 0.5


def decoy_of(reference: nn.Module) -> nn.Module:
    """A module of ``reference``'s configuration whose parameters are ``reference``'s negated:
    what :func:`check_forward` hands the factory first, as another model of the same shape."""
    decoy = copy.deepcopy(reference)
    with torch.no_grad():
        for parameter in decoy.parameters():
            parameter.neg_()
    return decoy


def changed_elements(now: Tensor, before: Tensor) -> Tensor:
    """Where ``now`` differs from ``before`` (same shape): NaN equals NaN, everything else exactly."""
    if now.is_floating_point():
        return ~((now == before) | (now.isnan() & before.isnan()))
    return now != before


def matched_parameters(candidate: object, given: nn.Module) -> list[Tensor | None]:
    """For each parameter of ``given`` (torch's names, in its order), an ``nn.Module`` candidate's
    own parameter of that name: an exact match, else a unique ``*.name`` suffix (a wrapper holding
    the module as a submodule); None where it has none, and everywhere for a plain callable."""
    own = dict(candidate.named_parameters()) if isinstance(candidate, nn.Module) else {}
    matched: list[Tensor | None] = []
    for name, _ in given.named_parameters():
        match = [own[name]] if name in own else [p for n, p in own.items() if n.endswith("." + name)]
        matched.append(match[0] if len(match) == 1 else None)
    return matched


def own_parameters(candidate: object, given: nn.Module) -> list[Tensor] | None:
    """An ``nn.Module`` candidate's own parameters of torch's names (:func:`matched_parameters`),
    in ``given``'s order; None unless it has all of them (its weights are then what an optimizer
    would step)."""
    found = matched_parameters(candidate, given)
    return None if any(p is None for p in found) else found  # type: ignore[return-value]


@contextlib.contextmanager
def scaled_in_place(parameters: list[Tensor], factor: float) -> Iterator[None]:
    """``parameters`` multiplied by ``factor`` in place for the duration (by 1/factor after it)."""
    with torch.no_grad():
        for parameter in parameters:
            parameter.mul_(factor)
    try:
        yield
    finally:
        with torch.no_grad():
            for parameter in parameters:
                parameter.mul_(1.0 / factor)


def snapshot(result: object) -> object:
    """A copy of a candidate's result, its tensors cloned (the rest of the structure as is)."""
    if isinstance(result, Tensor):
        return result.detach().clone()
    if isinstance(result, PackedSequence):
        return result._replace(data=result.data.detach().clone())
    if isinstance(result, (tuple, list)):
        return type(result)(snapshot(item) for item in result)
    return result


def _named_tensors(result: object) -> list[tuple[str, Tensor]]:
    """The tensors of an ``(output, state)`` result by their report names (output, h_n, c_n)."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return []
    output, state = result
    named = [("output", output.data if isinstance(output, PackedSequence) else output)]
    states = state if isinstance(state, (tuple, list)) else (state,)
    named += list(zip(("h_n", "c_n"), states))
    return [(name, tensor) for name, tensor in named if isinstance(tensor, Tensor)]


def changed_since_returned(as_returned: object, held: object, suffix: str = "") -> list[TensorReport]:
    """A failed ``held.<name>`` report for each tensor a candidate returned (``held``, kept by the
    caller) whose values are no longer those it returned (``as_returned``) after its later calls:
    results that live in a buffer the candidate reuses, or that a later call writes to."""
    reports = []
    for (name, before), (_, now) in zip(_named_tensors(as_returned), _named_tensors(held)):
        if now.shape != before.shape:
            reports.append(TensorReport(f"held.{name}{suffix}", False, f"resized after a later call: "
                                        f"{list(before.shape)} became {list(now.shape)}"))
            continue
        now, before = now.detach().cpu(), before.cpu()
        changed = changed_elements(now, before)
        count = int(changed.sum())
        if count:
            reports.append(TensorReport(f"held.{name}{suffix}", False, f"changed after the candidate's next call: "
                                        f"{count}/{changed.numel()} elements (the result's memory was reused "
                                        "or written to)"))
    return reports


def parameters_modified(given: nn.Module, reference: nn.Module) -> list[TensorReport]:
    """A failed report for each parameter of ``given`` (the module handed to the factory) that
    no longer equals ``reference``'s: a converter must not rewrite the model it converts."""
    reports = []
    for (name, now), before in zip(given.named_parameters(), reference.parameters()):
        if now.shape != before.shape or not torch.equal(now.detach(), before.detach()):
            reports.append(TensorReport(f"module.{name}", False, f"candidate modified {name} of the nn.LSTM "
                                        "handed to it in place"))
    return reports


def batch_halves(config: Config) -> list[Tensor]:
    """The two parts a batch_split configuration's batch is run in: the sequences in reverse
    order, split in half, so each sequence runs in a smaller batch beside other neighbours."""
    order = torch.arange(config.batch_size).flip(0)
    return list(order.split([config.batch_size // 2, config.batch_size - config.batch_size // 2]))


def batch_part_of_result(result: tuple, index: Tensor, config: Config) -> tuple:
    """torch's whole-batch ``(output, (h_n, c_n))`` (``(output, h_n)``) restricted to the sequences ``index`` names."""
    output, state = result
    index = index.to(output.device)
    if isinstance(state, Tensor):
        return output.index_select(config.time_dim ^ 1, index), state.index_select(1, index)
    return output.index_select(config.time_dim ^ 1, index), tuple(s.index_select(1, index) for s in state)


def cuda_no_tf32(config: Config) -> contextlib.AbstractContextManager:
    """For a candidate's run: plain float32 matmuls on CUDA, nothing elsewhere."""
    return no_tf32_matmul() if config.device_type == "cuda" else contextlib.nullcontext()

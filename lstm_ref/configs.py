"""The configuration type and the conformance matrices: the one list of axes.

Tests (through the pytest plugin), ``lstm-ref check`` and the benchmarks all
take their configurations from here. A configuration's ``id`` reads like the
configuration, e.g. ``L2-bidir-batch_first-nobias-proj3-packed-h0-float32-cpu-native``,
so ``pytest -k`` selects on it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace

import torch

#: The axes of the default matrix, and the values each takes.
AXES: dict[str, tuple] = {
    "num_layers": (1, 2, 3),
    "bidirectional": (False, True),
    "batch_first": (False, True),
    "bias": (True, False),
    "proj_size": (0, 3),
    # packed: pack_padded_sequence(enforce_sorted=False) of distinct unsorted lengths; packed_sorted:
    # lengths sorted by decreasing length and enforce_sorted=True (sorted_indices is None);
    # packed_list: pack_sequence of a list of unsorted sequences whose lengths are tied in pairs
    # (several sequences end at one step: batch sizes drop by more than one, the length sort has ties)
    "input_form": ("dense", "unbatched", "packed", "packed_sorted", "packed_list"),
    # the memory the input and states occupy, same values: contiguous; transposed (made contiguous
    # with two dimensions swapped, then swapped back); strided (every other element of a larger
    # NaN-filled tensor, at a storage offset); expanded (a stride-0 batch or time dimension)
    "layout": ("contiguous", "transposed", "strided", "expanded"),
    "initial_state": (False, True),
    "dtype": ("float32", "float64"),
    "device": ("cpu", "cuda"),
}

#: The cross product of every axis is too large to run: the full grid takes the first values of
#: the input forms and layouts, and the other ways of packing and the non-contiguous layouts run
#: over the sub-grids of the axes they interact with (directions, batch_first, states, layers).
FULL_GRID: dict[str, tuple] = dict(AXES, input_form=("dense", "unbatched", "packed"), layout=("contiguous",))
PACKING_GRID: dict[str, tuple] = dict(FULL_GRID, num_layers=(1, 2), bias=(True,), proj_size=(0,),
                                      input_form=("packed_sorted", "packed_list"))
LAYOUT_GRID: dict[str, tuple] = dict(FULL_GRID, num_layers=(2,), bias=(True,), proj_size=(0,),
                                     initial_state=(True,), layout=AXES["layout"][1:])

#: Which torch code path computes the expected values, per device type. On
#: CPU torch dispatches float32 LSTMs to oneDNN (mkldnn) unless disabled;
#: the native ATen loop is the other path. (oneDNN does not take float64,
#: projections or packed input, for which torch falls back to the native
#: loop: those configurations run the native path under both names.)
TORCH_PATHS: dict[str, tuple[str, ...]] = {"cpu": ("onednn", "native"), "cuda": ("cudnn",)}

#: The module kinds, by the names torch's RNNBase gives them (``module.mode``). Every axis above
#: applies to each kind but proj_size, which only the LSTM has: :func:`for_modes` takes a matrix to the kinds.
MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
#: The kinds as the CLI's --module and the plugin's --lstm-module name them (lower case), and the default:
#: every kind (measured on 2 cores, idle: the full check takes 23 s for the LSTM alone, 42-45 s for
#: all four kinds; a GRU or RNN configuration is cheap).
MODULE_CHOICES = tuple(mode.lower() for mode in MODES)
DEFAULT_MODULES = MODULE_CHOICES
#: Each kind as torch's module reads (``torch.nn.`` + this).
MODULE_NAMES = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN(tanh)", "RNN_RELU": "RNN(relu)"}


def module_names(modes: Iterable[str]) -> str:
    """The torch modules of ``modes``, e.g. ``torch.nn.LSTM, GRU, RNN(tanh)``."""
    return "torch.nn." + ", ".join(MODULE_NAMES[mode] for mode in modes)


INPUT_FORMS = AXES["input_form"]
LAYOUTS = AXES["layout"]
DTYPES = AXES["dtype"]
DEVICES = AXES["device"]
#: Half-precision values of the dtype axis and of Config.autocast: their rows are a selection of
#: their own (half_matrix, half_gradient_matrix), judged against float64 (lstm_ref.half), and run
#: only when asked for (``--dtype bfloat16,float16``), never in the default matrices.
HALF_DTYPES = ("bfloat16", "float16")
ALL_DTYPES = (*DTYPES, *HALF_DTYPES)


@dataclass(frozen=True)
class Config:
    """One LSTM conformance configuration: the module, its input, and where it runs."""

    num_layers: int = 1
    bidirectional: bool = False
    batch_first: bool = False
    bias: bool = True
    proj_size: int = 0            # 0: no projection; else P < hidden_size
    input_form: str = "dense"     # dense (T,N,I) | unbatched (T,I) | packed | packed_sorted | packed_list
    layout: str = "contiguous"    # contiguous | transposed | strided | expanded: the memory of input and states
    initial_state: bool = False   # False: hx=None; True: random h0 and c0 (c0 != h0)
    dtype: str = "float32"
    device: str = "cpu"
    torch_path: str = "onednn"    # the torch side: onednn | native (CPU), cudnn (CUDA)
    input_size: int = 4
    hidden_size: int = 6
    seq_len: int = 5              # T; packed lengths are in [1, T] with max T
    batch_size: int = 3           # N; ignored when unbatched
    dropout: float = 0.0          # between layers; compared in eval mode (train=False)
    train: bool = False           # module in training mode (dropout active)
    input_scale: float = 1.0      # x ~ input_scale * N(0, 1); ~30 saturates the gates
    hold_input: bool = False      # x_t = x_0 for all t: saturated gates stay put and |c| grows ~T
    batch_split: bool = False     # the candidate runs twice, on two halves of the batch in permuted
                                  # order, and its results are put back together: batch invariance
    tag: str = ""                 # a special case's name, part of the id
    autocast: str = ""            # "" or a half dtype: both sides called under torch.autocast(device, dtype)
    mode: str = "LSTM"            # the module kind, torch's RNNBase.mode: LSTM | GRU | RNN_TANH | RNN_RELU
    backward_passes: int = 1      # gradients: that many calls and backward passes accumulated into
                                  # the parameters' .grad, as micro-batches before an optimizer step

    def __post_init__(self) -> None:
        if self.input_form not in INPUT_FORMS:
            raise ValueError(f"input_form must be one of {INPUT_FORMS}, got {self.input_form!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.batch_split and (self.input_form != "dense" or self.batch_size < 2):
            raise ValueError("batch_split needs a dense input of at least two sequences")
        if self.dtype not in ("float16", "bfloat16", "float32", "float64"):
            raise ValueError(f"dtype must be a floating dtype name, got {self.dtype!r}")
        if self.autocast not in ("", *HALF_DTYPES) or (self.autocast and self.dtype != "float32"):
            raise ValueError(f"autocast must be '' or one of {HALF_DTYPES} on a float32 module, "
                             f"got autocast={self.autocast!r} with dtype={self.dtype!r}")
        if isinstance(self.backward_passes, bool) or not isinstance(self.backward_passes, int) \
                or self.backward_passes < 1:
            raise ValueError(f"backward_passes must be an int >= 1, got {self.backward_passes!r}")
        if self.batch_split and self.dropout_replayed:
            raise ValueError("batch_split draws two sets of dropout masks: torch's training-mode dropout "
                             "cannot be replayed")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.proj_size and self.mode != "LSTM":
            raise ValueError(f"proj_size is for the LSTM only, got proj_size={self.proj_size} with mode={self.mode!r}")
        if self.torch_path not in TORCH_PATHS.get(self.device_type, ()):
            raise ValueError(
                f"torch_path {self.torch_path!r} does not exist on {self.device!r}; "
                f"choose from {TORCH_PATHS.get(self.device_type)}"
            )

    @property
    def device_type(self) -> str:
        return torch.device(self.device).type

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def packed(self) -> bool:
        """The input is a PackedSequence (one of the packed input forms)."""
        return self.input_form.startswith("packed")

    @property
    def dropout_replayed(self) -> bool:
        """Training-mode dropout with 0 < p < 1 between layers: random masks, which the checks
        judge by replaying torch's generator (:func:`lstm_ref.conformance.dropout_replay`)."""
        return self.train and 0 < self.dropout < 1 and self.num_layers > 1

    @property
    def time_dim(self) -> int:
        """The time axis of a dense (unpacked) input or output: 1 when batch_first and batched, else 0."""
        return 1 if self.batch_first and self.input_form == "dense" else 0

    @property
    def id(self) -> str:
        parts = [
            *([self.mode] if self.mode != "LSTM" else []),
            f"L{self.num_layers}",
            "bidir" if self.bidirectional else "onedir",
            "batch_first" if self.batch_first else "seq_first",
            "bias" if self.bias else "nobias",
            f"proj{self.proj_size}" if self.proj_size else "noproj",
            self.input_form,
            *([self.layout] if self.layout != "contiguous" else []),
            "h0" if self.initial_state else "zero_state",
            *(["split"] if self.batch_split else []),
            *([f"acc{self.backward_passes}"] if self.backward_passes > 1 else []),
            *([f"autocast_{self.autocast}"] if self.autocast else []),
            self.dtype,
            self.device,
            self.torch_path,
        ]
        if self.tag:
            parts.append(self.tag)
        return "-".join(parts)

    @property
    def seed_key(self) -> str:
        """The id less dtype, device and torch path: those variants share weights and inputs."""
        return self.id.replace(f"-{self.dtype}-{self.device}-{self.torch_path}", "")

    def module_kwargs(self) -> dict:
        """Keyword arguments for ``nn.LSTM(**kwargs)`` (``nn.GRU``, ``nn.RNN``: :attr:`module_class`)."""
        kind = (dict(proj_size=self.proj_size) if self.mode == "LSTM" else
                dict(nonlinearity=self.mode.removeprefix("RNN_").lower()) if self.mode.startswith("RNN_") else {})
        return dict(
            input_size=self.input_size, hidden_size=self.hidden_size,
            num_layers=self.num_layers, bias=self.bias, batch_first=self.batch_first,
            dropout=self.dropout, bidirectional=self.bidirectional, **kind,
        )

    @property
    def module_class(self) -> type[torch.nn.Module]:
        """torch's module of this kind: nn.LSTM, nn.GRU or nn.RNN."""
        return {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}.get(self.mode, torch.nn.RNN)

    def as_dict(self) -> dict:
        return {"id": self.id, **asdict(self)}

    def reproducer(self, function: str | None = None, impl: str | None = None, seed: int = 0) -> str:
        """A one-line call of ``function`` (default: the forward check) that re-runs this
        configuration against the candidate ``impl`` (``MODULE:ATTR`` or a built-in name; None:
        lstm_ref) with base ``seed``; the Config names only the fields that differ from the default."""
        changed = {f.name: getattr(self, f.name) for f in fields(self)
                   if getattr(self, f.name) != f.default}
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        arguments = [f"lstm_ref.configs.Config({args})", *([repr(impl)] if impl else []),
                     *([f"seed={seed}"] if seed else [])]
        return f"{function or 'lstm_ref.conformance.check_forward'}({', '.join(arguments)})"


#: The dtypes torch's oneDNN LSTM takes on CPU (measured: tests/test_configs.py).
ONEDNN_DTYPES: tuple[str, ...] = ("float32",)


def onednn_takes(config: Config) -> bool:
    """Whether torch's CPU LSTM really runs on oneDNN for ``config`` when oneDNN is enabled.

    It falls back to the native loop for an LSTM with projections, for float64, and for a
    PackedSequence whose sequences have unequal lengths (packed input of one length, or of
    one sequence, is taken as a dense batch); oneDNN computes no other module kind.
    ``tests/test_configs.py`` measures this over the matrix: the two paths' results are
    bit-identical exactly where this says False.
    """
    return (getattr(config, "mode", "LSTM") == "LSTM" and config.dtype in ONEDNN_DTYPES
            and config.proj_size == 0
            and not (config.packed and config.batch_size > 1 and config.seq_len > 1))


def torch_runs_path(config: Config) -> str:
    """The torch path that really computes ``config``'s expected values: its ``torch_path``, or
    ``native`` where it names oneDNN and oneDNN falls back to the native loop."""
    if config.torch_path == "onednn" and not onednn_takes(config):
        return "native"
    return config.torch_path


def distinct(configs: Iterable[Config]) -> list[Config]:
    """One configuration per distinct computation: each named by the torch path that really
    computes it (:func:`torch_runs_path`), twins (oneDNN falling back to native) kept once, in order."""
    seen: dict[Config, None] = {}
    for config in configs:
        seen.setdefault(replace(config, torch_path=torch_runs_path(config)), None)
    return list(seen)


def for_modes(configs: Iterable[Config], modes: Iterable[str] = MODES) -> list[Config]:
    """``configs`` for each kind of ``modes``, kind by kind: the LSTM's as they are; for every
    other kind (no projection), a grid point with a projection runs without it and a tagged case
    with one, whose projection is part of what it tests, is left out; twins merged
    (:func:`distinct`: torch computes GRU and RNN on its native loop only)."""
    configs = list(configs)
    return distinct(replace(config, mode=mode, proj_size=0 if mode != "LSTM" else config.proj_size)
                    for mode in modes for config in configs
                    if mode == "LSTM" or not (config.proj_size and config.tag))


def parameter_suffix(layer: int, direction: int) -> str:
    """torch's parameter-name suffix for one layer and direction: ``_l{layer}`` or ``_l{layer}_reverse``."""
    return f"_l{layer}" + ("_reverse" if direction == 1 else "")


def parse_choices(text: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """A comma list of axis values (or ``all``); ValueError naming what is unknown and what is allowed."""
    chosen = tuple(allowed) if text == "all" else tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise ValueError(f"unknown {', '.join(unknown) or repr(text)}; choose from {', '.join(allowed)} or all")
    return chosen


def grid(axes: dict[str, Sequence] | None = None, **fixed) -> list[Config]:
    """The cross product of ``axes`` (default: FULL_GRID), each point with every torch path of its device."""
    axes = FULL_GRID if axes is None else axes
    configs = []
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values), **fixed)
        device_type = torch.device(point.get("device", "cpu")).type
        for path in TORCH_PATHS[device_type]:
            configs.append(Config(**point, torch_path=path))
    return configs


def special_cases(device: str = "cpu", dtype: str = "float32", torch_path: str | None = None) -> list[Config]:
    """Cases the grid does not reach: saturation, long and short sequences, dropout, batch 1."""
    path = torch_path or TORCH_PATHS[torch.device(device).type][0]
    base = Config(device=device, dtype=dtype, torch_path=path, initial_state=True)
    return [
        # dropout > 0 in eval mode must be a no-op
        replace(base, num_layers=3, bidirectional=True, dropout=0.5, tag="dropout0.5_eval"),
        # dropout = 1 in train mode zeroes every layer's input but the first: deterministic
        replace(base, num_layers=2, dropout=1.0, train=True, tag="dropout1_train"),
        # |x| ~ 30 held over time: gates pinned at 0/1, |c| grows ~T (to ~200 here)
        replace(base, num_layers=2, bidirectional=True, input_scale=30.0, hold_input=True,
                seq_len=200, tag="saturating_T200"),
        replace(base, num_layers=2, bidirectional=True, proj_size=3, input_form="packed",
                input_scale=30.0, hold_input=True, seq_len=50, tag="saturating_packed_T50"),
        # a long sequence: error growth over time
        replace(base, num_layers=2, bidirectional=True, seq_len=1000, hidden_size=16,
                input_size=8, tag="long_T1000"),
        replace(base, seq_len=1000, hidden_size=16, input_size=8, input_form="packed",
                tag="long_packed_T1000"),
        # batch 1 and sequence length 1
        replace(base, num_layers=2, bidirectional=True, batch_size=1, tag="N1"),
        replace(base, num_layers=2, bidirectional=True, seq_len=1, tag="T1"),
        replace(base, num_layers=2, bidirectional=True, input_form="packed", batch_size=1, tag="packed_N1"),
        # wider than the grid's toy sizes: a realistic layer
        replace(base, num_layers=2, bidirectional=True, input_size=64, hidden_size=128,
                batch_size=8, seq_len=20, tag="H128"),
        # sizes past a tile and not a multiple of it (8/16/32): a kernel's remainder tiles
        replace(base, num_layers=2, bidirectional=True, input_size=19, hidden_size=37,
                batch_size=17, seq_len=9, tag="H37_N17"),
        # batch invariance: two calls on permuted halves of the batch give the whole batch's results
        replace(base, num_layers=2, bidirectional=True, batch_size=4, batch_split=True, tag="batch_split"),
        replace(base, batch_first=True, initial_state=False, batch_size=4, batch_split=True,
                tag="batch_split_zero_state"),
        *realistic_cases(base),
    ]


#: The tag prefix of the realistic-size tier (:func:`realistic_cases`).
REALISTIC = "real_"


def realistic_cases(base: Config) -> list[Config]:
    """The realistic-size tier: the widths, batches and input sizes production models run at,
    past the boundaries kernels have (tiles, warps, shared memory, workspaces): hidden sizes past
    128, 256 and 512 and a multiple of none of them, batches past 32, 64 and 128 and odd, input
    widths past 256 (embeddings of 300, 512, 768). Each configuration crosses several boundaries
    at once rather than spanning a product; together they take every layer form of the grid
    (stacked, bidirectional, batch_first, packed, projections)."""
    return [
        replace(base, num_layers=2, bidirectional=True, input_size=300, hidden_size=260, batch_size=131,
                seq_len=8, tag=f"{REALISTIC}I300_H260_N131"),
        replace(base, batch_first=True, input_size=768, hidden_size=520, batch_size=33, seq_len=8,
                tag=f"{REALISTIC}I768_H520_N33"),
        replace(base, bidirectional=True, input_form="packed", input_size=257, hidden_size=130, batch_size=97,
                seq_len=16, tag=f"{REALISTIC}I257_H130_N97_packed"),
        replace(base, num_layers=2, input_size=512, hidden_size=300, proj_size=130, batch_size=67, seq_len=10,
                tag=f"{REALISTIC}I512_H300_P130_N67"),
    ]


def default_matrix(devices: Iterable[str] = DEVICES, dtypes: Iterable[str] = DTYPES) -> list[Config]:
    """The full default set: the full grid, the packing and layout sub-grids, then the special
    cases, per device and dtype; half dtypes get their own selection (half_matrix)."""
    dtypes, half = _split_half(dtypes)
    if half:
        return default_matrix(devices, dtypes) + half_matrix(devices, half)
    chosen = dict(device=tuple(devices), dtype=tuple(dtypes))
    configs = [config for axes in (FULL_GRID, PACKING_GRID, LAYOUT_GRID) for config in grid(dict(axes, **chosen))]
    axes = dict(AXES, **chosen)
    for device in axes["device"]:
        for dtype in axes["dtype"]:
            for path in TORCH_PATHS[torch.device(device).type]:
                configs += special_cases(device, dtype, path)
    return distinct(configs)


def gradient_matrix(devices: Iterable[str] = DEVICES, dtypes: Iterable[str] = DTYPES) -> list[Config]:
    """The backward-pass grid: layers {1, 2}, every other axis of the full grid, always with
    initial states; then the other ways of packing and the non-contiguous layouts, one layer.
    Half dtypes get their own selection (half_gradient_matrix)."""
    dtypes, half = _split_half(dtypes)
    if half:
        return gradient_matrix(devices, dtypes) + half_gradient_matrix(devices, half)
    chosen = dict(initial_state=(True,), device=tuple(devices), dtype=tuple(dtypes))
    variants = dict(chosen, num_layers=(1,), batch_first=(False,))
    realistic = [config for device in chosen["device"] for dtype in chosen["dtype"]
                 for path in TORCH_PATHS[torch.device(device).type]
                 for config in special_cases(device, dtype, path) if config.tag.startswith(REALISTIC)]
    training = [config for device in chosen["device"] for dtype in chosen["dtype"]
                for path in TORCH_PATHS[torch.device(device).type]
                for config in training_loop_cases(device, dtype, path)]
    return distinct(grid(dict(FULL_GRID, **chosen, num_layers=(1, 2)))
                    + grid(dict(PACKING_GRID, **variants)) + grid(dict(LAYOUT_GRID, **variants)) + realistic
                    + training)


def training_loop_cases(device: str = "cpu", dtype: str = "float32", torch_path: str | None = None,
                        quick: bool = False) -> list[Config]:
    """Gradient cases of a training loop (quick: the three marked so). Dropout between layers
    with 0 < p < 1 only on CPU, where torch draws its masks from the generator the checks
    replay; cuDNN draws them from a state of its own (docs/dropout.md)."""
    path = torch_path or TORCH_PATHS[torch.device(device).type][0]
    base = Config(device=device, dtype=dtype, torch_path=path, initial_state=True)
    # past 64 steps, a chunk of time steps a kernel may stop backpropagating at
    cases = [(False, replace(base, num_layers=2, bidirectional=True, seq_len=100, tag="long_T100")),
             (True, replace(base, num_layers=2, bidirectional=True, input_form="packed", seq_len=100,
                            tag="long_packed_T100")),
             # three micro-batches, each a call and a backward pass into the same .grad
             (True, replace(base, num_layers=2, bidirectional=True, backward_passes=3)),
             (False, replace(base, input_form="packed", backward_passes=3))]
    if torch.device(device).type == "cpu":  # training-mode dropout, masks replayed
        cases += [(False, replace(base, num_layers=3, bidirectional=True, batch_first=True, dropout=0.3, train=True,
                                  tag="dropout0.3_train")),
                  (True, replace(base, num_layers=2, batch_first=True, input_form="packed", dropout=0.3, train=True,
                                 backward_passes=3, tag="dropout0.3_train"))]
    return [config for in_quick, config in cases if in_quick or not quick]


QUICK_SPECIAL_CASES = ("dropout0.5_eval", "saturating_T200", "N1", "batch_split_zero_state",
                       f"{REALISTIC}I300_H260_N131")


def quick_gradient_matrix(devices: Iterable[str] = ("cpu",), dtypes: Iterable[str] = DTYPES) -> list[Config]:
    """The quick matrix's grid part with initial states, for gradients. Its special cases stay
    forward-only: on saturated inputs held for T=200, oneDNN's float32 backward differs from
    torch's native one by ~1e3x the tolerance (lstm_ref matches the native one at 0.15x).
    Half dtypes: half_gradient_matrix's quick part."""
    dtypes, half = _split_half(dtypes)
    if half:
        return quick_gradient_matrix(devices, dtypes) + half_gradient_matrix(devices, half, quick=True)
    training = [config for device in devices for dtype in dtypes
                for config in training_loop_cases(device, dtype, quick=True)]
    return distinct([replace(c, initial_state=True) for c in quick_matrix(devices, dtypes)
                     if not c.tag or c.tag.startswith(REALISTIC)] + training)


def quick_matrix(devices: Iterable[str] = ("cpu",), dtypes: Iterable[str] = DTYPES) -> list[Config]:
    """A small subset: every axis value and torch path at least once (not every combination),
    eleven grid points per device and dtype plus the special cases named in QUICK_SPECIAL_CASES
    (one of them from the realistic-size tier), twins merged (:func:`distinct`); half dtypes:
    half_matrix's quick part."""
    dtypes, half = _split_half(dtypes)
    if half:
        return quick_matrix(devices, dtypes) + half_matrix(devices, half, quick=True)
    configs = []
    for device in devices:
        for dtype in dtypes:
            path = TORCH_PATHS[torch.device(device).type][0]
            base = Config(device=device, dtype=dtype, torch_path=path)
            configs += [
                base,
                replace(base, num_layers=2, bidirectional=True, batch_first=True, initial_state=True),
                replace(base, num_layers=3, bias=False, proj_size=3, input_form="packed", initial_state=True),
                replace(base, num_layers=2, bidirectional=True, proj_size=3, input_form="unbatched",
                        initial_state=True),
                replace(base, bidirectional=True, input_form="packed", batch_first=True, initial_state=True),
                replace(base, num_layers=2, bidirectional=True, input_form="packed_sorted", initial_state=True),
                replace(base, input_form="packed_list", batch_first=True),
                replace(base, num_layers=2, initial_state=True, layout="transposed"),
                replace(base, num_layers=2, bidirectional=True, batch_first=True, input_form="packed",
                        initial_state=True, layout="strided"),
                replace(base, num_layers=2, bidirectional=True, batch_first=True, initial_state=True,
                        layout="expanded"),
            ]
            configs += [replace(base, torch_path=other, num_layers=2, bidirectional=True, initial_state=True)
                        for other in TORCH_PATHS[torch.device(device).type][1:]]
            configs += [c for c in special_cases(device, dtype, path) if c.tag in QUICK_SPECIAL_CASES]
    return distinct(configs)


def _split_half(dtypes: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``dtypes`` as (the default matrices' dtypes, the half dtypes), each in the order given."""
    dtypes = tuple(dtypes)
    return tuple(d for d in dtypes if d not in HALF_DTYPES), tuple(d for d in dtypes if d in HALF_DTYPES)


def _half_grid(device: str, dtype: str) -> list[Config]:
    """The quick matrix's grid points (every axis value once) in ``dtype`` on ``device``, one per
    point (the criterion of a half row takes every torch path)."""
    points = [replace(c, dtype=dtype, torch_path=TORCH_PATHS[c.device_type][0])
              for c in quick_matrix((device,), ("float32",)) if not c.tag]
    return list(dict.fromkeys(points))


def half_matrix(devices: Iterable[str] = ("cpu",), dtypes: Iterable[str] = HALF_DTYPES,
                quick: bool = False) -> list[Config]:
    """The half-precision selection, per device and half dtype d (judged by lstm_ref.half against
    float64; one torch path per row of a module in d, as the criterion takes the worst of them all):

    * the module in d: the quick matrix's grid points, T=20 and packed T=50 (ordinary lengths),
      saturating gates over T=50, a realistic width (H=128) and T=1000; quick: four grid points
      and T=20;
    * the float32 module under ``torch.autocast(device, d)``, on every torch path (they return
      different dtypes, or fail): the default point, two layers bidirectional batch_first, three
      layers with projections on packed input, unbatched, and T=50; quick: the default point and T=50.
    """
    configs = []
    longer = dict(input_size=8, hidden_size=16)
    for device in devices:
        for dtype in dtypes:
            grid_points = _half_grid(device, dtype)
            base = replace(grid_points[0], num_layers=2, bidirectional=True, initial_state=True)
            configs += grid_points[:4] if quick else grid_points
            configs.append(replace(base, seq_len=20, **longer, tag="T20"))
            if not quick:
                configs += [
                    replace(base, seq_len=50, input_form="packed", **longer, tag="packed_T50"),
                    replace(base, input_scale=30.0, hold_input=True, seq_len=50, tag="saturating_T50"),
                    replace(base, input_size=64, hidden_size=128, batch_size=8, seq_len=20, tag="H128"),
                    replace(base, seq_len=1000, **longer, tag="long_T1000"),
                ]
            for path in TORCH_PATHS[torch.device(device).type]:
                autocast = Config(device=device, torch_path=path, autocast=dtype)
                configs.append(autocast)
                if not quick:
                    configs += [
                        replace(autocast, num_layers=2, bidirectional=True, batch_first=True, initial_state=True),
                        replace(autocast, num_layers=3, proj_size=3, input_form="packed", initial_state=True),
                        replace(autocast, input_form="unbatched", initial_state=True),
                    ]
                configs.append(replace(autocast, num_layers=2, bidirectional=True, initial_state=True,
                                       seq_len=50, **longer, tag="T50"))
    return configs


def half_gradient_matrix(devices: Iterable[str] = ("cpu",), dtypes: Iterable[str] = HALF_DTYPES,
                         quick: bool = False) -> list[Config]:
    """half_matrix's grid and autocast rows for gradients, with initial states (quick: the first two
    grid points and the autocast default point of each path)."""
    rows = [replace(c, initial_state=True) for c in half_matrix(devices, dtypes, quick=quick) if not c.tag]
    if quick:
        firsts = {replace(c, initial_state=True) for d in devices for t in dtypes for c in _half_grid(d, t)[:2]}
        rows = [c for c in rows if c.autocast or c in firsts]
    return list(dict.fromkeys(rows))

"""The configuration type and the conformance matrices: the one list of axes.

Tests (through the pytest plugin), ``lstm-ref check`` and the benchmarks all
take their configurations from here. A configuration's ``id`` reads like the
configuration, e.g. ``L2-bidir-batch_first-nobias-proj3-packed-h0-float32-cpu-onednn``,
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
    # packed: pack_padded_sequence(enforce_sorted=False) of unsorted lengths; packed_sorted: lengths
    # sorted by decreasing length and enforce_sorted=True (sorted_indices is None); packed_list:
    # pack_sequence of a list of unsorted sequences
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

INPUT_FORMS = AXES["input_form"]
LAYOUTS = AXES["layout"]
DTYPES = AXES["dtype"]
DEVICES = AXES["device"]


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

    def __post_init__(self) -> None:
        if self.input_form not in INPUT_FORMS:
            raise ValueError(f"input_form must be one of {INPUT_FORMS}, got {self.input_form!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.batch_split and (self.input_form != "dense" or self.batch_size < 2):
            raise ValueError("batch_split needs a dense input of at least two sequences")
        if self.dtype not in ("float16", "bfloat16", "float32", "float64"):
            raise ValueError(f"dtype must be a floating dtype name, got {self.dtype!r}")
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
    def time_dim(self) -> int:
        """The time axis of a dense (unpacked) input or output: 1 when batch_first and batched, else 0."""
        return 1 if self.batch_first and self.input_form == "dense" else 0

    @property
    def id(self) -> str:
        parts = [
            f"L{self.num_layers}",
            "bidir" if self.bidirectional else "onedir",
            "batch_first" if self.batch_first else "seq_first",
            "bias" if self.bias else "nobias",
            f"proj{self.proj_size}" if self.proj_size else "noproj",
            self.input_form,
            *([self.layout] if self.layout != "contiguous" else []),
            "h0" if self.initial_state else "zero_state",
            *(["split"] if self.batch_split else []),
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
        """Keyword arguments for ``nn.LSTM(**kwargs)``."""
        return dict(
            input_size=self.input_size, hidden_size=self.hidden_size,
            num_layers=self.num_layers, bias=self.bias, batch_first=self.batch_first,
            dropout=self.dropout, bidirectional=self.bidirectional, proj_size=self.proj_size,
        )

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
    ]


def default_matrix(devices: Iterable[str] = DEVICES, dtypes: Iterable[str] = DTYPES) -> list[Config]:
    """The full default set: the full grid, the packing and layout sub-grids, then the special
    cases, per device and dtype."""
    chosen = dict(device=tuple(devices), dtype=tuple(dtypes))
    configs = [config for axes in (FULL_GRID, PACKING_GRID, LAYOUT_GRID) for config in grid(dict(axes, **chosen))]
    axes = dict(AXES, **chosen)
    for device in axes["device"]:
        for dtype in axes["dtype"]:
            for path in TORCH_PATHS[torch.device(device).type]:
                configs += special_cases(device, dtype, path)
    return configs


def gradient_matrix(devices: Iterable[str] = DEVICES, dtypes: Iterable[str] = DTYPES) -> list[Config]:
    """The backward-pass grid: layers {1, 2}, every other axis of the full grid, always with
    initial states; then the other ways of packing and the non-contiguous layouts, one layer."""
    chosen = dict(initial_state=(True,), device=tuple(devices), dtype=tuple(dtypes))
    variants = dict(chosen, num_layers=(1,), batch_first=(False,))
    return (grid(dict(FULL_GRID, **chosen, num_layers=(1, 2)))
            + grid(dict(PACKING_GRID, **variants)) + grid(dict(LAYOUT_GRID, **variants)))


QUICK_SPECIAL_CASES = ("dropout0.5_eval", "saturating_T200", "N1", "batch_split_zero_state")


def quick_gradient_matrix(devices: Iterable[str] = ("cpu",), dtypes: Iterable[str] = DTYPES) -> list[Config]:
    """The quick matrix's grid part with initial states, for gradients. Its special cases stay
    forward-only: on saturated inputs held for T=200, oneDNN's float32 backward differs from
    torch's native one by ~1e3x the tolerance (lstm_ref matches the native one at 0.15x)."""
    return [replace(c, initial_state=True) for c in quick_matrix(devices, dtypes) if not c.tag]


def quick_matrix(devices: Iterable[str] = ("cpu",), dtypes: Iterable[str] = DTYPES) -> list[Config]:
    """A small subset: every axis value at least once (not every combination), ten grid
    points per device and dtype plus the special cases named in QUICK_SPECIAL_CASES."""
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
            configs += [c for c in special_cases(device, dtype, path) if c.tag in QUICK_SPECIAL_CASES]
    return configs

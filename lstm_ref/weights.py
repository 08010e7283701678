"""Weight import: read checkpoint files safely, find the recurrent modules inside a state_dict.

Reading (:func:`read_state_dict`): ``.pt``/``.pth`` with ``torch.load(...,
weights_only=True)`` (a pickled full model is refused, nothing in a file is
ever executed), ``.safetensors`` (the optional ``safetensors`` package) and
``.npz`` (``numpy.load(..., allow_pickle=False)``).

Discovery (:func:`find_modules`): in a whole model's state_dict, every group of
keys ``<prefix>weight_ih_l{k}[_reverse]``, ``weight_hh_*``, ``bias_ih_*``,
``bias_hh_*`` (``weight_hr_*``) is an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` and
every group ``<prefix>weight_ih``, ``weight_hh``[, ``bias_ih``, ``bias_hh``] one
of their cells. The kind and configuration are read off the key set and shapes
(torch's layout; G gates: 4 for an LSTM, i, f, g, o; 3 for a GRU, r, z, n; 1 for
an RNN, as :data:`lstm_ref.functional.GATES`):

    weight_ih_l0  (G*H, input_size)    -> G (the kind), input_size, H
    weight_hh_l0  (G*H, H_out)         H_out = proj_size or H
    weight_hr_l0  (proj_size, H)       LSTM only; present <=> proj_size > 0
    bias_*_l0     (G*H,)               present <=> bias
    *_reverse                          present <=> bidirectional
    largest k + 1                      num_layers
    no _l{k} suffix                    the cell (LSTMCell, GRUCell, RNNCell)

Gate rows that are none of 4H, 3H and H are a :class:`StateDictError`. Then
every key is checked against the shapes the lstm_ref module of that kind and
configuration has: a missing, extra or mis-shaped key is a StateDictError
naming the key, the expected shape and the found one. :func:`find_lstms` keeps
to LSTMs and LSTMCells. ``batch_first`` and ``dropout`` are not stored in a
state_dict, nor is an RNN's ``nonlinearity`` (tanh or relu):
:meth:`FoundModule.build` and :func:`load_module` take it, tanh by default.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from lstm_ref.functional import GATES
from lstm_ref.modules import GRU, LSTM, RNN, TORCH_CLASSES, GRUCell, LSTMCell, RNNCell

SUFFIXES_TORCH = (".pt", ".pth")
SUFFIXES = (*SUFFIXES_TORCH, ".safetensors", ".npz")
#: Wrapper keys of training checkpoints whose value is the model's state_dict.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
FIELDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<field>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                  r"(?P<suffix>_l(?P<layer>\d+)(?P<reverse>_reverse)?)?$")


class WeightFileError(ValueError):
    """A weight file that cannot be read (missing, corrupt, unsafe or of an unknown kind)."""


class StateDictError(ValueError):
    """A state_dict that does not match the recurrent module its keys describe."""


SAVE_STATE_DICT_HINT = (
    "save the weights instead: torch.save(model.state_dict(), PATH) "
    "(or safetensors.torch.save_file(model.state_dict(), PATH))"
)


# ----------------------------------------------------------------------------- reading files

def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a ``.pt``/``.pth``, ``.safetensors`` or ``.npz`` file, by key (on the CPU).

    Raises WeightFileError for a missing, unreadable or unsafe file; nothing in
    the file is executed (torch files load with ``weights_only=True``, npz
    without pickle).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise WeightFileError(f"{path}: unknown weight file type {suffix or '(none)'!r}; "
                              f"supported: {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise WeightFileError(f"{path}: no such file")
    if suffix in SUFFIXES_TORCH:
        loaded = _read_torch(path)
    elif suffix == ".safetensors":
        loaded = _read_safetensors(path)
    else:
        loaded = _read_npz(path)
    return _tensors_only(loaded, path)


def _read_torch(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError from a corrupt zip, EOFError, ...
        text = str(error)
        # torch 2.13: "... unsupported GLOBAL posix.mkdir whose module ..."; torch 2.1: "Unsupported class posix.mkdir"
        found = re.search(r"(?:GLOBAL|Unsupported class) ([\w.]+)", text)
        if found:
            what = f" (it refers to {found.group(1)})"
            raise WeightFileError(
                f"{path}: refused: the file is a pickled Python object{what}, not a state_dict of "
                f"tensors; it was not loaded and nothing in it ran. To share weights, "
                f"{SAVE_STATE_DICT_HINT}"
            ) from None
        reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        lines = text.strip().splitlines()
        first_line = reason.group(1) if reason else (lines[0] if lines else type(error).__name__)
        raise WeightFileError(f"{path}: not a readable torch checkpoint: {first_line}") from None


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise WeightFileError(
            f"{path}: reading .safetensors needs the safetensors package: "
            "pip install 'lstm-ref[safetensors]'"
        ) from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as error:  # SafetensorError and friends
        raise WeightFileError(f"{path}: not a readable safetensors file: {error}") from None


def _read_npz(path: Path) -> dict[str, Tensor]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: torch.from_numpy(np.array(archive[key])) for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise WeightFileError(f"{path}: not a readable .npz of numeric arrays: {error}") from None


def _tensors_only(loaded: object, path: Path) -> dict[str, Tensor]:
    if isinstance(loaded, dict):
        for key in WRAPPER_KEYS:
            inner = loaded.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                return dict(inner)
    if not isinstance(loaded, dict):
        raise WeightFileError(f"{path}: holds a {type(loaded).__name__}, not a state_dict "
                              f"(a dict of tensors); {SAVE_STATE_DICT_HINT}")
    not_tensors = [k for k, v in loaded.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise WeightFileError(
            f"{path}: key {not_tensors[0]!r} holds a {type(loaded[not_tensors[0]]).__name__}, not a "
            f"tensor; expected a state_dict (or a dict with one under {', '.join(WRAPPER_KEYS)})"
        )
    return dict(loaded)


def write_state_dict(state_dict: dict[str, Tensor], path: str | Path) -> None:
    """Write tensors to ``.npz``, ``.safetensors`` or ``.pt``/``.pth`` (chosen by the suffix)."""
    path = Path(path)
    suffix = path.suffix.lower()
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    if suffix == ".npz":
        unsupported = [k for k, v in tensors.items() if v.dtype in (torch.bfloat16,) or v.is_complex()]
        if unsupported:
            raise WeightFileError(f"{path}: .npz cannot hold {tensors[unsupported[0]].dtype} "
                                  f"({unsupported[0]}); use .safetensors or .pt")
        np.savez(path, **{k: v.numpy() for k, v in tensors.items()})
    elif suffix == ".safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise WeightFileError("writing .safetensors needs the safetensors package: "
                                  "pip install 'lstm-ref[safetensors]'") from None
        save_file(tensors, str(path))
    elif suffix in SUFFIXES_TORCH:
        torch.save(tensors, path)
    else:
        raise WeightFileError(f"{path}: cannot write {suffix or '(no suffix)'!r}; "
                              f"use one of {', '.join(SUFFIXES)}")


# ----------------------------------------------------------------------------- discovery

#: lstm_ref's module of each kind a state_dict can describe, by torch's class name (the kind).
MODULES: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in (LSTM, GRU, RNN, LSTMCell, GRUCell, RNNCell)}
#: Gates of each family (weight_ih has gates * hidden_size rows): functional.GATES by torch's class name.
FAMILY_GATES: dict[str, int] = {TORCH_CLASSES[mode].__name__: GATES[mode] for mode in GATES}
#: The kinds whose ``nonlinearity`` (tanh or relu) a state_dict does not record.
RNN_KINDS = ("RNN", "RNNCell")
NONLINEARITIES = ("tanh", "relu")
NONLINEARITY_NOTE = "nonlinearity not stored: tanh unless given"


@dataclass
class FoundModule:
    """One recurrent module (LSTM, GRU, RNN or one of their cells) found in a state_dict.

    ``config`` holds the torch module's constructor arguments that a state_dict determines;
    ``state_dict`` the module's own keys (prefix removed). An RNN's ``nonlinearity`` is not
    among them: a state_dict does not record it (:meth:`build` takes it, tanh by default).
    """

    prefix: str                      # '' for a bare module's state_dict, else e.g. 'encoder.lstm'
    kind: str                        # 'LSTM' | 'GRU' | 'RNN' | 'LSTMCell' | 'GRUCell' | 'RNNCell'
    config: dict[str, Any]
    state_dict: dict[str, Tensor] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "kind": self.kind, **self.config}

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config.items())
        dtype = next(iter(self.state_dict.values())).dtype
        note = f" ({NONLINEARITY_NOTE})" if self.kind in RNN_KINDS else ""
        return f"{self.prefix or '(top level)'}: {self.kind}({args}), {str(dtype).removeprefix('torch.')}{note}"

    def build(self, dtype: torch.dtype | None = None, nonlinearity: str | None = None) -> nn.Module:
        """The lstm_ref module of this kind and configuration (``lstm_ref.LSTM``, ``GRU``, ``RNN``
        or a cell) holding these weights, in their own dtype unless ``dtype`` is given.

        ``nonlinearity`` ("tanh" or "relu", default "tanh") is for an RNN or RNNCell only, whose
        state_dict does not say which it was built with; ValueError for any other kind or value.
        """
        dtype = dtype or next(iter(self.state_dict.values())).dtype
        extra = {}
        if nonlinearity is not None:
            if self.kind not in RNN_KINDS:
                raise ValueError(f"nonlinearity is an argument of RNN and RNNCell only, not of {self.kind}")
            if nonlinearity not in NONLINEARITIES:
                raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
            extra["nonlinearity"] = nonlinearity
        module = MODULES[self.kind](**self.config, **extra, dtype=dtype)
        with torch.no_grad():
            module.load_state_dict(self.state_dict)
        return module


#: The name :func:`find_lstms` has always returned; the same class.
FoundLSTM = FoundModule


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _expected_shapes(kind: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of the module ``kind(**config)`` (built on the meta device)."""
    module = MODULES[kind](**config, device="meta")
    return {name: tuple(p.shape) for name, p in module.named_parameters()}


def _group_keys(state_dict: dict[str, Tensor]) -> dict[tuple[str, bool], dict[str, Tensor]]:
    """Keys grouped by (prefix, layered: ``_l{k}`` suffixes, else a cell), each group keyed by
    the module's own parameter name."""
    groups: dict[tuple[str, bool], dict[str, Tensor]] = {}
    for key, tensor in state_dict.items():
        match = _KEY.match(key)
        if not match:
            continue
        name = key[len(match["prefix"]):]
        groups.setdefault((match["prefix"], bool(match["suffix"])), {})[name] = tensor
    return groups


def _family(prefix: str, suffix: str, w_ih: Tensor, w_hh: Tensor, hidden: int, projected: bool) -> str:
    """LSTM, GRU or RNN, from weight_ih's rows (4H, 3H or H); StateDictError for other rows or
    for weight_hh's rows disagreeing."""
    rows, columns = w_ih.shape
    families = {gates * hidden: family for family, gates in FAMILY_GATES.items()}
    if rows not in families:
        expected = ", ".join(f"{(gates * hidden, columns)} ({family}: {gates} x hidden_size {hidden})"
                             for family, gates in FAMILY_GATES.items())
        hint = ""
        if rows % 4 == 0 and rows // 4 > hidden and not projected:
            hint = (f"; an LSTM of hidden_size {rows // 4} with proj_size={hidden} would also have "
                    f"{prefix}weight_hr{suffix} {(hidden, rows // 4)}, which is missing")
        raise StateDictError(f"{prefix}weight_ih{suffix}: expected gate rows of 4, 3 or 1 times hidden_size "
                             f"(hidden_size {hidden} from {prefix}weight_{'hr' if projected else 'hh'}{suffix}): "
                             f"one of {expected}, found {_shape(w_ih)}{hint}")
    family = families[rows]
    if w_hh.shape[0] != rows:
        raise StateDictError(f"{prefix}weight_hh{suffix}: expected shape {(rows, w_hh.shape[1])} "
                             f"(a {family}, as {prefix}weight_ih{suffix}'s rows say), found {_shape(w_hh)}")
    return family


def _infer(prefix: str, layered: bool, group: dict[str, Tensor]) -> tuple[str, dict[str, Any]] | None:
    """(kind, configuration) the key set and layer-0 shapes describe; None for hidden_size 0
    (an empty cell: no gate rows tell its kind)."""
    suffix = "_l0" if layered else ""
    for needed in ("weight_ih", "weight_hh"):
        if needed + suffix not in group:
            what = "nn.LSTM, nn.GRU or nn.RNN" if layered else "nn.LSTMCell, nn.GRUCell or nn.RNNCell"
            raise StateDictError(f"missing key {prefix}{needed}{suffix} (keys of an {what} were found "
                                 f"under {prefix or 'the top level'!r}: {', '.join(sorted(group))})")
    w_ih, w_hh = group["weight_ih" + suffix], group["weight_hh" + suffix]
    proj = group.get("weight_hr" + suffix)
    if w_ih.dim() != 2 or w_hh.dim() != 2:
        bad, tensor = ("weight_ih", w_ih) if w_ih.dim() != 2 else ("weight_hh", w_hh)
        raise StateDictError(f"{prefix}{bad}{suffix}: expected a 2-D (gates*hidden, in) weight, "
                             f"found shape {_shape(tensor)}")
    projected = proj is not None and proj.dim() == 2
    hidden = int(proj.shape[-1] if projected else w_hh.shape[1])
    if hidden == 0:
        return None
    family = _family(prefix, suffix, w_ih, w_hh, hidden, projected)
    kind = family if layered else family + "Cell"
    config: dict[str, Any] = {"input_size": int(w_ih.shape[1]), "hidden_size": hidden}
    if layered:
        layers = [int(m["layer"]) for m in map(_KEY.match, group) if m and m["layer"] is not None]
        config["num_layers"] = max(layers) + 1
    config["bias"] = any(name.startswith("bias_") for name in group)
    if layered:
        config["bidirectional"] = any(name.endswith("_reverse") for name in group)
    if kind == "LSTM":
        config["proj_size"] = int(proj.shape[0]) if proj is not None else 0
        if config["proj_size"] >= hidden:
            raise StateDictError(f"{prefix}weight_hr_l0: expected shape (P, {hidden}) with P < hidden_size "
                                 f"{hidden}, found {_shape(proj)}")
    return kind, config


def _validate(prefix: str, kind: str, config: dict[str, Any], group: dict[str, Tensor]) -> None:
    expected = _expected_shapes(kind, config)
    what = f"{kind}({', '.join(f'{k}={v}' for k, v in config.items())})"
    for name, shape in expected.items():
        if name not in group:
            raise StateDictError(f"missing key {prefix}{name}: expected shape {shape} for {what}")
        if _shape(group[name]) != shape:
            raise StateDictError(f"{prefix}{name}: expected shape {shape} for {what}, "
                                 f"found {_shape(group[name])}")
    for name in group:
        if name not in expected:
            raise StateDictError(f"unexpected key {prefix}{name} (shape {_shape(group[name])}): "
                                 f"{what} has no such parameter")


def find_modules(state_dict: dict[str, Tensor], kinds: Iterable[str] | None = None) -> list[FoundModule]:
    """Every nn.LSTM, nn.GRU, nn.RNN and their cells in ``state_dict``, in key order, each
    validated; only those of ``kinds`` (names in :data:`MODULES`) when given, the others then
    being neither returned nor checked beyond telling their kind."""
    wanted = set(MODULES if kinds is None else kinds)
    if not wanted <= set(MODULES):
        raise ValueError(f"unknown kinds {sorted(wanted - set(MODULES))}; known: {', '.join(MODULES)}")
    found = []
    for (prefix, layered), group in _group_keys(state_dict).items():
        inferred = _infer(prefix, layered, group)
        if inferred is None or inferred[0] not in wanted:
            continue
        kind, config = inferred
        _validate(prefix, kind, config, group)
        found.append(FoundModule(prefix.removesuffix("."), kind, config, group))
    return found


def find_lstms(state_dict: dict[str, Tensor]) -> list[FoundModule]:
    """Every nn.LSTM and nn.LSTMCell in ``state_dict``, in key order, each validated (GRUs and
    RNNs are left out: :func:`find_modules` finds every kind)."""
    return find_modules(state_dict, kinds=("LSTM", "LSTMCell"))


def _names(found: list[FoundModule]) -> str:
    return ", ".join(f"{f.prefix!r} ({f.kind})" for f in found) or "none"


def select(found: list[FoundModule], prefix: str | None) -> FoundModule:
    """The one module named by ``prefix`` (trailing dot optional), or the only one when None."""
    if prefix is None:
        if len(found) != 1:
            raise StateDictError(f"{len(found)} recurrent modules found ({_names(found)}); "
                                 "choose one with --prefix")
        return found[0]
    wanted = prefix.removesuffix(".")
    for candidate in found:
        if candidate.prefix == wanted:
            return candidate
    raise StateDictError(f"no recurrent module under prefix {prefix!r}; found: {_names(found)}")


def load_module(path: str | Path, prefix: str | None = None, nonlinearity: str | None = None) -> nn.Module:
    """Read ``path``, find the recurrent module under ``prefix`` (or the only one) and build it in
    lstm_ref; ``nonlinearity`` ("tanh" or "relu", default tanh) for an RNN or RNNCell only."""
    return select(find_modules(read_state_dict(path)), prefix).build(nonlinearity=nonlinearity)


def load_lstm(path: str | Path, prefix: str | None = None) -> LSTM | LSTMCell:
    """Read ``path``, find the LSTM under ``prefix`` (or the only one) and build it in lstm_ref."""
    return cast("LSTM | LSTMCell", select(find_lstms(read_state_dict(path)), prefix).build())

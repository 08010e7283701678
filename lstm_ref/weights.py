"""Weight import: read checkpoint files safely, find the LSTMs inside a state_dict.

Reading (:func:`read_state_dict`): ``.pt``/``.pth`` with ``torch.load(...,
weights_only=True)`` (a pickled full model is refused, nothing in a file is
ever executed), ``.safetensors`` (the optional ``safetensors`` package) and
``.npz`` (``numpy.load(..., allow_pickle=False)``).

Discovery (:func:`find_lstms`): in a whole model's state_dict, every group of
keys ``<prefix>weight_ih_l{k}[_reverse]``, ``weight_hh_*``, ``bias_ih_*``,
``bias_hh_*``, ``weight_hr_*`` is an ``nn.LSTM`` and every group
``<prefix>weight_ih``, ``weight_hh``[, ``bias_ih``, ``bias_hh``] an
``nn.LSTMCell``. The configuration is read off the key set and shapes
(torch's layout, gate order i, f, g, o):

    weight_ih_l0  (4H, input_size)      -> input_size, H
    weight_hh_l0  (4H, H_out)           H_out = proj_size or H
    weight_hr_l0  (proj_size, H)        present <=> proj_size > 0
    bias_*_l0     (4H,)                 present <=> bias
    *_reverse                           present <=> bidirectional
    largest k + 1                       num_layers

then every key is checked against the shapes an ``lstm_ref.LSTM`` of that
configuration has: a missing, extra or mis-shaped key is a
:class:`StateDictError` naming the key, the expected shape and the found one.
Groups whose gate rows are 3H (GRU) or H (plain RNN) are not LSTMs and are
left out. ``batch_first`` and ``dropout`` are not stored in a state_dict.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstm_ref.modules import LSTM, LSTMCell

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
    """A state_dict that does not match the LSTM its keys describe."""


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

@dataclass
class FoundLSTM:
    """One LSTM or LSTMCell found in a state_dict.

    ``config`` holds nn.LSTM's / nn.LSTMCell's constructor arguments that a
    state_dict determines; ``state_dict`` the module's own keys (prefix removed).
    """

    prefix: str                      # '' for a bare module's state_dict, else e.g. 'encoder.lstm'
    kind: str                        # 'LSTM' | 'LSTMCell'
    config: dict[str, Any]
    state_dict: dict[str, Tensor] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "kind": self.kind, **self.config}

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config.items())
        dtype = next(iter(self.state_dict.values())).dtype
        return f"{self.prefix or '(top level)'}: {self.kind}({args}), {str(dtype).removeprefix('torch.')}"

    def build(self, dtype: torch.dtype | None = None) -> LSTM | LSTMCell:
        """An ``lstm_ref.LSTM`` / ``LSTMCell`` of this configuration holding these weights
        (in their own dtype unless ``dtype`` is given)."""
        dtype = dtype or next(iter(self.state_dict.values())).dtype
        module = (LSTM if self.kind == "LSTM" else LSTMCell)(**self.config, dtype=dtype)
        with torch.no_grad():
            module.load_state_dict(self.state_dict)
        return module


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _expected_shapes(kind: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of the module ``kind(**config)`` (built on the meta device)."""
    module = (LSTM if kind == "LSTM" else LSTMCell)(**config, device="meta")
    return {name: tuple(p.shape) for name, p in module.named_parameters()}


def _group_keys(state_dict: dict[str, Tensor]) -> dict[tuple[str, str], dict[str, Tensor]]:
    """Keys grouped by (prefix, kind), each group keyed by the module's own parameter name."""
    groups: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, tensor in state_dict.items():
        match = _KEY.match(key)
        if not match:
            continue
        kind = "LSTM" if match["suffix"] else "LSTMCell"
        name = key[len(match["prefix"]):]
        groups.setdefault((match["prefix"], kind), {})[name] = tensor
    return groups


def _infer_config(prefix: str, kind: str, group: dict[str, Tensor]) -> dict[str, Any] | None:
    """The configuration the key set and layer-0 shapes describe; None for a GRU or plain RNN."""
    suffix = "_l0" if kind == "LSTM" else ""
    for needed in ("weight_ih", "weight_hh"):
        if needed + suffix not in group:
            raise StateDictError(f"missing key {prefix}{needed}{suffix} (keys of an {kind} were found "
                                 f"under {prefix or 'the top level'!r}: {', '.join(sorted(group))})")
    w_ih, w_hh = group["weight_ih" + suffix], group["weight_hh" + suffix]
    proj = group.get("weight_hr" + suffix)
    if w_ih.dim() != 2 or w_hh.dim() != 2:
        bad, tensor = ("weight_ih", w_ih) if w_ih.dim() != 2 else ("weight_hh", w_hh)
        raise StateDictError(f"{prefix}{bad}{suffix}: expected a 2-D (gates*hidden, in) weight, "
                             f"found shape {_shape(tensor)}")
    hidden = proj.shape[-1] if proj is not None and proj.dim() == 2 else w_hh.shape[1]
    gate_rows = w_ih.shape[0]
    if gate_rows in (hidden, 3 * hidden) and gate_rows == w_hh.shape[0]:
        return None  # an nn.RNN (1 gate) or nn.GRU (3 gates)
    if gate_rows != 4 * hidden:
        raise StateDictError(f"{prefix}weight_ih{suffix}: expected shape {(4 * hidden, w_ih.shape[1])} "
                             f"(4 gates x hidden_size {hidden}), found {_shape(w_ih)}")
    config: dict[str, Any] = {"input_size": int(w_ih.shape[1]), "hidden_size": int(hidden)}
    if kind == "LSTM":
        layers = [int(m["layer"]) for m in map(_KEY.match, group) if m and m["layer"] is not None]
        config["num_layers"] = max(layers) + 1
    config["bias"] = any(name.startswith("bias_") for name in group)
    if kind == "LSTM":
        config["bidirectional"] = any(name.endswith("_reverse") for name in group)
        config["proj_size"] = int(proj.shape[0]) if proj is not None else 0
    if config.get("proj_size", 0) >= hidden:
        raise StateDictError(f"{prefix}weight_hr_l0: expected shape (P, {hidden}) with P < hidden_size "
                             f"{hidden}, found {_shape(proj)}")
    return config


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


def find_lstms(state_dict: dict[str, Tensor]) -> list[FoundLSTM]:
    """Every nn.LSTM and nn.LSTMCell in ``state_dict``, in key order, each validated."""
    found = []
    for (prefix, kind), group in _group_keys(state_dict).items():
        config = _infer_config(prefix, kind, group)
        if config is None:
            continue
        _validate(prefix, kind, config, group)
        found.append(FoundLSTM(prefix.removesuffix("."), kind, config, group))
    return found


def select(found: list[FoundLSTM], prefix: str | None) -> FoundLSTM:
    """The one LSTM named by ``prefix`` (trailing dot optional), or the only one when None."""
    if prefix is None:
        if len(found) != 1:
            names = ", ".join(repr(f.prefix) for f in found) or "none"
            raise StateDictError(f"{len(found)} LSTMs found ({names}); choose one with --prefix")
        return found[0]
    wanted = prefix.removesuffix(".")
    for candidate in found:
        if candidate.prefix == wanted:
            return candidate
    names = ", ".join(repr(f.prefix) for f in found) or "none"
    raise StateDictError(f"no LSTM under prefix {prefix!r}; found: {names}")


def load_lstm(path: str | Path, prefix: str | None = None) -> LSTM | LSTMCell:
    """Read ``path``, find the LSTM under ``prefix`` (or the only one) and build it in lstm_ref."""
    return select(find_lstms(read_state_dict(path)), prefix).build()

"""Implementations under test: resolving ``MODULE:ATTR`` to a factory.

A factory is called with a configured, initialised ``torch.nn.LSTM`` (a copy
the candidate may keep) and returns a callable with ``nn.LSTM.forward``'s
signature and return structure. Raising ``NotImplementedError`` from the
factory or the call marks the configuration *unsupported*. A configuration of another kind
(``Config.mode``) hands the factory an ``nn.GRU`` or ``nn.RNN`` instead, to be called as that
module is (``(output, h_n)``, h0 a tensor): a factory of one kind raises ``NotImplementedError``
for the others, as ``lstm_ref.LSTM.from_torch`` does.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
from collections.abc import Callable

import torch
from torch import nn

Factory = Callable[[nn.LSTM], Callable]

#: lstm_ref's module of the configured kind (LSTM, GRU or RNN): lstm_ref.modules.from_torch.
DEFAULT_IMPL = "lstm_ref:from_torch"


class CandidateError(Exception):
    """``MODULE:ATTR`` does not name a usable factory (a usage error)."""


def torch_other_path(module: nn.LSTM) -> Callable:
    """torch.nn.LSTM itself on another code path, as a sanity baseline.

    On CPU the copy runs torch's native loop (oneDNN disabled); on CUDA it
    runs on the CPU and moves the results back. Against the suite's oneDNN
    and cuDNN references this compares two torch paths.
    """
    device = next(module.parameters()).device
    if device.type == "cpu":
        def call(input, hx=None):
            with torch.backends.mkldnn.flags(enabled=False):
                return module(input, hx)
        return call
    cpu_module = copy.deepcopy(module).cpu()

    def call_on_cpu(input, hx=None):
        moved = input.to("cpu")
        state = None if hx is None else hx.to("cpu") if isinstance(hx, torch.Tensor) else tuple(s.to("cpu") for s in hx)
        output, state = cpu_module(moved, state)
        state = state.to(device) if isinstance(state, torch.Tensor) else tuple(s.to(device) for s in state)
        return output.to(device), state
    return call_on_cpu


BUILTIN: dict[str, str] = {
    "lstm_ref": DEFAULT_IMPL,
    "torch": "lstm_ref.candidates:torch_other_path",
    # real runtimes (lstm_ref.runtimes: what each converts; lstm-ref survey runs them all)
    "onnx-export": "lstm_ref.runtimes:onnx_export",
    "onnxruntime-op": "lstm_ref.runtimes:onnxruntime_op",
    "torch-compile": "lstm_ref.runtimes:torch_compile",
    "torchscript": "lstm_ref.runtimes:torchscript",
    "torch-export": "lstm_ref.runtimes:torch_export",
    "quantized-dynamic": "lstm_ref.runtimes:quantized_dynamic",
    "numpy-oracle": "lstm_ref.runtimes:numpy_oracle",
}


def load_factory(spec: str | None) -> tuple[str, Factory]:
    """Resolve ``spec`` (``MODULE:ATTR``, dotted ATTR allowed, or a builtin name) to ``(spec, factory)``."""
    spec = spec or DEFAULT_IMPL
    target = BUILTIN.get(spec, spec)
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise CandidateError(
            f"--lstm-impl must look like MODULE:ATTR (e.g. mypkg.lstm:make) or be one of "
            f"{sorted(BUILTIN)}, got {spec!r}"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a candidate in the current directory, as python -m would
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise CandidateError(f"cannot import module {module_name!r} for {spec!r}: {error}") from None
    except Exception as error:  # the candidate's own import failed
        raise CandidateError(
            f"importing module {module_name!r} for {spec!r} raised {type(error).__name__}: {error}"
        ) from None
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise CandidateError(
                f"module {module_name!r} has no attribute {attr_path!r} ({part!r} not found)"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise CandidateError(f"{spec!r} is a {type(obj).__name__}, not a callable factory")
    return spec, obj


def importable_name(factory: Factory | str | None) -> str | None:
    """The ``MODULE:ATTR`` that a fresh interpreter imports ``factory`` back by: a spec or built-in
    name as given (None: the default), an object's ``__module__:__qualname__`` when that resolves
    to it; None for a factory that has no such name (a lambda, a closure, a function defined in
    ``__main__`` or made at run time)."""
    if factory is None or isinstance(factory, str):
        return factory or DEFAULT_IMPL
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    spec = f"{module}:{qualname}"
    try:
        found = load_factory(spec)[1]
    except CandidateError:
        return None
    return spec if found == factory else None

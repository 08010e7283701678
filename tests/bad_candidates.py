"""Broken LSTM candidates for the harness' own tests (``--impl bad_candidates:NAME``).

Each factory takes the configured ``torch.nn.LSTM`` the harness hands it, like a real candidate,
and returns a callable that misbehaves in one way. Importable as ``bad_candidates`` with this
directory on sys.path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from torch import nn

#: Not a factory: ``--impl bad_candidates:NOT_CALLABLE`` is a usage error.
NOT_CALLABLE = 42

#: How long ``hangs`` blocks: far beyond any timeout a test sets, short enough to end on its own.
HANG_SECONDS = 30.0


def raises_in_factory(module: nn.LSTM) -> Callable:
    raise RuntimeError("cannot build the candidate: unsupported weight layout")


def raises_in_call(module: nn.LSTM) -> Callable:
    def call(input, hx=None):
        raise ValueError("kernel launch failed")
    return call


def unsupported(module: nn.LSTM) -> Callable:
    """Declines every configuration: all unsupported, none failed."""
    raise NotImplementedError("this candidate supports no configuration")


def wrong_output_shape(module: nn.LSTM) -> Callable:
    """Right h_n and c_n; the output loses its last feature."""
    def call(input, hx=None):
        output, state = module(input, hx)
        if isinstance(output, torch.nn.utils.rnn.PackedSequence):
            return output._replace(data=output.data[:, :-1]), state
        return output[..., :-1], state
    return call


def not_callable(module: nn.LSTM) -> object:
    """The factory returns something that cannot be called."""
    return 42


def non_tensors(module: nn.LSTM) -> Callable:
    def call(input, hx=None):
        return [[0.0]], ("h_n", "c_n")
    return call


def not_a_pair(module: nn.LSTM) -> Callable:
    def call(input, hx=None):
        return None
    return call


def hangs(module: nn.LSTM) -> Callable:
    """Blocks for HANG_SECONDS on every call (a deadlocked kernel)."""
    def call(input, hx=None):
        threading.Event().wait(HANG_SECONDS)
        return module(input, hx)
    return call


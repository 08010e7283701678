"""Broken LSTM candidates for the harness' own tests (``--impl bad_candidates:NAME``).

Each factory takes the configured ``torch.nn.LSTM`` the harness hands it, like a real candidate,
and returns a callable that misbehaves in one way. Importable as ``bad_candidates`` with this
directory on sys.path.
"""

from __future__ import annotations

import os
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



# --- candidates that take down or hold the process they run in, on one kind of configuration ------

def _misbehaves_on_bidirectional_stacks(misbehave: Callable[[], object]) -> Callable[[nn.LSTM], Callable]:
    """A factory that is torch itself, except that on 3 layers bidirectional it calls ``misbehave``."""
    def factory(module: nn.LSTM) -> Callable:
        def call(input, hx=None):
            if module.num_layers >= 3 and module.bidirectional:
                misbehave()
            return module(input, hx)
        return call
    return factory


def _null_dereference() -> None:
    import ctypes

    ctypes.string_at(0)  # reads address 0: SIGSEGV


def _spin() -> None:
    flag = os.environ.get("LSTM_REF_TEST_SPINNING")
    if flag:  # tells a test the worker is now in the loop
        open(flag, "w").close()
    while True:
        pass


def _allocate_without_bound() -> None:
    hoard = []
    while True:
        hoard.append(torch.ones(2**26))  # 256 MiB a step


def _hold_768_mib() -> None:
    held = torch.empty(3 * 2**26)  # 768 MiB (counted by RLIMIT_DATA untouched), alive until the call returns
    del held


def _exit_3() -> None:
    os._exit(3)


def _raise_system_exit() -> None:
    raise SystemExit(4)


def _sleep_in_c() -> None:
    import time

    time.sleep(HANG_SECONDS)


segfaults = _misbehaves_on_bidirectional_stacks(_null_dereference)
aborts = _misbehaves_on_bidirectional_stacks(lambda: __import__("os").abort())
exits_3 = _misbehaves_on_bidirectional_stacks(_exit_3)
raises_system_exit = _misbehaves_on_bidirectional_stacks(_raise_system_exit)
spins = _misbehaves_on_bidirectional_stacks(_spin)
sleeps_in_c = _misbehaves_on_bidirectional_stacks(_sleep_in_c)
allocates_without_bound = _misbehaves_on_bidirectional_stacks(_allocate_without_bound)
holds_768_mib = _misbehaves_on_bidirectional_stacks(_hold_768_mib)
#: The same factory with nothing misbehaving: the verdicts a crash must leave unchanged.
well_behaved = _misbehaves_on_bidirectional_stacks(lambda: None)

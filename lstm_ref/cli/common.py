"""What every command shares: its exit codes, the usage error, the check for optional extras and
the torch thread count for the duration of a command."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

import torch

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line: reported in one line, exit code 2."""


def require_extra(flag: str, module: str, extra: str) -> None:
    """Raise UsageError with the install line when ``flag`` needs ``module`` and it is missing."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{flag} needs {module}: pip install 'lstm-ref[{extra}]'") from None


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` (for this process and, passed on, the
    workers it starts), the caller's restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)

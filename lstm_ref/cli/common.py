"""What every command shares: its exit codes, the usage error and the check for optional extras."""

from __future__ import annotations

import importlib

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line: reported in one line, exit code 2."""


def require_extra(flag: str, module: str, extra: str) -> None:
    """Raise UsageError with the install line when ``flag`` needs ``module`` and it is missing."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{flag} needs {module}: pip install 'lstm-ref[{extra}]'") from None

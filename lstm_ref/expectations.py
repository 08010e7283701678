"""Known gaps, declared: skip and xfail files of configuration-id patterns.

A file holds one pattern a line (``fnmatch`` syntax, matched anywhere in a test id or a
configuration id), ``#`` starts a comment. The skip file's configurations are not run; the
xfail file's are run and expected to fail: a failure is reported as *xfailed*, and a pass as
*xpassed*, which fails the run (strict), so a list of known gaps cannot go stale.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from pathlib import Path

from lstm_ref.conformance import FAILED, PASSED, XFAILED, XPASSED, Result


class PatternFileError(ValueError):
    """A skip or xfail file cannot be read."""


def read_patterns(path: str | Path, option: str) -> list[str]:
    """The patterns of a skip or xfail file; PatternFileError naming ``option`` if it cannot be read."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise PatternFileError(f"{option}: cannot read {str(path)!r}: {error.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def matching(identifier: str, patterns: list[str]) -> str | None:
    """The first pattern that matches ``identifier`` anywhere in it, or None."""
    return next((p for p in patterns if fnmatch.fnmatchcase(identifier, f"*{p}*")), None)


def expected_to_fail(result: Result, pattern: str) -> Result:
    """``result`` of a configuration listed as a known failure: failed -> xfailed, passed -> xpassed."""
    if result.status == FAILED:
        return replace(result, status=XFAILED, message=f"known failure ({pattern}): {result.message}".rstrip(": "))
    if result.status == PASSED:
        return replace(result, status=XPASSED, message=f"listed as a known failure ({pattern}) but passed: "
                                                        "remove it from the xfail file")
    return result

"""Summaries of many conformance Results: the by-axis table and the JSON report.

The table groups verdicts by each axis value (``bidirectional=True``,
``input_form=packed``, ...): when only some values of one axis fail, that
axis is where the bug is.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import torch

from lstm_ref.configs import AXES
from lstm_ref.conformance import FAILED, PASSED, SKIPPED, UNSUPPORTED, UNTESTABLE, XFAILED, XPASSED, Result
from lstm_ref.gradients import PARAMETERS_UNREACHED

REPORT_VERSION = 2
#: untestable: torch itself cannot run the configuration (lstm_ref.half); it fails no candidate.
STATUSES = (PASSED, FAILED, UNSUPPORTED, SKIPPED, XFAILED, XPASSED, UNTESTABLE)
#: Statuses shown in the table and the summary line even when no configuration has them.
ALWAYS_SHOWN = (PASSED, FAILED, UNSUPPORTED, SKIPPED)
#: The grouping keys of the table: the module kind, the matrix axes, the torch path, the special case.
GROUP_KEYS = ("mode", *AXES, "autocast", "torch_path", "tag")


def counts(results: list[Result]) -> Counter:
    return Counter(result.status for result in results)


def shown(tally: Counter) -> list[str]:
    return [s for s in STATUSES if s in ALWAYS_SHOWN or tally[s]]


def unsupported_parameter_gradients(results: list[Result]) -> int:
    """Configurations whose parameter gradients could not be compared (counted among unsupported)."""
    return sum(r.status == UNSUPPORTED and r.message.startswith(PARAMETERS_UNREACHED) for r in results)


def summary_line(results: list[Result], seconds: float) -> str:
    tally = counts(results)
    line = ", ".join(f"{tally[s]} {s}" for s in shown(tally))
    unreached = unsupported_parameter_gradients(results)
    if unreached:
        line += f" ({unreached} of them unsupported for parameter gradients)"
    if tally[UNTESTABLE]:
        line += " (untestable: torch cannot run them, so they fail no candidate)"
    return line + f" in {seconds:.1f}s"


def axis_table(results: list[Result]) -> str:
    """One row per axis value: counts per status and the worst error as a multiple of tolerance.

    A value is flagged when it has failures while another value of the same axis has none.
    """
    rows: dict[tuple[str, str], Counter] = defaultdict(Counter)
    worst: dict[tuple[str, str], float] = defaultdict(float)
    for result in results:
        for key in GROUP_KEYS:
            value = getattr(result.config, key)
            if key == "tag" and not value:
                value = "(grid)"
            rows[key, str(value)][result.status] += 1
            worst[key, str(value)] = max(worst[key, str(value)], result.worst_ratio)
    columns = shown(counts(results))
    header = f"{'axis':<14}{'value':<24}" + "".join(f"{s:>12}" for s in columns) + f"{'worst/tol':>11}"
    lines = [header, "-" * len(header)]
    clean_axes = {key for (key, _), tally in rows.items() if tally[PASSED] and not tally[FAILED]}
    for (key, value), tally in sorted(rows.items(), key=lambda row: GROUP_KEYS.index(row[0][0])):
        # failures here but none at another value of the same axis: this axis isolates the bug
        flag = "  <-- fails only at some values" if tally[FAILED] and key in clean_axes else ""
        lines.append(
            f"{key:<14}{value:<24}" + "".join(f"{tally[s]:>12}" for s in columns)
            + f"{worst[key, value]:>11.3g}{flag}"
        )
    return "\n".join(lines)


def environment(seed: int, impl: str) -> dict:
    cuda = torch.cuda.is_available()
    return {
        "implementation": impl,
        "seed": seed,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda_device": torch.cuda.get_device_name() if cuda else None,
        "tf32": "disabled for the run (cudnn.allow_tf32=False, cuda.matmul.allow_tf32=False)"
        if cuda else "not applicable (no CUDA)",
        "onednn_available": torch.backends.mkldnn.is_available(),
    }


def write_json(path: str | Path, results: list[Result], seed: int, impl: str, seconds: float) -> None:
    """Write the versioned report atomically: the file is whole or absent."""
    report = {
        "report_version": REPORT_VERSION,
        "environment": environment(seed, impl),
        "summary": {**{s: counts(results)[s] for s in STATUSES},
                    "unsupported_parameter_gradients": unsupported_parameter_gradients(results), "seconds": seconds},
        "results": [result.as_dict() for result in results],
    }
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(report, stream, indent=1, allow_nan=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

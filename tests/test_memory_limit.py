"""``--memory-limit``: what the candidate may allocate, the same on every build of torch.

The worker caps its private writable memory (``RLIMIT_DATA``) at what it holds once torch and
lstm_ref are imported plus the limit (:func:`lstm_ref.runner.limit_allocations`). A CUDA build
of torch holds ~0.8 GiB of private memory in ~3.1 GiB of address space once imported, so a cap
that ignored that footprint, or capped the address space, left a CUDA build's candidate little
or nothing of a small limit. These tests run under any torch build; run them in a venv with a
CUDA build of torch to check that case (docs/versions.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lstm_ref import configs
from lstm_ref.conformance import FAILED, PASSED
from lstm_ref.runner import Runner, private_memory

HERE = Path(__file__).resolve().parent
GIB = 2**30
#: The configuration the test candidates misbehave on (3 layers, bidirectional), and one after it.
ALLOCATING = configs.Config(num_layers=3, bidirectional=True, initial_state=True)
AFTER = configs.Config(batch_first=True, input_form="packed", initial_state=True)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and VmData are Linux's")


@pytest.fixture(autouse=True)
def candidates_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def test_private_memory_counts_an_allocation() -> None:
    before = private_memory()
    held = torch.ones(2**26)  # 256 MiB
    assert private_memory() - before >= 250 * 2**20
    del held


def test_a_candidate_may_allocate_up_to_the_limit_above_the_workers_footprint() -> None:
    """768 MiB under a 1 GiB limit passes: the limit is the candidate's, not the worker's whole
    footprint (a CUDA build of torch alone holds ~0.8 GiB once imported)."""
    with Runner("bad_candidates:holds_768_mib", timeout=60, memory_limit=GIB) as runner:
        result = runner.check(ALLOCATING)
    assert result.status == PASSED, result.describe()


def test_allocating_past_the_limit_fails_that_configuration_only() -> None:
    with Runner("bad_candidates:allocates_without_bound", timeout=60, memory_limit=GIB) as runner:
        crashed = runner.check(ALLOCATING)
        after = runner.check(AFTER)
    assert crashed.status == FAILED
    assert "can't allocate memory" in crashed.message or "MemoryError" in crashed.message, crashed.describe()
    assert after.status == PASSED, after.describe()


def test_the_cap_is_the_footprint_plus_the_limit() -> None:
    """In a fresh interpreter: the cap set is VmData + limit, and Python's own allocations meet it."""
    script = (
        "import resource, torch\n"
        "from lstm_ref.runner import limit_allocations, private_memory\n"
        "footprint = private_memory()\n"
        f"cap = limit_allocations({GIB // 4})\n"
        "assert resource.getrlimit(resource.RLIMIT_DATA)[0] == cap, 'not set'\n"
        f"assert footprint <= cap - {GIB // 4} <= footprint + 2**20, (footprint, cap)\n"
        f"fits = bytearray({GIB // 8})\n"
        "try:\n"
        f"    bytearray({GIB // 4})\n"
        "except MemoryError:\n"
        "    print('refused')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "refused"

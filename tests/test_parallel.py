"""Verdicts do not depend on worker count, order or process: what makes ``pytest -n N`` safe.

Each configuration seeds its own generators from its id (lstm_ref.conformance.seed_for), so a
configuration run first or last, after others that moved torch's global RNG, or alone in a
fresh interpreter (as on an xdist worker) gives the same numbers, bit for bit: statuses,
max abs/rel/ULP errors, worst indices and per-step errors.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace

import torch

from lstm_ref import configs
from lstm_ref.conformance import check_forward

#: A spread of the matrix: every input form, non-contiguous layouts, both directions, batch_first, bias, projections,
#: both dtypes and both CPU torch paths, and a deterministic training-mode dropout case.
BASE = configs.Config(num_layers=2, initial_state=True, input_size=3, hidden_size=4, seq_len=4)
SUBSET = [
    BASE,
    replace(BASE, dtype="float64", torch_path="native"),
    replace(BASE, bidirectional=True, torch_path="native"),
    replace(BASE, bidirectional=True, input_form="packed"),
    replace(BASE, bidirectional=True, input_form="packed_list", proj_size=2, dtype="float64", layout="strided"),
    replace(BASE, input_form="unbatched", proj_size=2),
    replace(BASE, bidirectional=True, batch_first=True, dtype="float64"),
    replace(BASE, input_form="packed_sorted", batch_first=True, torch_path="native", layout="transposed"),
    replace(BASE, bidirectional=True, bias=False, input_form="unbatched", dtype="float64"),
    *[c for c in configs.special_cases() if c.tag == "dropout1_train"],
]

FRESH_PROCESS = """
import json, sys
from lstm_ref import configs
from lstm_ref.conformance import check_forward
subset = [configs.Config(**fields) for fields in json.load(sys.stdin)]
print(json.dumps({c.id: {k: v for k, v in check_forward(c).as_dict().items() if k != "seconds"}
                  for c in reversed(subset)}))
"""


def verdicts(subset: list[configs.Config], disturb: bool = False) -> dict[str, dict]:
    """Each configuration's full result (less its run time), JSON round-tripped; with ``disturb``,
    torch's global RNG is reseeded before each configuration."""
    results = {}
    for index, config in enumerate(subset):
        if disturb:
            torch.manual_seed(1000 + index)
        result = check_forward(config).as_dict()
        result.pop("seconds")
        results[config.id] = result
    return json.loads(json.dumps(results))


def test_subset_covers_the_axes() -> None:
    assert len({c.id for c in SUBSET}) == len(SUBSET) == 10
    assert {c.input_form for c in SUBSET} == set(configs.INPUT_FORMS)
    for axis in ("bidirectional", "batch_first", "bias", "proj_size", "dtype", "torch_path", "train"):
        assert len({getattr(c, axis) for c in SUBSET}) > 1, axis


def test_results_are_identical_in_any_order_and_in_a_fresh_process() -> None:
    in_order = verdicts(SUBSET)
    assert all(result["status"] == "passed" for result in in_order.values())
    shuffled = SUBSET.copy()
    random.Random(7).shuffle(shuffled)
    assert verdicts(shuffled, disturb=True) == in_order

    fields = [{k: v for k, v in c.as_dict().items() if k != "id"} for c in SUBSET]
    completed = subprocess.run([sys.executable, "-c", FRESH_PROCESS], input=json.dumps(fields),
                               capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(completed.stdout) == in_order

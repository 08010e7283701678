"""tools/torch_versions.py, the cross-version table of docs/versions.md: its record and its comparison."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_ref.configs import Config
from lstm_ref.vectors import write_vectors

TOOL = Path(__file__).resolve().parent.parent / "tools" / "torch_versions.py"
#: A case oneDNN takes in float32 (so float32 runs twice: oneDNN and native) and one it does not.
CASES = [Config(num_layers=2, bidirectional=True, initial_state=True, dtype="float64", torch_path="native"),
         Config(proj_size=3, input_form="packed", dtype="float64", torch_path="native")]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("torch_versions", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recorded(tool, tmp_path_factory) -> dict[str, np.ndarray]:
    directory = tmp_path_factory.mktemp("versions")
    write_vectors(directory / "vectors", cases=CASES)
    assert tool.record(directory / "vectors", directory / "record.npz") == 5  # 2 x float32 + 1, 2 x float64
    return dict(np.load(directory / "record.npz"))


def test_record_runs_each_case_once_per_path_that_computes_it(recorded) -> None:
    runs = {key.rsplit("|", 1)[0] for key in recorded}
    assert {run.split("|")[0] for run in runs if "|L2-bidir-" in run and "|float32|" in run} == {"onednn", "native"}
    assert {run.split("|")[0] for run in runs if "-proj3-" in run or "|float64|" in run} == {"native"}
    names = {key.rsplit("|", 1)[1] for key in recorded if "|L2-bidir-" in key}
    assert {"output", "h_n", "c_n", "grad.input", "grad.h0", "grad.c0", "grad.weight_hh_l1_reverse"} <= names


def test_a_record_against_itself_differs_nowhere(tool, recorded) -> None:
    rows = tool.compare(recorded, recorded)
    assert {(row["path"], row["dtype"]) for row in rows} == {
        ("onednn", "float32"), ("native", "float32"), ("native", "float64")}
    assert all(row["differing"] == 0 and row["max_ulp"] == 0 for row in rows)


def test_one_element_one_ulp_off_is_found_where_it_is(tool, recorded) -> None:
    key = next(k for k in recorded if k.startswith("native|float32|") and k.endswith("|grad.weight_ih_l0"))
    changed = dict(recorded, **{key: recorded[key].copy()})
    changed[key].flat[3] = np.nextafter(changed[key].flat[3], np.float32(np.inf), dtype=np.float32)
    rows = {(row["path"], row["dtype"], row["kind"]): row for row in tool.compare(recorded, changed)}
    row = rows["native", "float32", "gradients"]
    assert row["differing"] == 1 and row["max_ulp"] == pytest.approx(1, abs=0.5)
    assert row["worst"].endswith("grad.weight_ih_l0") and row["worst"].split()[0] in key
    assert all(other["differing"] == 0 for name, other in rows.items() if name != ("native", "float32", "gradients"))


def test_loss_weights_are_exact_in_every_dtype(tool) -> None:
    weights = tool.loss_weights(torch.empty(3, 50, dtype=torch.float64))
    assert torch.equal(weights.float().double(), weights) and torch.equal(weights.half().double(), weights)

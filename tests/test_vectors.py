"""Golden vectors: written files are complete and replayable, verify passes correct
implementations and fails broken ones, with the exit codes of the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_ref import vectors
from lstm_ref.cli import main
from lstm_ref.configs import INPUT_FORMS, Config
from lstm_ref.conformance import FAILED, PASSED
from lstm_ref.modules import LSTM

BASE = Config(dtype="float64", initial_state=True, seq_len=4, input_size=3, hidden_size=4)
#: Small cases covering the input forms the files must carry: dense batch_first bidirectional,
#: packed (padded + lengths) with projections, unbatched, no initial state.
SMALL_CASES = [
    replace(BASE, num_layers=2, bidirectional=True, batch_first=True),
    replace(BASE, bias=False, proj_size=2, input_form="packed", batch_first=True),
    replace(BASE, input_form="unbatched", initial_state=False),
]

BROKEN_IMPL = '''
import torch
from lstm_ref import LSTM

def in_float32(module):
    """Computes in float32 whatever the dtype: right for float32 cases, wrong for float64."""
    lstm = LSTM.from_torch(module).float()
    def call(input, hx=None):
        dtype = input.dtype if isinstance(input, torch.Tensor) else input.data.dtype
        out, (h, c) = lstm(input.float(), None if hx is None else tuple(s.float() for s in hx))
        return out.to(dtype), (h.to(dtype), c.to(dtype))
    return call

def unsupported(module):
    raise NotImplementedError("no LSTMs here")
'''


@pytest.fixture(scope="module")
def vector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vectors")
    vectors.write_vectors(directory, seed=0, cases=SMALL_CASES)
    return directory


@pytest.fixture
def broken_impl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "broken_lstm.py").write_text(BROKEN_IMPL)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "broken_lstm"


def test_manifest_lists_every_case_in_both_dtypes_with_files_that_match(vector_dir):
    manifest = json.loads((vector_dir / vectors.MANIFEST).read_text())
    assert manifest["format"] == vectors.FORMAT and manifest["version"] == vectors.FORMAT_VERSION
    assert [(e["config"]["seq_len"], e["dtype"]) for e in manifest["cases"]] == [
        (4, dtype) for _ in SMALL_CASES for dtype in vectors.VECTOR_DTYPES]
    for entry in manifest["cases"]:
        with np.load(vector_dir / entry["file"], allow_pickle=False) as archive:
            assert {k: list(archive[k].shape) for k in archive.files} == entry["arrays"]
            assert {"input", "output", "h_n", "c_n", "weight_ih_l0"} <= set(archive.files)
            assert archive["output"].dtype == np.dtype(entry["dtype"])
        assert entry["tolerance"]["atol"] > 0 and entry["tolerance"]["rtol"] > 0


def test_packed_case_holds_lengths_and_zero_output_past_them(vector_dir):
    entry = next(e for e in json.loads((vector_dir / vectors.MANIFEST).read_text())["cases"]
                 if e["config"]["input_form"] == "packed")
    with np.load(vector_dir / entry["file"]) as archive:
        lengths, output = archive["lengths"], archive["output"]     # output (N, T, P): batch_first
    assert lengths.dtype == np.int64 and lengths.max() == BASE.seq_len
    for row, length in enumerate(lengths):
        assert np.all(output[row, length:] == 0) and np.any(output[row, :length] != 0)


def test_float32_case_is_the_float64_truth_of_rounded_inputs(vector_dir):
    entries = json.loads((vector_dir / vectors.MANIFEST).read_text())["cases"][:2]
    with np.load(vector_dir / entries[0]["file"]) as f64, np.load(vector_dir / entries[1]["file"]) as f32:
        assert np.array_equal(f32["input"], f64["input"].astype(np.float32))
        module = torch.nn.LSTM(**entries[1]["module_kwargs"], dtype=torch.float64)
        module.load_state_dict({k: torch.from_numpy(f32[k]).double() for k in module.state_dict()})
        with torch.no_grad():
            output, _ = module(torch.from_numpy(f32["input"]).double(),
                               (torch.from_numpy(f32["h0"]).double(), torch.from_numpy(f32["c0"]).double()))
        assert np.array_equal(f32["output"], output.numpy().astype(np.float32))


def test_writing_twice_gives_identical_files(vector_dir, tmp_path):
    vectors.write_vectors(tmp_path, seed=0, cases=SMALL_CASES[:1])
    name = json.loads((tmp_path / vectors.MANIFEST).read_text())["cases"][0]["file"]
    with np.load(tmp_path / name) as again, np.load(vector_dir / name) as first:
        assert all(np.array_equal(again[k], first[k]) for k in first.files)


@pytest.mark.parametrize("impl", ["lstm_ref", "torch"])
def test_verify_passes_correct_implementations(vector_dir, capsys, impl):
    assert main(["verify", str(vector_dir), "--impl", impl]) == 0
    assert f"{2 * len(SMALL_CASES)} passed, 0 failed" in capsys.readouterr().out


def test_verify_fails_an_implementation_computing_float64_in_float32(vector_dir, capsys, broken_impl):
    assert main(["verify", str(vector_dir), "--impl", f"{broken_impl}:in_float32"]) == 1
    out = capsys.readouterr().out
    assert f"{len(SMALL_CASES)} passed, {len(SMALL_CASES)} failed" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("passed", "failed"))]
    statuses = {row[1]: row[0] for row in rows}
    assert all((status == FAILED) == ("float64" in case) for case, status in statuses.items())


def test_verify_counts_unsupported_without_failing(vector_dir, capsys, broken_impl):
    assert main(["verify", str(vector_dir), "--impl", f"{broken_impl}:unsupported"]) == 0
    assert f"0 passed, 0 failed, {2 * len(SMALL_CASES)} unsupported" in capsys.readouterr().out


def test_verify_catches_a_perturbed_weight(tmp_path):
    def perturbed(module):
        lstm = LSTM.from_torch(module)
        with torch.no_grad():
            lstm.weight_hh_l0[0, 0] += 1e-6
        return lstm
    vectors.write_vectors(tmp_path, cases=SMALL_CASES[:1])
    results = vectors.verify_vectors(tmp_path, perturbed)
    assert [r.status for r in results] == [FAILED, PASSED]  # 1e-6 is within float32's tolerance


def test_vectors_command_writes_the_documented_set(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(vectors, "vector_configs", lambda: SMALL_CASES[:1])
    assert main(["vectors", "--out", str(tmp_path / "out")]) == 0
    assert "wrote 2 cases" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "out")]) == 0


def test_documented_set_has_every_axis_value_and_no_random_dropout():
    configs = vectors.vector_configs()
    assert configs and not any(c.train for c in configs)
    for axis in ("bidirectional", "batch_first", "bias", "initial_state"):
        assert {getattr(c, axis) for c in configs} == {False, True}, axis
    assert {c.input_form for c in configs} == set(INPUT_FORMS)
    assert any(c.proj_size for c in configs) and {c.num_layers for c in configs} >= {1, 2, 3}


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"format": "other"}),
                                     json.dumps({"format": vectors.FORMAT, "version": 99})],
                         ids=["no_manifest", "corrupt_manifest", "foreign_manifest", "future_version"])
def test_verify_usage_errors_exit_2(tmp_path, capsys, content):
    if content is not None:
        (tmp_path / vectors.MANIFEST).write_text(content)
    assert main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "manifest.json" in err

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
from lstm_ref.candidates import load_factory
from lstm_ref.cli import main
from lstm_ref.configs import INPUT_FORMS, Config
from lstm_ref.conformance import FAILED, PASSED
from lstm_ref.modules import GRU, LSTM
from lstm_ref.tolerances import tolerance_for

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


#: GRU and RNN cases: packed bidirectional with h0 (h_n alone, no c0/c_n), unbatched without a state.
RNN_CASES = [
    replace(BASE, mode="GRU", bidirectional=True, input_form="packed", batch_first=True),
    replace(BASE, mode="RNN_TANH", num_layers=2, input_form="unbatched", initial_state=False),
    replace(BASE, mode="RNN_RELU", num_layers=2, bias=False),
]


@pytest.fixture(scope="module")
def rnn_vector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("rnn_vectors")
    vectors.write_vectors(directory, seed=0, cases=RNN_CASES)
    return directory


def test_gru_and_rnn_cases_hold_h_alone_and_name_their_kind(rnn_vector_dir):
    manifest = json.loads((rnn_vector_dir / vectors.MANIFEST).read_text())
    assert manifest["gate_orders"]["GRU"] == "r, z, n" and manifest["gate_orders"]["LSTM"] == "i, f, g, o"
    assert [e["config"]["mode"] for e in manifest["cases"]] == [c.mode for c in RNN_CASES for _ in range(2)]
    for entry in manifest["cases"]:
        with np.load(rnn_vector_dir / entry["file"], allow_pickle=False) as archive:
            assert "c_n" not in archive.files and "c0" not in archive.files and "h_n" in archive.files
            assert ("h0" in archive.files) == entry["config"]["initial_state"]
            gates = 3 if entry["config"]["mode"] == "GRU" else 1
            assert archive["weight_hh_l0"].shape == (gates * BASE.hidden_size, BASE.hidden_size)
    assert manifest["cases"][4]["module_kwargs"]["nonlinearity"] == "relu"


@pytest.mark.parametrize("impl", ["lstm_ref", "torch"])
def test_verify_passes_correct_gru_and_rnn(rnn_vector_dir, capsys, impl):
    assert main(["verify", str(rnn_vector_dir), "--impl", impl]) == 0
    assert f"{2 * len(RNN_CASES)} passed, 0 failed" in capsys.readouterr().out


def test_verify_fails_gru_and_rnn_mutants_on_their_cases(rnn_vector_dir):
    from tests import mutants_rnn

    results = vectors.verify_vectors(rnn_vector_dir, mutants_rnn.reset_update_swapped)
    assert [r.status for r in results[:2]] == [FAILED, FAILED]          # the GRU cases
    results = vectors.verify_vectors(rnn_vector_dir, mutants_rnn.relu_for_tanh)
    assert [r.status for r in results[2:4]] == [FAILED, FAILED]         # the RNN_TANH cases


def test_a_gru_answering_with_an_lstm_state_pair_fails_with_the_expected_form(rnn_vector_dir):
    def pair(module):
        gru = GRU.from_torch(module)
        return lambda input, hx=None: (lambda output, h_n: (output, (h_n, h_n)))(*gru(input, hx))
    result = vectors.verify_vectors(rnn_vector_dir, pair)[0]
    assert result.status == FAILED


def test_a_case_where_torch_errs_past_half_the_row_allows_twice_torchs_error(tmp_path):
    saturating = next(c for c in vectors.vector_configs(("GRU",)) if c.tag == "saturating_T200")
    manifest = vectors.write_vectors(tmp_path, cases=[saturating])
    float32 = manifest["cases"][1]
    row = tolerance_for("float32", "cpu").over(saturating.seq_len)
    assert float32["torch_error"] > 0.5                # torch's float32 against the float64 truth
    assert float32["tolerance"]["rtol"] == pytest.approx(2 * float32["torch_error"] * row.rtol)
    float64_row = tolerance_for("float64", "cpu").over(saturating.seq_len)
    assert manifest["cases"][0]["tolerance"]["rtol"] == float64_row.rtol   # float64: torch is the truth
    assert all(r.status == PASSED for r in vectors.verify_vectors(tmp_path, load_factory("torch")[1]))


def test_a_version_1_manifest_of_lstm_cases_still_replays(tmp_path):
    manifest = vectors.write_vectors(tmp_path, cases=SMALL_CASES[:1])
    for entry in manifest["cases"]:
        del entry["config"]["mode"]
    (tmp_path / vectors.MANIFEST).write_text(json.dumps({**manifest, "version": 1}))
    assert [r.status for r in vectors.verify_vectors(tmp_path, load_factory("lstm_ref")[1])] == [PASSED, PASSED]

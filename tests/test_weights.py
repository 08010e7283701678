"""Weight import: safe reading of checkpoint files, discovery of LSTMs in a whole model, the CLI."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lstm_ref
from lstm_ref import weights
from lstm_ref.cli import main
from lstm_ref.compare import compare_tensor
from lstm_ref.tolerances import tolerance_for


class PoetryModel(nn.Module):
    """A character-level poetry model: Embedding -> 3-layer LSTM -> Sequential classifier."""

    def __init__(self, vocabulary: int = 40, embedding: int = 12, hidden: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, embedding)
        self.lstm = nn.LSTM(embedding, hidden, num_layers=3, batch_first=True, dropout=0.2)
        self.classifier = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, vocabulary))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(self.embedding(tokens))
        return self.classifier(output)


POETRY_CONFIG = {"prefix": "lstm", "kind": "LSTM", "input_size": 12, "hidden_size": 16, "num_layers": 3,
                 "bias": True, "bidirectional": False, "proj_size": 0}


@pytest.fixture
def poetry_checkpoint(tmp_path: Path) -> tuple[PoetryModel, Path]:
    torch.manual_seed(0)
    model = PoetryModel().eval()
    path = tmp_path / "poetry.pt"
    torch.save(model.state_dict(), path)
    return model, path


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ----------------------------------------------------------------------------- the poetry model

def test_poetry_checkpoint_is_found_with_its_configuration_by_the_cli(poetry_checkpoint, capsys):
    _, path = poetry_checkpoint
    code, out, _ = run_cli(capsys, "import", path, "--json")
    assert code == 0
    assert json.loads(out) == [POETRY_CONFIG]


def test_poetry_lstm_imported_computes_what_the_model_computes(poetry_checkpoint):
    model, path = poetry_checkpoint
    imported = weights.load_lstm(path, prefix="lstm")
    assert isinstance(imported, lstm_ref.LSTM)
    x = torch.randn(2, 5, 12)  # (N, T, I): the model is batch_first, which a state_dict does not record
    with torch.no_grad():
        expected, (h_expected, c_expected) = model.lstm(x)
        actual, (h_actual, c_actual) = imported(x.transpose(0, 1))  # imported as seq-first
    actual = actual.transpose(0, 1)
    tolerance = tolerance_for(torch.float32, "cpu").over(5)
    for name, got, want in [("output", actual, expected), ("h_n", h_actual, h_expected),
                            ("c_n", c_actual, c_expected)]:
        report = compare_tensor(name, got, want, tolerance)
        assert report.passed, report.describe()


@pytest.mark.parametrize("suffix", [".npz", ".safetensors", ".pt"])
def test_poetry_lstm_exported_by_the_cli_reimports_exactly(poetry_checkpoint, tmp_path, capsys, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors", reason="the safetensors extra is not installed")
    model, path = poetry_checkpoint
    out = tmp_path / f"lstm{suffix}"
    code, printed, _ = run_cli(capsys, "import", path, "--prefix", "lstm", "--out", out)
    assert code == 0 and str(out) in printed
    exported = weights.read_state_dict(out)
    original = {k.removeprefix("lstm."): v for k, v in model.state_dict().items() if k.startswith("lstm.")}
    assert exported.keys() == original.keys()
    assert all(torch.equal(exported[k], original[k]) for k in original)
    code, printed, _ = run_cli(capsys, "import", out, "--json")
    assert json.loads(printed) == [dict(POETRY_CONFIG, prefix="")]


# ----------------------------------------------------------------------------- unsafe files

def test_full_model_pickle_is_refused_with_how_to_save_a_state_dict(tmp_path, capsys):
    path = tmp_path / "model.pt"
    torch.save(PoetryModel(), path)
    with pytest.raises(weights.WeightFileError, match=r"state_dict\(\)") as error:
        weights.read_state_dict(path)
    assert "PoetryModel" in str(error.value) and "not loaded" in str(error.value)
    code, out, err = run_cli(capsys, "import", path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


class Payload:
    """A pickle that creates a directory when unpickled (stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("container", ["torch_save_zip", "raw_pickle"])
def test_malicious_pickle_is_refused_and_nothing_in_it_runs(tmp_path, container):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "weights.pt"
    if container == "torch_save_zip":
        torch.save({"weight": torch.zeros(2), "payload": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"payload": Payload(marker)}, protocol=2))
    with pytest.raises(weights.WeightFileError, match="refused"):
        weights.read_state_dict(path)
    assert not marker.exists(), "the payload ran while the file was read"
    # Control: the same file does run its payload when loaded unsafely, so the test above can fail.
    if container == "torch_save_zip":
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as stream:
            pickle.load(stream)  # noqa: S301 - the point of the control
    assert marker.exists()


def test_npz_with_object_arrays_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, weight_ih=np.array([{"a": 1}], dtype=object))
    with pytest.raises(weights.WeightFileError, match="numeric arrays"):
        weights.read_state_dict(path)


# ----------------------------------------------------------------------------- file formats

def _lstm_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2, dtype=torch.float64).state_dict()


@pytest.mark.parametrize("suffix", [".npz", ".safetensors", ".pth"])
def test_write_then_read_is_exact(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors", reason="the safetensors extra is not installed")
    state_dict = _lstm_state_dict()
    path = tmp_path / f"w{suffix}"
    weights.write_state_dict(state_dict, path)
    loaded = weights.read_state_dict(path)
    assert loaded.keys() == state_dict.keys()
    for key, tensor in state_dict.items():
        assert loaded[key].dtype == torch.float64 and torch.equal(loaded[key], tensor), key


def test_npz_cannot_hold_bfloat16_and_says_what_can(tmp_path):
    with pytest.raises(weights.WeightFileError, match=r"bfloat16 \(weight_ih_l0\); use .safetensors or .pt"):
        weights.write_state_dict(nn.LSTM(2, 3, dtype=torch.bfloat16).state_dict(), tmp_path / "w.npz")
    assert not (tmp_path / "w.npz").exists()


def test_missing_safetensors_package_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\0" * 16)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(weights.WeightFileError, match=r"pip install 'lstm-ref\[safetensors\]'"):
        weights.read_state_dict(path)


def test_training_checkpoint_wrapper_is_unwrapped(tmp_path):
    path = tmp_path / "checkpoint.pt"
    model = PoetryModel()
    torch.save({"epoch": 3, "model_state_dict": model.state_dict(), "loss": 1.5}, path)
    found = weights.find_lstms(weights.read_state_dict(path))
    assert [f.as_dict() for f in found] == [POETRY_CONFIG]


@pytest.mark.parametrize(
    "name, content",
    [("missing.pt", None), ("garbage.pt", b"not a checkpoint"), ("garbage.npz", b"PK\x03\x04 broken"),
     ("garbage.safetensors", b"\xff" * 40), ("weights.h5", b"")],
    ids=["nonexistent", "corrupt_pt", "corrupt_npz", "corrupt_safetensors", "unknown_suffix"],
)
def test_unreadable_file_is_one_line_and_exit_2(tmp_path, capsys, name, content):
    if name.endswith(".safetensors"):
        pytest.importorskip("safetensors", reason="the safetensors extra is not installed")
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run_cli(capsys, "import", path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and str(path) in err and "Traceback" not in err


# ----------------------------------------------------------------------------- discovery

DISCOVERY_CASES = {
    "L1-onedir-bias-noproj": dict(input_size=3, hidden_size=5, num_layers=1, bias=True, bidirectional=False,
                                  proj_size=0),
    "L2-bidir-nobias-noproj": dict(input_size=4, hidden_size=6, num_layers=2, bias=False, bidirectional=True,
                                   proj_size=0),
    "L3-bidir-bias-proj2": dict(input_size=2, hidden_size=7, num_layers=3, bias=True, bidirectional=True,
                                proj_size=2),
    "L2-onedir-nobias-proj3": dict(input_size=5, hidden_size=4, num_layers=2, bias=False, bidirectional=False,
                                   proj_size=3),
}


@pytest.mark.parametrize("config", DISCOVERY_CASES.values(), ids=DISCOVERY_CASES.keys())
def test_lstm_configuration_is_inferred_from_keys_and_shapes(config):
    model = nn.ModuleDict({"encoder": nn.ModuleDict({"rnn": nn.LSTM(**config)}), "head": nn.Linear(3, 3),
                           "gru": nn.GRU(3, 4), "rnn": nn.RNN(3, 4)})
    found = weights.find_lstms(model.state_dict())
    assert [f.as_dict() for f in found] == [{"prefix": "encoder.rnn", "kind": "LSTM", **config}]
    built = found[0].build()
    assert isinstance(built, lstm_ref.LSTM)
    assert all(torch.equal(built.state_dict()[k], v) for k, v in model.encoder.rnn.state_dict().items())


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_lstm_cell_is_found_and_grucell_is_not(bias):
    model = nn.ModuleDict({"cell": nn.LSTMCell(3, 4, bias=bias), "gru_cell": nn.GRUCell(3, 4)})
    found = weights.find_lstms(model.state_dict())
    assert [f.as_dict() for f in found] == [
        {"prefix": "cell", "kind": "LSTMCell", "input_size": 3, "hidden_size": 4, "bias": bias}]
    assert isinstance(found[0].build(), lstm_ref.LSTMCell)


def _poetry_state_dict() -> dict[str, torch.Tensor]:
    return PoetryModel().state_dict()


def _drop(key):
    def edit(sd):
        del sd[key]
    return edit


def _set(key, shape):
    def edit(sd):
        sd[key] = torch.zeros(shape)
    return edit


BROKEN = {
    "missing_bias_hh_l2": (_drop("lstm.bias_hh_l2"), ["lstm.bias_hh_l2", "(64,)"]),
    "missing_weight_ih_l1": (_drop("lstm.weight_ih_l1"), ["lstm.weight_ih_l1", "(64, 16)"]),
    "misshaped_weight_hh_l1": (_set("lstm.weight_hh_l1", (64, 15)),
                               ["lstm.weight_hh_l1", "(64, 16)", "(64, 15)"]),
    "misshaped_bias_ih_l0": (_set("lstm.bias_ih_l0", (63,)), ["lstm.bias_ih_l0", "(64,)", "(63,)"]),
    "misshaped_weight_ih_l0_gates": (_set("lstm.weight_ih_l0", (60, 12)), ["lstm.weight_ih_l0", "(64, 12)",
                                                                           "(60, 12)"]),
    "extra_weight_hr_l1": (_set("lstm.weight_hr_l1", (3, 16)), ["lstm.weight_hr_l1", "(3, 16)"]),
    "extra_reverse_layer_only_l2": (_set("lstm.weight_ih_l2_reverse", (64, 32)),
                                    ["lstm.weight_ih_l0_reverse"]),
}


@pytest.mark.parametrize("edit, needles", BROKEN.values(), ids=BROKEN.keys())
def test_mismatched_key_error_names_key_expected_and_found_shape(edit, needles, capsys, tmp_path):
    state_dict = _poetry_state_dict()
    edit(state_dict)
    with pytest.raises(weights.StateDictError) as error:
        weights.find_lstms(state_dict)
    for needle in needles:
        assert needle in str(error.value)
    path = tmp_path / "broken.pt"
    torch.save(state_dict, path)
    code, _, err = run_cli(capsys, "import", path)
    assert code == 2 and needles[0] in err and len(err.strip().splitlines()) == 1


def test_prefix_selects_among_several_and_is_required_to_export_one(tmp_path, capsys):
    model = nn.ModuleDict({"encoder": nn.LSTM(3, 4), "decoder": nn.LSTM(4, 5, num_layers=2)})
    path = tmp_path / "seq2seq.pt"
    torch.save(model.state_dict(), path)
    code, out, _ = run_cli(capsys, "import", path, "--json")
    assert code == 0 and [f["prefix"] for f in json.loads(out)] == ["encoder", "decoder"]
    code, out, _ = run_cli(capsys, "import", path, "--json", "--prefix", "decoder.")
    assert code == 0 and json.loads(out)[0]["num_layers"] == 2 and len(json.loads(out)) == 1
    code, _, err = run_cli(capsys, "import", path, "--out", tmp_path / "x.npz")
    assert code == 2 and "--prefix" in err and not (tmp_path / "x.npz").exists()
    code, _, err = run_cli(capsys, "import", path, "--prefix", "attention")
    assert code == 2 and "'encoder'" in err and "'decoder'" in err

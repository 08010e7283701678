"""Weight import of GRUs, plain RNNs and their cells: discovery beside an LSTM, the kind and
configuration, outputs equal to torch's, the nonlinearity a state_dict does not store, errors, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import lstm_ref
from lstm_ref import weights
from lstm_ref.cli import main
from tests.test_weights import _drop, _set

F64 = torch.float64


def run_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def save(state_dict: dict[str, torch.Tensor], path: Path) -> Path:
    """``state_dict`` written as a user would: torch.save for .pt, else lstm_ref's writer."""
    if path.suffix == ".safetensors":
        pytest.importorskip("safetensors", reason="the safetensors extra is not installed")
    if path.suffix == ".pt":
        torch.save(state_dict, path)
    else:
        weights.write_state_dict(state_dict, path)
    return path


#: id -> (torch module factory, kind, configuration a state_dict determines, nonlinearity or None)
CASES: dict[str, tuple[Callable[[], nn.Module], str, dict, str | None]] = {
    "GRU-L1": (lambda: nn.GRU(3, 5, dtype=F64), "GRU",
               dict(input_size=3, hidden_size=5, num_layers=1, bias=True, bidirectional=False), None),
    "GRU-L2-bidir": (lambda: nn.GRU(4, 3, num_layers=2, bidirectional=True, dtype=F64), "GRU",
                     dict(input_size=4, hidden_size=3, num_layers=2, bias=True, bidirectional=True), None),
    "GRU-L2-nobias": (lambda: nn.GRU(2, 4, num_layers=2, bias=False, dtype=F64), "GRU",
                      dict(input_size=2, hidden_size=4, num_layers=2, bias=False, bidirectional=False), None),
    "GRUCell": (lambda: nn.GRUCell(3, 4, dtype=F64), "GRUCell",
                dict(input_size=3, hidden_size=4, bias=True), None),
    "GRUCell-nobias": (lambda: nn.GRUCell(5, 2, bias=False, dtype=F64), "GRUCell",
                       dict(input_size=5, hidden_size=2, bias=False), None),
    "RNN-tanh-L1": (lambda: nn.RNN(3, 5, dtype=F64), "RNN",
                    dict(input_size=3, hidden_size=5, num_layers=1, bias=True, bidirectional=False), "tanh"),
    "RNN-tanh-L2-bidir-nobias": (lambda: nn.RNN(4, 3, num_layers=2, bidirectional=True, bias=False, dtype=F64),
                                 "RNN", dict(input_size=4, hidden_size=3, num_layers=2, bias=False,
                                             bidirectional=True), "tanh"),
    "RNN-relu-L1": (lambda: nn.RNN(3, 4, nonlinearity="relu", dtype=F64), "RNN",
                    dict(input_size=3, hidden_size=4, num_layers=1, bias=True, bidirectional=False), "relu"),
    "RNN-relu-L2-bidir": (lambda: nn.RNN(2, 5, num_layers=2, bidirectional=True, nonlinearity="relu", dtype=F64),
                          "RNN", dict(input_size=2, hidden_size=5, num_layers=2, bias=True, bidirectional=True),
                          "relu"),
    "RNNCell-tanh": (lambda: nn.RNNCell(3, 4, dtype=F64), "RNNCell",
                     dict(input_size=3, hidden_size=4, bias=True), "tanh"),
    "RNNCell-relu-nobias": (lambda: nn.RNNCell(4, 3, bias=False, nonlinearity="relu", dtype=F64), "RNNCell",
                            dict(input_size=4, hidden_size=3, bias=False), "relu"),
}
LSTM_ENTRY = {"prefix": "lstm", "kind": "LSTM", "input_size": 3, "hidden_size": 4, "num_layers": 1,
              "bias": True, "bidirectional": False, "proj_size": 0}


def model_with(module: nn.Module) -> nn.ModuleDict:
    """A whole model: ``module`` nested under encoder.rnn, beside an LSTM and a Linear."""
    return nn.ModuleDict({"encoder": nn.ModuleDict({"rnn": module}), "lstm": nn.LSTM(3, 4, dtype=F64),
                          "head": nn.Linear(4, 2, dtype=F64)})


def outputs(module: nn.Module, config: dict) -> tuple[torch.Tensor, ...]:
    """``module``'s results on fixed random inputs (with an initial state) of ``config``'s sizes."""
    generator = torch.Generator().manual_seed(7)
    if "num_layers" in config:
        directions = 2 if config["bidirectional"] else 1
        x = torch.randn(6, 2, config["input_size"], dtype=F64, generator=generator)
        h0 = torch.randn(config["num_layers"] * directions, 2, config["hidden_size"], dtype=F64, generator=generator)
        output, h_n = module(x, h0)
        return output, h_n
    x = torch.randn(2, config["input_size"], dtype=F64, generator=generator)
    h = torch.randn(2, config["hidden_size"], dtype=F64, generator=generator)
    return (module(x, h),)


@pytest.mark.parametrize("suffix", [".pt", ".npz", ".safetensors"])
@pytest.mark.parametrize("factory, kind, config, nonlinearity", CASES.values(), ids=CASES.keys())
def test_module_is_found_beside_an_lstm_and_computes_what_torch_does(tmp_path, suffix, factory, kind, config,
                                                                     nonlinearity):
    torch.manual_seed(0)
    model = model_with(factory())
    path = save(model.state_dict(), tmp_path / f"model{suffix}")
    found = weights.find_modules(weights.read_state_dict(path))
    assert [f.as_dict() for f in found] == [{"prefix": "encoder.rnn", "kind": kind, **config}, LSTM_ENTRY]
    assert [f.as_dict() for f in weights.find_lstms(weights.read_state_dict(path))] == [LSTM_ENTRY]
    built = found[0].build(nonlinearity=nonlinearity)
    assert type(built) is getattr(lstm_ref, kind)
    assert all(torch.equal(built.state_dict()[k], v) for k, v in model.encoder.rnn.state_dict().items())
    loaded = weights.load_module(path, prefix="encoder.rnn.", nonlinearity=nonlinearity)
    with torch.no_grad():
        expected = outputs(model.encoder.rnn, config)
        for imported in (built, loaded):
            for got, want in zip(outputs(imported, config), expected, strict=True):
                assert got.dtype == F64
                torch.testing.assert_close(got, want)


@pytest.mark.parametrize("kind", ["RNN", "RNNCell"])
def test_relu_rnn_needs_the_nonlinearity_a_state_dict_does_not_store(kind):
    torch.manual_seed(3)
    module = nn.RNN(3, 4, nonlinearity="relu", dtype=F64) if kind == "RNN" else \
        nn.RNNCell(3, 4, nonlinearity="relu", dtype=F64)
    (found,) = weights.find_modules({f"rnn.{k}": v for k, v in module.state_dict().items()})
    assert found.kind == kind and "nonlinearity" not in found.as_dict()
    assert found.describe().endswith(f"({weights.NONLINEARITY_NOTE})")
    config = found.config
    with torch.no_grad():
        expected = outputs(module, config)
        relu = outputs(found.build(nonlinearity="relu"), config)
        default = outputs(found.build(), config)
    for got, want in zip(relu, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert found.build().nonlinearity == "tanh"
    assert not torch.allclose(default[0], expected[0]), "the default (tanh) computed what relu does"


@pytest.mark.parametrize("module", [nn.LSTM(2, 3), nn.GRU(2, 3), nn.LSTMCell(2, 3), nn.GRUCell(2, 3)],
                         ids=["LSTM", "GRU", "LSTMCell", "GRUCell"])
def test_nonlinearity_is_refused_for_kinds_without_one(module):
    (found,) = weights.find_modules(module.state_dict())
    assert weights.NONLINEARITY_NOTE not in found.describe()
    with pytest.raises(ValueError, match="RNN and RNNCell only"):
        found.build(nonlinearity="tanh")


def test_unknown_nonlinearity_is_refused():
    (found,) = weights.find_modules(nn.RNN(2, 3).state_dict())
    with pytest.raises(ValueError, match="'tanh' or 'relu', got 'sigmoid'"):
        found.build(nonlinearity="sigmoid")


def test_find_modules_keeps_to_the_kinds_asked_for():
    model = nn.ModuleDict({"a": nn.GRU(2, 3), "b": nn.RNNCell(2, 3), "c": nn.LSTMCell(2, 3)})
    state_dict = model.state_dict()
    assert [f.kind for f in weights.find_modules(state_dict)] == ["GRU", "RNNCell", "LSTMCell"]
    assert [f.prefix for f in weights.find_modules(state_dict, kinds=("GRU", "RNNCell"))] == ["a", "b"]
    assert [f.prefix for f in weights.find_lstms(state_dict)] == ["c"]
    assert weights.FoundLSTM is weights.FoundModule
    with pytest.raises(ValueError, match="unknown kinds"):
        weights.find_modules(state_dict, kinds=("Transformer",))


# ----------------------------------------------------------------------------- errors

def _broken_model() -> dict[str, torch.Tensor]:
    return nn.ModuleDict({"gru": nn.GRU(3, 4, num_layers=2), "rnn": nn.RNN(3, 4),
                          "cell": nn.GRUCell(3, 4)}).state_dict()


BROKEN = {
    "gru_missing_bias_hh_l1": (_drop("gru.bias_hh_l1"), ["missing key gru.bias_hh_l1", "(12,)"]),
    "gru_misshaped_weight_hh_l1": (_set("gru.weight_hh_l1", (12, 5)), ["gru.weight_hh_l1", "(12, 4)", "(12, 5)"]),
    "gru_misshaped_weight_ih_l1": (_set("gru.weight_ih_l1", (12, 3)), ["gru.weight_ih_l1", "(12, 4)", "(12, 3)"]),
    "gru_extra_weight_hr_l0": (_set("gru.weight_hr_l0", (2, 4)), ["unexpected key gru.weight_hr_l0", "(2, 4)",
                                                                   "GRU("]),
    "gru_extra_layer_l2": (_set("gru.bias_ih_l2", (12,)), ["missing key gru.weight_ih_l2", "(12, 4)"]),
    "rnn_reverse_weight_only": (_set("rnn.weight_ih_l0_reverse", (4, 3)),
                                ["missing key rnn.weight_hh_l0_reverse", "(4, 4)"]),
    "rnn_weight_hh_rows": (_set("rnn.weight_hh_l0", (5, 4)), ["rnn.weight_hh_l0", "(4, 4)", "(5, 4)", "RNN"]),
    "rnn_misshaped_bias": (_set("rnn.bias_ih_l0", (5,)), ["rnn.bias_ih_l0", "(4,)", "(5,)"]),
    "grucell_missing_bias_ih": (_drop("cell.bias_ih"), ["missing key cell.bias_ih", "(12,)"]),
    "gate_rows_2H": (_set("gru.weight_ih_l0", (8, 3)),
                     ["gru.weight_ih_l0", "4, 3 or 1 times hidden_size", "(16, 3)", "(12, 3)", "(4, 3)", "(8, 3)"]),
    "cell_gate_rows_2H": (_set("cell.weight_ih", (8, 3)), ["cell.weight_ih", "(16, 3)", "(8, 3)"]),
}


@pytest.mark.parametrize("edit, needles", BROKEN.values(), ids=BROKEN.keys())
def test_mismatched_key_error_names_key_expected_and_found_shape(edit, needles, tmp_path, capsys):
    state_dict = _broken_model()
    edit(state_dict)
    with pytest.raises(weights.StateDictError) as error:
        weights.find_modules(state_dict)
    for needle in needles:
        assert needle in str(error.value), (needle, str(error.value))
    code, _, err = run_cli(capsys, "import", save(state_dict, tmp_path / "broken.pt"))
    assert code == 2 and needles[0] in err and len(err.strip().splitlines()) == 1


def test_lstm_with_its_projection_weight_missing_says_so():
    state_dict = nn.LSTM(3, 6, proj_size=2).state_dict()
    del state_dict["weight_hr_l0"]
    with pytest.raises(weights.StateDictError, match=r"proj_size=2 would also have weight_hr_l0 \(2, 6\)"):
        weights.find_modules(state_dict)


def test_empty_cell_has_no_gate_rows_to_tell_its_kind_and_is_left_out():
    assert weights.find_modules(nn.GRUCell(3, 0).state_dict()) == []


# ----------------------------------------------------------------------------- the CLI

class Seq2Seq(nn.Module):
    """A GRU encoder, a relu RNN decoder and an LSTM language model head, in one state_dict."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.GRU(3, 5, num_layers=2, bidirectional=True, dtype=F64)
        self.decoder = nn.RNN(10, 4, nonlinearity="relu", dtype=F64)
        self.lm = nn.LSTM(4, 4, dtype=F64)


ENCODER = {"prefix": "encoder", "kind": "GRU", "input_size": 3, "hidden_size": 5, "num_layers": 2, "bias": True,
           "bidirectional": True}
DECODER = {"prefix": "decoder", "kind": "RNN", "input_size": 10, "hidden_size": 4, "num_layers": 1, "bias": True,
           "bidirectional": False}
LM = {"prefix": "lm", "kind": "LSTM", "input_size": 4, "hidden_size": 4, "num_layers": 1, "bias": True,
      "bidirectional": False, "proj_size": 0}


@pytest.fixture
def seq2seq(tmp_path: Path) -> tuple[Seq2Seq, Path]:
    torch.manual_seed(5)
    model = Seq2Seq()
    return model, save(model.state_dict(), tmp_path / "seq2seq.pt")


def test_cli_lists_every_kind_in_text_and_json(seq2seq, capsys):
    _, path = seq2seq
    code, out, _ = run_cli(capsys, "import", path)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("encoder: GRU(input_size=3, hidden_size=5, num_layers=2, bias=True, "
                               "bidirectional=True), float64")
    assert lines[1].startswith("decoder: RNN(input_size=10, hidden_size=4,") and weights.NONLINEARITY_NOTE in lines[1]
    assert lines[2].startswith("lm: LSTM(") and "nonlinearity" not in lines[2]
    code, out, _ = run_cli(capsys, "import", path, "--json")
    assert code == 0 and json.loads(out) == [ENCODER, DECODER, LM]
    code, out, _ = run_cli(capsys, "import", path, "--json", "--prefix", "encoder")
    assert code == 0 and json.loads(out) == [ENCODER]


def test_cli_prefix_errors_list_every_module_found(seq2seq, tmp_path, capsys):
    _, path = seq2seq
    code, _, err = run_cli(capsys, "import", path, "--prefix", "attention")
    assert code == 2
    assert "'encoder' (GRU)" in err and "'decoder' (RNN)" in err and "'lm' (LSTM)" in err
    code, _, err = run_cli(capsys, "import", path, "--out", tmp_path / "x.npz")
    assert code == 2 and "3 recurrent modules" in err and "--prefix" in err and not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("suffix", [".npz", ".safetensors", ".pt"])
@pytest.mark.parametrize("prefix, entry", [("decoder", DECODER), ("encoder", ENCODER)], ids=["RNN", "GRU"])
def test_cli_exports_one_module_that_reimports_exactly(seq2seq, tmp_path, capsys, suffix, prefix, entry):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors", reason="the safetensors extra is not installed")
    model, path = seq2seq
    out = tmp_path / f"{prefix}{suffix}"
    code, printed, _ = run_cli(capsys, "import", path, "--prefix", prefix, "--out", out)
    assert code == 0 and str(out) in printed and printed.startswith(f"{prefix}: {entry['kind']}(")
    exported = weights.read_state_dict(out)
    original = getattr(model, prefix).state_dict()
    assert exported.keys() == original.keys()
    assert all(torch.equal(exported[k], original[k]) for k in original)
    code, printed, _ = run_cli(capsys, "import", out, "--json")
    assert code == 0 and json.loads(printed) == [dict(entry, prefix="")]
    nonlinearity = "relu" if entry["kind"] == "RNN" else None
    imported = weights.load_module(out, nonlinearity=nonlinearity)
    with torch.no_grad():
        for got, want in zip(outputs(imported, entry), outputs(getattr(model, prefix), entry), strict=True):
            torch.testing.assert_close(got, want)


def test_cli_says_when_no_recurrent_module_is_found(tmp_path, capsys):
    path = save(nn.Linear(2, 3).state_dict(), tmp_path / "linear.pt")
    code, out, _ = run_cli(capsys, "import", path)
    assert code == 0 and "no recurrent module found" in out


def test_cli_help_names_every_kind(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["import", "--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for name in ("nn.LSTM", "nn.GRU", "nn.RNN", "GRUCell", "RNNCell", "nonlinearity"):
        assert name in help_text, name

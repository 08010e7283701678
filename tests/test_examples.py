"""The examples in examples/: each runs as a script, and each claim it prints is checked here."""

from __future__ import annotations

import importlib
import runpy
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lstm_ref.testing import assert_close

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))  # the examples are scripts, not a package: import them by file name

poetry = importlib.import_module("poetry_language_model")
classifier = importlib.import_module("bidirectional_classifier")
time_series = importlib.import_module("time_series")
cells = importlib.import_module("lstm_cell_stepping")

SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_as_a_script(script, capsys):
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    printed = capsys.readouterr().out
    assert ": ok;" in printed, printed


# a. the poetry language model

@pytest.fixture(scope="module")
def poetry_model():
    torch.manual_seed(0)
    return poetry.PoetryModel(40, embedding_dim=8, hidden_dim=16).eval()


@torch.no_grad()
def test_poetry_logits_identical_with_lstm_ref(poetry_model):
    tokens = torch.randint(40, (12, 3))
    logits, (h_n, c_n) = poetry_model(tokens)
    ref_logits, (ref_h, ref_c) = poetry.with_reference_lstm(poetry_model)(tokens)
    assert logits.shape == (12 * 3, 40) and h_n.shape == (3, 3, 16)
    for name, actual, expected in [("logits", ref_logits, logits), ("h_n", ref_h, h_n), ("c_n", ref_c, c_n)]:
        assert_close(actual, expected, steps=12, name=name)


@pytest.mark.parametrize("chunk", [1, 4, 5], ids=lambda n: f"chunk{n}")
@torch.no_grad()
def test_poetry_chunks_with_carried_state_equal_one_pass(poetry_model, chunk):
    reference = poetry.with_reference_lstm(poetry_model)
    tokens = torch.randint(40, (12, 2))
    logits, (h_n, c_n) = reference(tokens)
    chunked, (h_chunked, c_chunked) = poetry.run_in_chunks(reference, tokens, chunk)
    assert_close(chunked, logits, steps=12, name="logits")
    assert_close(h_chunked, h_n, steps=12, name="h_n")
    assert_close(c_chunked, c_n, steps=12, name="c_n")


@torch.no_grad()
def test_poetry_generation_equals_rerunning_the_whole_sequence(poetry_model):
    reference = poetry.with_reference_lstm(poetry_model)
    start = torch.randint(40, (3, 2))
    generated = poetry.generate(reference, start, length=6)
    assert generated.shape == (9, 2)
    assert torch.equal(generated, poetry.generate(poetry_model, start, length=6))
    logits, _ = reference(generated[:-1])  # every generated token is the argmax after its prefix
    predicted = logits.view(8, 2, 40).argmax(-1)[2:]
    assert torch.equal(predicted, generated[3:])


# b. the bidirectional classifier on a packed batch

@pytest.fixture(scope="module")
def text_classifier():
    torch.manual_seed(1)
    return classifier.TextClassifier(vocab_size=30, embed_dim=8, hidden_dim=6, num_classes=3).eval()


@torch.no_grad()
def test_classifier_representation_is_last_forward_and_first_reverse_state(text_classifier):
    tokens, lengths = classifier.make_batch(30, [3, 6, 1, 6, 4])
    representation = text_classifier.sentence_representation(tokens, lengths)
    output, _ = classifier.padded_outputs(text_classifier, tokens, lengths)
    assert representation.shape == (5, 12)
    assert_close(classifier.representation_from_output(output, lengths, 6), representation, steps=6,
                 name="representation")
    ref_logits = classifier.with_reference_lstm(text_classifier)(tokens, lengths)
    assert_close(ref_logits, text_classifier(tokens, lengths), steps=6, name="logits")


@torch.no_grad()
def test_seed_last_step_of_padded_output_is_something_else(text_classifier):
    tokens, lengths = classifier.make_batch(30, [3, 6, 1, 6, 4])
    representation = text_classifier.sentence_representation(tokens, lengths)
    output, _ = classifier.padded_outputs(text_classifier, tokens, lengths)
    assert classifier.seed_last_step(output).shape == (6, 12)  # (T, 2H): the last sentence, every step
    last_step = output[-1]                                     # (N, 2H): step T-1 of every sentence
    short = lengths < 6
    assert torch.all(last_step[short] == 0)                    # padding: pad_packed_sequence fills zeros
    with pytest.raises(AssertionError, match="out of tolerance"):  # reverse half: t=T-1, not t=0
        assert_close(last_step[~short, 6:], representation[~short, 6:], steps=6, name="reverse half")
    assert_close(last_step[~short, :6], representation[~short, :6], steps=6, name="forward half, full length")


# c. batch_first time series

@pytest.mark.parametrize("window", [None, 1, 8], ids=["at_once", "window1", "window8"])
@torch.no_grad()
def test_time_series_last_step_head(window):
    torch.manual_seed(3)
    series = torch.randn(4, 24, 5)
    model = time_series.LSTMModel(5, 16, num_layers=2, output_size=2).eval()
    reference = time_series.with_reference_lstm(model, "lstm")
    prediction, (h_n, c_n) = model(series)
    assert prediction.shape == (4, 2) and h_n.shape == (2, 4, 16) and c_n.shape == (2, 4, 16)
    if window is None:
        actual, (h_actual, c_actual) = reference(series)
    else:
        actual, (h_actual, c_actual) = time_series.predict_in_windows(reference, series, window)
    assert_close(actual, prediction, steps=24, name="prediction")
    assert_close(h_actual, h_n, steps=24, name="h_n")
    assert_close(c_actual, c_n, steps=24, name="c_n")


@torch.no_grad()
def test_time_series_flattened_head():
    torch.manual_seed(3)
    series = torch.randn(2, 24, 5)
    net = time_series.LSTMNet(5, 8, window=24, num_outputs=3).eval()
    prediction = net(series)
    assert prediction.shape == (2, 3)
    assert_close(time_series.with_reference_lstm(net, "rnn")(series), prediction, steps=24, name="prediction")


# d. LSTMCell stepping

@torch.no_grad()
def test_cell_loop_equals_lstm_and_seed_loop_does_not():
    torch.manual_seed(4)
    x = torch.randn(7, 3, 10)
    cell = nn.LSTMCell(10, 5)
    expected, (h_n, c_n) = cells.lstm_from_cells([cell])(x)
    for stepped in (cell, cells.lstm_ref.LSTMCell.from_torch(cell)):
        outputs, (h, c) = cells.step_cell(stepped, x)
        assert_close(outputs, expected, steps=7, name="outputs")
        assert_close(c, c_n[0], steps=7, name="c")
    b, c_bug = cells.step_cell_seed_bug(cell, x)
    for name, actual, expected in [("h", b, h_n[0]), ("c", c_bug, c_n[0])]:
        with pytest.raises(AssertionError, match="out of tolerance"):
            assert_close(actual, expected, steps=7, name=name)


@pytest.mark.parametrize("sizes", [(5, 5), (8, 5)], ids=["equal_hidden", "hidden8_then5"])
@torch.no_grad()
def test_two_layer_cell_stack_equals_lstm(sizes):
    torch.manual_seed(5)
    x = torch.randn(6, 2, 10)
    stack = [nn.LSTMCell(10, sizes[0]), nn.LSTMCell(sizes[0], sizes[1])]
    outputs, states = cells.step_stack(stack, x)
    if sizes[0] == sizes[1]:
        expected, (h_n, _) = cells.lstm_from_cells(stack)(x)
        assert_close(states[0][0], h_n[0], steps=6, name="h of layer 0")
    else:
        expected, _ = cells.lstm_from_cells(stack[1:])(cells.lstm_from_cells(stack[:1])(x)[0])
    assert_close(outputs, expected, steps=6, name="outputs")

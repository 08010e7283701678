"""LSTMs this project did not write, judged as a user would judge them (docs/candidates.md).

examples/candidates/fastrnns.py (PyTorch's TorchScript LSTMs, loaded from ``$LSTM_REF_FASTRNNS``)
and examples/candidates/keras_lstm.py (Keras 3's LSTM, GRU and SimpleRNN on its torch backend) on a
few configurations each: the verdicts docs/candidates.md records, unsupported ones with their reasons. A candidate
whose package or file is absent is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import replace

import pytest

from lstm_ref.configs import Config
from lstm_ref.conformance import check_forward
from lstm_ref.gradients import PARAMETERS_UNREACHED, check_gradients

FASTRNNS = "examples.candidates.fastrnns:make"
KERAS = "examples.candidates.keras_lstm:make"

needs_fastrnns = pytest.mark.skipif(
    not os.path.isfile(os.environ.get("LSTM_REF_FASTRNNS", "")),
    reason="LSTM_REF_FASTRNNS does not name a file (pytorch/pytorch benchmarks/fastrnns/custom_lstms.py)")
needs_keras = pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")

#: Configurations both candidates express, in their hardest combinations (ids read as the configuration).
EXPRESSED = [
    Config(num_layers=2, bidirectional=True, batch_first=True, layout="strided", initial_state=True),
    Config(num_layers=3, bias=False, input_form="unbatched", initial_state=True, dtype="float64"),
    Config(num_layers=3, bidirectional=True, dropout=0.5, initial_state=True, tag="dropout0.5_eval"),
]
PROJECTION = Config(num_layers=2, proj_size=3, initial_state=True)
DROPOUT_TRAIN = Config(num_layers=2, dropout=1.0, train=True, initial_state=True, tag="dropout1_train")
#: nn.GRU and nn.RNN (tanh, relu) configurations Keras' GRU(reset_after=True) and SimpleRNN express.
KERAS_GRU_RNN = [
    Config(mode="GRU", num_layers=2, bidirectional=True, input_form="packed", initial_state=True),
    Config(mode="GRU", num_layers=2, bidirectional=True, batch_first=True, layout="strided", initial_state=True),
    Config(mode="GRU", num_layers=3, bias=False, input_form="unbatched", initial_state=True, dtype="float64"),
    Config(mode="RNN_TANH", num_layers=2, bidirectional=True, input_form="packed_sorted", initial_state=True),
    Config(mode="RNN_TANH", num_layers=3, bias=False, input_form="unbatched", initial_state=True),
    Config(mode="RNN_RELU", num_layers=2, bidirectional=True, batch_first=True, initial_state=True),
    Config(mode="RNN_RELU", bidirectional=True, input_form="packed", initial_state=True),
]


# ----------------------------------------------------------------------------- fastrnns

def test_fastrnns_without_its_path_is_unsupported_naming_the_variable(monkeypatch):
    monkeypatch.delenv("LSTM_REF_FASTRNNS", raising=False)
    result = check_forward(Config(), FASTRNNS)
    assert result.status == "unsupported", result.describe()
    assert "LSTM_REF_FASTRNNS" in result.message


@needs_fastrnns
@pytest.mark.parametrize("config", [
    *EXPRESSED,
    Config(num_layers=2, dropout=0.5, initial_state=True, tag="dropout0.5_eval"),  # StackedLSTMWithDropout
], ids=lambda c: c.id)
def test_fastrnns_conforms_where_it_expresses_the_configuration(config):
    result = check_forward(config, FASTRNNS)
    assert result.status == "passed", result.describe()


@needs_fastrnns
def test_fastrnns_gradients_reach_the_handed_modules_parameters():
    config = Config(num_layers=2, bidirectional=True, batch_first=True, initial_state=True)
    result = check_gradients(config, FASTRNNS)
    assert result.status == "passed", result.describe()
    assert {"grad.weight_ih_l1_reverse", "training.grad.bias_hh_l0"} <= {t.name for t in result.tensors}


@needs_fastrnns
def test_fastrnns_training_dropout_draws_torchs_masks():
    """StackedLSTMWithDropout's nn.Dropout(0.4) on each layer's (T, N, H) output draws the masks
    torch's LSTM draws (the harness replays torch's generator): at p = 0.4 it conforms."""
    config = Config(num_layers=3, dropout=0.4, train=True, initial_state=True, tag="dropout0.4_train")
    for result in check_forward(config, FASTRNNS), check_gradients(config, FASTRNNS):
        assert result.status == "passed", result.describe()


@needs_fastrnns
@pytest.mark.parametrize("config, reason", [
    (Config(input_form="packed"), "packed input"),
    (PROJECTION, "no projection"),
    (DROPOUT_TRAIN, "fixed at 0.4"),
    (Config(num_layers=2, bidirectional=True, dropout=0.4, train=True, initial_state=True, tag="dropout0.4_train"),
     "StackedLSTM2 has no dropout"),
], ids=lambda value: value.id if isinstance(value, Config) else "")
def test_fastrnns_unsupported_configurations_say_why(config, reason):
    result = check_forward(config, FASTRNNS)
    assert result.status == "unsupported" and reason in result.message, result.describe()


# ----------------------------------------------------------------------------- Keras

@needs_keras
@pytest.mark.parametrize("config", [
    *EXPRESSED,
    Config(num_layers=2, bidirectional=True, input_form="packed", initial_state=True),
    *KERAS_GRU_RNN,
], ids=lambda c: c.id)
def test_keras_conforms_where_it_expresses_the_configuration(config):
    result = check_forward(config, KERAS)
    assert result.status == "passed", result.describe()


@needs_keras
def test_keras_float64_with_a_mask_computes_its_matmuls_in_float32(monkeypatch):
    """Keras 3's ``ops.matmul`` gives float32 for two float64 operands (``result_type`` maps 64-bit
    dtypes to 32-bit), and its LSTM cell, which a mask runs, uses it: a float64 packed input comes
    out with float32 rounding. Dense float64 input runs Keras' fused loop (torch.matmul): exact.
    With ``matmul`` kept in float64 the same packed configuration passes: that is the whole cause."""
    import torch

    from examples.candidates.keras_lstm import import_keras

    import_keras()
    from keras.src.backend.torch import numpy as keras_torch_numpy
    from keras.src.backend.torch.core import convert_to_tensor

    packed = Config(bidirectional=True, input_form="packed_sorted", initial_state=True, dtype="float64")
    result = check_forward(packed, KERAS)
    assert result.status == "failed", result.describe()
    assert max(t.max_abs for t in result.tensors) < 1e-6, result.describe()  # float32 rounding, not a wrong LSTM
    dense = check_forward(Config(initial_state=True, dtype="float64"), KERAS)
    assert dense.status == "passed", dense.describe()
    def float64_matmul(a, b):
        return torch.matmul(convert_to_tensor(a), convert_to_tensor(b))

    monkeypatch.setattr(keras_torch_numpy, "matmul", float64_matmul)
    result = check_forward(packed, KERAS)
    assert result.status == "passed", result.describe()


#: float64 configurations that run a Keras cell's ``call`` (so ``ops.matmul``): the GRU with a mask,
#: SimpleRNN always (it has no fused loop), masked or not.
KERAS_FLOAT64_CELLS = [
    Config(mode="GRU", bidirectional=True, input_form="packed_sorted", initial_state=True, dtype="float64"),
    Config(mode="RNN_TANH", initial_state=True, dtype="float64"),
    Config(mode="RNN_RELU", num_layers=2, bidirectional=True, input_form="packed", initial_state=True, dtype="float64"),
]


@needs_keras
def test_keras_gru_and_simple_rnn_float64_through_a_cell_compute_in_float32(monkeypatch):
    """The same departure for the GRU and SimpleRNN: GRUCell.call and SimpleRNNCell.call multiply
    with ``ops.matmul``. The GRU runs its cell only with a mask (without one, Keras' fused GRU loop
    uses torch.matmul: float64 dense passes); SimpleRNN has no fused loop, so every float64
    SimpleRNN configuration runs its cell. With ``matmul`` kept in float64 all of them pass."""
    import torch

    from examples.candidates.keras_lstm import import_keras

    import_keras()
    from keras.src.backend.torch import numpy as keras_torch_numpy
    from keras.src.backend.torch.core import convert_to_tensor

    for config in KERAS_FLOAT64_CELLS:
        result = check_forward(config, KERAS)
        assert result.status == "failed", result.describe()
        assert max(t.max_abs for t in result.tensors) < 1e-6, result.describe()  # float32 rounding
    dense = check_forward(Config(mode="GRU", num_layers=2, bidirectional=True, initial_state=True, dtype="float64"),
                          KERAS)
    assert dense.status == "passed", dense.describe()

    def float64_matmul(a, b):
        return torch.matmul(convert_to_tensor(a), convert_to_tensor(b))

    monkeypatch.setattr(keras_torch_numpy, "matmul", float64_matmul)
    for config in KERAS_FLOAT64_CELLS:
        result = check_forward(config, KERAS)
        assert result.status == "passed", result.describe()


@needs_keras
def test_keras_gradients_reach_its_own_variables_not_the_modules():
    """The input, h0 and c0 gradients are judged and pass; the parameters' cannot be compared."""
    result = check_gradients(Config(bidirectional=True, initial_state=True), KERAS)
    assert result.status == "unsupported" and result.message.startswith(PARAMETERS_UNREACHED), result.describe()
    judged = {t.name: t.passed for t in result.tensors}
    assert judged["grad.input"] and judged["grad.h0"] and judged["grad.c0"], result.describe()


@needs_keras
@pytest.mark.parametrize("mode", ["GRU", "RNN_RELU"])
def test_keras_gru_and_simple_rnn_gradients_reach_the_input_and_h0(mode):
    result = check_gradients(Config(mode=mode, bidirectional=True, initial_state=True), KERAS)
    assert result.status == "unsupported" and result.message.startswith(PARAMETERS_UNREACHED), result.describe()
    judged = {t.name: t.passed for t in result.tensors}
    assert judged["grad.input"] and judged["grad.h0"] and "grad.c0" not in judged, result.describe()


@needs_keras
@pytest.mark.parametrize("config, reason", [
    (PROJECTION, "no projection"),
    (DROPOUT_TRAIN, "one mask for all steps"),
    (replace(DROPOUT_TRAIN, mode="GRU"), "Keras' GRU dropout masks each layer's input"),
    (replace(DROPOUT_TRAIN, mode="RNN_TANH"), "Keras' SimpleRNN dropout masks each layer's input"),
], ids=lambda value: value.id if isinstance(value, Config) else "")
def test_keras_unsupported_configurations_say_why(config, reason):
    result = check_forward(config, KERAS)
    assert result.status == "unsupported" and reason in result.message, result.describe()


def test_keras_builds_only_lstm_gru_and_simple_rnn():
    from torch import nn

    from examples.candidates.keras_lstm import make

    with pytest.raises(NotImplementedError, match="Keras LSTM, GRU and SimpleRNN layers only, not LSTMCell"):
        make(nn.LSTMCell(4, 6))

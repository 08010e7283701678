"""lstm_ref.LSTM / LSTMCell are drop-ins: parameters, initialisation, from_torch, dropout, kernels used."""

import pytest
import torch
from torch import nn

import lstm_ref
from lstm_ref.configs import Config
from lstm_ref.conformance import build_reference, make_inputs

CONSTRUCTIONS = [
    dict(input_size=4, hidden_size=6),
    dict(input_size=4, hidden_size=6, num_layers=3, bidirectional=True),
    dict(input_size=4, hidden_size=6, num_layers=2, bias=False, proj_size=3, batch_first=True),
    dict(input_size=1, hidden_size=2, num_layers=2, bidirectional=True, proj_size=1, dropout=0.3),
]


def construction_id(kwargs):
    return "-".join(f"{k}{v}" for k, v in kwargs.items())


@pytest.mark.parametrize("kwargs", CONSTRUCTIONS, ids=construction_id)
def test_parameters_match_torch_in_name_shape_and_order(kwargs):
    ours = [(n, p.shape) for n, p in lstm_ref.LSTM(**kwargs).named_parameters()]
    theirs = [(n, p.shape) for n, p in nn.LSTM(**kwargs).named_parameters()]
    assert ours == theirs


@pytest.mark.parametrize("kwargs", CONSTRUCTIONS, ids=construction_id)
def test_torch_state_dict_loads_strictly(kwargs):
    module = nn.LSTM(**kwargs)
    ref = lstm_ref.LSTM(**kwargs)
    ref.load_state_dict(module.state_dict(), strict=True)
    for (name, ours), theirs in zip(ref.state_dict().items(), module.state_dict().values()):
        assert torch.equal(ours, theirs), name


def test_initialisation_is_uniform_within_one_over_sqrt_hidden():
    torch.manual_seed(0)
    ref = lstm_ref.LSTM(8, 100, num_layers=2, proj_size=10)
    bound = 1 / 100 ** 0.5
    values = torch.cat([p.detach().flatten() for p in ref.parameters()])
    assert values.abs().max() <= bound
    assert values.min() < -0.95 * bound and values.max() > 0.95 * bound
    assert abs(float(values.mean())) < 0.1 * bound
    assert float(values.std()) == pytest.approx(bound / 3 ** 0.5, rel=0.05)  # U(-b, b) has std b/sqrt(3)


def test_cell_parameters_and_initialisation_match_torch():
    ours = [(n, p.shape) for n, p in lstm_ref.LSTMCell(3, 5, bias=False).named_parameters()]
    assert ours == [(n, p.shape) for n, p in nn.LSTMCell(3, 5, bias=False).named_parameters()]
    cell = lstm_ref.LSTMCell(3, 400)
    assert torch.cat([p.flatten() for p in cell.parameters()]).abs().max() <= 1 / 20


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_torch_copies_config_dtype_and_training_flag(dtype):
    module = nn.LSTM(3, 5, num_layers=2, bias=False, batch_first=True, dropout=0.25,
                     bidirectional=True, proj_size=2, dtype=dtype).eval()
    ref = lstm_ref.LSTM.from_torch(module)
    for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                 "bidirectional", "proj_size"):
        assert getattr(ref, name) == getattr(module, name), name
    assert ref.weight_ih_l0.dtype == dtype and not ref.training
    assert repr(ref) == repr(module)


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="expects a torch.nn.LSTM, got Linear"):
        lstm_ref.LSTM.from_torch(nn.Linear(3, 4))
    with pytest.raises(NotImplementedError, match="copies a torch.nn.LSTM only, got a torch.nn.GRU"):
        lstm_ref.LSTM.from_torch(nn.GRU(3, 4))
    with pytest.raises(TypeError, match="expects a torch.nn.LSTMCell, got LSTM"):
        lstm_ref.LSTMCell.from_torch(nn.LSTM(3, 4))


def test_from_torch_copies_are_independent():
    module = nn.LSTM(3, 4)
    ref = lstm_ref.LSTM.from_torch(module)
    with torch.no_grad():
        module.weight_ih_l0.zero_()
    assert ref.weight_ih_l0.abs().sum() > 0


def test_dropout_in_training_mode_is_random_and_absent_in_eval_mode():
    config = Config(num_layers=3, dropout=0.5, seq_len=8)
    ref = lstm_ref.LSTM.from_torch(build_reference(config))
    x = make_inputs(config).input
    with torch.no_grad():
        eval_out = ref.eval()(x)[0]
        assert torch.equal(eval_out, ref(x)[0])
        first, second = ref.train()(x)[0], ref(x)[0]
    assert not torch.equal(first, second)
    assert not torch.allclose(first, eval_out)


def test_no_torch_recurrent_kernel_runs():
    """The profiler sees only matmuls and pointwise ops: no aten::lstm / lstm_cell / mkldnn_rnn."""
    config = Config(num_layers=2, bidirectional=True, proj_size=3, input_form="packed", initial_state=True)
    ref = lstm_ref.LSTM.from_torch(build_reference(config))
    inputs = make_inputs(config)
    cell = lstm_ref.LSTMCell(4, 6)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        ref(inputs.input, inputs.hx)[1][0].sum().backward()
        cell(torch.randn(2, 4))
    names = {event.name for event in profile.events()}
    assert any("addmm" in n or "mm" in n for n in names)
    assert not [n for n in names if "lstm" in n.lower() or "rnn" in n.lower()]

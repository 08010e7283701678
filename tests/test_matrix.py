"""The matrix itself: one configuration per distinct computation, and inputs laid out as promised.

``configs.onednn_takes`` says where torch's oneDNN LSTM really runs; it is measured here: the two
CPU paths give bit-identical results exactly where it says oneDNN falls back, so the matrix, which
keeps one configuration of each such twin pair, loses nothing. And each memory layout a
configuration names is what the candidate receives: not contiguous where transposed, a slice of a
larger buffer at an offset where strided, a stride-0 dimension where expanded.
"""

from dataclasses import replace

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

from lstm_ref.configs import LAYOUTS, Config, default_matrix, distinct, gradient_matrix, onednn_takes, quick_matrix
from lstm_ref.conformance import build_reference, check_forward, make_inputs, stride0_dims, torch_path

#: torch 2.13.0 and 2.14.1 run a PackedSequence whose sequences have one length on oneDNN; 2.1.2 runs
#: it on the native loop (versions between were not measured): that configuration is a twin there.
UNIFORM_PACKED_ON_ONEDNN_SINCE = "2.13"


def _kinds_of_computation() -> list[Config]:
    """One CPU configuration (named for oneDNN) per combination of what oneDNN's fallback can hinge on."""
    chosen = {}
    for config in default_matrix(("cpu",)):
        if config.seq_len > 200:
            continue
        key = (config.dtype, config.input_form, config.proj_size > 0, config.batch_size == 1, config.seq_len == 1,
               config.train, config.num_layers, config.bidirectional)
        chosen.setdefault(key, replace(config, torch_path="onednn"))
    return list(chosen.values())


def _torch_results(config: Config, path: str) -> list[torch.Tensor]:
    reference, inputs = build_reference(config), make_inputs(config).clone()
    with torch.no_grad(), torch_path(path):
        output, (h_n, c_n) = reference(inputs.input, inputs.hx)
    return [output.data if isinstance(output, PackedSequence) else output, h_n, c_n]


@pytest.mark.parametrize("config", _kinds_of_computation(), ids=lambda c: c.id)
def test_onednn_falls_back_exactly_where_the_matrix_says(config):
    onednn, native = _torch_results(config, "onednn"), _torch_results(config, "native")
    identical = all(torch.equal(a, b) for a, b in zip(onednn, native))
    if config.packed and identical and torch.__version__ < UNIFORM_PACKED_ON_ONEDNN_SINCE:
        return  # an older torch runs a packed batch of one length on its native loop too: a twin there
    assert identical == (not onednn_takes(config)), (
        f"oneDNN {'computed the same bits as' if identical else 'differs from'} the native loop, "
        f"but onednn_takes says {onednn_takes(config)}")


@pytest.mark.parametrize("matrix", [default_matrix, gradient_matrix, quick_matrix])
def test_each_configuration_is_a_distinct_computation(matrix):
    configs = matrix(("cpu",))
    assert len({c.id for c in configs}) == len(configs)
    assert distinct(configs) == configs
    assert all(c.torch_path == "native" or onednn_takes(c) for c in configs)


def _received(config: Config) -> list[torch.Tensor]:
    """The tensors the candidate is called with on ``config``: its input (a packed input's data) and states."""
    seen = []

    def factory(module):
        reference = __import__("lstm_ref").LSTM.from_torch(module)

        def forward(input, hx=None):
            if not seen:
                seen.extend([input.data if isinstance(input, PackedSequence) else input, *(hx or ())])
            return reference(input, hx)
        return forward

    assert check_forward(config, factory).status == "passed"
    return seen


LAYOUT_CONFIGS = [replace(config, layout=layout) for layout in LAYOUTS[1:] for config in (
    Config(num_layers=2, initial_state=True), Config(batch_first=True, initial_state=True),
    Config(input_form="unbatched", initial_state=True), Config(input_form="packed", initial_state=True))]


@pytest.mark.parametrize("config", LAYOUT_CONFIGS, ids=lambda c: c.id)
def test_the_candidate_receives_the_layout_the_configuration_names(config):
    input_dim, state_dim = stride0_dims(config)
    received = _received(config)
    assert len(received) == 3
    for tensor, expanded_dim in zip(received, (input_dim, state_dim, state_dim)):
        size = tensor.untyped_storage().nbytes() // tensor.element_size()
        if config.layout == "transposed" and tensor.dim() > 1 and tensor.shape[0] > 1 and tensor.shape[1] > 1:
            assert not tensor.is_contiguous() and tensor.transpose(0, 1).is_contiguous()
        elif config.layout == "strided":
            assert tensor.storage_offset() > 0 and tensor.stride(-1) == 2 and size > 2 * tensor.numel()
        elif config.layout == "expanded" and tensor.shape[expanded_dim] > 1:
            assert tensor.stride(expanded_dim) == 0 and size < tensor.numel()

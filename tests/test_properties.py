"""Property-based conformance: random configurations from lstm_ref.strategies against torch.

The number of examples comes from the hypothesis profile (root conftest.py): ``ci`` (the default,
30 examples) or ``thorough`` (1000), chosen with ``HYPOTHESIS_PROFILE=thorough``. A failure shrinks
to the smallest failing configuration and its message carries a one-line reproducer.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

import lstm_ref
from lstm_ref.candidates import Factory
from lstm_ref.configs import Config
from lstm_ref.conformance import PASSED, check_forward, reproducer_command
from lstm_ref.strategies import configs
from lstm_ref.testing import check_lstm
from tests.mutants import gates_if_swapped, h0_c0_swapped


def assert_conforms(config: Config, factory: Factory) -> None:
    """``factory``'s LSTM passes ``config``; a failure's message ends in a one-line reproducer.
    In this process: a worker's start per example would cost more than the example."""
    [result] = check_lstm(factory, [config], isolate=False)
    assert result.status == PASSED, result.describe()


@given(config=configs())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_lstm_ref_conforms_on_random_configurations(config: Config) -> None:
    assert_conforms(config, lstm_ref.LSTM.from_torch)


#: A broken factory, and the smallest configuration that exposes it (as a change to the strategy's
#: smallest configuration): the property must fail and shrink to exactly that one.
BROKEN = [
    ("gates_if_swapped", gates_if_swapped, {}),
    ("h0_c0_swapped", h0_c0_swapped, {"initial_state": True}),
]


@pytest.mark.parametrize(("factory", "exposed_by"), [case[1:] for case in BROKEN],
                         ids=[case[0] for case in BROKEN])
def test_property_fails_a_broken_factory_and_shrinks_to_its_smallest_configuration(
    factory: Factory, exposed_by: dict
) -> None:
    smallest = replace(find(configs(), lambda config: True), **exposed_by)

    @given(config=configs())
    @settings(max_examples=30, database=None, derandomize=True, deadline=None,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=[HealthCheck.too_slow])
    def property_with_broken_factory(config: Config) -> None:
        assert_conforms(config, factory)

    with pytest.raises(AssertionError) as failure:
        property_with_broken_factory()
    message = str(failure.value)
    assert f"{smallest.id}: failed" in message, message
    assert f"reproduce: {reproducer_command(smallest, check_forward, factory)}" in message, message
    assert f"'tests.mutants:{factory.__name__}'" in message, message

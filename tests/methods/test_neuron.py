"""The neuron methods (attrkit/methods/neuron.py), beyond the shared tester
(tests/methods/test_shared.py: parity with Captum and the definition on every model case)
and the selector forms (tests/core/test_layers.py): a neuron of the output layer is the
whole method's target."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attrkit
from tests.cases import ALL_CASES
from tests.helpers import baseline_distribution
from tests.tester import info, method_params, needs_layer, takes_neuron_selector


def _whole_method(name: str) -> str:
    """The registered method that applies ``name``'s rules to the whole model's output
    (and needs the same arguments but the neuron selector)."""
    rules = info(name).rules
    required = set(info(name).required_arguments) - {"neuron_selector"}
    return next(
        other
        for other in attrkit.available_methods()
        if info(other).rules == rules
        and not needs_layer(info(other))
        and info(other).takes_target
        and set(info(other).required_arguments) == required
    )


@pytest.mark.parametrize(
    "name", method_params(lambda m: takes_neuron_selector(m) and bool(m.rules))
)
@pytest.mark.parametrize(
    "case",
    [
        c
        for c in ALL_CASES
        if c.id
        in (
            "small-cnn-bn-pool-dropout",
            "reused-relu-parallel-branches",
            "functional-F.relu",
            "inception-style",
        )
    ],
    ids=lambda c: c.id,
)
def test_neuron_of_the_last_layer_equals_the_target(name, case):
    """NeuronDeconvolution on the output layer's neuron k == Deconvolution with target k
    (and likewise for guided backpropagation, DeepLift and DeepLiftShap)."""
    model = case.build()
    (x,) = case.inputs()
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    whole = attrkit.create(_whole_method(name), model)
    options = {}
    if "baselines" in info(name).required_arguments:
        options["baselines"] = baseline_distribution(x)
    for k in range(case.output_shape[0]):
        neuron = attrkit.create(name, model, layer=last).attribute(x, k, **options)
        torch.testing.assert_close(neuron, whole.attribute(x, target=k, **options))

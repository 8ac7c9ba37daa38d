"""Errors where Captum asserts are AssertionErrors too (and keep their precise type), and
``attribute_future`` raises NotImplementedError on every attrkit class, as in Captum."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attrkit
from attrkit.core.errors import ArgumentIndexError, ArgumentTypeError, ArgumentValueError
from tests import models
from tests.helpers import quick_call

#: The methods attrkit computes itself (the perturbation family is Captum's own).
OWN = [
    name
    for name in attrkit.available_methods()
    if attrkit.method_info(name).family != "perturbation"
]
MODEL = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
X = torch.randn(2, 3)


@pytest.mark.parametrize("error", [ArgumentIndexError, ArgumentTypeError, ArgumentValueError])
def test_the_error_classes_are_both(error):
    assert issubclass(error, AssertionError)
    assert issubclass(error, (IndexError, TypeError, ValueError))


@pytest.mark.parametrize(
    ("target", "error", "pattern"),
    [
        pytest.param(None, ValueError, r"`target` is required", id="missing"),
        pytest.param((1, 0), IndexError, r"`target` \(1, 0\) has 2 indices", id="too-many"),
        pytest.param((9999,) * 20, IndexError, r"has 20 indices", id="captum-hook-test"),
        pytest.param(5, IndexError, r"index 5 is out of range", id="out-of-range"),
        pytest.param([0], ValueError, r"`target` has 1 entries but the batch has 2", id="length"),
        pytest.param(1.5, TypeError, r"`target` must be", id="type"),
    ],
)
def test_target_errors_are_assertion_errors(target, error, pattern):
    """Captum's test_targets and test_hook_removal expect AssertionError here."""
    with pytest.raises(error, match=pattern) as info:
        attrkit.IntegratedGradients(MODEL).attribute(X, target=target, n_steps=2)
    assert isinstance(info.value, AssertionError)


def test_neuron_selector_errors_are_assertion_errors():
    explainer = attrkit.NeuronGradient(MODEL, MODEL[0])
    with pytest.raises(IndexError, match=r"`neuron_selector` \(9999, 9999\) has 2 indices") as info:
        explainer.attribute(X, neuron_selector=(9999, 9999))
    assert isinstance(info.value, AssertionError)


def _explainer(name: str):
    torch.manual_seed(0)
    model = models.SmallCNN().eval()
    init, _ = quick_call(name, layer=model.features[4], base_method="saliency")
    return attrkit.create(name, model, **init)


@pytest.mark.parametrize("name", OWN)
def test_attribute_future_is_not_implemented(name):
    with pytest.raises(NotImplementedError, match=r"attribute_future is not implemented for"):
        _explainer(name).attribute_future(torch.randn(1, 3, 12, 12))

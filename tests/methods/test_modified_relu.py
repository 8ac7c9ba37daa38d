"""Deconvolution and guided backpropagation (attrkit/methods/modified_relu.py): Captum
deviates from the definition exactly where the case table says (the definition itself, on
every case, is tests/methods/test_shared.py's), Captum's own hand-computed expectations,
the warning for a model without ReLUs, and zero attributions where nothing reaches the
output.

Captum's expectations come from its test suite (pytorch/captum), for
``BasicModel_ConvNet_One_Conv`` with the input ``arange(16).view(1, 1, 4, 4)``, target 0:
tests/attr/test_deconvolution.py (``test_simple_input_conv_deconv``,
``test_simple_multi_input_conv_deconv``: second input ``ones``) and
tests/attr/test_guided_backprop.py (``test_simple_input_conv_gb``,
``test_simple_multi_input_conv_gb``). They can be checked by hand: conv1 has all-ones 3x3
kernels with biases -50 and -75, so on the 2x2 output map only the units whose 3x3 window
sums past the bias are active; fc1 has weights +1 on the first five features and -1 on the
last three.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from captum.testing.helpers.basic_models import BasicModel_ConvNet_One_Conv

import attrkit
from tests import models
from tests.cases import DEFINITION_CASES, METHODS, RULE_OF, target_forms
from tests.helpers import assert_all_close, captum_attribute, differs
from tests.reference import reference_attribution


def _reference(case, method, target, dtype):
    return reference_attribution(
        case.build_reference(dtype),
        case.inputs(dtype),
        target,
        case.extra_tuple(dtype),
        RULE_OF[method],
    )


DEVIATIONS = [
    pytest.param(case, method, id=f"{case.id}-{method}")
    for case in DEFINITION_CASES
    if case.captum_deviation
    for method in case.captum_wrong_for
]


@pytest.mark.parametrize(("case", "method"), DEVIATIONS)
def test_captum_deviates_where_documented(case, method):
    """Each deviation the docs list is real: Captum raises or differs from the definition
    (if Captum ever fixes one, this fails and the docs need updating)."""
    target = target_forms(case.output_shape)[0][1]
    inputs = case.inputs()
    try:
        theirs = captum_attribute(
            method,
            case.build(),
            case.attribute_inputs(inputs),
            target=target,
            additional_forward_args=case.extra_args(),
        )
    except RuntimeError:
        assert "crashes" in case.captum_deviation
        return
    assert "crashes" not in case.captum_deviation
    assert differs(theirs, _reference(case, method, target, torch.float32))


@pytest.mark.parametrize("method", METHODS)
def test_model_without_relu_gives_plain_gradient_and_warns_once(method):
    model = models.NoReluNet().eval()
    x = torch.randn(4, 5)
    explainer = getattr(attrkit, method)(model)
    with pytest.warns(attrkit.NoReluWarning, match="applied no ReLU") as record:
        first = explainer.attribute(x, target=2)
    assert record[0].filename == __file__  # the warning points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = explainer.attribute(x, target=2)
    plain = reference_attribution(model, (x,), 2, (), rule=None)
    assert_all_close((first,), plain)
    assert_all_close((second,), plain)


def test_inputs_that_do_not_reach_the_output_get_zero_attribution():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())

    def forward(x, unused):
        return model(x)

    x, unused = torch.randn(2, 3), torch.randn(2, 4)
    attributions = attrkit.Deconvolution(forward).attribute((x, unused), target=0)
    assert torch.equal(attributions[1], torch.zeros_like(unused))


def test_output_that_does_not_depend_on_inputs_gives_zeros():
    def constant(x):
        return torch.ones(x.shape[0], 3)

    x = torch.randn(2, 4)
    with pytest.warns(attrkit.NoReluWarning):
        attribution = attrkit.GuidedBackprop(constant).attribute(x, target=1)
    assert torch.equal(attribution, torch.zeros_like(x))


# ------------------------------------------------------------ Captum's expectations

DECONV_ONE_INPUT = [[2, 3, 3, 1], [3, 5, 5, 2], [3, 5, 5, 2], [1, 2, 2, 1]]
GBP_ONE_INPUT = [[0, 1, 1, 1], [1, 3, 3, 2], [1, 3, 3, 2], [1, 2, 2, 1]]
# With x + ones as the model input, both conv1 channels are active everywhere.
DECONV_TWO_INPUTS = [[2, 3, 3, 1], [3, 5, 5, 2], [3, 5, 5, 2], [1, 2, 2, 1]]
GBP_TWO_INPUTS = [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]


def _input() -> torch.Tensor:
    return torch.arange(16, dtype=torch.float).view(1, 1, 4, 4)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        pytest.param(attrkit.Deconvolution, DECONV_ONE_INPUT, id="deconvolution"),
        pytest.param(attrkit.GuidedBackprop, GBP_ONE_INPUT, id="guided-backprop"),
    ],
)
def test_one_input(method, expected):
    attribution = method(BasicModel_ConvNet_One_Conv()).attribute(_input(), target=0)
    torch.testing.assert_close(
        attribution, torch.tensor(expected, dtype=torch.float).view(1, 1, 4, 4)
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        pytest.param(attrkit.Deconvolution, DECONV_TWO_INPUTS, id="deconvolution"),
        pytest.param(attrkit.GuidedBackprop, GBP_TWO_INPUTS, id="guided-backprop"),
    ],
)
def test_two_inputs(method, expected):
    attributions = method(BasicModel_ConvNet_One_Conv()).attribute(
        (_input(), torch.ones(1, 1, 4, 4)), target=0
    )
    expected_tensor = torch.tensor(expected, dtype=torch.float).view(1, 1, 4, 4)
    assert isinstance(attributions, tuple)
    for attribution in attributions:
        torch.testing.assert_close(attribution, expected_tensor)


# ------------------------------------------------------------------ Captum's interface


def test_modified_relu_base_signature_matches_captum():
    from captum.attr._core.guided_backprop_deconvnet import (
        ModifiedReluGradientAttribution as CaptumModifiedRelu,
    )

    for member in ("__init__", "attribute"):
        ours = inspect.signature(getattr(attrkit.ModifiedReluGradientAttribution, member))
        theirs = inspect.signature(getattr(CaptumModifiedRelu, member))
        assert list(ours.parameters) == list(theirs.parameters)
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ]


@pytest.mark.parametrize("method", METHODS)
def test_is_a_modified_relu_gradient_attribution(method):
    explainer = getattr(attrkit, method)(models.SmallCNN())
    assert isinstance(explainer, attrkit.ModifiedReluGradientAttribution)


@pytest.mark.parametrize(
    ("use_relu_grad_output", "method"), [(True, "Deconvolution"), (False, "GuidedBackprop")]
)
def test_base_class_used_directly_applies_the_rule_captum_picks(use_relu_grad_output, method):
    """As in Captum: ``use_relu_grad_output`` picks deconvolution's rule or guided
    backpropagation's."""
    model, x = models.ReusedReluParallel().eval(), torch.randn(4, 5)
    base = attrkit.ModifiedReluGradientAttribution(model, use_relu_grad_output)
    torch.testing.assert_close(
        base.attribute(x, target=1), getattr(attrkit, method)(model).attribute(x, target=1)
    )


def test_attribute_future_is_not_implemented_as_in_captum():
    with pytest.raises(NotImplementedError, match="attribute_future"):
        attrkit.Deconvolution(models.SmallCNN()).attribute_future()

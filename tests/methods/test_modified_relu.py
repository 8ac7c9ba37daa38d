"""attrkit equals the definition (tests/reference.py, which shares no code with attrkit) on
every case, and Captum deviates from it exactly where the case table says."""

from __future__ import annotations

import warnings

import pytest
import torch

import attrkit
from tests import models
from tests.cases import ALL_CASES, DEFINITION_CASES, DTYPES, METHODS, RULE_OF, target_forms
from tests.helpers import as_tuple, assert_all_close, captum_attribute, differs
from tests.reference import reference_attribution

DEFINITION = [
    pytest.param(case, method, target, dtype, id=f"{case.id}-{method}-{form}-{str(dtype)[6:]}")
    for case in ALL_CASES
    for method in METHODS
    for form, target in target_forms(case.output_shape)
    for dtype in DTYPES
]


def _reference(case, method, target, dtype):
    return reference_attribution(
        case.build_reference(dtype),
        case.inputs(dtype),
        target,
        case.extra_tuple(dtype),
        RULE_OF[method],
    )


@pytest.mark.parametrize(("case", "method", "target", "dtype"), DEFINITION)
def test_matches_definition(case, method, target, dtype):
    inputs = case.inputs(dtype)
    ours = getattr(attrkit, method)(case.build(dtype)).attribute(
        case.attribute_inputs(inputs), target=target, additional_forward_args=case.extra_args(dtype)
    )
    assert_all_close(as_tuple(ours), _reference(case, method, target, dtype))


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

"""attrkit equals captum.attr wherever Captum follows the definition: every ReLU a
distinct nn.ReLU module (and the other usages where Captum happens to be right), for every
target form the model's output accepts, in float32 and float64."""

from __future__ import annotations

import pytest
import torch

import attrkit
from tests.cases import ALL_CASES, DTYPES, METHODS, captum_agrees, target_forms
from tests.helpers import as_tuple, assert_all_close, captum_attribute

PARITY = [
    pytest.param(case, method, target, dtype, id=f"{case.id}-{method}-{form}-{str(dtype)[6:]}")
    for case in ALL_CASES
    for method in METHODS
    if captum_agrees(case, method)
    for form, target in target_forms(case.output_shape)
    for dtype in DTYPES
]


@pytest.mark.parametrize(("case", "method", "target", "dtype"), PARITY)
def test_matches_captum(case, method, target, dtype):
    model = case.build(dtype)
    inputs, extra = case.inputs(dtype), case.extra_args(dtype)
    ours = getattr(attrkit, method)(model).attribute(
        case.attribute_inputs(inputs), target=target, additional_forward_args=extra
    )
    theirs = captum_attribute(
        method, model, case.attribute_inputs(inputs), target=target, additional_forward_args=extra
    )
    assert_all_close(as_tuple(ours), theirs)
    assert all(a.dtype == dtype for a in as_tuple(ours))


@pytest.mark.parametrize("method", METHODS)
def test_result_structure_follows_inputs(method):
    """Tensor in -> tensor out; tuple in -> tuple out (also a one-element tuple)."""
    model = ALL_CASES[0].build()
    (x,) = ALL_CASES[0].inputs()
    explainer = getattr(attrkit, method)(model)
    as_tensor = explainer.attribute(x, target=1)
    as_one_tuple = explainer.attribute((x,), target=1)
    assert isinstance(as_tensor, torch.Tensor)
    assert isinstance(as_one_tuple, tuple)
    assert len(as_one_tuple) == 1
    torch.testing.assert_close(as_one_tuple[0], as_tensor)
    assert as_tensor.shape == x.shape

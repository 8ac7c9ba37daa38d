"""attrkit equals captum.attr wherever Captum follows the definition, for every method of
the methods table, every model case, every target form (or neuron selector) the case
accepts, in float32 and float64.

ReLU-override methods run on the cases where Captum's module hooks are right
(``captum_agrees_with``); plain-gradient methods run everywhere except where Captum
crashes. The cases where Captum deviates are tested against the definition in
test_reference.py.
"""

from __future__ import annotations

from typing import Any

import captum.attr
import pytest
import torch

import attrkit
from tests.cases import (
    ALL_CASES,
    DTYPES,
    LAYERS,
    METHOD_SPECS,
    Case,
    MethodSpec,
    captum_agrees_with,
    selections,
)
from tests.helpers import assert_matches_captum, fresh

PARITY = [
    pytest.param(spec, case, value, dtype, id=f"{spec.id}-{case.id}-{form}-{str(dtype)[6:]}")
    for spec in METHOD_SPECS
    for case in ALL_CASES
    if captum_agrees_with(case, spec) and (not spec.layer or case.id in LAYERS)
    for form, value in selections(spec, case)
    for dtype in DTYPES
]


def run(library: Any, spec: MethodSpec, case: Case, selection: Any, dtype: torch.dtype) -> Any:
    model = case.build(dtype)
    inputs = case.attribute_inputs(fresh(case.inputs(dtype)))
    kwargs = {"additional_forward_args": case.extra_args(dtype), **spec.kwargs(dtype)}
    torch.manual_seed(0)  # the same noise for NoiseTunnel
    return spec.attribute(library, model, LAYERS.get(case.id), inputs, selection, **kwargs)


@pytest.mark.parametrize(("spec", "case", "selection", "dtype"), PARITY)
def test_matches_captum(spec, case, selection, dtype):
    ours = run(attrkit, spec, case, selection, dtype)
    theirs = run(captum.attr, spec, case, selection, dtype)
    tolerance = {}
    if dtype == torch.float64 and spec.float64_rtol is not None:
        tolerance = {"rtol": spec.float64_rtol, "atol": 1e-9}
    delta = bool(spec.attribute_kwargs.get("return_convergence_delta"))
    assert_matches_captum(ours, theirs, delta, tolerance)


@pytest.mark.parametrize(
    "method",
    ["Deconvolution", "GuidedBackprop", "Saliency", "InputXGradient", "IntegratedGradients"],
)
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


def test_table_size():
    """The parity table covers every registered method (a guard for the table itself)."""
    covered = {spec.cls for spec in METHOD_SPECS} | {spec.wraps for spec in METHOD_SPECS}
    registered = {attrkit.method_info(name).cls.__name__ for name in attrkit.available_methods()}
    assert registered <= covered

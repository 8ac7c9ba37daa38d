"""Parity with Captum (the shared tester, tests/tester.py): every configuration of the
``METHOD_SPECS`` table (tests/cases.py) on every model case where Captum follows the
definition (``captum_agrees_with``), in float32 and float64, equals ``captum.attr``'s class
of the same name, each case in every one of its target forms (or neuron selectors) by
the covering design that tests/methods/test_shared.py's docstring describes; a guard
checks that every registered method with a Captum namesake has a row."""

from __future__ import annotations

from typing import Any

import captum.attr
import pytest
import torch

import attrkit
from tests.cases import ALL_CASES, LAYERS, METHOD_SPECS, Case, MethodSpec, captum_agrees_with
from tests.helpers import assert_matches_captum, fresh
from tests.tester import (
    assert_covering_reaches_every_form,
    covering_params,
    info,
    methods,
    spec_method,
)

PARITY_ROWS = [
    (spec, case)
    for spec in METHOD_SPECS
    for case in ALL_CASES
    if captum_agrees_with(case, spec) and (not spec.layer or case.id in LAYERS)
]

#: Registered methods with a Captum namesake but no row in METHOD_SPECS, and why.
PARITY_EXEMPTIONS: dict[str, str] = {}


def run(library: Any, spec: MethodSpec, case: Case, selection: Any, dtype: torch.dtype) -> Any:
    model = case.build(dtype)
    inputs = case.attribute_inputs(fresh(case.inputs(dtype)))
    kwargs = {"additional_forward_args": case.extra_args(dtype), **spec.kwargs(dtype)}
    torch.manual_seed(0)  # the same noise for NoiseTunnel
    return spec.attribute(library, model, LAYERS.get(case.id), inputs, selection, **kwargs)


@pytest.mark.parametrize(("spec", "case", "selection", "dtype"), covering_params(PARITY_ROWS))
def test_matches_captum(spec, case, selection, dtype):
    ours = run(attrkit, spec, case, selection, dtype)
    theirs = run(captum.attr, spec, case, selection, dtype)
    tolerance = {}
    if dtype == torch.float64 and spec.float64_rtol is not None:
        tolerance = {"rtol": spec.float64_rtol, "atol": 1e-9}
    delta = bool(spec.attribute_kwargs.get("return_convergence_delta"))
    assert_matches_captum(ours, theirs, delta, tolerance)


@pytest.mark.parametrize("name", methods(lambda m: m.captum_name is not None))
def test_every_method_with_a_captum_namesake_has_parity_rows(name):
    cls = info(name).cls.__name__
    rows = [spec for spec in METHOD_SPECS if cls in (spec.cls, spec.wraps)]
    assert rows or name in PARITY_EXEMPTIONS, (
        f"add {cls}'s configurations to METHOD_SPECS in tests/cases.py (or an exemption, "
        "with its reason, to PARITY_EXEMPTIONS)"
    )
    assert all(spec_method(spec).name == name for spec in rows if spec.cls == cls)


@pytest.mark.parametrize("neuron", [False, True], ids=["targets", "neuron-selectors"])
def test_covering_design_reaches_every_form(neuron):
    assert_covering_reaches_every_form(PARITY_ROWS, neuron)

"""attrkit equals captum.attr wherever Captum follows the definition, for every method of
the methods table, every model case, every target form (or neuron selector) the case
accepts, in float32 and float64.

ReLU-override methods run on the cases where Captum's module hooks are right
(``captum_agrees_with``); plain-gradient methods run everywhere except where Captum
crashes. The cases where Captum deviates are tested against the definition in
test_reference.py.
"""

from __future__ import annotations

import functools
import warnings
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
    neuron_selectors,
    target_forms,
)
from tests.helpers import as_tuple, fresh


@functools.cache
def layer_shape(case: Case, to_input: bool) -> tuple[int, ...]:
    """Per-example shape of the case's layer output (or input)."""
    model = case.build()
    shapes: list[tuple[int, ...]] = []
    layer = model.get_submodule(LAYERS[case.id])
    if to_input:
        handle = layer.register_forward_pre_hook(lambda m, a: shapes.append(a[0].shape[1:]))
    else:
        handle = layer.register_forward_hook(lambda m, a, o: shapes.append(o.shape[1:]))
    with torch.no_grad():
        model(*case.inputs(), *attrkit._call.format_additional_forward_args(case.extra_args()))
    handle.remove()
    return tuple(shapes[0])


def selections(spec: MethodSpec, case: Case) -> list[tuple[str, Any]]:
    if spec.neuron:
        to_input = spec.attribute_kwargs.get("attribute_to_neuron_input", False)
        return neuron_selectors(layer_shape(case, to_input))
    return target_forms(case.output_shape)


PARITY = [
    pytest.param(spec, case, value, dtype, id=f"{spec.id}-{case.id}-{form}-{str(dtype)[6:]}")
    for spec in METHOD_SPECS
    for case in ALL_CASES
    if captum_agrees_with(case, spec) and (not spec.layer or case.id in LAYERS)
    for form, value in selections(spec, case)
    for dtype in DTYPES
]


def build(library: Any, spec: MethodSpec, model: torch.nn.Module, case: Case) -> Any:
    """The method of ``spec`` from ``library`` (attrkit or captum.attr) for ``model``."""
    if spec.wraps:
        return getattr(library, spec.cls)(getattr(library, spec.wraps)(model))
    layer = (model.get_submodule(LAYERS[case.id]),) if spec.layer else ()
    return getattr(library, spec.cls)(model, *layer, **spec.init_kwargs)


def run(library: Any, spec: MethodSpec, case: Case, selection: Any, dtype: torch.dtype) -> Any:
    model = case.build(dtype)
    inputs = case.attribute_inputs(fresh(case.inputs(dtype)))
    key = "neuron_selector" if spec.neuron else "target"
    kwargs = {
        key: selection,
        "additional_forward_args": case.extra_args(dtype),
        **spec.kwargs(dtype),
    }
    if isinstance(kwargs.get("baselines"), float) and isinstance(inputs, tuple):
        kwargs["baselines"] = (kwargs["baselines"],) * len(inputs)  # a scalar per input
    torch.manual_seed(0)  # the same noise for NoiseTunnel
    with warnings.catch_warnings():
        if library is captum.attr:
            warnings.simplefilter("ignore")  # Captum warns on every call
        return build(library, spec, model, case).attribute(inputs, **kwargs)


@pytest.mark.parametrize(("spec", "case", "selection", "dtype"), PARITY)
def test_matches_captum(spec, case, selection, dtype):
    ours = run(attrkit, spec, case, selection, dtype)
    theirs = run(captum.attr, spec, case, selection, dtype)
    if spec.attribute_kwargs.get("return_convergence_delta"):
        (ours, our_delta), (theirs, their_delta) = ours, theirs
        tolerance = {"rtol": 1e-6, "atol": 1e-5}
        torch.testing.assert_close(our_delta, their_delta.to(our_delta.dtype), **tolerance)
    assert type(ours) is type(theirs)
    tolerance = {}
    if dtype == torch.float64 and spec.float64_rtol is not None:
        tolerance = {"rtol": spec.float64_rtol, "atol": 1e-9}
    for a, b in zip(as_tuple(ours), as_tuple(theirs), strict=True):
        if b.numel() == 0:  # GuidedGradCam's "cannot upsample to this input" (Captum: float32)
            assert a.shape == b.shape
            continue
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, **tolerance)


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

"""Captum interop, for every registered method with a Captum namesake: an instance of each
of the namesake's public Captum base classes, usable inside ``captum.attr.NoiseTunnel``
(same seed, same noise: the same result as Captum's method inside it) and
``captum.metrics``, with an ``attribute.__wrapped__`` that takes ``self`` first (what
Captum's NoiseTunnel calls). Signatures: tests/core/test_registry.py."""

from __future__ import annotations

import warnings
from typing import Any

import captum.attr
import numpy as np
import pytest
import torch
from captum.metrics import infidelity, sensitivity_max

from attrkit.core.registry import MethodInfo
from tests.cases import (
    ALL_CASES,
    LAYERS,
    METHOD_SPECS,
    Case,
    MethodSpec,
    captum_agrees_with,
    first_target,
    layer_shape,
    neuron_selectors,
    target_forms,
)
from tests.tester import (
    QUICK_OPTIONS,
    Call,
    info,
    method_params,
    needs_layer,
    quick_call_on,
    quick_callable,
    takes_neuron_selector,
    wraps_a_method,
)


def _rows(name: str) -> list[MethodSpec]:
    cls = info(name).cls.__name__
    return [spec for spec in METHOD_SPECS if spec.cls == cls]


def _case(name: str) -> Case:
    """A model case with one input where Captum's namesake follows the definition for
    every configuration of the method (``captum_agrees_with``) and that every
    configuration runs on (``case_filter``): the small CNN where it can."""
    cases = sorted(ALL_CASES, key=lambda case: case.id != "small-cnn-bn-pool-dropout")
    return next(
        case
        for case in cases
        if len(case.input_shapes) == 1
        and case.extra is None
        and all(
            captum_agrees_with(case, spec) and (spec.case_filter is None or spec.case_filter(case))
            for spec in _rows(name)
        )
    )


#: Where attrkit and Captum agree: Captum's ``riemann_trapezoid`` weights sum to
#: ``(n - 1) / n`` (docs/captum_deviations.rst), and NeuronConductance's default is that
#: rule; Gauss-Legendre is the default of the other path methods.
OPTIONS = {**QUICK_OPTIONS, "method": "gausslegendre"}


def _first_form(name: str, forms: list[tuple[str, Any]]) -> Any:
    """The first of ``forms`` (target forms, or neuron selector forms for a neuron
    method) that every configuration of the method compared with Captum runs
    (``MethodSpec.forms``: Captum 0.9.0's LayerFeaturePermutation fails with any
    target)."""
    return next(
        value
        for form, value in forms
        if all(not spec.forms or form in spec.forms for spec in _rows(name))
    )


def _captum_quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _call(name: str) -> Call:
    case = _case(name)
    if takes_neuron_selector(info(name)):
        selector = _first_form(name, neuron_selectors(layer_shape(case, False)))
        return quick_call_on(case, name, neuron_selector=selector, options=OPTIONS)
    target = _first_form(name, target_forms(case.output_shape))
    return quick_call_on(case, name, target=target, options=OPTIONS)


def _captum_method(name: str, model: torch.nn.Module) -> Any:
    layer = (model.get_submodule(LAYERS[_case(name).id]),) if needs_layer(info(name)) else ()
    return getattr(captum.attr, info(name).captum_name)(model, *layer)


@pytest.mark.parametrize("name", method_params(lambda m: m.captum_name is not None))
def test_is_an_instance_of_the_captum_base_classes(name):
    if quick_callable(info(name)):
        ours = type(_call(name).explainer(_case(name).build()))
    else:  # (LimeBase: built with the caller's interpretable model and transforms)
        ours = info(name).cls
    theirs = getattr(captum.attr, info(name).captum_name)
    bases = [b for b in theirs.__mro__[1:] if getattr(captum.attr, b.__name__, None) is b]
    assert captum.attr.Attribution in bases
    for base in bases:
        assert issubclass(ours, base), base.__name__


def _wrappable(method: MethodInfo) -> bool:
    """Captum's NoiseTunnel can wrap the method's Captum namesake (it calls
    ``attribute.__wrapped__``, which Captum's LayerLRP lacks; it takes baselines one per
    example or one row, which a baseline distribution is not), and a quick call can build
    it (not LimeBase, built with the caller's interpretable model and transforms)."""
    theirs = getattr(captum.attr, method.captum_name or "", None)
    return (
        theirs is not None
        and quick_callable(method)
        and hasattr(theirs.attribute, "__wrapped__")
        and "baselines" not in method.required_arguments
    )


@pytest.mark.parametrize("name", method_params(lambda m: not wraps_a_method(m) and _wrappable(m)))
@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_inside_captum_noise_tunnel(name, nt_type):
    """Same seed, same noise: NoiseTunnel(attrkit method) == NoiseTunnel(captum method),
    in float64 (vargrad's difference of squares would amplify float32 rounding)."""
    case = _case(name)
    model, (x,) = case.build(torch.float64), case.inputs(torch.float64)
    call = _call(name)
    kwargs = {"nt_type": nt_type, "nt_samples": 5, "stdevs": 0.3, **call.kwargs}
    torch.manual_seed(7)
    ours = captum.attr.NoiseTunnel(call.explainer(model)).attribute(x, **kwargs)
    torch.manual_seed(7)
    theirs = _captum_quietly(
        captum.attr.NoiseTunnel(_captum_method(name, model)).attribute, x.clone(), **kwargs
    )
    torch.testing.assert_close(ours, theirs)
    assert not torch.equal(ours, call.run(model, x))


@pytest.mark.parametrize(
    "name",
    method_params(
        lambda m: (
            m.captum_name is not None
            and quick_callable(m)
            and not wraps_a_method(m)
            and not m.layer_output
        )
    ),
)
def test_inside_captum_metrics(name):
    model, (x,) = _case(name).build(), _case(name).inputs()
    call = _call(name)

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.1
        return noise, inputs - noise

    results = []
    for explainer in (call.explainer(model), _captum_method(name, model)):
        torch.manual_seed(2)
        np.random.seed(2)  # (GradientShap draws from NumPy's generator too)
        attributions = _captum_quietly(explainer.attribute, x.clone(), **call.kwargs)
        torch.manual_seed(3)
        inf = _captum_quietly(
            infidelity,
            model,
            perturb,
            x,
            attributions,
            target=call.kwargs.get("target", first_target(_case(name))),
            n_perturb_samples=4,
        )
        torch.manual_seed(3)
        np.random.seed(3)
        sens = _captum_quietly(
            sensitivity_max,
            explainer.attribute,
            x,
            n_perturb_samples=3,
            perturb_radius=0.05,
            **call.kwargs,
        )
        results.append((inf, sens))
    torch.testing.assert_close(results[0], results[1])


@pytest.mark.parametrize("name", method_params(quick_callable))
def test_wrapped_attribute_takes_self_first(name):
    """Captum's NoiseTunnel calls ``method.attribute.__wrapped__(method, ...)``. (LimeBase
    and DataLoaderAttribution, which a quick call cannot build, are left out.)"""
    call = _call(name)
    explainer = call.explainer(_case(name).build())
    (x,) = _case(name).inputs()
    torch.manual_seed(0)  # the same noise for NoiseTunnel
    np.random.seed(0)  # the same draws for GradientShap
    direct = explainer.attribute(x, **call.kwargs)
    torch.manual_seed(0)
    np.random.seed(0)
    via_wrapped = type(explainer).attribute.__wrapped__(explainer, x, **call.kwargs)
    torch.testing.assert_close(direct, via_wrapped)

"""Captum interop: attrkit methods are Captum attributions, run inside captum.attr's
NoiseTunnel and captum.metrics, and show Captum's signatures."""

from __future__ import annotations

import inspect
import warnings

import captum.attr
import pytest
import torch
from captum.metrics import infidelity, sensitivity_max

import attrkit
from tests.cases import METHODS, PARITY_CASES

CASE = next(c for c in PARITY_CASES if c.id == "small-cnn-bn-pool-dropout")


def _captum_quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("method", METHODS)
def test_is_a_captum_gradient_attribution(method):
    explainer = getattr(attrkit, method)(CASE.build())
    assert isinstance(explainer, captum.attr.Attribution)
    assert isinstance(explainer, captum.attr.GradientAttribution)
    assert isinstance(explainer, attrkit.GradientAttribution)
    assert isinstance(explainer, attrkit.ModifiedReluGradientAttribution)
    assert explainer.multiplies_by_inputs is False
    assert explainer.has_convergence_delta() is False


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_inside_captum_noise_tunnel(method, nt_type):
    """Same seed, same noise: NoiseTunnel(attrkit method) == NoiseTunnel(captum method)."""
    model, (x,) = CASE.build(), CASE.inputs()
    kwargs = {"nt_type": nt_type, "nt_samples": 5, "stdevs": 0.3, "target": [0, 1, 2]}
    torch.manual_seed(7)
    ours = captum.attr.NoiseTunnel(getattr(attrkit, method)(model)).attribute(x, **kwargs)
    torch.manual_seed(7)
    theirs = _captum_quietly(
        captum.attr.NoiseTunnel(getattr(captum.attr, method)(model)).attribute, x, **kwargs
    )
    torch.testing.assert_close(ours, theirs)
    assert not torch.equal(ours, getattr(attrkit, method)(model).attribute(x, target=[0, 1, 2]))


@pytest.mark.parametrize("method", METHODS)
def test_inside_captum_metrics(method):
    model, (x,) = CASE.build(), CASE.inputs()

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.1
        return noise, inputs - noise

    results = {}
    for library in (attrkit, captum.attr):
        explainer = getattr(library, method)(model)
        attributions = _captum_quietly(explainer.attribute, x, target=1)
        torch.manual_seed(3)
        inf = _captum_quietly(
            infidelity, model, perturb, x, attributions, target=1, n_perturb_samples=4
        )
        torch.manual_seed(3)
        sens = _captum_quietly(
            sensitivity_max,
            explainer.attribute,
            x,
            target=1,
            n_perturb_samples=3,
            perturb_radius=0.05,
        )
        results[library.__name__] = (inf, sens)
    torch.testing.assert_close(results["attrkit"], results["captum.attr"])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("member", ["__init__", "attribute"])
def test_signature_matches_captum(method, member):
    ours = inspect.signature(getattr(getattr(attrkit, method), member))
    theirs = inspect.signature(getattr(getattr(captum.attr, method), member))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()
    ]


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
def test_wrapped_attribute_takes_self_first(method):
    explainer = getattr(attrkit, method)(CASE.build())
    (x,) = CASE.inputs()
    direct = explainer.attribute(x, target=2)
    via_wrapped = type(explainer).attribute.__wrapped__(explainer, x, target=2)
    torch.testing.assert_close(direct, via_wrapped)


def test_attribute_future_is_not_implemented_as_in_captum():
    with pytest.raises(NotImplementedError, match="attribute_future"):
        attrkit.Deconvolution(CASE.build()).attribute_future()

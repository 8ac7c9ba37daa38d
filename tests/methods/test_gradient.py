"""The multi-method family against independent expectations, without Captum:

- the neuron and Guided Grad-CAM variants equal the definition (tests/reference.py) on
  every case, including the ReLU usages where Captum deviates;
- the plain-gradient methods equal the plain gradient (and, for Integrated Gradients, a
  quadrature of it written here) on every case, including where Captum crashes;
- closed-form checks: Saliency and Input x Gradient on linear models, Integrated Gradients'
  completeness tightening with n_steps, a neuron of the last layer equal to the target,
  NoiseTunnel's expected values for a ReLU.
"""

from __future__ import annotations

import math
import warnings

import captum.attr
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import attrkit
from tests.cases import (
    ALL_CASES,
    DTYPES,
    LAYERS,
    METHODS,
    RULE_OF,
    RULE_OF_CLASS,
    layer_shape,
    neuron_selectors,
    target_forms,
)
from tests.helpers import as_tuple, assert_all_close
from tests.reference import (
    quadrature,
    reference_attribution,
    reference_grad_cam,
    reference_neuron_attribution,
)

LAYER_CASES = [case for case in ALL_CASES if case.id in LAYERS]


def _setup(case, dtype):
    model = case.build(dtype)
    return model, case.inputs(dtype), case.extra_args(dtype), case.extra_tuple(dtype)


NEURON = [
    pytest.param(
        case,
        cls,
        rule,
        to_input,
        selector,
        dtype,
        id=f"{cls}-{case.id}-{form}-{'input' if to_input else 'output'}-{str(dtype)[6:]}",
    )
    for case in LAYER_CASES
    for cls, rule in RULE_OF_CLASS.items()
    if cls.startswith("Neuron")
    for to_input in (False, True)
    for form, selector in neuron_selectors(layer_shape(case, to_input))
    for dtype in DTYPES
]


@pytest.mark.parametrize(("case", "cls", "rule", "to_input", "selector", "dtype"), NEURON)
def test_neuron_methods_match_definition(case, cls, rule, to_input, selector, dtype):
    model, inputs, extra, extra_tuple = _setup(case, dtype)
    layer = model.get_submodule(LAYERS[case.id])
    ours = getattr(attrkit, cls)(model, layer).attribute(
        case.attribute_inputs(inputs),
        neuron_selector=selector,
        additional_forward_args=extra,
        attribute_to_neuron_input=to_input,
    )
    twin = case.build_reference(dtype)
    expected = reference_neuron_attribution(
        twin, inputs, twin.get_submodule(LAYERS[case.id]), selector, extra_tuple, rule, to_input
    )
    assert_all_close(as_tuple(ours), expected)


SPATIAL_CASES = [case for case in LAYER_CASES if len(layer_shape(case, False)) >= 2]


@pytest.mark.parametrize("case", SPATIAL_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_guided_grad_cam_matches_definition(case, dtype):
    model, inputs, extra, extra_tuple = _setup(case, dtype)
    target = target_forms(case.output_shape)[0][1]
    ours = attrkit.GuidedGradCam(model, model.get_submodule(LAYERS[case.id])).attribute(
        case.attribute_inputs(inputs), target=target, additional_forward_args=extra
    )
    twin = case.build_reference(dtype)
    guided = reference_attribution(twin, inputs, target, extra_tuple, "guided_backprop")
    cam = reference_grad_cam(twin, inputs, twin.get_submodule(LAYERS[case.id]), target, extra_tuple)
    for got, x, g in zip(as_tuple(ours), inputs, guided, strict=True):
        if x.dim() - 2 != cam.dim() - 2:
            assert got.numel() == 0
            continue
        torch.testing.assert_close(got, g * F.interpolate(cam, size=x.shape[2:], mode="nearest"))


PLAIN = [
    pytest.param(case, target, dtype, id=f"{case.id}-{form}-{str(dtype)[6:]}")
    for case in ALL_CASES
    for form, target in target_forms(case.output_shape)[:2]
    for dtype in DTYPES
]


@pytest.mark.parametrize(("case", "target", "dtype"), PLAIN)
def test_plain_gradient_methods_match_definition(case, target, dtype):
    """Saliency, Input x Gradient and Integrated Gradients follow the plain gradient on
    every case (Captum crashes on the in-place ReLUs applied to the input)."""
    model, inputs, extra, extra_tuple = _setup(case, dtype)
    grads = reference_attribution(case.build_reference(dtype), inputs, target, extra_tuple, None)
    given = case.attribute_inputs(inputs)
    kwargs = {"target": target, "additional_forward_args": extra}
    saliency = attrkit.Saliency(model).attribute(given, abs=False, **kwargs)
    assert_all_close(as_tuple(saliency), grads)
    ixg = attrkit.InputXGradient(model).attribute(given, **kwargs)
    assert_all_close(as_tuple(ixg), tuple(x * g for x, g in zip(inputs, grads, strict=True)))
    # Integrated gradients as a plain Gauss-Legendre sum of reference gradients.
    integral = [torch.zeros_like(x) for x in inputs]
    for point, weight in quadrature("gausslegendre", 4):
        path_grads = reference_attribution(
            case.build_reference(dtype), tuple(x * point for x in inputs), target, extra_tuple, None
        )
        for total, g in zip(integral, path_grads, strict=True):
            total += weight * g
    ig = attrkit.IntegratedGradients(model).attribute(given, n_steps=4, **kwargs)
    assert_all_close(as_tuple(ig), tuple(x * t for x, t in zip(inputs, integral, strict=True)))


# ------------------------------------------------------------------ closed-form checks


def _linear(out_features: int = 3) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(6, out_features)


@pytest.mark.parametrize("target", [0, 2])
def test_saliency_of_a_linear_model_is_its_weights(target):
    model = _linear()
    x = torch.randn(4, 6)
    signed = attrkit.Saliency(model).attribute(x, target=target, abs=False)
    torch.testing.assert_close(signed, model.weight[target].detach().expand(4, 6))
    torch.testing.assert_close(
        attrkit.Saliency(model).attribute(x, target=target),
        model.weight[target].detach().abs().expand(4, 6),
    )


def test_input_x_gradient_of_a_linear_model_is_input_times_weight():
    model = _linear()
    x = torch.randn(4, 6)
    torch.testing.assert_close(
        attrkit.InputXGradient(model).attribute(x, target=[0, 1, 2, 0]),
        x * model.weight.detach()[[0, 1, 2, 0]],
    )


@pytest.mark.parametrize(
    "method",
    ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"],
)
def test_integrated_gradients_of_a_linear_model_is_exact(method):
    """On a linear model the integrand is constant, so every rule whose weights sum to one
    gives (x - b) * w exactly: Captum's riemann_trapezoid gives (n - 1) / n of it."""
    model = _linear()
    x, baseline = torch.randn(4, 6), torch.randn(1, 6)
    ig = attrkit.IntegratedGradients(model).attribute(
        x, baselines=baseline, target=1, n_steps=10, method=method
    )
    torch.testing.assert_close(ig, (x - baseline) * model.weight[1].detach())


def test_captum_trapezoid_rule_is_scaled_by_n_minus_one_over_n():
    """The Captum deviation attrkit fixes (see attrkit._approximation)."""
    model = _linear()
    x = torch.randn(4, 6)
    exact = x * model.weight[1].detach()
    theirs = captum.attr.IntegratedGradients(model).attribute(
        x.clone(), target=1, n_steps=10, method="riemann_trapezoid"
    )
    torch.testing.assert_close(theirs, exact * 9 / 10)


class SmoothNet(nn.Module):
    """Softplus/tanh: IG's integrand is smooth, so the quadrature error shrinks fast."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Linear(5, 16), nn.Softplus(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)
        )

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("method", ["riemann_middle", "riemann_trapezoid", "gausslegendre"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_integrated_gradients_completeness_tightens_with_n_steps(method, dtype):
    """sum(attributions) -> F(x) - F(b) as n_steps grows; the returned delta is exactly
    that difference."""
    model = SmoothNet().to(dtype)
    x = 2 * torch.randn(3, 5, dtype=dtype)
    baseline = torch.zeros(1, 5, dtype=dtype)
    with torch.no_grad():
        gap = model(x)[:, 2] - model(baseline)[:, 2]
    errors = []
    # Gauss-Legendre converges so fast that 16 points already reach rounding error.
    for n_steps in (1, 2, 4) if method == "gausslegendre" else (4, 16, 64):
        attributions, delta = attrkit.IntegratedGradients(model).attribute(
            x,
            baselines=baseline,
            target=2,
            n_steps=n_steps,
            method=method,
            return_convergence_delta=True,
        )
        torch.testing.assert_close(delta, attributions.sum(dim=1) - gap)
        errors.append(float(delta.abs().max()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3


@pytest.mark.parametrize("cls", ["NeuronDeconvolution", "NeuronGuidedBackprop"])
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
def test_neuron_of_the_last_layer_equals_the_target(cls, case):
    """NeuronDeconvolution on the output layer's neuron k == Deconvolution with target k
    (and likewise for guided backpropagation)."""
    model = case.build()
    (x,) = case.inputs()
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    whole = cls.removeprefix("Neuron")
    for k in range(case.output_shape[0]):
        neuron = getattr(attrkit, cls)(model, last).attribute(x, neuron_selector=k)
        torch.testing.assert_close(neuron, getattr(attrkit, whole)(model).attribute(x, target=k))


class SumOfRelus(nn.Module):
    def forward(self, x):
        return torch.relu(x).sum(dim=1, keepdim=True)


def test_noise_tunnel_matches_its_expected_values():
    """For F(x) = sum(relu(x)) the gradient is 1[x + noise > 0], so with noise N(0, s^2):
    smoothgrad -> Phi(x / s), smoothgrad_sq -> the same, vargrad -> Phi (1 - Phi).
    Each estimate must lie within 5 standard errors of the expected value."""
    x = torch.linspace(-1.5, 1.5, 7).reshape(1, 7)
    s, n = 0.8, 4000
    phi = 0.5 * (1 + torch.erf(x / (s * math.sqrt(2))))
    nt = attrkit.NoiseTunnel(attrkit.Saliency(SumOfRelus()))
    torch.manual_seed(0)
    for nt_type, expected, variance in (
        ("smoothgrad", phi, phi * (1 - phi)),
        ("smoothgrad_sq", phi, phi * (1 - phi)),
        (
            "vargrad",
            phi * (1 - phi),
            phi * (1 - phi) * (1 - 2 * phi) ** 2 + 2 * (phi * (1 - phi)) ** 2,
        ),
    ):
        got = nt.attribute(
            x, nt_type=nt_type, nt_samples=n, nt_samples_batch_size=1000, stdevs=s, abs=False
        )
        standard_error = (variance / n).sqrt() + 1e-6
        assert ((got - expected).abs() <= 5 * standard_error).all(), nt_type


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_noise_tunnel_without_noise_is_the_method(method, dtype):
    case = next(c for c in ALL_CASES if c.id == "inception-style")
    model, (x,) = case.build(dtype), case.inputs(dtype)
    plain = getattr(attrkit, method)(model).attribute(x, target=1)
    nt = attrkit.NoiseTunnel(getattr(attrkit, method)(model))
    torch.testing.assert_close(nt.attribute(x, nt_samples=3, stdevs=0.0, target=1), plain)
    torch.testing.assert_close(
        nt.attribute(x, nt_type="vargrad", nt_samples=3, stdevs=0.0, target=1),
        torch.zeros_like(plain),
    )
    assert RULE_OF[method]


class IgnoresSecondInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)

    def forward(self, x, unused):
        return torch.relu(self.fc(x))


@pytest.mark.parametrize("cls", ["Saliency", "InputXGradient", "IntegratedGradients"])
def test_input_that_does_not_reach_the_output_gets_zeros_where_captum_raises(cls):
    model = IgnoresSecondInput()
    x, unused = torch.randn(2, 3), torch.randn(2, 4)
    ours = getattr(attrkit, cls)(model).attribute((x, unused), target=0)
    assert torch.equal(ours[1], torch.zeros_like(unused))
    theirs = getattr(captum.attr, cls)(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns on every call
        with pytest.raises(RuntimeError, match="not have been used in the graph"):
            theirs.attribute((x.clone(), unused.clone()), target=0)


class RecordsBatchSizes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)
        self.sizes: list[int] = []

    def forward(self, x):
        self.sizes.append(x.shape[0])
        return torch.tanh(self.fc(x))


@pytest.mark.parametrize("internal_batch_size", [1, 2, 5, 7, 40])
def test_internal_batch_size_bounds_every_forward_pass(internal_batch_size):
    """Every forward pass gets at most internal_batch_size rows (also fewer than the
    batch), and the result does not depend on the chunking."""
    model = RecordsBatchSizes()
    x = torch.randn(4, 3)
    whole = attrkit.IntegratedGradients(model).attribute(x, target=1, n_steps=10)
    model.sizes.clear()
    chunked = attrkit.IntegratedGradients(model).attribute(
        x, target=1, n_steps=10, internal_batch_size=internal_batch_size
    )
    assert max(model.sizes) <= internal_batch_size
    assert sum(model.sizes) == 4 * 10
    torch.testing.assert_close(chunked, whole)

"""Integrated Gradients (attrkit/methods/integrated_gradients.py and quadrature.py), beyond
the shared tester's parity with Captum (tests/methods/test_shared.py):

- the definition on every model case (a quadrature of reference gradients written out in
  tests/reference.py), also where Captum crashes;
- every target form through the expansion of the batch into path points, chunked across
  examples (``internal_batch_size``), against Captum;
- closed forms (linear models), completeness tightening with ``n_steps``, the
  trapezoid rule where Captum deviates, chunking, option errors and regressions.
"""

from __future__ import annotations

import warnings

import captum.attr
import numpy as np
import pytest
import torch
from torch import nn

import attrkit
from tests import models
from tests.cases import ALL_CASES, DTYPES, OUTPUT_SHAPE_CASES, MethodSpec, target_forms
from tests.helpers import as_tuple, assert_all_close, captum_attribute
from tests.models import BATCH, IMAGE, FuzzNet
from tests.reference import quadrature, reference_attribution
from tests.tester import covering, dtype_id

IG = MethodSpec("integrated-gradients", "IntegratedGradients", {"n_steps": 4})


@pytest.mark.parametrize(
    ("case", "target", "dtype"),
    [
        pytest.param(case, value, dtype, id=f"{case.id}-{form}-{dtype_id(dtype)}")
        for _, case, dtype, form, value in covering((IG, case) for case in ALL_CASES)
    ],
)
def test_matches_definition(case, target, dtype):
    """A Gauss-Legendre sum of reference gradients along the straight path from zero, on
    every model case (Captum crashes on the in-place ReLUs applied to the input)."""
    inputs, extra = case.inputs(dtype), case.extra_tuple(dtype)
    integral = [torch.zeros_like(x) for x in inputs]
    for point, weight in quadrature("gausslegendre", 4):
        path_grads = reference_attribution(
            case.build_reference(dtype), tuple(x * point for x in inputs), target, extra, None
        )
        for total, g in zip(integral, path_grads, strict=True):
            total += weight * g
    ig = attrkit.IntegratedGradients(case.build(dtype)).attribute(
        case.attribute_inputs(inputs),
        target=target,
        additional_forward_args=case.extra_args(dtype),
        **IG.attribute_kwargs,
    )
    assert_all_close(as_tuple(ig), tuple(x * t for x, t in zip(inputs, integral, strict=True)))


@pytest.mark.parametrize(
    ("case", "target"),
    [
        pytest.param(case, target, id=f"{case.id}-{form}")
        for case in OUTPUT_SHAPE_CASES
        for form, target in target_forms(case.output_shape)
    ],
)
def test_every_target_form_through_the_path_expansion(case, target):
    """Each example's target follows its rows into the expanded batch of path points,
    also when a chunk of ``internal_batch_size`` rows holds parts of several examples."""
    inputs = case.attribute_inputs(case.inputs())
    kwargs = {
        "target": target,
        "additional_forward_args": case.extra_args(),
        "n_steps": 3,
        "internal_batch_size": 4,
    }
    ours = attrkit.IntegratedGradients(case.build()).attribute(inputs, **kwargs)
    theirs = captum_attribute("IntegratedGradients", case.build(), inputs, **kwargs)
    assert_all_close(as_tuple(ours), theirs)


# ------------------------------------------------------------------ closed-form checks


def _linear(out_features: int = 3) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(6, out_features)


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
    """The Captum deviation attrkit fixes (see attrkit/methods/quadrature.py)."""
    model = _linear()
    x = torch.randn(4, 6)
    exact = x * model.weight[1].detach()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum's, on every call
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
def test_completeness_tightens_with_n_steps(method, dtype):
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


# ---------------------------------------------------------------------- option errors

X = torch.randn(3, 5)
MLP = models.FunctionalReluMLP("F.relu")  # output (N, 4)
TwoInputs = models.TwoInputs

OPTION_ERRORS = [
    # (id, call, error, message pattern)
    (
        "ig-method",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, target=0, method="simpson"),
        ValueError,
        r"`method` must be one of riemann_left, .* got 'simpson'",
    ),
    (
        "ig-n-steps-zero",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, target=0, n_steps=0),
        ValueError,
        r"`n_steps` must be an int >= 1 for gausslegendre, got 0",
    ),
    (
        "ig-trapezoid-one-step",
        lambda: attrkit.IntegratedGradients(MLP).attribute(
            X, target=0, n_steps=1, method="riemann_trapezoid"
        ),
        ValueError,
        r"`n_steps` must be an int >= 2 for riemann_trapezoid",
    ),
    (
        "ig-n-steps-float",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, target=0, n_steps=2.5),
        ValueError,
        r"`n_steps` must be an int",
    ),
    (
        "ig-internal-batch-size",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, target=0, internal_batch_size=0),
        ValueError,
        r"`internal_batch_size` must be None or an int >= 1, got 0",
    ),
    (
        "ig-baseline-shape",
        lambda: attrkit.IntegratedGradients(MLP).attribute(
            X, baselines=torch.zeros(2, 5), target=0
        ),
        ValueError,
        r"`baselines` has shape \(2, 5\); it must be a number, or a tensor of the input's shape \(3, 5\) or with a batch of one \(1, 5\)",
    ),
    (
        "ig-baseline-type",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, baselines="zeros", target=0),
        TypeError,
        r"`baselines` must be a number or a tensor, got str",
    ),
    (
        "ig-baselines-count",
        lambda: attrkit.IntegratedGradients(TwoInputs()).attribute((X, X), baselines=(0.0,)),
        ValueError,
        r"`baselines` has 1 entries but `inputs` has 2 tensors",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "pattern"), [pytest.param(*c[1:], id=c[0]) for c in OPTION_ERRORS]
)
def test_bad_option_raises_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
    assert torch._C._len_torch_function_stack() == 0


# ------------------------------------------------------------------------ regressions
# (found by the reliability work: docs/reliability.rst lists them)

MODEL = FuzzNet().eval()
IMAGES = torch.randn(BATCH, *IMAGE, generator=torch.Generator().manual_seed(0))


def test_regression_method_given_an_array_raises_value_error():
    """Was: NumPy's ValueError("The truth value of an array ... is ambiguous")."""
    with pytest.raises(ValueError, match=r"`method` must be one of"):
        attrkit.IntegratedGradients(MODEL).attribute(IMAGES, target=1, method=np.zeros(2))


def test_regression_empty_batch_with_convergence_delta():
    """Was: RuntimeError ("cannot reshape tensor of 0 elements into shape [0, -1]")."""
    attributions, delta = attrkit.IntegratedGradients(MODEL).attribute(
        IMAGES[:0], target=1, n_steps=3, return_convergence_delta=True
    )
    assert attributions.shape == (0, *IMAGE)
    assert delta.shape == (0,)


@pytest.mark.parametrize(
    "baseline",
    [
        pytest.param(torch.zeros(1, *IMAGE, dtype=torch.complex64), id="complex"),
        pytest.param(torch.zeros(1, *IMAGE).to_sparse(), id="sparse"),
        pytest.param(torch.zeros(1, *IMAGE, device="meta"), id="meta"),
    ],
)
def test_regression_baselines_without_real_values_raise_type_error(baseline):
    """Was: a UserWarning ("Casting complex values to real discards the imaginary part"),
    NotImplementedError ("Cannot copy out of meta tensor") or RuntimeError (sparse)."""
    with pytest.raises(TypeError, match=r"`baselines` must be a dense real tensor with values"):
        attrkit.IntegratedGradients(MODEL).attribute(
            IMAGES, baselines=baseline, target=1, n_steps=2
        )

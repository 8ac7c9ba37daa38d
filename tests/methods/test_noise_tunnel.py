"""NoiseTunnel (attrkit/methods/noise_tunnel.py), beyond the shared tester's parity with
Captum (tests/methods/test_shared.py):

- its expected values for a ReLU (smoothgrad, smoothgrad_sq, vargrad) within their
  standard errors;
- without noise it is the method it wraps, for every registered method it can wrap;
- every target form through its per-example expansion of the target into the noisy
  batch, against Captum's NoiseTunnel with the same noise;
- option errors and regressions.
"""

from __future__ import annotations

import math
import warnings

import captum.attr
import numpy as np
import pytest
import torch
from torch import nn

import attrkit
from attrkit.methods.perturbation import patch_arguments
from tests import models
from tests.cases import ALL_CASES, DTYPES, OUTPUT_SHAPE_CASES, target_forms
from tests.helpers import as_tuple, assert_all_close, baseline_distribution, fresh
from tests.models import BATCH, IMAGE, FuzzNet
from tests.tester import (
    QUICK_OPTIONS,
    draws_more_than_noise,
    info,
    method_params,
    needs_layer,
    quick_options,
    wraps_a_method,
)


class SumOfRelus(nn.Module):
    def forward(self, x):
        return torch.relu(x).sum(dim=1, keepdim=True)


def test_matches_its_expected_values():
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


#: The registered methods NoiseTunnel wraps by name without constructor arguments (whose
#: result depends on no draw but the noise's).
WRAPPABLE = method_params(
    lambda m: (
        m.takes_target
        and not needs_layer(m)
        and not wraps_a_method(m)
        and not draws_more_than_noise(m)
    )
)


@pytest.mark.parametrize("base", WRAPPABLE)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_without_noise_is_the_method_it_wraps(base, dtype):
    case = next(c for c in ALL_CASES if c.id == "inception-style")
    model, (x,) = case.build(dtype), case.inputs(dtype)
    options = {**quick_options(base), "target": 1}
    # A perturbation method perturbs 2 x 2 patches (exact Shapley values: 4 features).
    options.update(patch_arguments(info(base), tuple(x.shape[1:]), patches=2))
    if "baselines" in info(base).required_arguments:
        options["baselines"] = baseline_distribution(x)  # a distribution, passed on as given
    plain = attrkit.create(base, model).attribute(x, **options)
    nt = attrkit.create("noise_tunnel", model, base_method=base)
    torch.testing.assert_close(nt.attribute(x, nt_samples=3, stdevs=0.0, **options), plain)
    torch.testing.assert_close(
        nt.attribute(x, nt_type="vargrad", nt_samples=3, stdevs=0.0, **options),
        torch.zeros_like(plain),
    )


@pytest.mark.parametrize(
    ("case", "target"),
    [
        pytest.param(case, target, id=f"{case.id}-{form}")
        for case in OUTPUT_SHAPE_CASES
        for form, target in target_forms(case.output_shape)
    ],
)
def test_every_target_form_through_the_noisy_batch(case, target):
    """Each example's target follows its noisy copies (batched two samples at a time, so
    that a batch holds copies of different examples): equal to Captum's NoiseTunnel with
    the same noise."""
    kwargs = {
        "target": target,
        "additional_forward_args": case.extra_args(),
        "nt_samples": 3,
        "nt_samples_batch_size": 2,
        "stdevs": QUICK_OPTIONS["stdevs"],
    }
    results = []
    for library in (attrkit, captum.attr):
        inputs = case.attribute_inputs(fresh(case.inputs()))
        method = library.NoiseTunnel(library.Saliency(case.build()))
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Captum's, on every call
            results.append(as_tuple(method.attribute(inputs, **kwargs)))
    assert_all_close(*results)


# ---------------------------------------------------------------------- option errors

X = torch.randn(3, 5)
MLP = models.FunctionalReluMLP("F.relu")  # output (N, 4)
TwoInputs = models.TwoInputs

OPTION_ERRORS = [
    # (id, call, error, message pattern)
    (
        "nt-type",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, nt_type="smooth", target=0),
        ValueError,
        r"`nt_type` must be one of smoothgrad, smoothgrad_sq, vargrad; got 'smooth'",
    ),
    (
        "nt-samples",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, nt_samples=0, target=0),
        ValueError,
        r"`nt_samples` must be an int >= 1, got 0",
    ),
    (
        "nt-batch-size",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(
            X, nt_samples_batch_size=-1, target=0
        ),
        ValueError,
        r"`nt_samples_batch_size` must be an int >= 1, got -1",
    ),
    (
        "nt-stdevs-negative",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, stdevs=-0.1, target=0),
        ValueError,
        r"`stdevs` must be >= 0, got -0.1",
    ),
    (
        "nt-stdevs-count",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(TwoInputs())).attribute((X, X), stdevs=(0.1,)),
        ValueError,
        r"`stdevs` has 1 entries but `inputs` has 2 tensors",
    ),
    (
        "nt-stdevs-type",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, stdevs="big", target=0),
        TypeError,
        r"`stdevs` must be a number or a tuple of numbers, got 'big'",
    ),
    (
        "nt-delta-unsupported",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(
            X, target=0, return_convergence_delta=True
        ),
        ValueError,
        r"`return_convergence_delta`: Saliency has no convergence delta",
    ),
    (
        "nt-draw-baselines-without-baselines",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(
            X, target=0, draw_baseline_from_distrib=True
        ),
        ValueError,
        r"`draw_baseline_from_distrib` needs `baselines`",
    ),
    (
        "nt-target-checked-first",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, target=[0, 1]),
        ValueError,
        r"`target` has 2 entries but the batch has 3",
    ),
    (
        "nt-wraps-non-method",
        lambda: attrkit.NoiseTunnel(MLP),
        TypeError,
        r"`attribution_method` must be an attribution method such as attrkit\.Saliency\(model\), got FunctionalReluMLP",
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


def test_regression_nt_type_given_an_array_raises_value_error():
    """Was: NumPy's ValueError("The truth value of an array ... is ambiguous")."""
    with pytest.raises(ValueError, match=r"`nt_type` must be one of"):
        attrkit.NoiseTunnel(attrkit.Saliency(MODEL)).attribute(
            IMAGES, target=1, nt_type=np.zeros(2)
        )


@pytest.mark.parametrize(
    ("base_method", "error", "pattern"),
    [
        pytest.param(
            None, TypeError, r"`base_method` must be a method name \(str\), got NoneType", id="none"
        ),
        pytest.param(
            "nope",
            attrkit.UnknownMethodError,
            r"`base_method`: no attribution method named 'nope'",
            id="unknown",
        ),
    ],
)
def test_regression_noise_tunnel_base_method_is_named_in_errors(base_method, error, pattern):
    """Was: "`method` must be a method name" (an argument the caller never passed)."""
    with pytest.raises(error, match=pattern):
        attrkit.create("noise_tunnel", MODEL, base_method=base_method)


@pytest.mark.parametrize("stdevs", [math.nan, math.inf, (0.1, math.nan)])
def test_regression_noise_tunnel_non_finite_stdevs_raise_value_error(stdevs):
    """Was: accepted; the noise, and so the result, was NaN or infinite garbage."""
    model = nn.Sequential(nn.Linear(3, 2))
    inputs = torch.randn(2, 3) if not isinstance(stdevs, tuple) else (torch.randn(2, 3),) * 2
    if isinstance(stdevs, tuple):
        model = models.TwoInputs()
    with pytest.raises(
        ValueError, match=r"`stdevs` must be finite, got nan|`stdevs` must be finite, got inf"
    ):
        attrkit.NoiseTunnel(attrkit.Saliency(model)).attribute(inputs, target=0, stdevs=stdevs)

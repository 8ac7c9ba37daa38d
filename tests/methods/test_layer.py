"""The layer methods' own options, errors and regressions (their parity with Captum is in
test_parity_captum.py, via tests/cases.py's METHOD_SPECS).

References are independent of attrkit's code: the model split at the layer by hand
(``head(body(x))``), torch.autograd on the split, NumPy's Gauss-Legendre rule, and
properties of the definitions (completeness, integrated gradients of a layer that passes
its input on unchanged equal integrated gradients of the input).
"""

from __future__ import annotations

import captum.attr
import numpy as np
import pytest
import torch
from torch import nn

import attrkit
from attrkit.core.errors import ArgumentValueError


class Split(nn.Module):
    """``head(body(x))``: the layer under study is ``body``'s output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 5), nn.Tanh())
        self.head = nn.Sequential(nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class TwoBranches(nn.Module):
    """Two layers that do not feed each other, and one that feeds the output of both."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.left = nn.Linear(3, 4)
        self.right = nn.Linear(2, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.left(a)) * torch.sigmoid(self.right(b)))


MODEL = Split().eval()
X = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))


def _layer_gradient(x: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The target's gradient with respect to the layer, and the layer's value."""
    hidden = MODEL.body(x).detach().requires_grad_()
    (grad,) = torch.autograd.grad(MODEL.head(hidden)[:, target].sum(), hidden)
    return grad, hidden.detach()


def test_layer_activation_is_the_layer_value_and_takes_a_list():
    single = attrkit.LayerActivation(MODEL, MODEL.body).attribute(X)
    both = attrkit.LayerActivation(MODEL, [MODEL.body, MODEL.head[1]]).attribute(X)
    torch.testing.assert_close(single, MODEL.body(X))
    assert isinstance(both, list)
    torch.testing.assert_close(both[0], MODEL.body(X))
    torch.testing.assert_close(both[1], MODEL.head[1](MODEL.head[0](MODEL.body(X))))
    assert not single.requires_grad


def test_layer_gradient_x_activation_matches_the_split_model():
    grad, hidden = _layer_gradient(X, target=1)
    ours = attrkit.LayerGradientXActivation(MODEL, MODEL.body).attribute(X, target=1)
    local = attrkit.LayerGradientXActivation(MODEL, MODEL.body, multiply_by_inputs=False)
    torch.testing.assert_close(ours, grad * hidden)
    torch.testing.assert_close(local.attribute(X, target=1), grad)


def test_internal_influence_is_the_gauss_legendre_integral_of_the_layer_gradient():
    points, weights = np.polynomial.legendre.leggauss(6)
    expected = sum(
        0.5 * w * _layer_gradient((0.5 * (1 + p)) * X, target=0)[0]
        for p, w in zip(points, weights, strict=True)
    )
    ours = attrkit.InternalInfluence(MODEL, MODEL.body).attribute(X, target=0, n_steps=6)
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize(
    ("method", "tolerance"),
    # Conductance's sum uses the gradient at the left point of each step: error O(1/n).
    [("LayerConductance", 5e-4), ("LayerIntegratedGradients", 1e-6)],
)
def test_layer_attributions_add_up_to_the_output_difference(method, tolerance):
    """Completeness: every path from the inputs to the output crosses the layer."""
    model = Split().double().eval()
    x, baseline = X.double(), torch.full((1, 4), 0.3, dtype=torch.float64)
    explainer = getattr(attrkit, method)(model, model.body)
    attributions, delta = explainer.attribute(
        x, baselines=baseline, target=1, n_steps=400, method="riemann_trapezoid",
        return_convergence_delta=True,
    )  # fmt: skip
    with torch.no_grad():
        difference = model(x)[:, 1] - model(baseline)[:, 1]
    torch.testing.assert_close(attributions.sum(dim=1), difference, atol=tolerance, rtol=0)
    torch.testing.assert_close(delta, attributions.sum(dim=1) - difference)


def test_layer_conductance_of_one_step_with_the_trapezoid_rule_as_in_captum():
    """``n_steps=1`` evaluates the path at ``n_steps + 1 = 2`` points, enough for every
    rule: the gradient at the baseline times the layer's change (Captum runs it too)."""
    baseline = torch.full((1, 4), 0.3)
    grad, start = _layer_gradient(baseline.expand_as(X), target=1)
    _, end = _layer_gradient(X, target=1)
    options = {"baselines": baseline, "target": 1, "n_steps": 1, "method": "riemann_trapezoid"}
    ours = attrkit.LayerConductance(MODEL, MODEL.body).attribute(X, **options)
    torch.testing.assert_close(ours, grad * (end - start))
    theirs = captum.attr.LayerConductance(MODEL, MODEL.body).attribute(X, **options)
    torch.testing.assert_close(ours, theirs)


def test_layer_ig_of_an_identity_layer_is_the_inputs_ig_bit_for_bit():
    """The same quadrature and summation as IntegratedGradients (Captum's test compares
    them at 1e-7; attrkit's are equal)."""

    class WithIdentity(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input = nn.Identity()
            self.model = MODEL

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(self.input(x))

    model = WithIdentity()
    for options in ({}, {"internal_batch_size": 4, "method": "riemann_left"}):
        ig = attrkit.IntegratedGradients(model).attribute(X, target=1, n_steps=9, **options)
        lig = attrkit.LayerIntegratedGradients(model, model.input).attribute(
            X, target=1, n_steps=9, **options
        )
        assert torch.equal(ig, lig)


def test_layer_ig_of_a_list_of_layers_and_integer_inputs():
    embedding = nn.Embedding(7, 3)
    model = nn.Sequential(embedding, nn.Flatten(), nn.Linear(6, 2))
    tokens = torch.tensor([[1, 2], [3, 6]])
    lig = attrkit.LayerIntegratedGradients(model, embedding)
    attributions, delta = lig.attribute(tokens, target=0, return_convergence_delta=True)
    assert attributions.shape == (2, 2, 3)
    assert delta.abs().max() < 1e-5

    branches = TwoBranches().eval()
    a, b = torch.randn(2, 3), torch.randn(2, 2)
    result, delta = attrkit.LayerIntegratedGradients(
        branches, [branches.left, branches.right]
    ).attribute((a, b), target=1, n_steps=200, return_convergence_delta=True)
    assert isinstance(result, list)
    assert [r.shape for r in result] == [(2, 4), (2, 4)]
    assert delta.abs().max() < 1e-3


def test_layers_of_a_list_are_independent_variables():
    """A layer that feeds another of the list counts only its other paths; the sum over
    the list still adds up to the output's change (Captum's test with an unused layer)."""
    model = Split().double().eval()
    x = X.double()
    lig = attrkit.LayerIntegratedGradients(model, [model.body[0], model.head[0]])
    (first, _), delta = lig.attribute(x, target=0, n_steps=64, return_convergence_delta=True)
    assert torch.count_nonzero(first) == 0  # every path from body[0] crosses head[0]
    assert delta.abs().max() < 1e-6


@pytest.mark.parametrize(
    ("build", "error", "pattern"),
    [
        pytest.param(
            lambda: attrkit.LayerConductance(MODEL, [MODEL.body]),
            TypeError,
            r"`layer`: LayerConductance takes one module, not a list",
            id="list-for-one-layer-method",
        ),
        pytest.param(
            lambda: attrkit.LayerActivation(MODEL, []),
            ValueError,
            r"`layer` is an empty list",
            id="empty-list",
        ),
        pytest.param(
            lambda: attrkit.LayerActivation(MODEL, [MODEL.body, "head"]),
            TypeError,
            r"`layer\[1\]` must be a torch.nn.Module, got str",
            id="list-entry",
        ),
        pytest.param(
            lambda: attrkit.LayerIntegratedGradients(MODEL, [MODEL.body, nn.Linear(2, 2)]),
            ValueError,
            r"`layer\[1\]` \(Linear\) is not a submodule of the model",
            id="list-entry-elsewhere",
        ),
    ],
)
def test_constructor_errors_name_the_argument(build, error, pattern):
    with pytest.raises(error, match=pattern):
        build()


def test_quadrature_errors_are_assertion_errors_as_in_captum():
    explainer = attrkit.LayerConductance(MODEL, MODEL.body)
    with pytest.raises(ArgumentValueError, match=r"`method` must be one of") as info:
        explainer.attribute(X, target=0, method="simpson")
    assert isinstance(info.value, AssertionError)
    with pytest.raises(ValueError, match=r"`n_steps` must be an int >= 1"):
        explainer.attribute(X, target=0, n_steps=0)


def test_grad_kwargs_reach_torch_autograd_grad():
    explainer = attrkit.LayerGradientXActivation(MODEL, MODEL.body)
    plain = explainer.attribute(X, target=0)
    graph = explainer.attribute(X, target=0, grad_kwargs={"create_graph": True})
    torch.testing.assert_close(plain, graph.detach())
    with pytest.raises(TypeError, match=r"`grad_kwargs` has 'inputs'"):
        explainer.attribute(X, target=0, grad_kwargs={"inputs": X})


def test_memory_efficient_returns_the_same_values_on_the_cpu():
    explainer = attrkit.LayerGradientXActivation(MODEL, MODEL.body, memory_efficient=True)
    result = explainer.attribute(X, target=0)
    assert result.device.type == "cpu"
    torch.testing.assert_close(
        result, attrkit.LayerGradientXActivation(MODEL, MODEL.body).attribute(X, target=0)
    )


def test_layer_methods_are_reachable_by_captum_name_with_the_layer_by_position():
    explainer = attrkit.create("LayerConductance", MODEL, MODEL.body)
    assert isinstance(explainer, attrkit.LayerConductance)
    assert explainer.layer is MODEL.body
    by_name = attrkit.create("layer_conductance", MODEL, layer="body")
    assert by_name.layer is MODEL.body
    with pytest.raises(TypeError, match=r"got 'layer' twice"):
        attrkit.create("LayerConductance", MODEL, MODEL.body, layer=MODEL.body)
    with pytest.raises(TypeError, match=r"takes 2 constructor argument\(s\)"):
        attrkit.create("LayerConductance", MODEL, MODEL.body, None, 3)


def test_layer_ig_with_an_in_place_relu_after_the_layer():
    """Captum's crashes (its leaf in place of the layer's output is modified in place)."""
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(inplace=True), nn.Linear(5, 2)).double()
    x = X.double()
    lig = attrkit.LayerIntegratedGradients(model, model[0])
    attributions, delta = lig.attribute(x, target=1, n_steps=300, return_convergence_delta=True)
    assert attributions.shape == (3, 5)
    assert delta.abs().max() < 1e-3
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        captum.attr.LayerIntegratedGradients(model, model[0]).attribute(x, target=1)

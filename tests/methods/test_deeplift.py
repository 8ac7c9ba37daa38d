"""The DeepLift family: DeepLift, DeepLiftShap, GradientShap and their layer and neuron
variants -- Captum's contract, their own options and errors, the variants' definitions,
and where Captum deviates.

Covering design (the shared parity table, ``tests/cases.py`` ``METHOD_SPECS``, runs every
class on every model case where Captum's DeepLift is right, every target form or neuron
selector, float32 and float64): here, every class's signature against Captum's; every
baseline form (none, a number, a tensor per example, one row, a tuple mixing numbers and
tensors, a distribution, a callable with and without parameters) at least once through
each of the three code paths (DeepLift, the Shap average, GradientShap's draws);
``custom_attribution_func`` with one, two and three parameters; the layer and neuron
variants' definitions on random graphs of every nonlinearity (summation to delta at the
layer, for the neuron, for the Shap average); Captum on random graphs where it is right;
and each case where Captum's DeepLift breaks summation to delta.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import captum.attr
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.testing.helpers import basic_models as captum_models
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import Tensor, nn

import attrkit
from attrkit.methods.deeplift import BaselineError
from tests import models
from tests.cases import DEEPLIFT_CLASSES, METHOD_SPECS, neuron_selectors
from tests.helpers import as_tuple, assert_matches_captum, fresh
from tests.reference import select_reference
from tests.strategies import problems

CLASSES = sorted(
    attrkit.method_info(name).cls.__name__
    for name in attrkit.available_methods()
    if attrkit.method_info(name).family == "deeplift"
)
TOLERANCE = 1e-8


def captum_run(cls: str, *args: Any, **kwargs: Any) -> Any:
    """``captum.attr.<cls>(*args).attribute(**kwargs)``, its warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = kwargs.pop("inputs")
        inputs = fresh(inputs) if isinstance(inputs, tuple) else inputs.detach().clone()
        return getattr(captum.attr, cls)(*args).attribute(inputs, **kwargs)


def summation_gap(attributions: Any, change: Tensor) -> Tensor:
    total = sum(a.reshape(len(a), -1).sum(dim=1) for a in as_tuple(attributions))
    return total - change


def model64(factory: Any = models.CaptumDeepLiftSet) -> nn.Module:
    torch.manual_seed(0)
    return factory().double().eval()


def images(batch: int = 3, seed: int = 0) -> Tensor:
    return torch.randn(
        (batch, 2, 6, 6), generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


# ---------------------------------------------------------------------- the contract


def test_the_family_is_registered():
    assert (
        sorted(
            [
                "DeepLift",
                "DeepLiftShap",
                "GradientShap",
                "LayerDeepLift",
                "LayerDeepLiftShap",
                "LayerGradientShap",
                "NeuronDeepLift",
                "NeuronDeepLiftShap",
                "NeuronGradientShap",
            ]
        )
        == CLASSES
    )
    for name in CLASSES:
        assert attrkit.method_info(name).captum_name == name


def _parameters(function: Any) -> list[tuple[str, Any]]:
    return [
        (p.name, p.default)
        for p in inspect.signature(function).parameters.values()
        if p.name not in ("self", "model", "forward_func")
    ]


@pytest.mark.parametrize("cls", CLASSES)
def test_signatures_are_captums(cls):
    ours, theirs = getattr(attrkit, cls), getattr(captum.attr, cls)
    assert _parameters(ours.__init__) == _parameters(theirs.__init__)
    assert _parameters(ours.attribute) == _parameters(theirs.attribute)


@pytest.mark.parametrize("cls", CLASSES)
def test_interop_and_flags_are_captums(cls):
    model = model64()
    layer = (model.conv2,) if cls.startswith(("Layer", "Neuron")) else ()
    ours, theirs = getattr(attrkit, cls)(model, *layer), getattr(captum.attr, cls)(model, *layer)
    for base in (
        captum.attr.Attribution,
        captum.attr.LayerAttribution,
        captum.attr.NeuronAttribution,
    ):
        assert isinstance(ours, base) == isinstance(theirs, base)
    assert ours.has_convergence_delta() == theirs.has_convergence_delta()
    assert ours.multiplies_by_inputs == theirs.multiplies_by_inputs
    with pytest.raises(NotImplementedError):
        ours.attribute_future()


@pytest.mark.parametrize(
    "baselines",
    [
        pytest.param(lambda x: None, id="none"),
        pytest.param(lambda x: 1, id="int"),
        pytest.param(lambda x: -0.5, id="float"),
        pytest.param(lambda x: 0.3 * x.flip(0), id="tensor-per-example"),
        pytest.param(lambda x: x[:1] * 0.7, id="tensor-one-row"),
    ],
)
def test_every_baseline_form_equals_captum(baselines):
    model = model64()
    x = images()
    kwargs = {"baselines": baselines(x), "target": 2, "return_convergence_delta": True}
    ours = attrkit.DeepLift(model).attribute(x, **kwargs)
    assert_matches_captum(ours, captum_run("DeepLift", model, inputs=x, **kwargs), True, {})


def _two_inputs() -> nn.Module:
    return captum_models.BasicModel_MultiLayer_MultiInput().double()


def test_a_tuple_of_baselines_mixing_numbers_and_tensors_equals_captum():
    model = _two_inputs()
    x = tuple(torch.randn(3, 3, dtype=torch.float64) for _ in range(3))
    kwargs = {
        "baselines": (0.5, x[1][:1] * 0.3, torch.zeros(3, 3, dtype=torch.float64)),
        "target": 1,
        "additional_forward_args": (2,),
        "return_convergence_delta": True,
    }
    ours = attrkit.DeepLift(model).attribute(x, **kwargs)
    assert_matches_captum(ours, captum_run("DeepLift", model, inputs=x, **kwargs), True, {})


@pytest.mark.parametrize("parameters", [1, 2, 3])
def test_custom_attribution_func_of_each_arity_equals_captum(parameters):
    functions = {
        1: lambda m: tuple(2 * t for t in m),
        2: lambda m, x: tuple(t * x for t, x in zip(m, x, strict=True)),
        3: lambda m, x, b: tuple(t * (x - b).abs() for t, x, b in zip(m, x, b, strict=True)),
    }
    model, x = model64(), images()
    kwargs = {"baselines": 0.2, "target": 0, "custom_attribution_func": functions[parameters]}
    for cls in ("DeepLift", "DeepLiftShap"):
        if cls == "DeepLiftShap":
            kwargs["baselines"] = images(4, seed=1)
        ours = getattr(attrkit, cls)(model).attribute(x, **kwargs)
        torch.testing.assert_close(ours, captum_run(cls, model, inputs=x, **kwargs))


def test_custom_attribution_func_errors():
    model, x = model64(), images()
    explainer = attrkit.DeepLift(model)
    with pytest.raises(TypeError, match="`custom_attribution_func` must be callable"):
        explainer.attribute(x, target=0, custom_attribution_func="mean")
    with pytest.raises(AssertionError, match="at least one and at most 3"):
        explainer.attribute(x, target=0, custom_attribution_func=lambda a, b, c, d: a)
    with pytest.raises(TypeError, match="must return a tuple of 1 tensor"):
        explainer.attribute(x, target=0, custom_attribution_func=lambda m: m[0])


def test_distribution_baselines_errors_are_assertion_errors_too():
    model, x = model64(), images()
    with pytest.raises(
        BaselineError, match=r"has 1 row\(s\); a baseline distribution needs at least 2"
    ):
        attrkit.DeepLiftShap(model).attribute(x, x[:1], target=0)
    with pytest.raises(AssertionError, match="must be a tensor of reference rows, got float"):
        attrkit.DeepLiftShap(model).attribute(x, 0.5, target=0)
    with pytest.raises(ValueError, match=r"its rows must have the input's shape \(2, 6, 6\)"):
        attrkit.GradientShap(model).attribute(
            x, torch.zeros(4, 6, 6, dtype=torch.float64), target=0
        )
    two = _two_inputs()
    x3 = tuple(torch.randn(2, 3, dtype=torch.float64) for _ in range(3))
    rows = (torch.zeros(3, 3), torch.zeros(4, 3), torch.zeros(3, 3))
    with pytest.raises(BaselineError, match="has 4 rows but `baselines\\[0\\]` has 3"):
        attrkit.DeepLiftShap(two).attribute(x3, rows, target=0, additional_forward_args=(1,))


def test_eps_is_checked_and_can_be_changed():
    model = model64()
    with pytest.raises(ValueError, match="`eps` must be a finite number >= 0, got -1"):
        attrkit.DeepLift(model, eps=-1)
    with pytest.raises(TypeError, match="`eps` must be a number, got bool"):
        attrkit.DeepLift(model, eps=True)
    explainer = attrkit.DeepLift(model)
    explainer.eps = 1e-3
    assert explainer.eps == 1e-3
    assert all(rule.eps == 1e-3 for rule in explainer._rule_set.rules)


@pytest.mark.parametrize("takes_inputs", [False, True])
def test_callable_baselines_equal_captum(takes_inputs):
    model, x = model64(), images()
    if takes_inputs:
        baselines = lambda inputs: torch.stack([inputs[0] * 0.5, inputs[1] * -1.0])  # noqa: E731
    else:
        baselines = lambda: images(3, seed=5)  # noqa: E731
    for cls in ("DeepLiftShap", "GradientShap"):
        kwargs = {"target": 1, "return_convergence_delta": True}
        np.random.seed(0)
        ours = getattr(attrkit, cls)(model).attribute(x, baselines, **kwargs)
        np.random.seed(0)
        theirs = captum_run(cls, model, inputs=x, baselines=baselines, **kwargs)
        assert_matches_captum(ours, theirs, True, {})


def test_layer_with_several_output_tensors_returns_a_tuple_as_captum():
    model = captum_models.BasicModel_MultiLayer(multi_input_module=True).double()
    x = torch.randn(3, 3, dtype=torch.float64)
    for cls, baselines in (
        ("LayerDeepLift", 0.1),
        ("LayerDeepLiftShap", torch.randn(4, 3, dtype=torch.float64)),
    ):
        kwargs = {"baselines": baselines, "target": 0, "return_convergence_delta": True}
        ours = getattr(attrkit, cls)(model, model.multi_relu).attribute(x, **kwargs)
        theirs = captum_run(cls, model, model.multi_relu, inputs=x, **kwargs)
        assert isinstance(ours[0], tuple)
        assert_matches_captum(ours, theirs, True, {})


# ------------------------------------------------------------- GradientShap's draws


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_shap_makes_captums_draws(dtype):
    """The same result, and the generators left in the same state, from the same seeds:
    two input tensors, a number as the second baseline, noise per input."""
    model = _two_inputs().to(dtype)
    x = tuple(torch.randn(3, 3, dtype=dtype) for _ in range(3))
    kwargs = {
        "baselines": (torch.randn(5, 3, dtype=dtype), 0.25, torch.randn(2, 3, dtype=dtype)),
        "n_samples": 4,
        "stdevs": (0.1, 0.0, 0.3),
        "target": 1,
        "additional_forward_args": (1,),
        "return_convergence_delta": True,
    }
    results, states = [], []
    for run in (lambda: attrkit.GradientShap(model).attribute(fresh(x), **kwargs),
                lambda: captum_run("GradientShap", model, inputs=x, **kwargs)):  # fmt: skip
        np.random.seed(3)
        torch.manual_seed(3)
        results.append(run())
        states.append((np.random.get_state()[1].copy(), torch.get_rng_state()))
    assert_matches_captum(*results, True, {})
    assert np.array_equal(states[0][0], states[1][0])
    assert torch.equal(states[0][1], states[1][1])


def test_gradient_shap_advances_the_generators_for_a_plain_function():
    """A function model (which may draw numbers itself) gets its draws restored, but the
    method's own draws stay drawn: two calls differ, as Captum's do."""
    weights = torch.randn(4, 2)
    function = lambda t: torch.tanh(t @ weights)  # noqa: E731
    x, background = torch.randn(3, 4), torch.randn(6, 4)
    explainer = attrkit.GradientShap(function)
    first = explainer.attribute(x, background, stdevs=0.5, target=1)
    second = explainer.attribute(x, background, stdevs=0.5, target=1)
    assert not torch.equal(first, second)


@pytest.mark.parametrize(
    ("cls", "to_input"),
    [
        ("LayerGradientShap", False),
        ("LayerGradientShap", True),
        ("NeuronGradientShap", False),
        ("NeuronGradientShap", True),
    ],
)
def test_layer_and_neuron_gradient_shap_make_captums_draws(cls, to_input):
    model, x = model64(), images()
    kwargs = {"baselines": images(4, seed=1), "n_samples": 3, "stdevs": 0.2}
    if cls == "LayerGradientShap":
        kwargs |= {"target": 2, "return_convergence_delta": True}
        kwargs |= {"attribute_to_layer_input": to_input}
    else:
        kwargs |= {"neuron_selector": (1, 0, 2), "attribute_to_neuron_input": to_input}
    results = []
    for library in (attrkit, captum.attr):
        np.random.seed(0)
        torch.manual_seed(0)
        explainer = getattr(library, cls)(model, model.conv2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append(explainer.attribute(x.clone(), **kwargs))
    assert_matches_captum(*results, cls == "LayerGradientShap", {})


# ----------------------------------------------------------- the variants' definitions


def _plain_change(
    model: nn.Module, inputs: tuple[Tensor, ...], baselines: tuple[Tensor, ...], target: Any
) -> Tensor:
    with torch.no_grad():
        return select_reference(model(*inputs), target) - select_reference(
            model(*baselines), target
        )


def _given(tensors: tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
    return tensors[0] if len(tensors) == 1 else tensors


@given(problem=problems(dtype=torch.float64, side_input=False), data=st.data())
def test_layer_deep_lift_sums_to_delta_at_a_cut(problem, data):
    """At a layer every path from the input to the output runs through."""
    model = problem.graph.build()
    assume(model.cut_layer_names())
    layer = model.get_submodule(data.draw(st.sampled_from(model.cut_layer_names()), label="layer"))
    to_input = data.draw(st.booleans(), label="attribute_to_layer_input")
    inputs, baselines = problem.inputs(), problem.baselines()
    attributions = attrkit.LayerDeepLift(model, layer).attribute(
        _given(inputs), _given(baselines), target=problem.target, attribute_to_layer_input=to_input
    )
    change = _plain_change(model, inputs, baselines, problem.target)
    assert summation_gap(attributions, change).abs().max() <= TOLERANCE


@given(problem=problems(dtype=torch.float64, side_input=False), data=st.data())
def test_neuron_deep_lift_sums_to_the_neurons_change(problem, data):
    model = problem.graph.build()
    assume(model.layer_names())
    name = data.draw(st.sampled_from(model.layer_names()), label="layer")
    inputs, baselines = problem.inputs(), problem.baselines()
    shape = model.layer_tensor(name, inputs, False).shape[1:]
    _, selector = data.draw(st.sampled_from(neuron_selectors(tuple(shape))), label="selector")
    attributions = attrkit.NeuronDeepLift(model, model.get_submodule(name)).attribute(
        _given(inputs), selector, _given(baselines)
    )

    def neuron(tensors: tuple[Tensor, ...]) -> Tensor:
        value = model.layer_tensor(name, tensors, False)
        if callable(selector):
            return selector(value)
        index = selector if isinstance(selector, tuple) else (selector,)
        return value[(slice(None), *index)].reshape(len(value), -1).sum(dim=1)

    assert summation_gap(attributions, neuron(inputs) - neuron(baselines)).abs().max() <= TOLERANCE


@given(
    problem=problems(dtype=torch.float64, side_input=False),
    rows=st.integers(2, 4),
    layer=st.booleans(),
)
def test_deep_lift_shap_sums_to_the_change_from_the_mean_baseline_output(problem, rows, layer):
    """Each example's attributions add up to ``F(x) - mean over baselines of F(b)``."""
    model = problem.graph.build()
    assume(not layer or model.cut_layer_names())
    inputs = problem.inputs()
    background = problem.graph.inputs(rows, torch.float64, problem.input_seed + 7)
    if layer:
        explainer = attrkit.LayerDeepLiftShap(
            model, model.get_submodule(model.cut_layer_names()[0])
        )
    else:
        explainer = attrkit.DeepLiftShap(model)
    target = problem.target
    attributions = explainer.attribute(_given(inputs), _given(background), target=target)
    with torch.no_grad():
        output = select_reference(model(*inputs), target)
        mean_reference = model(*background).reshape(rows, *model(*inputs).shape[1:]).mean(0)
        expanded = mean_reference.expand(problem.batch, *mean_reference.shape)
        change = output - select_reference(expanded, target)
    assert summation_gap(attributions, change).abs().max() <= TOLERANCE


class _ConvThenInplaceRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(108, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.relu(self.conv(x)).flatten(1))


def test_layer_variants_see_the_layer_output_before_an_in_place_activation():
    model, x = model64(_ConvThenInplaceRelu), images()
    baseline = images(seed=1)
    explainer = attrkit.LayerDeepLift(model, model.conv)
    attributions = explainer.attribute(x, baseline, target=1)
    multipliers = attrkit.LayerDeepLift(model, model.conv, multiply_by_inputs=False).attribute(
        x, baseline, target=1
    )
    with torch.no_grad():
        difference = model.conv(x) - model.conv(baseline)  # before the ReLU
    assert (difference < 0).any()
    torch.testing.assert_close(attributions, difference * multipliers)
    change = _plain_change(model, (x,), (baseline,), 1)
    assert summation_gap(attributions, change).abs().max() <= TOLERANCE


# ------------------------------------------------------------ Captum, where it is right

DEEPLIFT_SPECS = [pytest.param(s, id=s.id) for s in METHOD_SPECS if s.cls in DEEPLIFT_CLASSES]


@pytest.mark.parametrize("spec", DEEPLIFT_SPECS)
@given(problem=problems(parity=True, side_input=False), data=st.data())
def test_matches_captum_on_random_graphs_where_captum_is_right(spec, problem, data):
    model = problem.graph.build(problem.dtype)
    layer = None
    if spec.layer:
        assume(model.layer_names())
        layer = data.draw(st.sampled_from(model.layer_names()), label="layer")
    selection = problem.target
    if spec.neuron:
        to_input = spec.attribute_kwargs.get("attribute_to_neuron_input", False)
        shape = model.layer_tensor(layer, problem.inputs(), to_input).shape[1:]
        selection = data.draw(st.sampled_from(neuron_selectors(tuple(shape))), label="selector")[1]
    results = [
        spec.attribute(
            library,
            model,
            layer,
            _given(fresh(problem.inputs())),
            selection,
            **spec.kwargs(problem.dtype),
        )
        for library in (attrkit, captum.attr)
    ]
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if problem.dtype == torch.float32 else {}
    assert_matches_captum(
        *results, bool(spec.attribute_kwargs.get("return_convergence_delta")), tolerance
    )


# ------------------------------------------------------------ where Captum is wrong


class _Mlp(nn.Module):
    def __init__(self, first: Any, second: Any = None) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.first, self.second = first, second if second is not None else first

    def forward(self, x: Tensor) -> Tensor:
        return self.c(self.second(self.b(self.first(self.a(x)))))


class _InputUsedElsewhere(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.relu, self.b = nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        z = self.a(x)
        return self.b(self.relu(z) + z)


CAPTUM_WRONG = [
    pytest.param(lambda: _Mlp(F.relu), (5,), id="functional-relu"),
    pytest.param(lambda: _Mlp(torch.sigmoid), (5,), id="torch-sigmoid"),
    pytest.param(lambda: _Mlp(nn.GELU(), nn.SiLU()), (5,), id="gelu-silu-modules"),
    pytest.param(lambda: _Mlp(nn.ReLU6(), nn.Hardswish()), (5,), id="relu6-hardswish-modules"),
    pytest.param(lambda: _Mlp(nn.Mish()), (5,), id="mish-module"),
    pytest.param(
        lambda: nn.Sequential(
            nn.Conv1d(1, 2, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(8, 3)
        ),
        (1, 10),
        id="relu-then-max-pool",
    ),
    pytest.param(
        lambda: nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Sigmoid(), nn.Linear(8, 3)),
        (5,),
        id="tanh-then-sigmoid",
    ),
    pytest.param(lambda: captum_models.BasicModel_MaxPool_ReLU(), (4, 3), id="captum-maxpool-relu"),
    pytest.param(
        lambda: nn.Sequential(
            nn.Conv1d(1, 2, 3), nn.MaxPool1d(3, 1), nn.Flatten(), nn.Linear(12, 3)
        ),
        (1, 10),
        id="overlapping-max-pool",
    ),
    pytest.param(_InputUsedElsewhere, (5,), id="relu-input-used-elsewhere"),
    pytest.param(lambda: F.max_pool1d, None, id="functional-max-pool"),
]


def _target(model: nn.Module, x: Tensor) -> Any:
    with torch.no_grad():
        return 0 if model(x).dim() > 1 else None


@pytest.mark.parametrize(("factory", "shape"), CAPTUM_WRONG)
def test_captum_deeplift_deviates_where_documented(factory, shape):
    """attrkit sums to delta; Captum 0.9.0 misses it by far more than rounding."""
    torch.manual_seed(0)
    if shape is None:  # a function model
        model = lambda t: F.max_pool1d(torch.tanh(t), 2).sum(dim=(1, 2))  # noqa: E731
        x = torch.randn(3, 1, 8, dtype=torch.float64)
        model_for_captum = _FunctionModule(model)
    else:
        model = model_for_captum = factory().double().eval()
        x = torch.randn((3, *shape), dtype=torch.float64)
    baseline = torch.randn_like(x)
    target = _target(model_for_captum, x)
    change = _plain_change(model_for_captum, (x,), (baseline,), target)
    ours = attrkit.DeepLift(model).attribute(x, baseline, target=target)
    assert summation_gap(ours, change).abs().max() <= TOLERANCE
    theirs = captum_run("DeepLift", model_for_captum, inputs=x, baselines=baseline, target=target)
    assert summation_gap(theirs, change).abs().max() > 1e-6  # rounding: 1e-16


class _FunctionModule(nn.Module):
    """A module around a function, for Captum's DeepLift (which hooks the model)."""

    def __init__(self, function: Any) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: Tensor) -> Tensor:
        return self.function(x)


def test_captum_raises_on_a_reused_module():
    model = model64(lambda: _Mlp(nn.ReLU()))
    x = torch.randn(3, 5, dtype=torch.float64)
    ours = attrkit.DeepLift(model).attribute(x, target=1)
    assert (
        summation_gap(ours, _plain_change(model, (x,), (torch.zeros_like(x),), 1)).abs().max()
        <= TOLERANCE
    )
    with pytest.raises(RuntimeError, match="used more than once"):
        captum_run("DeepLift", model, inputs=x, target=1)


def test_captum_softmax_rule_mixes_the_examples_of_a_batch():
    """Captum subtracts one mean over the whole batch: an example's attributions change
    with the other examples; at a batch of one the two agree."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)).double()
    x, baseline = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    ours = attrkit.DeepLift(model).attribute(x, baseline, target=1)
    theirs = captum_run("DeepLift", model, inputs=x, baselines=baseline, target=1)
    assert (ours - theirs).abs().max() > 1e-3
    for i in range(3):
        alone = captum_run(
            "DeepLift", model, inputs=x[i : i + 1], baselines=baseline[i : i + 1], target=1
        )
        torch.testing.assert_close(ours[i : i + 1], alone)

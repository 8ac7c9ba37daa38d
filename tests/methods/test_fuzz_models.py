"""Property-based tests on random models (graphs of ``RELU_OPS``, ``tests/strategies.py``):

(a) every method equals the definition-based reference (``tests/reference.py``) on any
    graph: functional, reused, in-place and created-in-forward ReLUs, skips, branches;
(b) every method equals Captum wherever Captum follows the definition: ReLU-rule methods
    on graphs whose ReLUs are distinct single-use ``nn.ReLU`` modules, plain-gradient
    methods on any graph without an in-place ReLU on the input (where Captum crashes);
(c) a result never depends on the thread or on the calls made before it.

Hypothesis profiles (``tests/conftest.py``): ``ci`` by default; ``ATTRKIT_FUZZ_PROFILE=long``
for the developers' run (docs/reliability.rst).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import captum.attr
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, event, given
from hypothesis import strategies as st
from torch import Tensor

import attrkit
from attrkit.methods.grad_cam import GradCamResizeWarning
from tests.cases import (
    METHOD_SPECS,
    MethodSpec,
    neuron_selectors,
    target_forms,
)
from tests.helpers import (
    as_tuple,
    assert_all_close,
    assert_matches_captum,
    differs,
    fresh,
    run_in_thread,
)
from tests.reference import (
    quadrature,
    reference_attribution,
    reference_grad_cam,
    reference_layer,
    reference_lrp,
    reference_neuron_attribution,
    reference_neuron_conductance,
)
from tests.strategies import RELU_OPS, Branch, GraphModel, Problem, problems
from tests.tester import (
    BASE_METHOD,
    QUICK_OPTIONS,
    definition_kind,
    methods,
    needs_layer,
    one_gradient,
    quick_call,
    quick_callable,
    reference_rule,
    takes_neuron_selector,
    wraps_a_method,
)

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

#: The graphs of (a) and (c): ReLU in every spelling, in place on the input too, and
#: branches joined by a product.
RELU_GRAPHS: dict[str, Any] = {"ops": RELU_OPS, "inplace_on_input": True, "gates": True}

# --------------------------------------------------------------------------- helpers


def twin(problem: Problem) -> GraphModel:
    """The reference's copy of the model (same weights, spellings it can patch)."""
    return problem.graph.reference_twin().build(problem.dtype)


def reference(problem: Problem, inputs: tuple[Tensor, ...], rule: str | None) -> tuple[Tensor, ...]:
    return reference_attribution(twin(problem), inputs, problem.target, (), rule)


def draw_layer(
    data: st.DataObject,
    model: GraphModel,
    spatial_only: bool = False,
    names: list[str] | None = None,
) -> str:
    names = model.layer_names(spatial_only) if names is None else names
    assume(names)
    return data.draw(st.sampled_from(names), label="layer")


def draw_selector(
    data: st.DataObject,
    model: GraphModel,
    layer: str,
    inputs: tuple[Tensor, ...],
    to_input: bool,
    only: tuple[str, ...] = (),
) -> Any:
    """A neuron selector of ``layer``'s tensor in one of the forms of ``neuron_selectors``
    (of the forms named in ``only``, when given)."""
    forms = neuron_selectors(model.layer_shape(layer, inputs, to_input))
    forms = [f for f in forms if not only or f[0] in only]
    form, selector = data.draw(st.sampled_from(forms), label="neuron_selector form")
    event(f"neuron_selector: {form}")
    return selector


# ------------------------------------------------- (a) the definition-based reference
# One check per registered method: it draws the method's options, runs attrkit and
# compares with an expectation built from tests/reference.py only.

Check = Callable[[Problem, st.DataObject], None]


def _run(problem: Problem, name: str, init: dict[str, Any], **kwargs: Any) -> tuple[Tensor, ...]:
    model = problem.graph.build(problem.dtype)
    explainer = attrkit.create(name, model, **init)
    return as_tuple(explainer.attribute(problem.given(problem.inputs()), **kwargs))


def _one_gradient_check(name: str) -> Check:
    """A method made of one gradient (``tester.definition_kind`` "gradient": its rule's,
    or the plain one; ``abs`` drawn where it has that option): ``tester.one_gradient``."""
    method = attrkit.method_info(name)

    def check(problem: Problem, data: st.DataObject) -> None:
        options = {}
        if "abs" in method.attribute_arguments:
            options["abs"] = data.draw(st.booleans(), label="abs")
        ours = _run(problem, name, {}, target=problem.target, **options)
        expected = one_gradient(
            method, twin(problem), problem.inputs(), problem.target, (), options
        )
        assert_all_close(ours, expected)

    return check


def check_integrated_gradients(problem: Problem, data: st.DataObject) -> None:
    method = data.draw(
        st.sampled_from(
            [
                "gausslegendre",
                "riemann_left",
                "riemann_right",
                "riemann_middle",
                "riemann_trapezoid",
            ]
        ),
        label="method",
    )
    n_steps = data.draw(st.integers(2 if method == "riemann_trapezoid" else 1, 4), label="n_steps")
    scale = data.draw(st.sampled_from([None, 0.0, -0.5]), label="baseline")
    multiply = data.draw(st.booleans(), label="multiply_by_inputs")
    chunk = data.draw(st.sampled_from([None, 1, 3]), label="internal_batch_size")
    inputs = problem.inputs()
    baselines = None if scale is None else tuple(scale * x[:1] for x in inputs)
    ours = _run(
        problem,
        "integrated_gradients",
        {"multiply_by_inputs": multiply},
        target=problem.target,
        baselines=None if baselines is None else problem.given(baselines),
        n_steps=n_steps,
        method=method,
        internal_batch_size=chunk,
    )
    starts = tuple(
        torch.zeros_like(x) if baselines is None else b
        for x, b in zip(inputs, baselines or inputs, strict=True)
    )
    paths = tuple(x - s for x, s in zip(inputs, starts, strict=True))
    integral = [torch.zeros_like(x) for x in inputs]
    for point, weight in quadrature(method, n_steps):
        points = tuple(s + point * p for s, p in zip(starts, paths, strict=True))
        for total, g in zip(integral, reference(problem, points, None), strict=True):
            total += weight * g
    expected = tuple(t * p for t, p in zip(integral, paths, strict=True)) if multiply else integral
    assert_all_close(ours, tuple(expected))


def check_noise_tunnel(problem: Problem, data: st.DataObject) -> None:
    """Without noise every copy is the input itself: smoothgrad is the method,
    smoothgrad_sq its square, vargrad zero."""
    base = data.draw(st.sampled_from(ONE_GRADIENT_METHODS), label="base_method")
    nt_type = data.draw(
        st.sampled_from(["smoothgrad", "smoothgrad_sq", "vargrad"]), label="nt_type"
    )
    samples = data.draw(st.integers(1, 3), label="nt_samples")
    chunk = data.draw(st.sampled_from([None, 1, 2]), label="nt_samples_batch_size")
    ours = _run(
        problem,
        "noise_tunnel",
        {"base_method": base},
        target=problem.target,
        nt_type=nt_type,
        nt_samples=samples,
        nt_samples_batch_size=chunk,
        stdevs=0.0,
    )
    plain = one_gradient(attrkit.method_info(base), twin(problem), problem.inputs(), problem.target)
    expected = {
        "smoothgrad": plain,
        "smoothgrad_sq": tuple(a * a for a in plain),
        "vargrad": tuple(torch.zeros_like(a) for a in plain),
    }[nt_type]
    assert_all_close(ours, expected)


def _neuron_check(name: str) -> Check:
    """A neuron of a layer (``tester.definition_kind`` "neuron"), with the method's rule."""
    rule = reference_rule(attrkit.method_info(name))

    def check(problem: Problem, data: st.DataObject) -> None:
        model = problem.graph.build(problem.dtype)
        inputs = problem.inputs()
        layer = draw_layer(data, model)
        to_input = data.draw(st.booleans(), label="attribute_to_neuron_input")
        selector = draw_selector(data, model, layer, inputs, to_input)
        ours = attrkit.create(name, model, layer=layer).attribute(
            problem.given(inputs), neuron_selector=selector, attribute_to_neuron_input=to_input
        )
        reference_model = twin(problem)
        expected = reference_neuron_attribution(
            reference_model,
            inputs,
            reference_model.get_submodule(layer),
            selector,
            (),
            rule,
            to_input,
        )
        assert_all_close(as_tuple(ours), expected)

    return check


def check_neuron_conductance(problem: Problem, data: st.DataObject) -> None:
    """Conductance of the selected neurons for the target, every selector form (several
    neurons: the sum of their conductances), against ``reference_neuron_conductance``."""
    model = problem.graph.build(problem.dtype)
    inputs = problem.inputs()
    layer = draw_layer(data, model)
    to_input = data.draw(st.booleans(), label="attribute_to_neuron_input")
    selector = draw_selector(data, model, layer, inputs, to_input)
    method = data.draw(st.sampled_from(["gausslegendre", "riemann_trapezoid"]), label="method")
    n_steps = data.draw(st.integers(2, 4), label="n_steps")
    scale = data.draw(st.sampled_from([None, -0.5]), label="baseline")
    multiply = data.draw(st.booleans(), label="multiply_by_inputs")
    chunk = data.draw(st.sampled_from([None, 1, 3]), label="internal_batch_size")
    baselines = None if scale is None else tuple(scale * x[:1] for x in inputs)
    ours = _run(
        problem,
        "neuron_conductance",
        {"layer": layer, "multiply_by_inputs": multiply},
        neuron_selector=selector,
        baselines=None if baselines is None else problem.given(baselines),
        target=problem.target,
        n_steps=n_steps,
        method=method,
        internal_batch_size=chunk,
        attribute_to_neuron_input=to_input,
    )
    reference_model = twin(problem)
    expected = reference_neuron_conductance(
        reference_model,
        inputs,
        tuple(
            torch.zeros_like(x) if baselines is None else b.expand_as(x)
            for x, b in zip(inputs, baselines or inputs, strict=True)
        ),
        reference_model.get_submodule(layer),
        selector,
        problem.target,
        method=method,
        n_steps=n_steps,
        to_input=to_input,
        multiply_by_inputs=multiply,
    )
    assert_all_close(ours, expected)


def check_layer_grad_cam(problem: Problem, data: st.DataObject) -> None:
    model = problem.graph.build(problem.dtype)
    layer = draw_layer(data, model)
    inputs = problem.inputs()
    ours = attrkit.LayerGradCam(model, model.get_submodule(layer)).attribute(
        problem.given(inputs), target=problem.target, relu_attributions=True
    )
    reference_model = twin(problem)
    expected = reference_grad_cam(
        reference_model, inputs, reference_model.get_submodule(layer), problem.target, ()
    )
    torch.testing.assert_close(ours, expected)


def check_guided_grad_cam(problem: Problem, data: st.DataObject) -> None:
    model = problem.graph.build(problem.dtype)
    layer = draw_layer(data, model, spatial_only=True)
    inputs = problem.inputs()
    explainer = attrkit.GuidedGradCam(model, model.get_submodule(layer))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = explainer.attribute(problem.given(inputs), target=problem.target)
    flat = [x for x in inputs if x.dim() == 2]  # the side input: nothing to upsample to
    resize = [w for w in caught if issubclass(w.category, GradCamResizeWarning)]
    assert len(resize) == len(flat), [str(w.message) for w in caught]
    assert len(caught) == len(resize)
    reference_model = twin(problem)
    guided = reference(problem, inputs, "guided_backprop")
    cam = reference_grad_cam(
        reference_model, inputs, reference_model.get_submodule(layer), problem.target, ()
    )
    for got, x, g in zip(as_tuple(ours), inputs, guided, strict=True):
        if x.dim() != cam.dim():  # the flat side input: nothing to upsample to
            assert got.numel() == 0
            continue
        torch.testing.assert_close(got, g * F.interpolate(cam, size=x.shape[2:], mode="nearest"))


def multiplies_relevance(problem: Problem) -> bool:
    """Whether the graph multiplies two tensors that both carry relevance (branches
    joined by ``mul``): LRP has no rule for that, and refuses."""
    return any(isinstance(n, Branch) and n.join == "mul" for n in problem.graph.nodes())


def _lrp_check(name: str) -> Check:
    """LRP with Captum's rules (``lrp``; ``layer_lrp`` on a drawn layer's output or
    input): the epsilon rule of ``reference_lrp``, or a refusal where the graph multiplies
    two relevance-carrying tensors."""

    def check(problem: Problem, data: st.DataObject) -> None:
        model = problem.graph.build(problem.dtype)
        inputs = problem.inputs()
        init: dict[str, Any] = {}
        options: dict[str, Any] = {}
        layer = None
        if name == "layer_lrp":
            init["layer"] = layer = draw_layer(data, model)
            options["attribute_to_layer_input"] = data.draw(st.booleans(), label="to input")
        if multiplies_relevance(problem):
            with pytest.raises(attrkit.UnsupportedModelError, match="product of two tensors"):
                _run(problem, name, init, target=problem.target, **options)
            return
        ours = _run(problem, name, init, target=problem.target, **options)
        reference_model = twin(problem)
        expected = reference_lrp(
            reference_model,
            inputs,
            problem.target,
            layer=None if layer is None else reference_model.get_submodule(layer),
            to_input=options.get("attribute_to_layer_input", False),
        )
        assert_all_close(ours, expected)

    return check


def _layer_value_check(times_gradient: bool) -> Check:
    """A layer's value (LayerActivation), or its gradient times its value
    (LayerGradientXActivation), at a drawn layer's output or input:
    ``reference.reference_layer`` on the reference's copy of the model."""

    def check(problem: Problem, data: st.DataObject) -> None:
        model = problem.graph.build(problem.dtype)
        inputs = problem.inputs()
        layer = draw_layer(data, model)
        to_input = data.draw(st.booleans(), label="attribute_to_layer_input")
        name = "layer_gradient_x_activation" if times_gradient else "layer_activation"
        options: dict[str, Any] = {"attribute_to_layer_input": to_input}
        if times_gradient:
            options["target"] = problem.target
        ours = attrkit.create(name, model, layer=layer).attribute(problem.given(inputs), **options)
        reference_model = twin(problem)
        value, grad, _ = reference_layer(
            reference_model, inputs, reference_model.get_submodule(layer), problem.target, to_input
        )
        expected = grad * value if times_gradient else value
        assert_all_close(as_tuple(ours), (expected.detach(),))

    return check


#: The methods whose definition is their own (the others' follows from their metadata:
#: ``derived_check``).
OWN_CHECKS: dict[str, Check] = {
    "integrated_gradients": check_integrated_gradients,
    "noise_tunnel": check_noise_tunnel,
    "layer_grad_cam": check_layer_grad_cam,
    "neuron_conductance": check_neuron_conductance,
    "lrp": _lrp_check("lrp"),
    "layer_lrp": _lrp_check("layer_lrp"),
    "layer_activation": _layer_value_check(times_gradient=False),
    "layer_gradient_x_activation": _layer_value_check(times_gradient=True),
}


def derived_check(name: str) -> Check | None:
    """The check that the method's metadata implies (``tester.definition_kind``)."""
    kind = definition_kind(attrkit.method_info(name))
    if kind == "gradient":
        return _one_gradient_check(name)
    if kind == "neuron":
        return _neuron_check(name)
    if kind == "guided_layer_map":
        return check_guided_grad_cam
    return None


REFERENCE_CHECKS: dict[str, Check] = {
    name: check
    for name in attrkit.available_methods()
    if (check := OWN_CHECKS.get(name) or derived_check(name)) is not None
}
#: The methods a NoiseTunnel wraps here: those made of one gradient.
ONE_GRADIENT_METHODS = methods(lambda m: definition_kind(m) == "gradient")
#: The DeepLift family is checked against its definition on graphs of every nonlinearity
#: (tests/strategies.py's EVERY_OP) in tests/engine/test_deeplift_rules.py and
#: tests/methods/test_deeplift.py.
#: The perturbation family's computation is Captum's own (checked against Captum's classes
#: and their definitions in tests/methods/test_perturbation.py). The other layer and neuron
#: path methods (layer conductance, internal influence, layer and neuron integrated
#: gradients) are checked against the model split at the layer, Gauss-Legendre quadrature
#: and completeness in tests/methods/test_layer.py and tests/methods/test_neuron_paths.py,
#: and against Captum on random models below (their METHOD_SPECS rows).
CHECKED_ELSEWHERE = methods(
    lambda m: (
        m.family in ("deeplift", "perturbation")
        or (m.family == "path" and needs_layer(m) and m.name not in OWN_CHECKS)
    )
)


def test_every_registered_method_has_a_reference_property():
    assert set(REFERENCE_CHECKS) | set(CHECKED_ELSEWHERE) == set(attrkit.available_methods())


def _needed_layer(name: str) -> str:
    """What layer the method's check draws (so that graphs without one are not drawn)."""
    if definition_kind(attrkit.method_info(name)) == "guided_layer_map":
        return "spatial"
    return "any" if "layer" in attrkit.method_info(name).init_arguments else ""


@pytest.mark.parametrize("name", sorted(REFERENCE_CHECKS))
@given(data=st.data())
def test_matches_definition_on_random_models(name, data):
    problem = data.draw(problems(**RELU_GRAPHS, layer=_needed_layer(name)), label="problem")
    event(f"target form: {problem.target_form}")
    for feature in problem.graph.features():
        event(feature)
    REFERENCE_CHECKS[name](problem, data)


# ----------------------------------------------------------------------- (b) Captum


def run_spec(
    library: Any, spec: MethodSpec, problem: Problem, layer: str | None, selection: Any
) -> Any:
    model = problem.graph.build(problem.dtype)
    inputs = problem.given(fresh(problem.inputs()))
    kwargs = spec.kwargs(problem.dtype)
    if spec.also_target:  # (neuron conductance takes both)
        kwargs["target"] = problem.target
    torch.manual_seed(0)  # the same noise for NoiseTunnel
    return spec.attribute(library, model, layer, inputs, selection, **kwargs)


def _captum_problems(spec: MethodSpec) -> st.SearchStrategy[Problem]:
    """Captum's neuron methods raise when an input does not reach the layer (the side
    input joins after every body layer), and its plain-gradient methods crash on an
    in-place ReLU applied to the input: neither is drawn for Captum."""
    return problems(
        RELU_OPS,
        parity=spec.relu_rule is not None,
        gates=True,
        side_input=not spec.neuron,
        layer="any" if spec.layer else "",
    )


# Specs compared on named cases only (LRP: Captum's LRP runs on networks of its supported
# modules, which these graphs are not), or on the cases or targets where Captum runs and
# follows the definition (``case_filter``, a target method's ``forms``: Guided Grad-CAM on
# spatial layers, Captum's crashes after an in-place op or on a scalar output) are left to
# tests/methods/test_parity.py. A neuron method's ``forms`` are its selector forms, drawn
# here (NeuronConductance: one neuron; of several, Captum multiplies the sums, and
# check_neuron_conductance holds attrkit to the definition).
@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, id=s.id)
        for s in METHOD_SPECS
        if s.cases is None and s.case_filter is None and (s.neuron or not s.forms)
    ],
)
@given(data=st.data())
def test_matches_captum_on_random_models(spec, data):
    problem = data.draw(_captum_problems(spec), label="problem")
    model = problem.graph.build(problem.dtype)
    layer = None
    if spec.layer:
        names = model.layer_names()
        if spec.attribute_kwargs.get("attribute_to_layer_input") and not spec.neuron:
            # Captum deviation (test_captum_drops_other_branches_of_a_layer_input below).
            inputs = problem.inputs()
            names = [n for n in names if model.layer_input_depends_on_parameters(n, inputs)]
        layer = draw_layer(data, model, names=names)
    selection = problem.target
    if spec.neuron:
        to_input = spec.attribute_kwargs.get("attribute_to_neuron_input", False)
        selection = draw_selector(data, model, layer, problem.inputs(), to_input, spec.forms)
    ours = run_spec(attrkit, spec, problem, layer, selection)
    theirs = run_spec(captum.attr, spec, problem, layer, selection)
    tolerance = {}
    if problem.dtype == torch.float64 and spec.float64_rtol is not None:
        # Captum rounds the quadrature to float32; on random models with cancelling
        # terms that shows beyond the fixed cases' rtol: compare at float32's rounding
        # (property (a) checks the float64 result against the reference, exactly).
        tolerance = {"rtol": 1.3e-6, "atol": 1e-5}
    delta = bool(spec.attribute_kwargs.get("return_convergence_delta"))
    assert_matches_captum(ours, theirs, delta, tolerance)


class SharedInputBranches(torch.nn.Module):
    """``h`` feeds two parallel layers; ``right`` is the layer under study."""

    def __init__(self, stem: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Linear(3, 3) if stem else torch.nn.Identity()
        self.left, self.right = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.stem(x))
        return self.head(torch.tanh(self.left(h)) * torch.sigmoid(self.right(h)))


@pytest.mark.parametrize("stem", [True, False], ids=["input-needs-grad", "input-needs-no-grad"])
def test_captum_drops_other_branches_of_a_layer_input(stem):
    """Found by the Captum property: Grad-CAM on a layer's input takes the gradient of the
    target with respect to that tensor, through every branch that reads it. attrkit does
    so always; Captum only when the tensor already requires grad (it depends on a
    parameter): otherwise Captum switches on its grad when the layer runs, after the
    other branch has read it, and that branch's gradient is lost."""
    model = SharedInputBranches(stem).eval()
    x = torch.randn(5, 3)
    options = {"target": 1, "attribute_to_layer_input": True}
    ours = attrkit.LayerGradCam(model, model.right).attribute(x, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = captum.attr.LayerGradCam(model, model.right).attribute(x.clone(), **options)
    h = torch.relu(model.stem(x)).detach().requires_grad_()
    out = model.head(torch.tanh(model.left(h)) * torch.sigmoid(model.right(h)))
    (grad,) = torch.autograd.grad(out[:, 1].sum(), h)
    expected = (grad * h).sum(dim=1, keepdim=True).detach()
    torch.testing.assert_close(ours, expected)
    if stem:
        torch.testing.assert_close(theirs.detach(), expected)
    else:
        assert differs((theirs.detach(),), (expected,))


@pytest.mark.parametrize(
    "between",
    [
        pytest.param((), id="adjacent"),
        pytest.param((torch.nn.Identity(),), id="identity"),
        pytest.param((torch.nn.Dropout(),), id="eval-dropout"),
        pytest.param((torch.nn.Flatten(),), id="flatten"),
    ],
)
def test_captum_deconvolution_of_relu_modules_back_to_back(between):
    """Found by the Captum property: where one nn.ReLU module's output goes straight into
    another (distinct, single-use) nn.ReLU module, Captum's Deconvolution passes the plain
    ReLU gradient at one of them; its GuidedBackprop is unaffected (the mask hides it).
    attrkit follows the definition."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 6), torch.nn.ReLU(), *between, torch.nn.ReLU(), torch.nn.Linear(6, 2)
    ).eval()
    x = torch.randn(4, 6)
    expected = {
        rule: reference_attribution(model, (x,), 0, (), rule)
        for rule in ("deconvolution", "guided_backprop")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        captum_deconv = captum.attr.Deconvolution(model).attribute(x.clone(), target=0)
        captum_gbp = captum.attr.GuidedBackprop(model).attribute(x.clone(), target=0)
    assert_all_close(
        (attrkit.Deconvolution(model).attribute(x, target=0),), expected["deconvolution"]
    )
    assert_all_close(
        (attrkit.GuidedBackprop(model).attribute(x, target=0),), expected["guided_backprop"]
    )
    assert differs((captum_deconv,), expected["deconvolution"])
    assert_all_close((captum_gbp,), expected["guided_backprop"])


# ------------------------------------------------ (c) independence of thread and history

#: Small options that keep the multi-pass methods quick.
FAST_OPTIONS = {**QUICK_OPTIONS, "stdevs": 0.2}
#: Methods a NoiseTunnel can wrap without constructor arguments (or a baseline
#: distribution, which NoiseTunnel does not expand).
SIMPLE_METHODS = methods(
    lambda m: (
        quick_callable(m)
        and not needs_layer(m)
        and not wraps_a_method(m)
        and "baselines" not in m.required_arguments
    )
)


@st.composite
def method_calls(draw: st.DrawFn, model: GraphModel, problem: Problem) -> tuple[Any, ...]:
    """(name, constructor arguments, ``attribute`` arguments) of a random valid call of
    any registered method that a quick call can build (not LimeBase nor
    DataLoaderAttribution, which need constructor arguments of their own)."""
    names, simple = methods(quick_callable), SIMPLE_METHODS
    if multiplies_relevance(problem):  # LRP refuses it (see _lrp_check)
        names = [n for n in names if attrkit.method_info(n).family != "lrp"]
        simple = [n for n in simple if attrkit.method_info(n).family != "lrp"]
    names = [n for n in names if not needs_layer(attrkit.method_info(n)) or _layers(model, n)]
    if sum(min(2, x[0].numel()) for x in problem.inputs()) < 2:  # KernelShap needs two
        names = [n for n in names if n != "kernel_shap"]
        simple = [n for n in simple if n != "kernel_shap"]
    name = draw(st.sampled_from(names))
    info = attrkit.method_info(name)
    layer = draw(st.sampled_from(_layers(model, name))) if needs_layer(info) else None
    base = draw(st.sampled_from(simple)) if wraps_a_method(info) else BASE_METHOD
    target = selector = None
    if takes_neuron_selector(info):
        shape = model.layer_shape(layer, problem.inputs(), False)
        selector = draw(st.sampled_from(neuron_selectors(shape)))[1]
    if info.takes_target:  # (neuron conductance takes both)
        target = draw(st.sampled_from(target_forms(problem.graph.output_shape, problem.batch)))[1]
    quick = quick_call(
        name,
        layer=layer,
        target=target,
        neuron_selector=selector,
        base_method=base,
        options=FAST_OPTIONS,
    )
    taken = set(info.attribute_arguments)
    if wraps_a_method(info):
        taken |= set(attrkit.method_info(base).attribute_arguments)
    return name, quick.init, {**quick.kwargs, **_few_features(taken, problem.inputs())}


def _layers(model: GraphModel, name: str) -> list[str]:
    """The layers method ``name`` can be built with: spatial ones for Guided Grad-CAM
    (whose map is upsampled to the inputs)."""
    spatial = definition_kind(attrkit.method_info(name)) == "guided_layer_map"
    return model.layer_names(spatial_only=spatial)


def _few_features(taken: set[str], inputs: tuple[Tensor, ...]) -> dict[str, Any]:
    """Arguments that keep a perturbation method quick on any graph's inputs: a feature
    mask of at most two features per input (exact Shapley values try every ordering of
    the features), and a one-element Occlusion window."""
    arguments: dict[str, Any] = {}
    if "feature_mask" in taken:  # consecutive feature numbers across the inputs
        masks, first = [], 0
        for x in inputs:
            mask = torch.arange(x[0].numel()) % 2 + first
            masks.append(mask.reshape(1, *x.shape[1:]))
            first = int(mask.max()) + 1
        arguments["feature_mask"] = tuple(masks)
    if "sliding_window_shapes" in taken:
        arguments["sliding_window_shapes"] = tuple((1,) * (x.dim() - 1) for x in inputs)
    return arguments


def call(model: GraphModel, problem: Problem, method: tuple[Any, ...]) -> tuple[Tensor, ...]:
    name, init, kwargs = method
    torch.manual_seed(1)  # NoiseTunnel and GradientShap draw from the global generators
    np.random.seed(1)
    with warnings.catch_warnings():
        # Guided Grad-CAM's empty attribution of a flat side input (check_guided_grad_cam)
        warnings.simplefilter("ignore", GradCamResizeWarning)
        result = attrkit.create(name, model, **init).attribute(
            problem.given(problem.inputs()), **kwargs
        )
    return as_tuple(result[0] if kwargs.get("return_convergence_delta") else result)


@given(problem=problems(**RELU_GRAPHS), data=st.data())
def test_result_does_not_depend_on_thread_or_history(problem, data):
    model = problem.graph.build(problem.dtype)
    first = data.draw(method_calls(model, problem), label="first call")
    others = data.draw(st.lists(method_calls(model, problem), min_size=1, max_size=3), label="then")
    before = call(model, problem, first)
    for other in others:
        call(model, problem, other)
    after = run_in_thread(lambda: call(model, problem, first))
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)

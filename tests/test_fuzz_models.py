"""Property-based tests on random models (graphs drawn by ``tests/strategies.py``):

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

import itertools
import warnings
from collections.abc import Callable
from typing import Any

import captum.attr
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, event, given
from hypothesis import strategies as st
from torch import Tensor

import attrkit
from attrkit.methods.grad_cam import GradCamResizeWarning
from tests.cases import METHOD_SPECS, MethodSpec, neuron_selectors, target_forms
from tests.helpers import (
    OWN_METHODS,
    as_tuple,
    assert_all_close,
    assert_matches_captum,
    differs,
    fresh,
    is_neuron_method,
    quick_call,
    run_in_thread,
)
from tests.reference import (
    ONE_GRADIENT_METHODS,
    pick_neuron,
    quadrature,
    reference_attribution,
    reference_grad_cam,
    reference_layer,
    reference_lrp,
    reference_method,
    reference_neuron_attribution,
)
from tests.strategies import Branch, GraphModel, Problem, Relu, problems

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

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
    data: st.DataObject, model: GraphModel, layer: str, inputs: tuple[Tensor, ...], to_input: bool
) -> Any:
    forms = neuron_selectors(model.layer_shape(layer, inputs, to_input))
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


def _simple_check(name: str) -> Check:
    """Deconvolution, guided backpropagation, Saliency (``abs`` drawn) or Input x
    Gradient: ``reference_method``."""

    def check(problem: Problem, data: st.DataObject) -> None:
        options = {"abs": data.draw(st.booleans(), label="abs")} if name == "saliency" else {}
        ours = _run(problem, name, {}, target=problem.target, **options)
        inputs = problem.inputs()
        expected = reference_method(name, twin(problem), inputs, problem.target, **options)
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
    base = data.draw(st.sampled_from(sorted(ONE_GRADIENT_METHODS)), label="base_method")
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
    plain = reference_method(base, twin(problem), problem.inputs(), problem.target)
    expected = {
        "smoothgrad": plain,
        "smoothgrad_sq": tuple(a * a for a in plain),
        "vargrad": tuple(torch.zeros_like(a) for a in plain),
    }[nt_type]
    assert_all_close(ours, expected)


def _neuron_check(name: str, rule: str | None) -> Check:
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
    with warnings.catch_warnings():  # a flat side input: "cannot be resized to"
        warnings.simplefilter("ignore", GradCamResizeWarning)
        ours = attrkit.GuidedGradCam(model, model.get_submodule(layer)).attribute(
            problem.given(inputs), target=problem.target
        )
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


def _path_options(
    data: st.DataObject, problem: Problem
) -> tuple[str, int, tuple[Tensor, ...] | None, tuple[Tensor, ...], tuple[Tensor, ...]]:
    """A quadrature rule, a number of steps, baselines (``None``: zeros) and the path's
    starts and ends."""
    method = data.draw(
        st.sampled_from(["gausslegendre", "riemann_left", "riemann_middle", "riemann_trapezoid"]),
        label="method",
    )
    n_steps = data.draw(st.integers(2, 4), label="n_steps")
    scale = data.draw(st.sampled_from([None, -0.5]), label="baseline")
    inputs = problem.inputs()
    baselines = None if scale is None else tuple(scale * x[:1] for x in inputs)
    starts = tuple(
        torch.zeros_like(x) if baselines is None else b.expand_as(x)
        for x, b in zip(inputs, baselines or inputs, strict=True)
    )
    return method, n_steps, baselines, starts, inputs


def _layer_call(
    data: st.DataObject, problem: Problem, name: str, init: dict[str, Any], **kwargs: Any
) -> tuple[tuple[Tensor, ...], Any, str, bool]:
    """attrkit's result of layer method ``name`` on a drawn layer (and whether to its
    input), and the reference model with that layer's name."""
    model = problem.graph.build(problem.dtype)
    layer = draw_layer(data, model)
    to_input = data.draw(st.booleans(), label="attribute_to_layer_input")
    explainer = attrkit.create(name, model, layer=layer, **init)
    if name != "layer_activation":
        kwargs["target"] = problem.target
    result = explainer.attribute(
        problem.given(problem.inputs()), attribute_to_layer_input=to_input, **kwargs
    )
    return as_tuple(result), twin(problem), layer, to_input


def check_layer_activation(problem: Problem, data: st.DataObject) -> None:
    ours, model, layer, to_input = _layer_call(data, problem, "layer_activation", {})
    tensor, _, _ = reference_layer(
        model, problem.inputs(), model.get_submodule(layer), problem.target, to_input
    )
    assert_all_close(ours, (tensor.detach(),))


def check_layer_gradient_x_activation(problem: Problem, data: st.DataObject) -> None:
    multiply = data.draw(st.booleans(), label="multiply_by_inputs")
    ours, model, layer, to_input = _layer_call(
        data, problem, "layer_gradient_x_activation", {"multiply_by_inputs": multiply}
    )
    tensor, grad, _ = reference_layer(
        model, problem.inputs(), model.get_submodule(layer), problem.target, to_input
    )
    assert_all_close(ours, (grad * tensor.detach() if multiply else grad,))


def check_internal_influence(problem: Problem, data: st.DataObject) -> None:
    method, n_steps, baselines, starts, ends = _path_options(data, problem)
    ours, model, layer, to_input = _layer_call(
        data, problem, "internal_influence", {}, method=method, n_steps=n_steps,
        baselines=None if baselines is None else problem.given(baselines),
    )  # fmt: skip
    total = 0
    for point, weight in quadrature(method, n_steps):
        points = tuple(s + point * (e - s) for s, e in zip(starts, ends, strict=True))
        _, grad, _ = reference_layer(
            model, points, model.get_submodule(layer), problem.target, to_input
        )
        total = total + weight * grad
    assert_all_close(ours, (total,))


def check_layer_conductance(problem: Problem, data: st.DataObject) -> None:
    """The n + 1 points of the rule; each step: the gradient at its first point times the
    change of the layer's value."""
    method, n_steps, baselines, starts, ends = _path_options(data, problem)
    ours, model, layer, to_input = _layer_call(
        data, problem, "layer_conductance", {}, method=method, n_steps=n_steps,
        baselines=None if baselines is None else problem.given(baselines),
    )  # fmt: skip
    values = []
    for point, _ in quadrature(method, n_steps + 1):
        points = tuple(s + point * (e - s) for s, e in zip(starts, ends, strict=True))
        tensor, grad, _ = reference_layer(
            model, points, model.get_submodule(layer), problem.target, to_input
        )
        values.append((tensor.detach(), grad))
    expected = sum(
        grad * (after - before) for (before, grad), (after, _) in itertools.pairwise(values)
    )
    assert_all_close(ours, (expected,))


def check_layer_integrated_gradients(problem: Problem, data: st.DataObject) -> None:
    """The layer's value moves from its value at the baselines to its value at the
    inputs, the model's inputs staying the inputs."""
    method, n_steps, baselines, starts, ends = _path_options(data, problem)
    multiply = data.draw(st.booleans(), label="multiply_by_inputs")
    ours, model, layer, to_input = _layer_call(
        data, problem, "layer_integrated_gradients", {"multiply_by_inputs": multiply},
        method=method, n_steps=n_steps,
        baselines=None if baselines is None else problem.given(baselines),
    )  # fmt: skip
    module = model.get_submodule(layer)
    end, _, _ = reference_layer(model, ends, module, problem.target, to_input)
    start, _, _ = reference_layer(model, starts, module, problem.target, to_input)
    end, start = end.detach(), start.detach()
    total = 0
    for point, weight in quadrature(method, n_steps):
        value = (start + point * (end - start)).requires_grad_()
        _, grad, _ = reference_layer(model, ends, module, problem.target, to_input, value)
        total = total + weight * grad
    assert_all_close(ours, (total * (end - start) if multiply else total,))


def _neuron_path_check(name: str) -> Check:
    """Neuron integrated gradients (the neuron's gradient on the path) or neuron
    conductance (``dF/dy_j * dy_j/dx`` summed over the selected neurons ``j``)."""

    def check(problem: Problem, data: st.DataObject) -> None:
        method, n_steps, baselines, starts, ends = _path_options(data, problem)
        model = problem.graph.build(problem.dtype)
        layer = draw_layer(data, model)
        to_input = data.draw(st.booleans(), label="attribute_to_neuron_input")
        selector = draw_selector(data, model, layer, ends, to_input)
        kwargs: dict[str, Any] = {"target": problem.target} if name == "neuron_conductance" else {}
        ours = attrkit.create(name, model, layer=layer).attribute(
            problem.given(ends), neuron_selector=selector, method=method, n_steps=n_steps,
            baselines=None if baselines is None else problem.given(baselines),
            attribute_to_neuron_input=to_input, **kwargs,
        )  # fmt: skip
        reference_model = twin(problem)
        module = reference_model.get_submodule(layer)
        totals = [torch.zeros_like(x) for x in ends]
        for point, weight in quadrature(method, n_steps):
            points = tuple(s + point * (e - s) for s, e in zip(starts, ends, strict=True))
            if name == "neuron_conductance":
                tensor, grad, leaves = reference_layer(
                    reference_model, points, module, problem.target, to_input
                )
                picked = pick_neuron(grad.detach() * tensor, selector)
                grads = torch.autograd.grad(picked.sum(), leaves, allow_unused=True)
                grads = tuple(
                    torch.zeros_like(x) if g is None else g
                    for x, g in zip(leaves, grads, strict=True)
                )
            else:
                grads = reference_neuron_attribution(
                    reference_model, points, module, selector, (), None, to_input
                )
            for total, g in zip(totals, grads, strict=True):
                total += weight * g
        expected = tuple(t * (e - s) for t, e, s in zip(totals, ends, starts, strict=True))
        assert_all_close(as_tuple(ours), expected)

    return check


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


REFERENCE_CHECKS: dict[str, Check] = {
    **{name: _simple_check(name) for name in ONE_GRADIENT_METHODS},
    "integrated_gradients": check_integrated_gradients,
    "noise_tunnel": check_noise_tunnel,
    "neuron_deconvolution": _neuron_check("neuron_deconvolution", "deconvolution"),
    "neuron_guided_backprop": _neuron_check("neuron_guided_backprop", "guided_backprop"),
    "layer_grad_cam": check_layer_grad_cam,
    "guided_grad_cam": check_guided_grad_cam,
    "layer_activation": check_layer_activation,
    "layer_gradient_x_activation": check_layer_gradient_x_activation,
    "internal_influence": check_internal_influence,
    "layer_conductance": check_layer_conductance,
    "layer_integrated_gradients": check_layer_integrated_gradients,
    "neuron_gradient": _neuron_check("neuron_gradient", None),
    "neuron_integrated_gradients": _neuron_path_check("neuron_integrated_gradients"),
    "neuron_conductance": _neuron_path_check("neuron_conductance"),
    "lrp": _lrp_check("lrp"),
    "layer_lrp": _lrp_check("layer_lrp"),
}


def test_every_registered_method_has_a_reference_property():
    """Every method attrkit computes (the perturbation family is Captum's computation,
    tests/methods/test_perturbation.py)."""
    assert set(REFERENCE_CHECKS) == set(OWN_METHODS)


def _needed_layer(name: str) -> str:
    """What layer the method's check draws (so that graphs without one are not drawn)."""
    if name == "guided_grad_cam":
        return "spatial"
    return "any" if "layer" in attrkit.method_info(name).init_arguments else ""


@pytest.mark.parametrize("name", sorted(REFERENCE_CHECKS))
@given(data=st.data())
def test_matches_definition_on_random_models(name, data):
    problem = data.draw(problems(layer=_needed_layer(name)), label="problem")
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
    torch.manual_seed(0)  # the same noise for NoiseTunnel
    with warnings.catch_warnings():  # Guided Grad-CAM and a flat side input
        warnings.simplefilter("ignore", GradCamResizeWarning)
        return spec.attribute(
            library, model, layer, inputs, selection, **spec.kwargs(problem.dtype)
        )


def _captum_problems(spec: MethodSpec) -> st.SearchStrategy[Problem]:
    """Captum's neuron methods raise when an input does not reach the layer (the side
    input joins after every body layer), its plain-gradient methods crash on an in-place
    ReLU applied to the input, and its layer integrated gradients on an in-place ReLU
    after the layer: none of those is drawn for Captum."""
    drawn = problems(
        parity=spec.relu_rule is not None,
        inplace_on_input=False,
        side_input=not spec.neuron,
        layer="any" if spec.layer else "",
    )
    if spec.cls == "LayerIntegratedGradients":
        # Captum's sets the layer's output to a leaf that requires grad, so an in-place
        # ReLU after the layer crashes it (documented deviation; attrkit's clones it).
        drawn = drawn.filter(lambda p: not _has_inplace_relu(p.graph))
    return drawn


def _has_inplace_relu(graph: Any) -> bool:
    return any(
        isinstance(node, Relu) and node.is_inplace(graph.shared_inplace) for node in graph.body
    )


#: The rows that run on any model: not those whose arguments come from a model case or
#: that are compared on named cases only (left to tests/test_parity_captum.py), nor the
#: perturbation family's (Captum's own computation on both sides).
RANDOM_MODEL_SPECS = [
    spec
    for spec in METHOD_SPECS
    if not spec.needs_case
    and not spec.forms
    and spec.cases is None  # LRP: Captum's runs on networks of its supported modules
    and attrkit.method_info(spec.cls).family != "perturbation"
]


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.id) for s in RANDOM_MODEL_SPECS])
@given(data=st.data())
def test_matches_captum_on_random_models(spec, data):
    problem = data.draw(_captum_problems(spec), label="problem")
    model = problem.graph.build(problem.dtype)
    layer = None
    if spec.layer:
        # Guided Grad-CAM needs a layer whose map can be resized to the inputs.
        names = model.layer_names(spatial_only=spec.cls == "GuidedGradCam")
        if spec.attribute_kwargs.get("attribute_to_layer_input") and not spec.neuron:
            # Captum deviation (test_captum_drops_other_branches_of_a_layer_input below).
            inputs = problem.inputs()
            names = [n for n in names if model.layer_input_depends_on_parameters(n, inputs)]
        layer = draw_layer(data, model, names=names)
    selection = problem.target
    if spec.neuron:
        to_input = spec.attribute_kwargs.get("attribute_to_neuron_input", False)
        selection = draw_selector(data, model, layer, problem.inputs(), to_input)
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
FAST_OPTIONS = {
    "integrated_gradients": {"n_steps": 3},
    **{
        name: {"n_steps": 3}
        for name in OWN_METHODS
        if "n_steps" in attrkit.method_info(name).attribute_arguments
    },
    "noise_tunnel": {"nt_samples": 2, "stdevs": 0.2},
}
#: Methods a NoiseTunnel can wrap without constructor arguments.
SIMPLE_METHODS = [
    name
    for name in OWN_METHODS
    if not {"layer", "base_method"} & set(attrkit.method_info(name).init_arguments)
]


@st.composite
def method_calls(draw: st.DrawFn, model: GraphModel, problem: Problem) -> tuple[Any, ...]:
    """(name, constructor arguments, ``attribute`` arguments) of a random valid call of
    any registered method."""
    names, simple = list(OWN_METHODS), SIMPLE_METHODS
    if multiplies_relevance(problem):  # LRP refuses it (see _lrp_check)
        names = [n for n in names if attrkit.method_info(n).family != "lrp"]
        simple = [n for n in simple if attrkit.method_info(n).family != "lrp"]
    if not model.layer_names():
        names = [n for n in names if "layer" not in attrkit.method_info(n).init_arguments]
    name = draw(st.sampled_from(names))
    info = attrkit.method_info(name)
    layers = model.layer_names(spatial_only=name == "guided_grad_cam")
    assume(layers or "layer" not in info.init_arguments)
    layer = draw(st.sampled_from(layers)) if "layer" in info.init_arguments else None
    base = draw(st.sampled_from(simple)) if "base_method" in info.init_arguments else None
    target = selector = None
    if is_neuron_method(name):
        shape = model.layer_shape(layer, problem.inputs(), False)
        selector = draw(st.sampled_from(neuron_selectors(shape)))[1]
    if info.takes_target:  # (neuron conductance takes both)
        target = draw(st.sampled_from(target_forms(problem.graph.output_shape, problem.batch)))[1]
    init, kwargs = quick_call(
        name,
        layer=layer,
        target=target,
        neuron_selector=selector,
        base_method=base,
        options=FAST_OPTIONS,
    )
    kwargs.update(FAST_OPTIONS.get(base or "", {}))
    return name, init, kwargs


def call(model: GraphModel, problem: Problem, method: tuple[Any, ...]) -> tuple[Tensor, ...]:
    name, init, kwargs = method
    torch.manual_seed(1)  # NoiseTunnel draws from the global generator
    with warnings.catch_warnings():  # Guided Grad-CAM and a flat side input
        warnings.simplefilter("ignore", GradCamResizeWarning)
        result = attrkit.create(name, model, **init).attribute(
            problem.given(problem.inputs()), **kwargs
        )
    return as_tuple(result[0] if kwargs.get("return_convergence_delta") else result)


@given(problem=problems(), data=st.data())
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

"""The shared method tester: what every registered method must satisfy, with the methods
and their calls read from the registry (``attrkit.available_methods()`` and each method's
``MethodInfo``), never from a hand-written list.

- :func:`methods` selects registered methods by their metadata.
- :func:`quick_call` builds a valid call of any registered method: a layer for the
  methods constructed with one, a neuron selector for the methods that take one, a target
  for those that take one, a base method for a method that wraps another, and small
  values of the options that make a call slow (:data:`QUICK_OPTIONS`, by argument name);
  :func:`quick_call_on` takes the layer, neuron selector and target from a model case.
- :func:`default_spec` is a method's default configuration as a ``MethodSpec`` (the
  configurations of ``METHOD_SPECS`` come first where a method has rows).
- :func:`definition` gives the definition-based result of a configuration on a model case
  where the metadata says what that definition is (:func:`definition_kind`): one
  reference gradient (with the method's rule, if it has one), a neuron's reference
  gradient, or a guided layer map; the references live in ``tests/reference.py`` and share
  no code with attrkit.
- :func:`covering` spreads target forms (or neuron selectors) over the configurations of a
  product so that each configuration runs with one form and every form appears
  (:func:`assert_covering_reaches_every_form` checks it).

The test modules that use it: ``tests/methods/test_parity.py`` (parity with Captum),
``tests/methods/test_shared.py`` (the definition, hygiene, thread safety, typed errors,
quietness, for every registered method), ``tests/methods/test_fuzz_models.py`` (the same
definitions on random models) and the core's tests of every registered method.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attrkit
from attrkit.core.registry import MethodInfo, built_from_model, takes_inputs
from attrkit.methods.perturbation import patch_arguments
from tests.cases import (
    DTYPES,
    LAYERS,
    METHOD_SPECS,
    Case,
    MethodSpec,
    layer_shape,
    neuron_selectors,
    selections,
    target_forms,
)
from tests.helpers import baseline_distribution
from tests.reference import (
    RULE_BACKWARDS,
    reference_attribution,
    reference_grad_cam,
    reference_neuron_attribution,
    reference_one_gradient,
)

# ----------------------------------------------------------------- methods by metadata


def info(name: str) -> MethodInfo:
    return attrkit.method_info(name)


def needs_layer(method: MethodInfo) -> bool:
    """Constructed with a layer of the model."""
    return "layer" in method.init_arguments


def takes_neuron_selector(method: MethodInfo) -> bool:
    return "neuron_selector" in method.attribute_arguments


def wraps_a_method(method: MethodInfo) -> bool:
    """Built around another registered method (NoiseTunnel)."""
    return "base_method" in method.init_arguments


def draws_noise(method: MethodInfo) -> bool:
    """Draws random noise from torch's global generator on purpose (as Captum does)."""
    return "stdevs" in method.attribute_arguments


def computed_by_attrkit(method: MethodInfo) -> bool:
    """Computed by attrkit's core and engine: not the perturbation family, whose
    computation is Captum's own (tests/methods/test_perturbation.py); the contracts of the
    core (thread safety, typed errors, no residue, ...) are tested on these."""
    return method.family != "perturbation"


def quick_callable(method: MethodInfo) -> bool:
    """A quick call (:func:`quick_call`) can build and run it on inputs: not
    ``DataLoaderAttribution`` (a DataLoader) nor ``LimeBase`` (its interpretable model and
    transforms are the caller's constructor arguments)."""
    return takes_inputs(method) and built_from_model(method)


def attrkit_contract(method: MethodInfo) -> bool:
    """The core's contracts (no residue, typed errors naming the argument, thread safety)
    are tested on it: computed by attrkit and quick-callable."""
    return computed_by_attrkit(method) and quick_callable(method)


def draws_more_than_noise(method: MethodInfo) -> bool:
    """Draws random numbers that ``stdevs=0`` does not switch off (GradientShap's baseline
    rows and points): its result depends on the generators' state whatever the options."""
    return method.draws_random_numbers and not wraps_a_method(method)


def methods(predicate: Callable[[MethodInfo], bool] | None = None) -> list[str]:
    """The registered methods (canonical names, sorted) whose metadata satisfies
    ``predicate``."""
    names = attrkit.available_methods()
    return [name for name in names if predicate is None or predicate(info(name))]


def method_params(
    predicate: Callable[[MethodInfo], bool] | None = None,
    known_gaps: Mapping[str, str] | None = None,
) -> list[Any]:
    """:func:`methods` as ``pytest.param``; a method in ``known_gaps`` (name -> what goes
    wrong) is expected to fail (strictly: once it passes, its entry must go)."""
    gaps = known_gaps or {}
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=gaps[name])] if name in gaps else [],
        )
        for name in methods(predicate)
    ]


#: What a method that wraps another one wraps in the quick call: the first registered
#: method (by name) with a backward rule that needs nothing but the model, so that the
#: override runs inside the wrapper too.
BASE_METHOD = next(
    name for name in methods(lambda m: bool(m.rules) and not m.init_arguments and m.takes_target)
)

#: Option values that keep a call quick, by argument name; a method gets those it takes.
QUICK_OPTIONS: dict[str, Any] = {"n_steps": 3, "nt_samples": 2, "stdevs": 0.1, "n_samples": 4}


@dataclass(frozen=True)
class Call:
    """A valid call of registered method ``name``: constructor and ``attribute`` arguments
    (beyond the model and the inputs)."""

    name: str
    init: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def explainer(self, model: Any) -> Any:
        return attrkit.create(self.name, model, **self.init)

    def run(self, model: Any, inputs: Any, **overrides: Any) -> Any:
        return self.explainer(model).attribute(inputs, **{**self.kwargs, **overrides})

    def attributions(self, model: Any, inputs: Any, **overrides: Any) -> tuple[Tensor, ...]:
        """The attributions as a tuple (without a convergence delta)."""
        kwargs = {**self.kwargs, **overrides}
        result = self.run(model, inputs, **overrides)
        if kwargs.get("return_convergence_delta"):
            result = result[0]
        return result if isinstance(result, tuple) else (result,)


def quick_options(
    name: str, options: Mapping[str, Any] | None = None, base_method: str = BASE_METHOD
) -> dict[str, Any]:
    """The entries of ``options`` (default :data:`QUICK_OPTIONS`) that method ``name``
    takes, by argument name (a wrapper also gets those of ``base_method``)."""
    method = info(name)
    table = QUICK_OPTIONS if options is None else options
    taken = set(method.attribute_arguments)
    if wraps_a_method(method):
        taken |= set(info(base_method).attribute_arguments)
    return {key: value for key, value in table.items() if key in taken}


def quick_call(
    name: str,
    *,
    layer: str | nn.Module | None = None,
    target: Any = None,
    neuron_selector: Any = None,
    options: Mapping[str, Any] | None = None,
    base_method: str = BASE_METHOD,
    image_shape: tuple[int, ...] | None = None,
) -> Call:
    """A valid call of ``name``: ``layer`` where it is constructed with one,
    ``base_method`` where it wraps another method, ``neuron_selector`` and ``target``
    where its ``attribute`` takes them, a baseline distribution where it requires one
    (``baseline_distribution``, a callable that fits any input), and
    :func:`quick_options`; with ``image_shape`` (one example's ``C x H x W``), a
    perturbation method perturbs 2 x 2 patches."""
    method = info(name)
    init: dict[str, Any] = {}
    if needs_layer(method):
        init["layer"] = layer
    if wraps_a_method(method):
        init["base_method"] = base_method
    kwargs: dict[str, Any] = {}
    if takes_neuron_selector(method):
        kwargs["neuron_selector"] = neuron_selector
    if method.takes_target:
        kwargs["target"] = target
    if "baselines" in method.required_arguments:
        kwargs["baselines"] = baseline_distribution
    kwargs.update(quick_options(name, options, base_method))
    if image_shape is not None and len(image_shape) == 3:
        kwargs.update(patch_arguments(method, image_shape, patches=2))
    return Call(name, init, kwargs)


_DERIVED: Any = object()


def quick_call_on(
    case: Case,
    name: str,
    *,
    target: Any = _DERIVED,
    neuron_selector: Any = _DERIVED,
    options: Mapping[str, Any] | None = None,
) -> Call:
    """:func:`quick_call` of ``name`` on model case ``case``: the case's layer
    (``LAYERS``), unless given, the first neuron selector of that layer and the case's
    first target form, a baseline distribution as tensors of the case's shapes, and for a
    perturbation method, patches of the case's first input."""
    if target is _DERIVED:
        target = target_forms(case.output_shape)[0][1]
    if neuron_selector is _DERIVED:
        neuron_selector = neuron_selectors(layer_shape(case, False))[0][1]
    call = quick_call(
        name,
        layer=LAYERS[case.id],
        target=target,
        neuron_selector=neuron_selector,
        options=options,
        image_shape=case.input_shapes[0],
    )
    if "baselines" in info(name).required_arguments:  # tensors, which Captum's wrappers take
        call.kwargs["baselines"] = baseline_distribution(case.attribute_inputs(case.inputs()))
    return call


# ----------------------------------------------------------------------- configurations


def spec_method(spec: MethodSpec) -> MethodInfo:
    """The registered method a ``MethodSpec`` row runs (its class name finds it)."""
    return info(spec.cls)


def default_spec(name: str) -> MethodSpec:
    """Method ``name`` with its default options, as a ``MethodSpec``."""
    method = info(name)
    return MethodSpec(
        name.replace("_", "-"),
        method.cls.__name__,
        layer=needs_layer(method),
        neuron=takes_neuron_selector(method),
    )


def configurations(name: str) -> list[MethodSpec]:
    """The ``METHOD_SPECS`` rows of method ``name`` (not those that wrap it), and its
    default configuration where no row has it."""
    cls = info(name).cls.__name__
    rows = [spec for spec in METHOD_SPECS if spec.cls == cls and not spec.wraps]
    if not any(not spec.attribute_kwargs and not spec.init_kwargs for spec in rows):
        rows.append(default_spec(name))
    return rows


# --------------------------------------------------------------------------- definitions

_UNDEFINED = "undefined"


def reference_rule(method: MethodInfo) -> str | None:
    """The name of the method's one ReLU rule if it has a line in the reference's rule
    table, ``None`` for a method without rules, else ``"undefined"``."""
    if not method.rules:
        return None
    if len(method.rules) == 1 and method.rules[0].name in RULE_BACKWARDS:
        return str(method.rules[0].name)
    return _UNDEFINED


def definition_kind(method: MethodInfo) -> str | None:
    """Which definition-based reference the method's result follows, read from its
    metadata, or ``None``:

    - ``"gradient"``: one gradient (with the method's rule at every ReLU, or plain), its
      absolute value where the method has an ``abs`` option, times the inputs where it
      multiplies by them: constructed with the model alone, options at most ``abs``;
    - ``"neuron"``: the same for one neuron of a layer (``neuron_selector``, and at most
      ``attribute_to_neuron_input``);
    - ``"guided_layer_map"``: a class activation map of a layer times the method's rule
      gradient (Guided Grad-CAM).
    """
    rule = reference_rule(method)
    if rule == _UNDEFINED:
        return None
    options = set(method.attribute_arguments)
    init = set(method.init_arguments)
    if not init and method.takes_target and options <= {"abs"}:
        return "gradient"
    neuron_options = {"neuron_selector", "attribute_to_neuron_input"}
    if (
        init <= {"layer", "device_ids"}
        and "neuron_selector" in options
        and options <= neuron_options
    ):
        return "neuron"
    if (
        rule is not None
        and init <= {"layer", "device_ids"}
        and method.takes_target
        and method.family == "cam"
        and options <= {"interpolate_mode", "attribute_to_layer_input"}
    ):
        return "guided_layer_map"
    return None


def _default(method: MethodInfo, argument: str) -> Any:
    return inspect.signature(method.cls.attribute).parameters[argument].default


def applies(spec: MethodSpec, case: Case) -> bool:
    """Whether the definition of ``spec``'s method covers ``case``: a guided layer map
    needs a spatial layer (its map is upsampled to the inputs), nearest upsampling and
    the layer's output."""
    method = spec_method(spec)
    if definition_kind(method) != "guided_layer_map":
        return True
    options = spec.attribute_kwargs
    return (
        len(layer_shape(case, False)) >= 2
        and options.get("interpolate_mode", "nearest") == "nearest"
        and not options.get("attribute_to_layer_input", False)
    )


def one_gradient(
    method: MethodInfo,
    model: Any,
    inputs: tuple[Tensor, ...],
    target: Any,
    additional_forward_args: tuple[Any, ...] = (),
    options: Mapping[str, Any] | None = None,
) -> tuple[Tensor, ...]:
    """The reference result of a method of :func:`definition_kind` ``"gradient"`` called
    with ``options``: its rule's gradient (or the plain one), its absolute value where it
    has an ``abs`` option that is on, times the inputs where it multiplies by them."""
    options = options or {}
    absolute = "abs" in method.attribute_arguments and options.get("abs", _default(method, "abs"))
    return reference_one_gradient(
        model,
        inputs,
        target,
        additional_forward_args,
        rule=reference_rule(method),
        absolute=bool(absolute),
        times_inputs=method.multiplies_by_inputs,
    )


def definition(
    spec: MethodSpec, case: Case, selection: Any, dtype: torch.dtype
) -> tuple[Tensor, ...]:
    """The definition-based result of configuration ``spec`` on ``case`` for target (or
    neuron selector) ``selection``; the method must have a :func:`definition_kind`."""
    method = spec_method(spec)
    kind = definition_kind(method)
    rule = reference_rule(method)
    twin = case.build_reference(dtype)
    inputs, extra = case.inputs(dtype), case.extra_tuple(dtype)
    options = spec.kwargs(dtype)
    if kind == "gradient":
        return one_gradient(method, twin, inputs, selection, extra, options)
    layer = twin.get_submodule(LAYERS[case.id])
    if kind == "neuron":
        to_input = bool(options.get("attribute_to_neuron_input", False))
        return reference_neuron_attribution(twin, inputs, layer, selection, extra, rule, to_input)
    assert kind == "guided_layer_map", f"{method.name} has no definition here"
    guided = reference_attribution(twin, inputs, selection, extra, rule)
    cam = reference_grad_cam(twin, inputs, layer, selection, extra)
    return tuple(
        g * F.interpolate(cam, size=x.shape[2:], mode="nearest")
        if x.dim() == cam.dim()
        else torch.empty(0)  # no map to upsample to this input: an empty result
        for x, g in zip(inputs, guided, strict=True)
    )


# ------------------------------------------------------------------------ covering design


def covering(
    rows: Iterable[tuple[MethodSpec, Case]],
) -> Iterator[tuple[MethodSpec, Case, torch.dtype, str, Any]]:
    """Each (configuration, case) row in every dtype with ONE target form (or neuron
    selector): per case, the forms are dealt in turn over the rows and dtypes in table
    order, so that a case with at least as many rows x dtypes as forms sees every form.
    (``tests/methods/test_shared.py`` checks that it does.)"""
    dealt: dict[tuple[str, bool], int] = defaultdict(int)
    for spec, case in rows:
        forms = selections(spec, case)
        for dtype in DTYPES:
            turn = dealt[case.id, spec.neuron]
            dealt[case.id, spec.neuron] += 1
            form, value = forms[turn % len(forms)]
            yield spec, case, dtype, form, value


def dtype_id(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def assert_covering_reaches_every_form(rows: list[tuple[MethodSpec, Case]], neuron: bool) -> None:
    """Every target form (``neuron``: neuron selector) of every model case appears in the
    :func:`covering` of ``rows``, for the configurations that take one; a case with fewer
    configurations x dtypes than forms gets as many different forms as it has runs (its
    other forms go through the same code on the other cases)."""
    every: dict[str, set[str]] = defaultdict(set)
    dealt: dict[str, list[str]] = defaultdict(list)
    for spec, case in rows:
        if spec.neuron == neuron:
            every[case.id] |= {form for form, _ in selections(spec, case)}
    for spec, case, _, form, _ in covering(rows):
        if spec.neuron == neuron:
            dealt[case.id].append(form)
    assert every
    assert dealt.keys() == every.keys()
    for case_id, forms in dealt.items():
        assert set(forms) == every[case_id] or len(set(forms)) == len(forms), case_id
    assert set().union(*every.values()) == {form for forms in dealt.values() for form in forms}


def covering_params(rows: Iterable[tuple[MethodSpec, Case]]) -> list[Any]:
    """:func:`covering` as ``pytest.param(spec, case, selection, dtype)``, with readable ids."""
    return [
        pytest.param(spec, case, value, dtype, id=f"{spec.id}-{case.id}-{form}-{dtype_id(dtype)}")
        for spec, case, dtype, form, value in covering(rows)
    ]

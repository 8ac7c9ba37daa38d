"""The benchmark's section "Layer, neuron and perturbation methods": every registered
method of the families below that the main tables do not time, against Captum's class of
the same name, on the models that name a layer (:class:`benchmarks._models.ModelSpec`).

The methods come from the registry: those of :data:`FAMILIES` that attribute ``inputs``
and are built from the model and, at most, a layer (not ``LimeBase``, whose interpretable
model and transforms are the caller's, nor ``DataLoaderAttribution``, which attributes a
``DataLoader``). Each runs with generic, fixed options that keep a call short
(:func:`options`): the model's layer and neuron; path methods at ``n_steps``; sampling
methods at :data:`SAMPLES` samples; perturbation masks of :data:`GROUPS` features (on
images a 2 x 2 grid of patches, :func:`attrkit.methods.perturbation.patch_arguments`; on
vectors runs of consecutive features; on a layer, groups of its channels or units), which
also keeps the exact Shapley values (every ordering of the features) cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import captum.attr
import torch
from torch import Tensor, nn

import attrkit
from attrkit.core.registry import built_from_model, common_kwargs, takes_inputs
from attrkit.methods.perturbation import patch_arguments
from benchmarks._models import ModelSpec

__all__ = ["FAMILIES", "GROUPS", "SAMPLES", "Case", "cases", "methods", "options"]

#: The families of the section (their methods that the main tables do not time).
FAMILIES = ("path", "activation", "gradient", "perturbation")
#: Features of a perturbation mask (input or layer).
GROUPS = 4
#: Samples of the sampling methods (Lime, KernelShap, ShapleyValueSampling).
SAMPLES = 8
#: The ``attribute`` arguments without a default that :func:`options` provides.
PROVIDED = ("neuron_selector", "sliding_window_shapes")


@dataclass(frozen=True)
class Case:
    """One method on one (model, batch): attrkit's call, Captum's, and what they run with.

    Attributes:
        name: The registered name.
        ours: attrkit's ``attribute`` call.
        theirs: The same call of Captum's class of the same name.
        description: The options, for the report.
    """

    name: str
    ours: Callable[[], Any]
    theirs: Callable[[], Any]
    description: str


def methods(timed: Collection[str], selected: Sequence[str] | None = None) -> list[str]:
    """The registered methods of :data:`FAMILIES` that are not in ``timed`` (the main
    tables' methods), have a Captum namesake, and are built from the model and a layer
    with the options of :func:`options`; of those, the ones in ``selected``, if given."""
    names = []
    for name in attrkit.available_methods():
        info = attrkit.method_info(name)
        buildable = (
            takes_inputs(info)
            and built_from_model(info)
            and set(info.required_arguments) <= set(PROVIDED)
        )
        if (
            info.family in FAMILIES
            and name not in timed
            and info.captum_name is not None
            and buildable
            and (selected is None or name in selected)
        ):
            names.append(name)
    return names


def _groups(size: int) -> Tensor:
    """Group index of each of ``size`` positions: :data:`GROUPS` runs of consecutive
    positions (fewer where ``size`` is smaller)."""
    return torch.arange(size) // math.ceil(size / GROUPS)


def _layer_shape(model: nn.Module, layer: nn.Module, x: Tensor) -> tuple[int, ...]:
    """The shape of one example of ``layer``'s output."""
    shapes: list[tuple[int, ...]] = []
    handle = layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        handle.remove()
    return shapes[0]


def options(
    name: str, spec: ModelSpec, model: nn.Module, x: Tensor, n_steps: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The constructor arguments (beyond the model) and the ``attribute`` options (besides
    ``inputs`` and ``target``) method ``name`` runs with on the model ``spec`` describes
    and the inputs ``x``."""
    if spec.layer is None or spec.neuron is None:
        raise ValueError(f"model {spec.name!r} names no layer and neuron for this section")
    info = attrkit.method_info(name)
    arguments = info.attribute_arguments
    layer = model.get_submodule(spec.layer)
    init_kwargs = {"layer": layer} if "layer" in info.init_arguments else {}
    kwargs: dict[str, Any] = {}
    example = tuple(x.shape[1:])
    if len(example) == 3:
        kwargs.update(patch_arguments(info, example, patches=2))
    elif "feature_mask" in arguments or "sliding_window_shapes" in arguments:
        if "feature_mask" in arguments:
            kwargs["feature_mask"] = _groups(example[0])[None]
        if "sliding_window_shapes" in arguments:
            window = (math.ceil(example[0] / GROUPS),)
            kwargs |= {"sliding_window_shapes": window, "strides": window}
    if "layer_mask" in arguments:
        shape = _layer_shape(model, layer, x)
        kwargs["layer_mask"] = _groups(shape[0]).reshape(1, -1, *[1] * (len(shape) - 1))
    if "neuron_selector" in arguments:
        kwargs["neuron_selector"] = spec.neuron
    if "n_steps" in arguments:
        kwargs["n_steps"] = n_steps
    if "n_samples" in arguments:
        kwargs["n_samples"] = SAMPLES
    return init_kwargs, kwargs


def describe(spec: ModelSpec, init_kwargs: dict[str, Any], kwargs: dict[str, Any]) -> str:
    """The options of one case, in words (masks by their number of features)."""
    parts = [f"layer {spec.layer}"] if "layer" in init_kwargs else []
    for key, value in kwargs.items():
        if isinstance(value, Tensor):
            parts.append(f"{key}: {int(value.max()) + 1} features")
        elif key == "sliding_window_shapes" and kwargs.get("strides") == value:
            parts.append(f"{key} = strides = {value}")
        elif key != "strides" or value != kwargs.get("sliding_window_shapes"):
            parts.append(f"{key}={value}")
    return ", ".join(parts) or "defaults"


def _bind(method: Any, x: Tensor, kwargs: dict[str, Any]) -> Callable[[], Any]:
    def call() -> Any:
        return method.attribute(x, **kwargs)

    return call


def cases(
    spec: ModelSpec,
    model: nn.Module,
    x: Tensor,
    target: int | Tensor,
    names: Sequence[str],
    n_steps: int,
) -> tuple[list[Case], dict[str, str]]:
    """The cases of ``names`` on ``model`` with inputs ``x`` and ``target`` (where the
    method takes one), and the methods that cannot run on this batch, with the reason
    (Captum's permutation methods shuffle each feature across the batch: at batch 1 they
    skip every feature)."""
    found, skipped = [], {}
    for name in names:
        info = attrkit.method_info(name)
        init_kwargs, kwargs = options(name, spec, model, x, n_steps)
        description = describe(spec, init_kwargs, kwargs)
        kwargs |= common_kwargs(info, target if info.takes_target else None, None)
        ours = attrkit.create(name, model, **init_kwargs)
        theirs = getattr(captum.attr, str(info.captum_name))(model, **init_kwargs)
        minimum = getattr(theirs, "_min_examples_per_batch_grouped", None) or 1
        if len(x) < minimum:
            skipped[name] = f"needs a batch of at least {minimum}"
            continue
        found.append(Case(name, _bind(ours, x, kwargs), _bind(theirs, x, kwargs), description))
    return found, skipped

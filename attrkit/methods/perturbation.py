"""The perturbation family: Captum's own implementations, under attrkit's names and checks.

Captum computes these methods as they are defined (they only run the model on perturbed
inputs), so attrkit does not rewrite them: each class here *is* the Captum class of the
same name (a subclass that adds nothing to the computation), registered with attrkit's
metadata, whose ``attribute`` first checks its arguments with attrkit's clear, typed
errors (an argument Captum asserts on gets an error that is also an ``AssertionError``)
and then runs Captum's ``attribute`` unchanged. Results, random draws and Captum's
``attribute_future`` are Captum's.

:class:`Lime` and :class:`KernelShap` fit their surrogate linear model with scikit-learn
(``pip install "attrkit[perturbation]"``), as in Captum.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import captum.attr
from torch import Tensor

from attrkit.core.attribution import captum_entry_point
from attrkit.core.errors import ArgumentTypeError, ArgumentValueError
from attrkit.core.registry import register
from attrkit.core.targets import parse_target

__all__ = [
    "FeatureAblation",
    "FeaturePermutation",
    "KernelShap",
    "LayerFeatureAblation",
    "LayerFeaturePermutation",
    "Lime",
    "NeuronFeatureAblation",
    "Occlusion",
    "ShapleyValueSampling",
    "ShapleyValues",
]

ABLATION_PAPER = (
    "Zeiler and Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014, "
    "https://arxiv.org/abs/1311.2901"
)
PERMUTATION_PAPER = (
    "Fisher et al., All Models are Wrong, but Many are Useful: Learning a Variable's "
    "Importance by Studying an Entire Class of Prediction Models Simultaneously, JMLR 2019, "
    "https://arxiv.org/abs/1801.01489"
)
SHAPLEY_PAPER = (
    "Strumbelj and Kononenko, An Efficient Explanation of Individual Classifications using "
    "Game Theory, JMLR 2010, https://www.jmlr.org/papers/v11/strumbelj10a.html"
)


def _check_inputs(value: object, name: str) -> tuple[Tensor, ...]:
    """A tensor or a non-empty tuple of tensors (of any dtype and batch: Captum's
    perturbation methods also take integer and empty sparse-feature tensors)."""
    tensors = value if isinstance(value, tuple) else (value,)
    if not tensors:
        raise ArgumentValueError(f"`{name}` is an empty tuple; give at least one tensor")
    for position, tensor in enumerate(tensors):
        if not isinstance(tensor, Tensor):
            label = f"{name}[{position}]" if isinstance(value, tuple) else name
            raise ArgumentTypeError(
                f"`{label}` must be a torch.Tensor, got {type(tensor).__name__}"
            )
    return tensors


def _check_count(value: object, name: str) -> None:
    """An int >= 1 (``perturbations_per_eval``, ``n_samples``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"`{name}` must be an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ArgumentValueError(f"`{name}` must be an int >= 1, got {value}")


def _check_per_input(
    value: object, name: str, inputs: tuple[Tensor, ...] | None, allowed: tuple[type, ...]
) -> None:
    """``None``, one value of an ``allowed`` type, or a tuple of them (one per input
    tensor, when ``inputs`` is given)."""
    if value is None:
        return
    entries = value if isinstance(value, tuple) else (value,)
    if inputs is not None and isinstance(value, tuple) and len(entries) != len(inputs):
        raise ArgumentValueError(
            f"`{name}` has {len(entries)} entries but `inputs` has {len(inputs)} tensors"
        )
    kinds = " or ".join(t.__name__ if t is not Tensor else "torch.Tensor" for t in allowed)
    for position, entry in enumerate(entries):
        label = f"{name}[{position}]" if isinstance(value, tuple) else name
        if isinstance(entry, bool) or not isinstance(entry, allowed):
            raise ArgumentTypeError(f"`{label}` must be a {kinds}, got {type(entry).__name__}")
        if name.endswith("mask") and isinstance(entry, Tensor) and entry.is_floating_point():
            raise ArgumentTypeError(
                f"`{label}` must hold integer feature ids, got a {entry.dtype} tensor"
            )


def check_arguments(arguments: dict[str, Any]) -> None:
    """attrkit's checks of a perturbation method's ``attribute`` arguments (by name);
    what they do not cover is left to Captum."""
    inputs = _check_inputs(arguments["inputs"], "inputs") if "inputs" in arguments else None
    if inputs is not None and inputs[0].dim() > 0 and arguments.get("target") is not None:
        parse_target(arguments["target"], int(inputs[0].shape[0]))
    for name in ("perturbations_per_eval", "n_samples"):
        if name in arguments:
            _check_count(arguments[name], name)
    _check_per_input(arguments.get("baselines"), "baselines", inputs, (int, float, Tensor))
    _check_per_input(
        arguments.get("layer_baselines"), "layer_baselines", None, (int, float, Tensor)
    )
    _check_per_input(arguments.get("feature_mask"), "feature_mask", inputs, (Tensor,))
    _check_per_input(arguments.get("layer_mask"), "layer_mask", None, (Tensor,))
    shapes = arguments.get("sliding_window_shapes")
    if "sliding_window_shapes" in arguments and not isinstance(shapes, tuple):
        raise ArgumentTypeError(
            "`sliding_window_shapes` must be a tuple of ints (or one tuple per input "
            f"tensor), got {type(shapes).__name__}"
        )


class CaptumPerturbation:
    """Mixin for a subclass of a Captum perturbation class (its next base): the subclass's
    ``attribute`` runs :func:`check_arguments` and then Captum's ``attribute``, with
    Captum's signature (``inspect.signature`` shows it; ``attribute.__wrapped__(self,
    ...)``, which Captum's ``NoiseTunnel`` calls, runs the checks too)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        captum_class = next(c for c in cls.__mro__ if c.__module__.startswith("captum."))
        captum_attribute: Any = getattr(captum_class, "attribute")  # noqa: B009
        signature = inspect.signature(captum_attribute)

        def attribute(self: Any, *args: Any, **kwargs: Any) -> Any:
            check_arguments(signature.bind(self, *args, **kwargs).arguments)
            return captum_attribute(self, *args, **kwargs)

        functools.update_wrapper(attribute, captum_attribute)
        attribute.__qualname__ = f"{cls.__qualname__}.attribute"
        cls.attribute = captum_entry_point(attribute)  # type: ignore[attr-defined]


@register(
    "feature_ablation",
    family="perturbation",
    aliases=("ablation",),
    display_name="Feature Ablation",
    paper=ABLATION_PAPER,
)
class FeatureAblation(CaptumPerturbation, captum.attr.FeatureAblation):  # type: ignore[misc]
    """Feature ablation: the change of the output when each feature (or group of features,
    ``feature_mask``) is replaced by its baseline. Captum's ``FeatureAblation`` with
    attrkit's argument checks."""


@register(
    "feature_permutation",
    family="perturbation",
    aliases=("permutation",),
    display_name="Feature Permutation",
    paper=PERMUTATION_PAPER,
)
class FeaturePermutation(CaptumPerturbation, captum.attr.FeaturePermutation):  # type: ignore[misc]
    """Permutation importance: the change of the output when each feature (or group,
    ``feature_mask``) is shuffled across the batch. Captum's ``FeaturePermutation`` with
    attrkit's argument checks."""


@register("occlusion", family="perturbation", display_name="Occlusion", paper=ABLATION_PAPER)
class Occlusion(CaptumPerturbation, captum.attr.Occlusion):  # type: ignore[misc]
    """Occlusion: the change of the output when a sliding window of the input is replaced
    by the baseline, averaged over the windows that cover each feature. Captum's
    ``Occlusion`` with attrkit's argument checks."""


@register(
    "shapley_value_sampling",
    family="perturbation",
    aliases=("shapley_sampling",),
    display_name="Shapley Value Sampling",
    paper=SHAPLEY_PAPER,
)
class ShapleyValueSampling(CaptumPerturbation, captum.attr.ShapleyValueSampling):  # type: ignore[misc]
    """Shapley values estimated from ``n_samples`` random orderings of the features.
    Captum's ``ShapleyValueSampling`` with attrkit's argument checks."""


@register(
    "shapley_values",
    family="perturbation",
    aliases=("shapley",),
    display_name="Shapley Values",
    paper="Shapley, A Value for n-Person Games, Contributions to the Theory of Games II, "
    "1953; " + SHAPLEY_PAPER,
)
class ShapleyValues(CaptumPerturbation, captum.attr.ShapleyValues):  # type: ignore[misc]
    """Exact Shapley values, over every ordering of the features (for few features).
    Captum's ``ShapleyValues`` with attrkit's argument checks."""


@register(
    "lime",
    family="perturbation",
    display_name="LIME",
    paper='Ribeiro et al., "Why Should I Trust You?": Explaining the Predictions of Any '
    "Classifier, KDD 2016, https://arxiv.org/abs/1602.04938",
)
class Lime(CaptumPerturbation, captum.attr.Lime):  # type: ignore[misc]
    """LIME: the coefficients of an interpretable linear model (scikit-learn's Lasso by
    default) fitted to the outputs for randomly perturbed inputs. Captum's ``Lime`` with
    attrkit's argument checks."""


@register(
    "kernel_shap",
    family="perturbation",
    display_name="Kernel SHAP",
    paper="Lundberg and Lee, A Unified Approach to Interpreting Model Predictions, "
    "NeurIPS 2017, https://arxiv.org/abs/1705.07874",
)
class KernelShap(CaptumPerturbation, captum.attr.KernelShap):  # type: ignore[misc]
    """Kernel SHAP: LIME with the Shapley kernel, whose linear model estimates Shapley
    values. Captum's ``KernelShap`` with attrkit's argument checks."""


@register(
    "layer_feature_ablation",
    family="perturbation",
    display_name="Layer Feature Ablation",
    paper=ABLATION_PAPER,
    layer_output=True,
)
class LayerFeatureAblation(CaptumPerturbation, captum.attr.LayerFeatureAblation):  # type: ignore[misc]
    """Feature ablation of a hidden layer's neurons (``layer_mask`` groups them). Captum's
    ``LayerFeatureAblation`` with attrkit's argument checks."""


@register(
    "layer_feature_permutation",
    family="perturbation",
    display_name="Layer Feature Permutation",
    paper=PERMUTATION_PAPER,
    layer_output=True,
)
class LayerFeaturePermutation(CaptumPerturbation, captum.attr.LayerFeaturePermutation):  # type: ignore[misc]
    """Permutation importance of a hidden layer's neurons. Captum's
    ``LayerFeaturePermutation`` with attrkit's argument checks."""


@register(
    "neuron_feature_ablation",
    family="perturbation",
    display_name="Neuron Feature Ablation",
    paper=ABLATION_PAPER,
)
class NeuronFeatureAblation(CaptumPerturbation, captum.attr.NeuronFeatureAblation):  # type: ignore[misc]
    """Feature ablation of the inputs, measured on one neuron of a hidden layer. Captum's
    ``NeuronFeatureAblation`` with attrkit's argument checks."""

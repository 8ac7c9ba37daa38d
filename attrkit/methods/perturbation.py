"""The perturbation family: Captum's own implementations, under attrkit's names and checks.

Captum computes these methods as they are defined (they only run the model on perturbed
inputs), so attrkit does not rewrite them: each class here *is* the Captum class of the
same name (a subclass that adds nothing to the computation), registered with attrkit's
metadata, whose ``attribute`` first checks its arguments with attrkit's clear, typed
errors (an argument Captum asserts on gets an error that is also an ``AssertionError``)
and then runs Captum's ``attribute`` unchanged. Results, random draws and Captum's
``attribute_future`` are Captum's. The layer and neuron methods, whose Captum computation
registers forward hooks on the layer, run it on a private structural copy of the model
(:class:`_HooksOnAPrivateModel`), so that other threads may use the model meanwhile.

:class:`Lime` and :class:`KernelShap` fit their surrogate linear model with scikit-learn
(``pip install "attrkit[perturbation]"``), as in Captum.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
from typing import Any

import captum.attr
import torch
from captum._utils.common import _format_additional_forward_args, _run_forward
from captum.attr._core.lime import construct_feature_mask
from captum.attr._utils.batching import _batch_example_iterator
from captum.attr._utils.common import _format_input_baseline
from torch import Tensor

from attrkit.core.attribution import captum_entry_point, check_callable
from attrkit.core.call import format_tensors
from attrkit.core.docs import fill_doc
from attrkit.core.errors import ArgumentTypeError, ArgumentValueError
from attrkit.core.registry import register
from attrkit.core.replica import model_replica
from attrkit.core.targets import parse_target

__all__ = [
    "DataLoaderAttribution",
    "FeatureAblation",
    "FeaturePermutation",
    "KernelShap",
    "LayerFeatureAblation",
    "LayerFeaturePermutation",
    "Lime",
    "LimeBase",
    "NeuronFeatureAblation",
    "Occlusion",
    "ShapleyValueSampling",
    "ShapleyValues",
    "patch_arguments",
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
    """The core's checks of ``inputs`` (:func:`~attrkit.core.call.format_tensors`: a
    tensor or a non-empty tuple of tensors, dense, holding values, with a batch
    dimension), each tensor on its own and of any dtype: Captum's perturbation methods
    also take integer tensors (token ids) and sparse features whose dimension 0 is not
    the batch (an index list, an empty tensor). Captum asserts on its inputs: the errors
    are AssertionErrors too."""
    try:
        if not isinstance(value, tuple) or not value:
            return format_tensors(value, name, floating=False)[0]
        for position, tensor in enumerate(value):
            label = f"{name}[{position}]"
            if not isinstance(tensor, Tensor):
                raise TypeError(f"`{label}` must be a torch.Tensor, got {type(tensor).__name__}")
            format_tensors(tensor, label, floating=False)
    except TypeError as error:
        raise ArgumentTypeError(str(error)) from None
    except ValueError as error:
        raise ArgumentValueError(str(error)) from None
    return value


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
    kinds = "a number or a torch.Tensor" if int in allowed else "a torch.Tensor"
    for position, entry in enumerate(entries):
        label = f"{name}[{position}]" if isinstance(value, tuple) else name
        if not isinstance(entry, allowed):  # (a bool is a number: boolean inputs)
            raise ArgumentTypeError(f"`{label}` must be {kinds}, got {type(entry).__name__}")


def check_arguments(arguments: dict[str, Any]) -> None:
    """attrkit's checks of a perturbation method's ``attribute`` arguments (by name);
    what they do not cover is left to Captum."""
    inputs = _check_inputs(arguments["inputs"], "inputs") if "inputs" in arguments else None
    if inputs is not None and arguments.get("target") is not None:
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


def _checking_model(captum_init: Any) -> Any:
    """Captum's constructor ``captum_init`` (its signature too), after checking that its
    first argument, the model (``forward_func``), is callable: Captum's takes anything and
    fails only in ``attribute``."""
    signature = inspect.signature(captum_init)
    model_argument = list(signature.parameters)[1]

    @functools.wraps(captum_init)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        check_callable(
            signature.bind(self, *args, **kwargs).arguments[model_argument], model_argument
        )
        captum_init(self, *args, **kwargs)

    return init


def _private_copy(inputs: object) -> object:
    """A copy of every tensor of ``inputs`` (a tensor or a tuple), so that a model that
    modifies its input in place (an in-place ReLU on it) leaves the caller's values alone,
    as attrkit's gradient methods do; anything else as it is."""
    if isinstance(inputs, Tensor):
        return inputs.detach().clone()
    if isinstance(inputs, tuple):
        return tuple(x.detach().clone() if isinstance(x, Tensor) else x for x in inputs)
    return inputs


class CaptumPerturbation:
    """Mixin for a subclass of a Captum perturbation class: its constructor checks that the
    model is callable, and its ``attribute`` runs :func:`check_arguments` and then the
    ``attribute`` of the first Captum class of its method resolution order, with that
    signature (``inspect.signature`` shows it; ``attribute.__wrapped__(self, ...)``, which
    Captum's ``NoiseTunnel`` calls, runs the checks too). attrkit's classes subclass each
    other as Captum's do (``KernelShap`` is a ``Lime``, ``Occlusion`` a
    ``FeatureAblation``, ...)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        captum_class = next((c for c in cls.__mro__ if c.__module__.startswith("captum.")), None)
        if captum_class is None:  # another mixin
            return
        captum_attribute: Any = getattr(captum_class, "attribute")  # noqa: B009
        signature = inspect.signature(captum_attribute)

        def attribute(self: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(self, *args, **kwargs)
            check_arguments(bound.arguments)
            if "inputs" in bound.arguments:  # the model may modify them in place
                bound.arguments["inputs"] = _private_copy(bound.arguments["inputs"])
            return self._call_captum(captum_attribute, bound)

        functools.update_wrapper(attribute, captum_attribute)
        attribute.__qualname__ = f"{cls.__qualname__}.attribute"
        cls.attribute = captum_entry_point(attribute)  # type: ignore[attr-defined]
        if "__init__" not in cls.__dict__:  # (a class with its own checks its own arguments)
            cls.__init__ = _checking_model(captum_class.__init__)  # type: ignore[method-assign,misc]

    def _call_captum(self, captum_attribute: Any, bound: inspect.BoundArguments) -> Any:
        """Run Captum's ``attribute`` with the checked arguments."""
        return captum_attribute(*bound.args, **bound.kwargs)


class _HooksOnAPrivateModel(CaptumPerturbation):
    """Mixin for the layer and neuron methods, whose Captum computation registers forward
    hooks on ``self.layer`` for the duration of a call: Captum's ``attribute`` runs on a
    view of the method whose model and layer are a private structural copy of the model
    (:func:`~attrkit.core.replica.model_replica`: new modules, the model's own parameters,
    buffers and other objects), so that the hooks land on the copy's modules. Another
    thread's forward pass of the model (a plain one, or another method's) never runs them,
    and the model keeps the hooks it has, during the call as after it; the hooks the
    caller registered on the model run in the copy too. Where there is no copy to make
    (:func:`~attrkit.core.replica.model_replica`), or the copy's layer never ran (the
    model reaches it through a function that closes over it), Captum's ``attribute`` runs
    on the model itself, as Captum's class does."""

    forward_func: Any
    layer: Any

    def _call_captum(self, captum_attribute: Any, bound: inspect.BoundArguments) -> Any:
        layers = self.layer if isinstance(self.layer, list) else [self.layer]
        replica = model_replica(self.forward_func, layers)
        if replica is None:
            return super()._call_captum(captum_attribute, bound)
        view = copy.copy(self)  # the method object may be shared between threads too
        view.forward_func = replica.forward_func
        view.layer = list(replica.layers) if isinstance(self.layer, list) else replica.layers[0]
        bound.arguments["self"] = view
        try:
            return super()._call_captum(captum_attribute, bound)
        except Exception:
            if replica.layer_calls:
                raise
        bound.arguments["self"] = self  # Captum failed to find the copy's layer
        return super()._call_captum(captum_attribute, bound)


class _OneModelPerExample(CaptumPerturbation):
    """Lime and Kernel SHAP fit one linear model per example. For a batch of several
    examples (a model with one output per example) attrkit attributes them one at a time,
    as Captum does, without Captum's warning that recommends it: the same random draws in
    the same order, so the same result (also for a 0-d target tensor, on which Captum's
    batch path fails). Where the examples' feature masks hold different numbers of
    features, Captum's own batch path runs."""

    forward_func: Any

    def _call_captum(self, captum_attribute: Any, bound: inspect.BoundArguments) -> Any:
        arguments = dict(bound.arguments)
        del arguments["self"]
        inputs = arguments["inputs"]
        is_tuple = isinstance(inputs, tuple)
        batch = int((inputs if is_tuple else (inputs,))[0].shape[0])
        run_captum = functools.partial(captum_attribute, self)
        if batch < 2:
            return run_captum(**arguments)
        target = arguments.get("target")
        if isinstance(target, Tensor) and target.numel() == 1:  # Captum's batch path fails
            target = int(target.item())
        extra = _format_additional_forward_args(arguments.get("additional_forward_args"))
        with torch.no_grad():
            output = _run_forward(self.forward_func, inputs, target, extra)
        if not isinstance(output, Tensor) or output.numel() != batch:
            return run_captum(**arguments)  # Captum's checks and errors
        formatted, baselines = _format_input_baseline(inputs, arguments.get("baselines"))
        mask, features = construct_feature_mask(arguments.get("feature_mask"), formatted)
        examples = list(_batch_example_iterator(batch, formatted, target, extra, baselines, mask))
        if any(construct_feature_mask(m, x)[1] != features for x, _, _, _, m in examples):
            return run_captum(**arguments)
        results = [
            run_captum(
                **{
                    **arguments,
                    "inputs": x if is_tuple else x[0],
                    "target": example_target,
                    "additional_forward_args": example_extra,
                    "baselines": b if is_tuple else b[0],
                    "feature_mask": m if is_tuple else m[0],
                }
            )
            for x, example_target, example_extra, b, m in examples
        ]
        if isinstance(results[0], tuple):
            return tuple(torch.cat(column) for column in zip(*results, strict=True))
        return torch.cat(results)


@register(
    "feature_ablation",
    family="perturbation",
    multiplies_by_inputs=True,
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
    draws_random_numbers=True,
    family="perturbation",
    multiplies_by_inputs=True,
    aliases=("permutation",),
    display_name="Feature Permutation",
    paper=PERMUTATION_PAPER,
)
class FeaturePermutation(FeatureAblation, captum.attr.FeaturePermutation):  # type: ignore[misc]
    """Permutation importance: the change of the output when each feature (or group,
    ``feature_mask``) is shuffled across the batch. Captum's ``FeaturePermutation`` with
    attrkit's argument checks."""


@register(
    "occlusion",
    family="perturbation",
    multiplies_by_inputs=True,
    display_name="Occlusion",
    paper=ABLATION_PAPER,
)
class Occlusion(FeatureAblation, captum.attr.Occlusion):  # type: ignore[misc]
    """Occlusion: the change of the output when a sliding window of the input is replaced
    by the baseline, averaged over the windows that cover each feature. Captum's
    ``Occlusion`` with attrkit's argument checks."""


@register(
    "shapley_value_sampling",
    draws_random_numbers=True,
    family="perturbation",
    multiplies_by_inputs=True,
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
    multiplies_by_inputs=True,
    aliases=("shapley",),
    display_name="Shapley Values",
    paper="Shapley, A Value for n-Person Games, Contributions to the Theory of Games II, "
    "1953; " + SHAPLEY_PAPER,
)
class ShapleyValues(ShapleyValueSampling, captum.attr.ShapleyValues):  # type: ignore[misc]
    """Exact Shapley values, over every ordering of the features (for few features).
    Captum's ``ShapleyValues`` with attrkit's argument checks."""


@register(
    "lime_base",
    draws_random_numbers=True,
    family="perturbation",
    display_name="LIME (general form)",
    paper='Ribeiro et al., "Why Should I Trust You?": Explaining the Predictions of Any '
    "Classifier, KDD 2016, https://arxiv.org/abs/1602.04938",
)
class LimeBase(CaptumPerturbation, captum.attr.LimeBase):  # type: ignore[misc]
    """LIME in its general form: the interpretable model, the similarity, the sampling and
    the transforms between the input and the interpretable space are all the caller's
    (constructor arguments). Captum's ``LimeBase`` with attrkit's argument checks."""


@register(
    "lime",
    draws_random_numbers=True,
    family="perturbation",
    display_name="LIME",
    paper='Ribeiro et al., "Why Should I Trust You?": Explaining the Predictions of Any '
    "Classifier, KDD 2016, https://arxiv.org/abs/1602.04938",
)
class Lime(_OneModelPerExample, LimeBase, captum.attr.Lime):  # type: ignore[misc]
    """LIME: the coefficients of an interpretable linear model (scikit-learn's Lasso by
    default) fitted to the outputs for randomly perturbed inputs. Captum's ``Lime`` with
    attrkit's argument checks."""


@register(
    "kernel_shap",
    draws_random_numbers=True,
    family="perturbation",
    display_name="Kernel SHAP",
    paper="Lundberg and Lee, A Unified Approach to Interpreting Model Predictions, "
    "NeurIPS 2017, https://arxiv.org/abs/1705.07874",
)
class KernelShap(Lime, captum.attr.KernelShap):  # type: ignore[misc]
    """Kernel SHAP: LIME with the Shapley kernel, whose linear model estimates Shapley
    values. Captum's ``KernelShap`` with attrkit's argument checks."""


#: Captum's own class (``captum.attr.FeatureAblation`` may be replaced by attrkit's), the
#: only one Captum's ``DataLoaderAttribution`` takes.
_CAPTUM_FEATURE_ABLATION: Any = captum.attr.FeatureAblation


def _data_loader_factory(model: Any) -> DataLoaderAttribution:
    """``create("data_loader_attribution", model)``: over a ``FeatureAblation`` of
    ``model``."""
    return DataLoaderAttribution(FeatureAblation(model))


@register(
    "data_loader_attribution",
    family="perturbation",
    display_name="DataLoader Attribution",
    paper=ABLATION_PAPER,
    factory=_data_loader_factory,
)
class DataLoaderAttribution(CaptumPerturbation, captum.attr.DataLoaderAttribution):  # type: ignore[misc]
    """Feature ablation over a whole ``DataLoader``: each feature (group, across the
    dataset) is ablated in every batch and the model's outputs reduced to one metric.
    Captum's ``DataLoaderAttribution`` with attrkit's argument checks; it takes attrkit's
    :class:`FeatureAblation` as well as Captum's (the same computation), and only those.

    Its ``attribute`` takes a ``DataLoader``, not ``inputs``.

    Args:
        attr_method (FeatureAblation): The feature ablation of the model.
    """

    def __init__(self, attr_method: Any) -> None:
        if type(attr_method) not in (FeatureAblation, _CAPTUM_FEATURE_ABLATION):
            raise ArgumentTypeError(
                "`attr_method` must be a FeatureAblation (attrkit's or Captum's), the only "
                f"method DataLoaderAttribution supports; got {type(attr_method).__name__}"
            )
        # Captum's accepts its own class only: the same computation on the same model.
        super().__init__(_CAPTUM_FEATURE_ABLATION(attr_method.forward_func))


@register(
    "layer_feature_ablation",
    family="perturbation",
    multiplies_by_inputs=True,
    display_name="Layer Feature Ablation",
    paper=ABLATION_PAPER,
    layer_output=True,
)
@fill_doc
class LayerFeatureAblation(_HooksOnAPrivateModel, captum.attr.LayerFeatureAblation):  # type: ignore[misc]
    """Feature ablation of a hidden layer's neurons (``layer_mask`` groups them). Captum's
    ``LayerFeatureAblation`` with attrkit's argument checks.

    %(layer_hooks_on_a_copy)s
    """


@register(
    "layer_feature_permutation",
    draws_random_numbers=True,
    family="perturbation",
    multiplies_by_inputs=True,
    display_name="Layer Feature Permutation",
    paper=PERMUTATION_PAPER,
    layer_output=True,
)
@fill_doc
class LayerFeaturePermutation(
    _HooksOnAPrivateModel,
    FeaturePermutation,
    captum.attr.LayerFeaturePermutation,  # type: ignore[misc]
):
    """Permutation importance of a hidden layer's neurons. Captum's
    ``LayerFeaturePermutation`` with attrkit's argument checks, and one fix: Captum 0.9.0
    selects the ``target`` twice (in its layer forward function and again in the
    permutation of its outputs), so that any target fails with an ``AssertionError``;
    attrkit's permutation takes the outputs the layer forward function selected.

    %(layer_hooks_on_a_copy)s
    """

    @property
    def attributor(self) -> type[captum.attr.FeaturePermutation]:
        return _SelectedOutputPermutation


#: Captum's own class (``captum.attr.FeaturePermutation`` may be replaced by attrkit's).
_CAPTUM_FEATURE_PERMUTATION: Any = captum.attr.FeaturePermutation


def _permute_selected_outputs(self: Any, *args: Any, target: Any = None, **kwargs: Any) -> Any:
    """Captum's feature permutation of a function that already selected the target."""
    return _CAPTUM_FEATURE_PERMUTATION.attribute.__wrapped__(self, *args, target=None, **kwargs)


class _SelectedOutputPermutation(_CAPTUM_FEATURE_PERMUTATION):  # type: ignore[misc]
    """Feature permutation of a function whose outputs are already the targeted values."""

    attribute = captum_entry_point(_permute_selected_outputs)


@register(
    "neuron_feature_ablation",
    family="perturbation",
    multiplies_by_inputs=True,
    display_name="Neuron Feature Ablation",
    paper=ABLATION_PAPER,
)
@fill_doc
class NeuronFeatureAblation(_HooksOnAPrivateModel, captum.attr.NeuronFeatureAblation):  # type: ignore[misc]
    """Feature ablation of the inputs, measured on one neuron of a hidden layer. Captum's
    ``NeuronFeatureAblation`` with attrkit's argument checks.

    %(layer_hooks_on_a_copy)s
    """


def patch_arguments(info: Any, image_shape: tuple[int, ...], patches: int = 8) -> dict[str, Any]:
    """``attribute`` arguments that group an image's pixels into a ``patches x patches``
    grid, for the perturbation methods that need them to run in reasonable time: a
    ``feature_mask`` of the grid's cells (shared by the channels and the batch) for the
    methods that take one, and an ``Occlusion`` window (and stride) of one cell.

    Args:
        info: The method's :class:`~attrkit.MethodInfo`.
        image_shape: The shape of one image, ``C x H x W``.
        patches: Cells per side of the grid.

    Returns:
        The arguments (empty for a method that takes none of them).

    Example:
        >>> import attrkit
        >>> args = patch_arguments(attrkit.method_info("occlusion"), (3, 32, 32), patches=4)
        >>> args["sliding_window_shapes"], args["strides"]
        ((3, 8, 8), (3, 8, 8))
    """
    if len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be C x H x W, got {image_shape}")
    if isinstance(patches, bool) or not isinstance(patches, int) or patches < 1:
        raise ValueError(f"`patches` must be an int >= 1, got {patches!r}")
    channels, height, width = image_shape
    cell = (channels, math.ceil(height / patches), math.ceil(width / patches))
    arguments: dict[str, Any] = {}
    if "feature_mask" in info.attribute_arguments:
        rows = torch.arange(height) // cell[1]
        columns = torch.arange(width) // cell[2]
        grid = rows[:, None] * math.ceil(width / cell[2]) + columns[None, :]
        arguments["feature_mask"] = grid.reshape(1, 1, height, width)
    if "sliding_window_shapes" in info.attribute_arguments:
        arguments["sliding_window_shapes"] = cell
        arguments["strides"] = cell
    return arguments

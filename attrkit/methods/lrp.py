"""Layer-wise relevance propagation: Captum's ``LRP`` and ``LayerLRP``, and zennit's
composites, on the rule engine."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any, Literal, cast, overload

import captum.attr
from captum.attr import LayerAttribution as _CaptumLayerAttribution
from torch import Tensor, nn

from attrkit.core.attribution import GradientAttribution, captum_entry_point, check_callable
from attrkit.core.call import AttributionCall, Result, gradients
from attrkit.core.docs import fill_doc
from attrkit.core.layers import LayerCapture, check_layer
from attrkit.core.registry import register
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.engine.composites import LRP as LRP_RULE
from attrkit.engine.composites import CaptumRules, Composite, Propagation, make_composite
from attrkit.engine.relevance import check_relevance_path
from attrkit.methods.rule_based import RuleBased

__all__ = ["LRP", "LayerLRP", "layer_lrp_with_composite", "lrp_with_composite"]


@fill_doc
def lrp_with_composite(
    model: Callable[..., Any],
    composite: str | None = None,
    *,
    epsilon: float | None = None,
    gamma: float | None = None,
    stabilizer: float | None = None,
    low: float | Tensor | None = None,
    high: float | Tensor | None = None,
    zero_params: str | list[str] | None = None,
    beta_smooth: float | None = None,
) -> LRP:
    """:class:`LRP` with zennit's composite ``composite`` (the registry builds ``lrp`` with
    this: ``attrkit.create("lrp", model, composite="epsilon_plus")``); without one,
    ``LRP(model)``.

    Args:
        %(model)s
        %(lrp_composite)s

    Raises:
        TypeError: for composite parameters without a composite, or ones it does not take.
        ValueError: for a composite zennit does not have.
    """
    parameters = {
        "epsilon": epsilon,
        "gamma": gamma,
        "stabilizer": stabilizer,
        "low": low,
        "high": high,
        "zero_params": zero_params,
        "beta_smooth": beta_smooth,
    }
    return _with_composite(LRP, model, (), composite, parameters)


@fill_doc
def layer_lrp_with_composite(
    model: Callable[..., Any],
    layer: nn.Module | list[nn.Module],
    composite: str | None = None,
    *,
    epsilon: float | None = None,
    gamma: float | None = None,
    stabilizer: float | None = None,
    low: float | Tensor | None = None,
    high: float | Tensor | None = None,
    zero_params: str | list[str] | None = None,
    beta_smooth: float | None = None,
) -> LayerLRP:
    """:class:`LayerLRP` with zennit's composite ``composite`` (the registry builds
    ``layer_lrp`` with this); without one, ``LayerLRP(model, layer)``.

    Args:
        %(model)s
        layer (torch.nn.Module or list[torch.nn.Module]): See :class:`LayerLRP`.
        %(lrp_composite)s

    Raises:
        TypeError: for composite parameters without a composite, or ones it does not take.
        ValueError: for a composite zennit does not have.
    """
    parameters = {
        "epsilon": epsilon,
        "gamma": gamma,
        "stabilizer": stabilizer,
        "low": low,
        "high": high,
        "zero_params": zero_params,
        "beta_smooth": beta_smooth,
    }
    method = _with_composite(LayerLRP, model, (layer,), composite, parameters)
    return cast(LayerLRP, method)


def _with_composite(
    cls: type[LRP],
    model: Callable[..., Any],
    layers: tuple[Any, ...],
    composite: str | None,
    parameters: dict[str, Any],
) -> LRP:
    if composite is None:
        given = [name for name, value in parameters.items() if value is not None]
        if given:
            raise TypeError(
                f"{', '.join(map(repr, given))} are parameters of zennit's composites; "
                "give `composite` too, or set Captum rules on the modules"
            )
        return cls(model, *layers)
    method = cls.__new__(cls)
    method._setup(model, make_composite(composite, **parameters))
    if layers:
        cast(LayerLRP, method)._set_layer(layers[0])
    return method


@register(
    "lrp",
    family="lrp",
    aliases=("layer_wise_relevance_propagation",),
    display_name="LRP",
    multiplies_by_inputs=True,
    has_convergence_delta=True,
    factory=lrp_with_composite,
)
@fill_doc
class LRP(RuleBased, GradientAttribution, captum.attr.LRP):  # type: ignore[misc]
    """Layer-wise relevance propagation (Bach et al., 2015,
    https://doi.org/10.1371/journal.pone.0130140).

    The relevance of the target output is passed back layer by layer, each layer (a linear
    layer, a convolution, a pooling, a batch-norm) dividing it among its inputs by its rule,
    and each activation passing it on unchanged.
    %(lrp_initial_relevance)s

    Captum's rules: a module's ``rule`` attribute (one of Captum's rules from
    ``captum.attr._utils.lrp_rules``: ``EpsilonRule``, ``GammaRule``,
    ``Alpha1_Beta0_Rule``, ``IdentityRule``) applies to every application of a layer op
    inside that module's call, and stays on the module (Captum deletes it after each call);
    every other layer gets Captum's default, ``EpsilonRule()``. zennit's composites come by
    name through the registry: ``attrkit.create("lrp", model, composite=...)`` or
    ``attrkit.attribute(model, x, method="lrp", composite=..., target=...)``
    (:func:`lrp_with_composite`). Either way the rule applies to every application of a layer
    op in every spelling (``nn.Linear``, ``F.linear``, a module applied twice: one rule per
    application, with its own input), and an op on the path from the inputs to the output
    that has no rule and would not pass the relevance on unchanged (a product, a softmax)
    makes the call raise :class:`~attrkit.UnsupportedModelError` naming it.

    Args:
        %(model)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> x = torch.randn(5, 3)
        >>> relevance, delta = attrkit.LRP(model).attribute(
        ...     x, target=1, return_convergence_delta=True)
        >>> relevance.shape
        torch.Size([5, 3])
        >>> plus_flat = attrkit.create("lrp", model, composite="epsilon_plus_flat")
        >>> plus_flat.attribute(x, target=1).shape
        torch.Size([5, 3])
    """

    rules = (LRP_RULE,)

    def __init__(self, model: Callable[..., Any]) -> None:
        self._setup(model, None)

    def _setup(self, model: Callable[..., Any], composite: Composite | None) -> None:
        check_callable(model, "model")
        GradientAttribution.__init__(self, model)
        self._use_rules(model, self.rules)
        self.composite = composite
        if composite is None:
            CaptumRules(model)  # Captum checks the modules' rules when constructed

    @property
    def multiplies_by_inputs(self) -> bool:
        return True

    def has_convergence_delta(self) -> bool:
        return True

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: object = None,
        *,
        return_convergence_delta: Literal[True],
        verbose: bool = False,
    ) -> tuple[TensorOrTupleOfTensorsGeneric, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: Literal[False] = False,
        verbose: bool = False,
    ) -> TensorOrTupleOfTensorsGeneric: ...

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: bool = False,
        verbose: bool = False,
    ) -> TensorOrTupleOfTensorsGeneric | tuple[TensorOrTupleOfTensorsGeneric, Tensor]:
        """The relevance of every input value for the target output.

        Args:
            %(inputs)s
            %(target)s
            %(additional_forward_args)s
            return_convergence_delta (bool, optional): Also return, per example, the
                target output minus the sum of the relevances. Default: ``False``.
            verbose (bool, optional): Print the rule of every layer application.
                Default: ``False``.

        Returns:
            %(returns_attributions)s
            With ``return_convergence_delta=True``, a tuple ``(attributions, delta)``
            where ``delta`` has one entry per example.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            return_convergence_delta=return_convergence_delta,
            verbose=verbose,
        )

    def compute_convergence_delta(
        self, attributions: Tensor | tuple[Tensor, ...], output: Tensor
    ) -> Tensor:
        """Per example, ``output`` (the target output) minus the sum of ``attributions``
        (Captum's ``LRP.compute_convergence_delta``)."""
        tensors = attributions if isinstance(attributions, tuple) else (attributions,)
        total = sum(a.reshape(a.shape[0], math.prod(a.shape[1:])).sum(dim=1) for a in tensors)
        return output.flatten() - cast(Tensor, total).flatten()

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        selected, relevance = self._propagate(call, options["verbose"], call.inputs)
        delta = None
        if options["return_convergence_delta"]:
            delta = self.compute_convergence_delta(relevance, selected.detach())
        return Result(relevance, delta)

    def _propagate(
        self,
        call: AttributionCall,
        verbose: object,
        targets: tuple[Tensor, ...] | Callable[[], tuple[Tensor, ...]],
        captures: Sequence[LayerCapture] = (),
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The target outputs and the relevance of ``targets`` (tensors, or a function
        that returns them once the forward pass, with the layer ``captures``, has run)."""
        if not isinstance(verbose, bool):
            raise TypeError(f"`verbose` must be a bool, got {type(verbose).__name__}")
        composite = self.composite or CaptumRules(self.model)
        propagation = Propagation(composite, verbose)
        with ExitStack() as stack:
            for capture in captures:
                stack.enter_context(capture)
            with propagation:
                output = self._forward(call)
        selected = call.target.select(output, call.batch_size)
        if composite.checks_relevance:
            merged = [node for node in propagation.nodes if getattr(node, "norm", None)]
            check_relevance_path(selected, call.inputs, propagation.nodes, merged)
        tensors = targets() if callable(targets) else targets
        return selected, gradients(selected * selected.detach(), tensors)


@register(
    "layer_lrp",
    family="lrp",
    display_name="Layer LRP",
    multiplies_by_inputs=True,
    has_convergence_delta=True,
    layer_output=True,
    factory=layer_lrp_with_composite,
)
@fill_doc
class LayerLRP(_CaptumLayerAttribution, LRP):  # type: ignore[misc]
    """Layer-wise relevance propagation to a layer: the relevance of the layer's output
    (or input) for the target output, propagated as :class:`~attrkit.LRP` propagates it
    (zennit's composites through the registry: ``attrkit.create("layer_lrp", model,
    layer=..., composite=...)``).

    %(lrp_initial_relevance)s

    Args:
        %(model)s
        layer (torch.nn.Module or list[torch.nn.Module]): The layer (applied once per
            forward pass), or a list of layers: then the result is a list with one entry
            per layer.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> layer_lrp = attrkit.LayerLRP(model, model[2])
        >>> layer_lrp.attribute(torch.randn(5, 3), target=0).shape
        torch.Size([5, 2])
    """

    def __init__(self, model: Callable[..., Any], layer: nn.Module | list[nn.Module]) -> None:
        self._setup(model, None)
        self._set_layer(layer)

    def _set_layer(self, layer: nn.Module | list[nn.Module]) -> None:
        if isinstance(layer, list):
            if not layer:
                raise ValueError("`layer` is an empty list; give at least one layer")
            for item in layer:
                check_layer(item, self.model)
        else:
            check_layer(layer, self.model)
        self.layer = layer
        self.device_ids = getattr(self.model, "device_ids", None)

    @captum_entry_point
    @fill_doc
    def attribute(  # type: ignore[override]
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        verbose: bool = False,
    ) -> Any:
        """The relevance of the layer's output (or input) for the target output.

        Args:
            %(inputs)s
            %(target)s
            %(additional_forward_args)s
            return_convergence_delta (bool, optional): Also return, per example, the
                target output minus the sum of the layer's relevances. Default: ``False``.
            attribute_to_layer_input (bool, optional): The relevance of the layer's input
                instead of its output. Default: ``False``.
            verbose (bool, optional): Print the rule of every layer application.
                Default: ``False``.

        Returns:
            Tensor or tuple[Tensor, ...] or list: The relevance with the layer's output
            (or input) shape: a tensor, or a tuple for a layer with several; for a list of
            layers, a list of those. With ``return_convergence_delta=True``, a tuple
            ``(relevances, delta)`` (for a list of layers, a list of deltas).
        """
        return self._attribute(
            inputs,
            target,
            additional_forward_args,
            return_convergence_delta=return_convergence_delta,
            attribute_to_layer_input=attribute_to_layer_input,
            verbose=verbose,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        layers = self.layer if isinstance(self.layer, list) else [self.layer]
        to_input = options["attribute_to_layer_input"]
        captures = [LayerCapture(layer, inputs=bool(to_input)) for layer in layers]

        def captured() -> tuple[Tensor, ...]:
            return tuple(t for capture in captures for t in capture.tensors)

        selected, relevance = self._propagate(call, options["verbose"], captured, captures)
        per_layer: list[Result] = []
        position = 0
        for capture in captures:
            count = len(capture.tensors)
            tensors = relevance[position : position + count]
            position += count
            delta = None
            if options["return_convergence_delta"]:
                delta = self.compute_convergence_delta(tensors, selected.detach())
            per_layer.append(Result(tensors, delta, is_tuple=capture.is_tuple))
        if not isinstance(self.layer, list):
            return per_layer[0]
        # Captum returns a list for a list of layers: packed here, then passed through
        # unchanged by ``AttributionCall.pack`` (``is_tuple=True`` returns them as they are).
        packed = [r.attributions if r.is_tuple else r.attributions[0] for r in per_layer]
        deltas = [r.delta for r in per_layer] if options["return_convergence_delta"] else None
        return Result(cast(tuple[Tensor, ...], packed), cast(Tensor, deltas), is_tuple=True)

"""Attribution to a hidden layer: its activations, gradient x activation, internal
influence, conductance and integrated gradients.

Each method reads the layer's output (or, with ``attribute_to_layer_input=True``, its
input) during the model's forward pass through :class:`~attrkit.core.layers.LayerCapture`
and returns one attribution per layer tensor, with the layer's shape: a tensor for a layer
with one tensor, a tuple for several. :class:`LayerActivation`,
:class:`LayerGradientXActivation` and :class:`LayerIntegratedGradients` also take a list of
layers and then return a list with one such result per layer, as Captum does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import torch
from captum.attr import LayerAttribution as _CaptumLayerAttribution
from torch import Tensor, nn

from attrkit.core.attribution import GradientAttribution, MultiplyByInputsOption, captum_entry_point
from attrkit.core.call import (
    AttributionCall,
    Result,
    format_baselines,
    format_grad_kwargs,
    gradients,
)
from attrkit.core.docs import fill_doc
from attrkit.core.layers import LayerCapture, capture_layers, check_layers
from attrkit.core.registry import register
from attrkit.core.typing import TargetType
from attrkit.methods.path import BaselineType, convergence_delta, evaluate, integrate
from attrkit.methods.quadrature import check_n_steps, quadrature

__all__ = [
    "InternalInfluence",
    "LayerActivation",
    "LayerConductance",
    "LayerGradientXActivation",
    "LayerIntegratedGradients",
    "layer_gradients",
]

LayerResult = Tensor | tuple[Tensor, ...]
ModuleOrModuleList = nn.Module | list[nn.Module]

CONDUCTANCE_PAPER = (
    "Dhamdhere et al., How Important Is a Neuron?, ICLR 2019, https://arxiv.org/abs/1805.12233"
)
IG_PAPER = (
    "Sundararajan et al., Axiomatic Attribution for Deep Networks, ICML 2017, "
    "https://arxiv.org/abs/1703.01365"
)


def layer_gradients(
    method: GradientAttribution,
    call: AttributionCall,
    layers: tuple[nn.Module, ...],
    to_input: bool,
    grad_kwargs: dict[str, Any] | None = None,
    replace: list[tuple[Tensor, ...]] | None = None,
) -> tuple[tuple[Tensor, ...], list[LayerCapture]]:
    """The gradient of the targeted output of ``method``'s forward pass on ``call`` with
    respect to every tensor of ``layers`` (their inputs with ``to_input``; replaced by
    ``replace``), in layer order, and the layers' captures."""
    with capture_layers(layers, to_input, replace) as captures:
        output = method._forward(call)
    selected = call.target.select(output, call.batch_size)
    tensors = tuple(t for capture in captures for t in capture.tensors)
    return gradients(selected, tensors, **(grad_kwargs or {})), captures


def _layer_result(
    values: tuple[Tensor, ...],
    captures: list[LayerCapture],
    is_list: bool,
    delta: Tensor | None = None,
) -> Result:
    """``values`` (one per layer tensor) structured as Captum returns them."""
    if is_list:
        return Result(values, delta, layers=tuple(len(c.tensors) for c in captures))
    return Result(values, delta, is_tuple=captures[0].is_tuple)


class _LayerMethod(_CaptumLayerAttribution, GradientAttribution):  # type: ignore[misc]
    """A method on one layer (or on a list of layers, where ``multiple_layers``)."""

    multiple_layers = False

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: ModuleOrModuleList,
        device_ids: list[int] | None = None,
    ) -> None:
        GradientAttribution.__init__(self, forward_func)
        if isinstance(layer, list) and not self.multiple_layers:
            raise TypeError(f"`layer`: {type(self).__name__} takes one module, not a list")
        self._layers, self._is_list = check_layers(layer, forward_func)
        self.layer = layer
        self.device_ids = device_ids


@register(
    "layer_activation",
    family="activation",
    multiplies_by_inputs=True,  # (as Captum's property says)
    display_name="Layer Activation",
    paper="Yosinski et al., Understanding Neural Networks Through Deep Visualization, "
    "ICML Deep Learning Workshop 2015, https://arxiv.org/abs/1506.06579",
    layer_output=True,
)
@fill_doc
class LayerActivation(_LayerMethod):
    """The activations of a layer (its output, or its input): no attribution of an
    output, the values the other layer methods weight.

    Computed in one forward pass without gradients.

    Args:
        %(forward_func)s
        %(layers)s
        %(device_ids)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> attrkit.LayerActivation(model, model[1]).attribute(torch.randn(5, 3)).shape
        torch.Size([5, 4])
    """

    multiple_layers = True
    differentiates_inputs = False

    @property
    def multiplies_by_inputs(self) -> bool:
        return True

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        additional_forward_args: object = None,
        attribute_to_layer_input: bool = False,
    ) -> LayerResult | list[LayerResult]:
        """The layer's activations for ``inputs``.

        Args:
            %(inputs_any_dtype)s
            %(additional_forward_args)s
            %(attribute_to_layer_input)s

        Returns:
            %(returns_layer)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs, None, additional_forward_args, attribute_to_layer_input=attribute_to_layer_input
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        with (
            torch.no_grad(),
            capture_layers(self._layers, options["attribute_to_layer_input"]) as captures,
        ):
            self._forward(call)
        values = tuple(t.detach() for capture in captures for t in capture.tensors)
        return _layer_result(values, captures, self._is_list)


@register(
    "layer_gradient_x_activation",
    family="gradient",
    aliases=("layer_gxa", "gradient_x_activation"),
    display_name="Layer Gradient x Activation",
    paper="Shrikumar et al., Not Just a Black Box: Learning Important Features Through "
    "Propagating Activation Differences, 2016, https://arxiv.org/abs/1605.01713",
    multiplies_by_inputs=True,
    layer_output=True,
)
@fill_doc
class LayerGradientXActivation(MultiplyByInputsOption, _LayerMethod):
    """The gradient of the target with respect to a layer's activations, times the
    activations (Input x Gradient on a hidden layer).

    Args:
        %(forward_func)s
        %(layers)s
        %(device_ids)s
        multiply_by_inputs (bool, optional): Multiply the gradient by the activations;
            ``False`` returns the layer gradient alone. Default: ``True``.
        memory_efficient (bool, optional): Move the activations and gradients to the CPU
            before they are multiplied (the result is then on the CPU), as in Captum.
            Default: ``False``.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.LayerGradientXActivation(model, model[1])
        >>> explainer.attribute(torch.randn(5, 3), target=1).shape
        torch.Size([5, 4])
    """

    multiple_layers = True
    differentiates_inputs = False

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: ModuleOrModuleList,
        device_ids: list[int] | None = None,
        multiply_by_inputs: bool = True,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__(forward_func, layer, device_ids)
        self._multiply_by_inputs = multiply_by_inputs
        self._memory_efficient = memory_efficient

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: object = None,
        attribute_to_layer_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> LayerResult | list[LayerResult]:
        """Gradient x activation of the layer for the target output.

        Args:
            %(inputs_any_dtype)s
            %(target)s
            %(additional_forward_args)s
            %(attribute_to_layer_input)s
            %(grad_kwargs)s

        Returns:
            %(returns_layer)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            attribute_to_layer_input=attribute_to_layer_input,
            grad_kwargs=grad_kwargs,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        grad_kwargs = format_grad_kwargs(options["grad_kwargs"])
        grads, captures = layer_gradients(
            self, call, self._layers, options["attribute_to_layer_input"], grad_kwargs
        )
        activations = tuple(t.detach() for capture in captures for t in capture.tensors)
        if self._memory_efficient:
            grads = tuple(g.cpu() for g in grads)
            activations = tuple(a.cpu() for a in activations)
        if self._multiply_by_inputs:
            grads = tuple(g * a for g, a in zip(grads, activations, strict=True))
        return _layer_result(grads, captures, self._is_list)


class _LayerPathMethod(_LayerMethod):
    """A layer method that integrates along the straight path from the baselines to the
    inputs, in input space."""

    def _path(self, call: AttributionCall, baselines: object) -> tuple[tuple[Tensor, ...], ...]:
        """The path's start (the baselines, one per example) and end (the inputs)."""
        formatted = format_baselines(baselines, call.inputs)
        ends = tuple(leaf.detach() for leaf in call.inputs)
        starts = tuple(b.expand_as(x) for b, x in zip(formatted, ends, strict=True))
        return starts, ends

    def _layer_gradients_at(
        self, call: AttributionCall, options: dict[str, Any], captured: list[list[LayerCapture]]
    ) -> Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]]:
        """The integrand: the layer gradients at path points (each evaluation's captures
        are appended to ``captured``)."""
        grad_kwargs = format_grad_kwargs(options["grad_kwargs"])

        def integrand(examples: Tensor, points: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            grads, captures = layer_gradients(
                self,
                call.take(examples, points),
                self._layers,
                options["attribute_to_layer_input"],
                grad_kwargs,
            )
            captured.append(captures)
            return grads + tuple(t.detach() for c in captures for t in c.tensors)

        return integrand


@register(
    "internal_influence",
    family="path",
    display_name="Internal Influence",
    paper="Leino et al., Influence-Directed Explanations for Deep Convolutional Networks, "
    "ITC 2018, https://arxiv.org/abs/1802.03788",
    layer_output=True,
)
@fill_doc
class InternalInfluence(_LayerPathMethod):
    """Internal influence (Leino et al., 2018): the gradient of the target with respect to
    a layer, integrated along the straight path from the baselines to the inputs (in input
    space) with a quadrature rule; integrated gradients of a layer without the
    multiplication by the activation difference.

    Args:
        %(forward_func)s
        %(layer)s
        %(device_ids)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.InternalInfluence(model, model[1])
        >>> explainer.attribute(torch.randn(5, 3), target=0, n_steps=8).shape
        torch.Size([5, 4])
    """

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        attribute_to_layer_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> LayerResult:
        """Internal influence of the layer on the target output.

        Args:
            %(inputs)s
            %(baselines)s
            %(target)s
            %(additional_forward_args)s
            %(n_steps)s
            %(method)s
            %(internal_batch_size)s
            %(attribute_to_layer_input)s
            %(grad_kwargs)s

        Returns:
            %(returns_layer)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            attribute_to_layer_input=attribute_to_layer_input,
            grad_kwargs=grad_kwargs,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        starts, ends = self._path(call, options["baselines"])
        captured: list[list[LayerCapture]] = []
        gradients_at = self._layer_gradients_at(call, options, captured)

        def integrand(examples: Tensor, points: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            values = gradients_at(examples, points)
            return values[: len(values) // 2]  # the gradients, not the activations

        totals = integrate(
            integrand,
            starts,
            ends,
            method=options["method"],
            n_steps=options["n_steps"],
            internal_batch_size=options["internal_batch_size"],
        )
        return _layer_result(totals, captured[-1], self._is_list)


@register(
    "layer_conductance",
    family="path",
    display_name="Layer Conductance",
    paper=CONDUCTANCE_PAPER,
    multiplies_by_inputs=True,
    has_convergence_delta=True,
    layer_output=True,
)
@fill_doc
class LayerConductance(_LayerPathMethod):
    """Conductance of a layer's neurons (Dhamdhere et al., 2019): the flow of the target's
    integrated gradient through each neuron,
    ``integral over alpha of dF/dy(x_alpha) * dy(x_alpha)/dalpha``, along the straight
    path ``x_alpha`` from the baselines to the inputs.

    As in Captum, the path is evaluated at the ``n_steps + 1`` points of the quadrature
    rule ``method``, and the integral is the sum over consecutive points of the layer
    gradient at the first point times the difference of the layer's values; the
    conductances of a layer add up to ``F(inputs) - F(baselines)`` up to the error the
    convergence delta measures.

    Args:
        %(forward_func)s
        %(layer)s
        %(device_ids)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
        ...                             torch.nn.Linear(4, 1))
        >>> explainer = attrkit.LayerConductance(model, model[1])
        >>> attributions, delta = explainer.attribute(
        ...     torch.randn(5, 3), n_steps=200, method="riemann_trapezoid",
        ...     return_convergence_delta=True)
        >>> attributions.shape, bool(delta.abs().max() < 1e-3)
        (torch.Size([5, 4]), True)
    """

    @property
    def multiplies_by_inputs(self) -> bool:
        return True

    def has_convergence_delta(self) -> bool:
        return True

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        *,
        return_convergence_delta: Literal[True],
        attribute_to_layer_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> tuple[LayerResult, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: Literal[False] = False,
        attribute_to_layer_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> LayerResult: ...

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> LayerResult | tuple[LayerResult, Tensor]:
        """Conductance of the layer's neurons for the target output.

        Args:
            %(inputs)s
            %(baselines)s
            %(target)s
            %(additional_forward_args)s
            %(n_steps)s
            %(method)s
            %(internal_batch_size)s
            %(return_convergence_delta)s
            %(attribute_to_layer_input)s
            %(grad_kwargs)s

        Returns:
            %(returns_layer)s
            With ``return_convergence_delta=True``, a tuple ``(attributions, delta)``.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=return_convergence_delta,
            attribute_to_layer_input=attribute_to_layer_input,
            grad_kwargs=grad_kwargs,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        n_steps = options["n_steps"]
        check_n_steps(n_steps)  # n_steps + 1 points: two or more for every rule, as in Captum
        _, alphas = quadrature(options["method"], n_steps + 1)
        starts, ends = self._path(call, options["baselines"])
        captured: list[list[LayerCapture]] = []
        values = evaluate(
            self._layer_gradients_at(call, options, captured),
            starts,
            ends,
            alphas=torch.from_numpy(alphas),
            internal_batch_size=options["internal_batch_size"],
        )
        half, batch = len(values) // 2, call.batch_size
        attributions = tuple(
            torch.sum(
                ((activation[batch:] - activation[:-batch]) * grad[:-batch]).reshape(
                    n_steps, batch, *grad.shape[1:]
                ),
                dim=0,
            )
            for grad, activation in zip(values[:half], values[half:], strict=True)
        )
        delta = None
        if options["return_convergence_delta"]:
            delta = convergence_delta(self._forward, call, attributions, starts)
        return _layer_result(attributions, captured[-1], self._is_list, delta)


@register(
    "layer_integrated_gradients",
    family="path",
    aliases=("layer_ig", "lig"),
    display_name="Layer Integrated Gradients",
    paper=IG_PAPER,
    multiplies_by_inputs=True,
    has_convergence_delta=True,
    layer_output=True,
)
@fill_doc
class LayerIntegratedGradients(MultiplyByInputsOption, _LayerMethod):
    """Integrated gradients of a layer (Sundararajan et al., 2017): the layer's values move
    along the straight path from their values at the baselines to their values at the
    inputs (the rest of the model computing with them), and the target's gradient with
    respect to them is integrated with a quadrature rule, times the difference of the
    values. The attributions of all the layers' tensors add up to
    ``F(inputs) - F(baselines)`` (when the layers together carry everything the output
    depends on), up to the quadrature error the convergence delta measures.

    The quadrature is :class:`~attrkit.IntegratedGradients`'s (the same points, weights
    and summation), so on a layer that passes the inputs on unchanged both give the same
    numbers. The layers of a list are the integral's variables, each set to its own
    path: where one layer feeds another, its attribution counts only the paths to the
    output that do not cross the other (Captum asks for layers that do not depend on each
    other). The inputs themselves are not differentiated: they may be integer tensors
    (token ids for an embedding layer).

    Args:
        %(forward_func)s
        %(layers)s
        %(device_ids)s
        multiply_by_inputs (bool, optional): Multiply the integrated gradient by the
            difference of the layer's values at the inputs and at the baselines.
            Default: ``True``.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Flatten(),
        ...                             torch.nn.Linear(12, 2))
        >>> tokens = torch.randint(1, 10, (2, 3))
        >>> lig = attrkit.LayerIntegratedGradients(model, model[0])
        >>> attributions, delta = lig.attribute(tokens, baselines=0, target=1,
        ...                                     return_convergence_delta=True)
        >>> attributions.shape, bool(delta.abs().max() < 1e-5)
        (torch.Size([2, 3, 4]), True)
    """

    multiple_layers = True
    differentiates_inputs = False

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: ModuleOrModuleList,
        device_ids: list[int] | None = None,
        multiply_by_inputs: bool = True,
    ) -> None:
        super().__init__(forward_func, layer, device_ids)
        self._multiply_by_inputs = multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return True

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        *,
        return_convergence_delta: Literal[True],
        attribute_to_layer_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> tuple[LayerResult | list[LayerResult], Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: Literal[False] = False,
        attribute_to_layer_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> LayerResult | list[LayerResult]: ...

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> LayerResult | list[LayerResult] | tuple[LayerResult | list[LayerResult], Tensor]:
        """Integrated gradients of the layer for the target output.

        Args:
            %(inputs_any_dtype)s
            %(baselines)s
            %(target)s
            %(additional_forward_args)s
            %(n_steps)s
            %(method)s
            %(internal_batch_size)s
            %(return_convergence_delta)s
            %(attribute_to_layer_input)s
            %(grad_kwargs)s

        Returns:
            %(returns_layer)s
            With ``return_convergence_delta=True``, a tuple ``(attributions, delta)``.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=return_convergence_delta,
            attribute_to_layer_input=attribute_to_layer_input,
            grad_kwargs=grad_kwargs,
        )

    def _layer_values(
        self, call: AttributionCall, to_input: bool
    ) -> tuple[tuple[Tensor, ...], list[LayerCapture]]:
        """The layers' tensors (flat, in layer order) for ``call``'s inputs."""
        with torch.no_grad(), capture_layers(self._layers, to_input) as captures:
            self._forward(call)
        return tuple(t.detach() for c in captures for t in c.tensors), captures

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        to_input = options["attribute_to_layer_input"]
        grad_kwargs = format_grad_kwargs(options["grad_kwargs"])
        baselines = format_baselines(options["baselines"], call.inputs)
        inputs = tuple(leaf.detach() for leaf in call.inputs)
        input_starts = tuple(b.expand_as(x) for b, x in zip(baselines, inputs, strict=True))
        ends, captures = self._layer_values(call, to_input)
        starts, _ = self._layer_values(
            AttributionCall(input_starts, call.is_tuple, call.target, call.additional_forward_args),
            to_input,
        )
        counts = [len(c.tensors) for c in captures]

        def integrand(examples: Tensor, points: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            leaves = iter(p.detach().requires_grad_() for p in points)
            replace = [tuple(next(leaves) for _ in range(count)) for count in counts]
            rows = call.take(examples, tuple(x[examples.to(x.device)] for x in inputs))
            grads, _ = layer_gradients(self, rows, self._layers, to_input, grad_kwargs, replace)
            return grads

        totals = integrate(
            integrand,
            starts,
            ends,
            method=options["method"],
            n_steps=options["n_steps"],
            internal_batch_size=options["internal_batch_size"],
        )
        if self._multiply_by_inputs:
            totals = tuple(t * (e - s) for t, e, s in zip(totals, ends, starts, strict=True))
        delta = None
        if options["return_convergence_delta"]:
            delta = convergence_delta(self._forward, call, totals, input_starts)
        return _layer_result(totals, captures, self._is_list, delta)

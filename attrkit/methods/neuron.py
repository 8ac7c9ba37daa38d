"""Attribution of one neuron of a hidden layer to the inputs: its gradient (plain, or with
the Deconvolution / Guided Backpropagation ReLU rule), its integrated gradients, and its
conductance (the target's attribution that flows through it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from captum.attr import NeuronAttribution as _CaptumNeuronAttribution
from torch import Tensor, nn

from attrkit.core.attribution import (
    GradientAttribution,
    MultiplyByInputsOption,
    captum_entry_point,
    check_callable,
)
from attrkit.core.call import AttributionCall, format_baselines, format_grad_kwargs, gradients
from attrkit.core.docs import fill_doc
from attrkit.core.layers import LayerCapture, NeuronSelector, check_layer, select_neuron
from attrkit.core.registry import register
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.engine.rules.relu import DECONVOLUTION, GUIDED_BACKPROP
from attrkit.methods.layer import CONDUCTANCE_PAPER, IG_PAPER
from attrkit.methods.modified_relu import ReluRuleBased
from attrkit.methods.path import BaselineType, Integrand, integrate

__all__ = [
    "NeuronConductance",
    "NeuronDeconvolution",
    "NeuronGradient",
    "NeuronGuidedBackprop",
    "NeuronIntegratedGradients",
]


class _NeuronMethod(_CaptumNeuronAttribution, GradientAttribution):  # type: ignore[misc]
    """A method on one neuron of ``layer``."""

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: nn.Module,
        device_ids: list[int] | None = None,
        *,
        model_argument: str = "forward_func",
    ) -> None:
        check_callable(forward_func, model_argument)
        GradientAttribution.__init__(self, forward_func)
        self.layer = check_layer(layer, forward_func)
        self.device_ids = device_ids

    def _neuron_gradients(
        self, call: AttributionCall, selector: object, to_input: bool
    ) -> tuple[Tensor, ...]:
        """The gradient of the selected neuron with respect to ``call.inputs``."""
        with LayerCapture(self.layer, inputs=to_input) as captured:
            self._forward(call)
        return gradients(select_neuron(captured, selector, call.batch_size), call.inputs)

    def _path(
        self, call: AttributionCall, baselines: object
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """The straight path's start (the baselines, one per example) and end (the
        inputs)."""
        formatted = format_baselines(baselines, call.inputs)
        ends = tuple(leaf.detach() for leaf in call.inputs)
        return tuple(b.expand_as(x) for b, x in zip(formatted, ends, strict=True)), ends

    def _integrated(
        self, call: AttributionCall, integrand: Integrand, options: dict[str, Any]
    ) -> tuple[Tensor, ...]:
        """``integrand`` integrated along the path, times ``inputs - baselines`` where
        the method multiplies by the inputs."""
        starts, ends = self._path(call, options["baselines"])
        totals = integrate(
            integrand,
            starts,
            ends,
            method=options["method"],
            n_steps=options["n_steps"],
            internal_batch_size=options["internal_batch_size"],
        )
        if self.multiplies_by_inputs:
            totals = tuple(t * (e - s) for t, e, s in zip(totals, ends, starts, strict=True))
        return totals


@register(
    "neuron_gradient",
    family="gradient",
    display_name="Neuron Gradient",
    paper="Simonyan et al., Deep Inside Convolutional Networks: Visualising Image "
    "Classification Models and Saliency Maps, ICLR workshop 2014, "
    "https://arxiv.org/abs/1312.6034",
)
@fill_doc
class NeuronGradient(_NeuronMethod):
    """The gradient of one neuron of a hidden layer with respect to the inputs.

    Args:
        %(forward_func)s
        %(layer)s
        %(device_ids)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.NeuronGradient(model, model[0])
        >>> torch.equal(explainer.attribute(torch.randn(5, 3), neuron_selector=2),
        ...             model[0].weight[2].detach().expand(5, 3))
        True
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: nn.Module,
        device_ids: list[int] | None = None,
    ) -> None:
        super().__init__(forward_func, layer, device_ids)

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        neuron_selector: NeuronSelector,
        additional_forward_args: object = None,
        attribute_to_neuron_input: bool = False,
    ) -> TensorOrTupleOfTensorsGeneric:
        """Attribute one neuron of the layer to ``inputs``.

        Args:
            %(inputs)s
            %(neuron_selector)s
            %(additional_forward_args)s
            %(attribute_to_neuron_input)s

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            None,
            additional_forward_args,
            neuron_selector=neuron_selector,
            attribute_to_neuron_input=attribute_to_neuron_input,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...]:
        return self._neuron_gradients(
            call, options["neuron_selector"], options["attribute_to_neuron_input"]
        )


class _NeuronModifiedRelu(ReluRuleBased, NeuronGradient):
    """The gradient of one neuron of ``layer`` with respect to the inputs, every ReLU of
    the forward pass following the method's rule."""

    def __init__(
        self,
        model: Callable[..., Any],
        layer: nn.Module,
        device_ids: list[int] | None = None,
        *,
        use_relu_grad_output: bool,
    ) -> None:
        _NeuronMethod.__init__(self, model, layer, device_ids, model_argument="model")
        self._use_relu_rule(model, use_relu_grad_output)


@register(
    "neuron_deconvolution",
    family="relu_rules",
    aliases=("neuron_deconv",),
    display_name="Neuron Deconvolution",
)
@fill_doc
class NeuronDeconvolution(_NeuronModifiedRelu):
    """Deconvolution of one neuron of a hidden layer: the gradient of the neuron with
    respect to the inputs, every ReLU passing back ``relu(grad_output)``.

    Args:
        %(model)s
        %(layer)s
        %(device_ids)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.NeuronDeconvolution(model, model[0])
        >>> explainer.attribute(torch.randn(5, 3), neuron_selector=2).shape
        torch.Size([5, 3])
    """

    rules = (DECONVOLUTION,)

    def __init__(
        self, model: Callable[..., Any], layer: nn.Module, device_ids: list[int] | None = None
    ) -> None:
        super().__init__(model, layer, device_ids, use_relu_grad_output=True)


@register(
    "neuron_guided_backprop",
    family="relu_rules",
    aliases=("neuron_gbp",),
    display_name="Neuron Guided Backpropagation",
)
@fill_doc
class NeuronGuidedBackprop(_NeuronModifiedRelu):
    """Guided backpropagation of one neuron of a hidden layer: the gradient of the neuron
    with respect to the inputs, every ReLU passing back ``relu(grad_output) * (input > 0)``.

    Args:
        %(model)s
        %(layer)s
        %(device_ids)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.NeuronGuidedBackprop(model, model[2])
        >>> explainer.attribute(torch.randn(5, 3), neuron_selector=(1,)).shape
        torch.Size([5, 3])
    """

    rules = (GUIDED_BACKPROP,)

    def __init__(
        self, model: Callable[..., Any], layer: nn.Module, device_ids: list[int] | None = None
    ) -> None:
        super().__init__(model, layer, device_ids, use_relu_grad_output=False)


@register(
    "neuron_integrated_gradients",
    family="path",
    aliases=("neuron_ig",),
    display_name="Neuron Integrated Gradients",
    paper=IG_PAPER,
    multiplies_by_inputs=True,
)
@fill_doc
class NeuronIntegratedGradients(MultiplyByInputsOption, _NeuronMethod):
    """Integrated gradients of one neuron of a hidden layer: the neuron's gradient with
    respect to the inputs, integrated along the straight path from the baselines to the
    inputs with :class:`~attrkit.IntegratedGradients`'s quadrature, times
    ``inputs - baselines``. The attributions add up to the neuron's value at the inputs
    minus its value at the baselines, up to the quadrature error.

    Args:
        %(forward_func)s
        %(layer)s
        %(device_ids)s
        multiply_by_inputs (bool, optional): Multiply the integrated gradient by
            ``inputs - baselines``. Default: ``True``.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.NeuronIntegratedGradients(model, model[1])
        >>> x = torch.randn(5, 3)
        >>> attributions = explainer.attribute(x, neuron_selector=2, n_steps=64)
        >>> torch.allclose(attributions.sum(dim=1), model[1](model[0](x))[:, 2]
        ...                - torch.tanh(model[0].bias[2]), atol=1e-5)
        True
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: nn.Module,
        device_ids: list[int] | None = None,
        multiply_by_inputs: bool = True,
    ) -> None:
        super().__init__(forward_func, layer, device_ids)
        self._multiply_by_inputs = multiply_by_inputs

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        neuron_selector: NeuronSelector,
        baselines: BaselineType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        attribute_to_neuron_input: bool = False,
    ) -> TensorOrTupleOfTensorsGeneric:
        """Integrated gradients of one neuron of the layer.

        Args:
            %(inputs)s
            %(neuron_selector)s
            %(baselines)s
            %(additional_forward_args)s
            %(n_steps)s
            %(method)s
            %(internal_batch_size)s
            %(attribute_to_neuron_input)s

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            None,
            additional_forward_args,
            neuron_selector=neuron_selector,
            baselines=baselines,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            attribute_to_neuron_input=attribute_to_neuron_input,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...]:
        selector, to_input = options["neuron_selector"], options["attribute_to_neuron_input"]
        return self._integrated(
            call,
            lambda examples, points: self._neuron_gradients(
                call.take(examples, points), selector, to_input
            ),
            options,
        )


@register(
    "neuron_conductance",
    family="path",
    display_name="Neuron Conductance",
    paper=CONDUCTANCE_PAPER,
    multiplies_by_inputs=True,
)
@fill_doc
class NeuronConductance(MultiplyByInputsOption, _NeuronMethod):
    """Conductance of one neuron (Dhamdhere et al., 2019): the part of the target's
    integrated gradient of each input that flows through the neuron ``y``,
    ``(x - b) * integral over alpha of dF/dy(x_alpha) * dy/dx(x_alpha)``, along the
    straight path ``x_alpha`` from the baselines to the inputs, with a quadrature rule.
    Summed over a layer's neurons, the conductances give the inputs' integrated gradients.

    A ``neuron_selector`` that picks several neurons (slices, or a callable that sums a
    part of the layer) gets the sum of their conductances,
    ``integral of sum_j dF/dy_j * dy_j/dx`` (Captum multiplies the sums,
    ``(sum_j dF/dy_j) * (sum_k dy_k/dx)``, which mixes the neurons); for one neuron both
    agree. A callable that does more than pick and sum neurons has no conductance.

    Args:
        %(forward_func)s
        %(layer)s
        %(device_ids)s
        multiply_by_inputs (bool, optional): Multiply the integral by
            ``inputs - baselines``. Default: ``True``.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
        ...                             torch.nn.Linear(4, 1))
        >>> x = torch.randn(5, 3)
        >>> explainer = attrkit.NeuronConductance(model, model[1])
        >>> per_neuron = sum(explainer.attribute(x, neuron_selector=j, n_steps=32)
        ...                  for j in range(4))
        >>> ig = attrkit.IntegratedGradients(model).attribute(
        ...     x, n_steps=32, method="riemann_trapezoid")
        >>> torch.allclose(per_neuron, ig, atol=1e-6)
        True
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: nn.Module,
        device_ids: list[int] | None = None,
        multiply_by_inputs: bool = True,
    ) -> None:
        super().__init__(forward_func, layer, device_ids)
        self._multiply_by_inputs = multiply_by_inputs

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        neuron_selector: NeuronSelector,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "riemann_trapezoid",
        internal_batch_size: int | None = None,
        attribute_to_neuron_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """Conductance of one neuron of the layer for the target output.

        Args:
            %(inputs)s
            %(neuron_selector)s
            %(baselines)s
            %(target)s
            %(additional_forward_args)s
            %(n_steps)s
            method (str, optional): The quadrature rule (see
                :class:`~attrkit.IntegratedGradients`). Default: ``"riemann_trapezoid"``
                (Captum's default for this method).
            %(internal_batch_size)s
            %(attribute_to_neuron_input)s
            %(grad_kwargs)s

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            neuron_selector=neuron_selector,
            baselines=baselines,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            attribute_to_neuron_input=attribute_to_neuron_input,
            grad_kwargs=grad_kwargs,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...]:
        selector, to_input = options["neuron_selector"], options["attribute_to_neuron_input"]
        grad_kwargs = format_grad_kwargs(options["grad_kwargs"])

        def integrand(examples: Tensor, points: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            rows = call.take(examples, points)
            with LayerCapture(self.layer, inputs=to_input) as captured:
                output = self._forward(rows)
            selected = rows.target.select(output, rows.batch_size)
            layer_grads = gradients(selected, captured.tensors, **grad_kwargs)
            # dF/dy held constant: the gradient of sum_j dF/dy_j * y_j over the selected
            # neurons is sum_j dF/dy_j * dy_j/dx.
            weighted = tuple(
                g.detach() * y for g, y in zip(layer_grads, captured.tensors, strict=True)
            )
            return gradients(select_neuron(weighted, selector, rows.batch_size), rows.inputs)

        return self._integrated(call, integrand, options)

"""Deconvolution and guided backpropagation of one neuron of a hidden layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from captum.attr import NeuronAttribution as _CaptumNeuronAttribution
from torch import Tensor, nn

from attrkit.core.attribution import GradientAttribution, captum_entry_point, check_callable
from attrkit.core.call import AttributionCall, gradients
from attrkit.core.docs import fill_doc
from attrkit.core.layers import LayerCapture, NeuronSelector, check_layer, select_neuron
from attrkit.core.registry import register
from attrkit.core.typing import TensorOrTupleOfTensorsGeneric
from attrkit.engine.rules.relu import DECONVOLUTION, GUIDED_BACKPROP
from attrkit.methods.modified_relu import ReluRuleBased

__all__ = ["NeuronDeconvolution", "NeuronGuidedBackprop"]


class _NeuronModifiedRelu(ReluRuleBased, _CaptumNeuronAttribution, GradientAttribution):  # type: ignore[misc]
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
        check_callable(model, "model")
        GradientAttribution.__init__(self, model)
        self.layer = check_layer(layer, model)
        self.device_ids = device_ids
        self._use_relu_rule(model, use_relu_grad_output)

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
            attribute_to_neuron_input (bool, optional): Select the neuron in the layer's
                input instead of its output. Default: ``False``.

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
        with LayerCapture(self.layer, inputs=options["attribute_to_neuron_input"]) as captured:
            self._forward(call)
        selected = select_neuron(captured, options["neuron_selector"], call.batch_size)
        return gradients(selected, call.inputs)


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

"""The plain gradient family: Saliency and Input x Gradient."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from attrkit.core.attribution import GradientAttribution, captum_entry_point
from attrkit.core.call import AttributionCall
from attrkit.core.docs import fill_doc
from attrkit.core.registry import register
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric

__all__ = ["InputXGradient", "Saliency"]


@register(
    "saliency",
    family="gradient",
    aliases=("gradient", "vanilla_gradient"),
    display_name="Saliency",
    paper="Simonyan et al., Deep Inside Convolutional Networks: Visualising Image "
    "Classification Models and Saliency Maps, ICLR workshop 2014, "
    "https://arxiv.org/abs/1312.6034",
)
@fill_doc
class Saliency(GradientAttribution):
    """Saliency (Simonyan et al., 2014): the gradient of the target with respect to the
    inputs, by default its absolute value.

    Args:
        %(forward_func)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Linear(3, 2)
        >>> saliency = attrkit.Saliency(model)
        >>> x = torch.randn(4, 3)
        >>> torch.equal(saliency.attribute(x, target=1, abs=False),
        ...             model.weight[1].detach().expand(4, 3))
        True
    """

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        super().__init__(forward_func)

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        abs: bool = True,
        additional_forward_args: object = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """The gradient of the target output with respect to ``inputs``.

        Args:
            %(inputs)s
            %(target)s
            abs (bool, optional): Return the absolute value of the gradient.
                Default: ``True``.
            %(additional_forward_args)s

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(inputs, target, additional_forward_args, abs=abs)  # type: ignore[no-any-return]

    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...]:
        grads = self._gradients(call)
        return tuple(torch.abs(g) for g in grads) if options["abs"] else grads


@register(
    "input_x_gradient",
    family="gradient",
    aliases=("ixg", "gradient_x_input"),
    display_name="Input x Gradient",
    paper="Shrikumar et al., Not Just a Black Box: Learning Important Features Through "
    "Propagating Activation Differences, 2016, https://arxiv.org/abs/1605.01713",
    multiplies_by_inputs=True,
)
@fill_doc
class InputXGradient(GradientAttribution):
    """Input x Gradient: the inputs multiplied elementwise by the gradient of the target.

    Args:
        %(forward_func)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Linear(3, 1)
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(attrkit.InputXGradient(model).attribute(x),
        ...                x * model.weight.detach())
        True
    """

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        super().__init__(forward_func)

    @property
    def multiplies_by_inputs(self) -> bool:
        return True

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: object = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """The inputs times the gradient of the target output with respect to them.

        Args:
            %(inputs)s
            %(target)s
            %(additional_forward_args)s

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(inputs, target, additional_forward_args)  # type: ignore[no-any-return]

    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...]:
        grads = self._gradients(call)
        return tuple(x.detach() * g for x, g in zip(call.inputs, grads, strict=True))

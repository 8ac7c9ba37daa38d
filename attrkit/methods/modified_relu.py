"""Deconvolution and guided backpropagation: gradients with overridden ReLU backward rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor

from attrkit.core.attribution import GradientAttribution, captum_entry_point, check_callable
from attrkit.core.call import AttributionCall
from attrkit.core.docs import fill_doc
from attrkit.core.registry import register
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.engine.rule import Rule
from attrkit.engine.rules.relu import DECONVOLUTION, GUIDED_BACKPROP
from attrkit.methods.rule_based import RuleBased

__all__ = [
    "Deconvolution",
    "GuidedBackprop",
    "ModifiedReluGradientAttribution",
    "NoReluWarning",
    "ReluRuleBased",
]


class NoReluWarning(UserWarning):
    """The model applied no ReLU, so the attribution equals the plain gradient."""


class ReluRuleBased(RuleBased):
    """Mixin of the methods with one ReLU rule: the subclass's :attr:`rules`, or, for a
    class that declares none (``ModifiedReluGradientAttribution`` used directly, as in
    Captum), the rule ``use_relu_grad_output`` picks."""

    no_application_warning: ClassVar[type[Warning] | None] = NoReluWarning

    def _use_relu_rule(self, model: Callable[..., Any], use_relu_grad_output: bool) -> None:
        self.use_relu_grad_output = use_relu_grad_output
        rules: tuple[Rule, ...] = self.rules or (
            (DECONVOLUTION,) if use_relu_grad_output else (GUIDED_BACKPROP,)
        )
        self._use_rules(model, rules)


class ModifiedReluGradientAttribution(ReluRuleBased, GradientAttribution):
    """Gradient of the target with every ReLU's backward replaced by a rule.

    The rule applies to every ReLU application of the forward pass, in every spelling:
    ``nn.ReLU`` modules (reused, in place, or created inside ``forward``), ``F.relu``,
    ``torch.relu``, ``Tensor.relu`` and their in-place forms. Nothing else in the graph
    changes, nothing is installed on the model, and concurrent calls from other threads are
    unaffected.

    A subclass declares its rule (``rules = (DECONVOLUTION,)``, an
    :class:`~attrkit.engine.rules.relu.ReluRule`); used directly, as in Captum, the class
    applies the rule ``use_relu_grad_output`` picks.

    Args:
        model (torch.nn.Module or Callable): The model. TorchScript models are refused
            with :class:`~attrkit.engine.reach.UnsupportedModelError`.
        use_relu_grad_output (bool): ``True`` for the deconvolution rule
            (``relu(grad_output)``), ``False`` for guided backpropagation
            (``relu(grad_output) * (input > 0)``). Default: ``False``.
    """

    def __init__(self, model: Callable[..., Any], use_relu_grad_output: bool = False) -> None:
        check_callable(model, "model")
        GradientAttribution.__init__(self, model)
        self._use_relu_rule(model, use_relu_grad_output)

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: object = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """Attribute the target output to ``inputs`` with the method's ReLU rule.

        Args:
            %(inputs)s
            %(target)s
            %(additional_forward_args)s

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(inputs, target, additional_forward_args)  # type: ignore[no-any-return]

    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...]:
        return self._gradients(call)


@register(
    "guided_backprop",
    family="relu_rules",
    aliases=("gbp", "guided_backpropagation"),
    display_name="Guided Backpropagation",
)
@fill_doc
class GuidedBackprop(ModifiedReluGradientAttribution):
    """Guided backpropagation (Springenberg et al., 2015, https://arxiv.org/abs/1412.6806).

    The gradient of the target with respect to the inputs, where every ReLU passes back
    ``relu(grad_output) * (input > 0)``: only positive gradients, and only through units
    that were active. Unlike Captum's, this applies to functional and reused ReLUs too.

    Args:
        %(model)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> gbp = attrkit.GuidedBackprop(model)
        >>> gbp.attribute(torch.randn(5, 3), target=1).shape
        torch.Size([5, 3])
    """

    rules = (GUIDED_BACKPROP,)

    def __init__(self, model: Callable[..., Any]) -> None:
        super().__init__(model, use_relu_grad_output=False)


@register(
    "deconvolution",
    family="relu_rules",
    aliases=("deconv", "deconvnet"),
    display_name="Deconvolution",
)
@fill_doc
class Deconvolution(ModifiedReluGradientAttribution):
    """Deconvolution (Zeiler & Fergus, 2014, https://arxiv.org/abs/1311.2901).

    The gradient of the target with respect to the inputs, where every ReLU passes back
    ``relu(grad_output)``, whatever the sign of its input. Unlike Captum's, this applies
    to functional and reused ReLUs too.

    Args:
        %(model)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> deconv = attrkit.Deconvolution(model)
        >>> attributions = deconv.attribute(torch.randn(5, 3), target=0)
        >>> attributions.shape
        torch.Size([5, 3])
    """

    rules = (DECONVOLUTION,)

    def __init__(self, model: Callable[..., Any]) -> None:
        super().__init__(model, use_relu_grad_output=True)

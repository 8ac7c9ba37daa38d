"""Deconvolution and guided backpropagation: gradients with overridden ReLU backward rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from attrkit._call import AttributionCall
from attrkit._docs import fill_doc
from attrkit._typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit._warnings import warn_at_caller
from attrkit.attribution import GradientAttribution, captum_entry_point, check_callable
from attrkit.registry import register
from attrkit.relu_override import (
    ReluOverride,
    ReluRule,
    check_overridable,
    deconvolution_relu,
    guided_backprop_relu,
)

__all__ = [
    "Deconvolution",
    "GuidedBackprop",
    "ModifiedReluGradientAttribution",
    "NoReluWarning",
    "ReluRuleForward",
]


class NoReluWarning(UserWarning):
    """The model applied no ReLU, so the attribution equals the plain gradient."""


class ReluRuleForward:
    """Mixin: forward passes run with every ReLU given the deconvolution or the guided
    backpropagation rule (see :class:`~attrkit.relu_override.ReluOverride`).

    Used by :class:`ModifiedReluGradientAttribution` and the neuron variants; the class
    calls :meth:`_use_relu_rule` from its constructor.
    """

    model: Callable[..., Any]
    _rule: ReluRule
    _warned_no_relu: bool

    def _use_relu_rule(self, model: Callable[..., Any], use_relu_grad_output: bool) -> None:
        check_overridable(model)
        self.model = model
        self.use_relu_grad_output = use_relu_grad_output
        self._rule = deconvolution_relu if use_relu_grad_output else guided_backprop_relu
        self._warned_no_relu = False

    def _forward_context(self) -> _RuleForward:
        check_overridable(self.model)
        return _RuleForward(self)

    def _warn_no_relu(self) -> None:
        if not self._warned_no_relu:
            self._warned_no_relu = True
            warn_at_caller(
                f"{type(self).__name__}: the model applied no ReLU, so the attribution "
                "equals the plain gradient (this warning is shown once per object)",
                NoReluWarning,
            )


class _RuleForward(ReluOverride):
    """The override for one forward pass of ``method``, which warns (once per method
    object) when the pass applied no ReLU. (A class rather than a ``@contextmanager``
    generator around the override: this runs on every call, and a generator costs
    several microseconds more.)"""

    def __init__(self, method: ReluRuleForward) -> None:
        super().__init__(method._rule)
        self.method = method

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        super().__exit__(exc_type, *exc_info)  # type: ignore[no-untyped-call]
        if exc_type is None and self.relu_count == 0:
            self.method._warn_no_relu()


class ModifiedReluGradientAttribution(ReluRuleForward, GradientAttribution):
    """Gradient of the target with every ReLU's backward replaced by a rule.

    The rule applies to every ReLU application of the forward pass, in every spelling:
    ``nn.ReLU`` modules (reused, in place, or created inside ``forward``), ``F.relu``,
    ``torch.relu``, ``Tensor.relu`` and their in-place forms. Nothing else in the graph
    changes, nothing is installed on the model, and concurrent calls from other threads are
    unaffected.

    Args:
        model (torch.nn.Module or Callable): The model. TorchScript models are refused
            with :class:`~attrkit.relu_override.UnsupportedModelError`.
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

    def attribute_future(self) -> None:
        """Not implemented, as in Captum."""
        raise NotImplementedError(f"attribute_future is not implemented for {type(self).__name__}")

    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...]:
        return self._gradients(call)


@register(
    "guided_backprop",
    aliases=("gbp", "guided_backpropagation"),
    display_name="Guided Backpropagation",
    paper="Springenberg et al., Striving for Simplicity: The All Convolutional Net, "
    "ICLR workshop 2015, https://arxiv.org/abs/1412.6806",
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

    def __init__(self, model: Callable[..., Any]) -> None:
        super().__init__(model, use_relu_grad_output=False)


@register(
    "deconvolution",
    aliases=("deconv", "deconvnet"),
    display_name="Deconvolution",
    paper="Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, "
    "ECCV 2014, https://arxiv.org/abs/1311.2901",
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

    def __init__(self, model: Callable[..., Any]) -> None:
        super().__init__(model, use_relu_grad_output=True)

"""Rules for ReLU: deconvolution, guided backpropagation, and pass-through.

Each keeps ReLU's forward (in place when the call is) and changes only what its backward
passes to the ReLU's input.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import FunctionCtx

from attrkit.engine.ops import RELU, OpCall
from attrkit.engine.rule import Rule, register_rule

__all__ = [
    "DECONVOLUTION",
    "GUIDED_BACKPROP",
    "PASS",
    "DeconvolutionReLU",
    "DeconvolutionRule",
    "GuidedBackpropReLU",
    "GuidedBackpropRule",
    "PassReLU",
    "PassRule",
    "ReluRule",
]


class ReluRule(Rule):
    """A rule for ReLU: :meth:`relu` computes ``relu(x)`` (in place when ``inplace``) with
    the rule's backward."""

    ops = (RELU,)

    def apply(self, call: OpCall) -> Any:
        return self.relu(call.input, call.inplace)

    @abstractmethod
    def relu(self, x: Tensor, inplace: bool) -> Tensor:
        """ReLU of ``x`` with the rule's backward."""


def _relu(ctx: FunctionCtx, x: Tensor, inplace: bool) -> Tensor:
    """The ordinary ReLU in a ``Function.forward``, in place when ``inplace``."""
    if inplace:
        ctx.mark_dirty(x)
        return torch.relu_(x)
    return torch.relu(x)


class DeconvolutionReLU(Function):
    """ReLU whose backward passes ``relu(grad_output)``, whatever the sign of the input
    (the deconvnet rule of Zeiler & Fergus, 2014)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, inplace: bool) -> Tensor:
        """The ordinary ReLU, in place when ``inplace``."""
        return _relu(ctx, x, inplace)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        """``relu(grad_output)``."""
        return torch.relu(grad_output), None


class GuidedBackpropReLU(Function):
    """ReLU whose backward passes ``relu(grad_output) * (input > 0)`` (the guided
    backpropagation rule of Springenberg et al., 2015)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, inplace: bool) -> Tensor:
        """The ordinary ReLU, in place when ``inplace``; saves the output for the mask."""
        output = _relu(ctx, x, inplace)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        """``relu(grad_output)`` where the input was positive, else 0."""
        (output,) = ctx.saved_tensors  # type: ignore[attr-defined]
        # output > 0 exactly where input > 0; threshold_backward masks in one kernel.
        masked = torch.ops.aten.threshold_backward(grad_output, output, 0)
        return masked.clamp_min_(0), None


class PassReLU(Function):
    """ReLU whose backward passes ``grad_output`` unchanged (zennit's ``Pass`` rule)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, inplace: bool) -> Tensor:
        """The ordinary ReLU, in place when ``inplace``."""
        return _relu(ctx, x, inplace)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        """``grad_output``."""
        return grad_output, None


class _FunctionRule(ReluRule):
    """A ReLU rule computed by a :class:`~torch.autograd.Function` ``(x, inplace)``."""

    function: type[Function]

    def relu(self, x: Tensor, inplace: bool) -> Tensor:
        return self.function.apply(x, inplace)  # type: ignore[no-any-return]


class DeconvolutionRule(_FunctionRule):
    """The deconvolution rule (:class:`DeconvolutionReLU`)."""

    name = "deconvolution"
    backward = "relu(grad_output)"
    paper = (
        "Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, "
        "ECCV 2014, https://arxiv.org/abs/1311.2901"
    )
    zennit = "DeconvNet"
    function = DeconvolutionReLU


def _positive_part(grad_inputs: tuple[Tensor, ...], grad_outputs: tuple[Tensor, ...]) -> None:
    # The ReLU node's result is a tensor threshold_backward has just made for it alone.
    grad_inputs[0].clamp_min_(0)


_RELU_NODE = type(torch.relu(torch.ones(1, requires_grad=True)).grad_fn)


class GuidedBackpropRule(ReluRule):
    """The guided backpropagation rule: the native ReLU, whose backward node gets a hook
    that clamps its result (``grad_output * (output > 0)``) at 0 in place.

    That makes ``relu(grad_output) * (input > 0)``, as :class:`GuidedBackpropReLU` does,
    at about two thirds of its Python cost (the mask stays in C++ and nothing is saved
    from Python), and with no tensor allocated beyond the native backward's (measured
    against a pre-hook that passes ``relu(grad_output)`` to the node, which allocates
    one more). An in-place ReLU runs the ``Function``: its node can only be checked once
    the input is overwritten (and on a view, autograd wraps it in the base's
    ``CopySlices``).
    """

    name = "guided_backprop"
    backward = "relu(grad_output) * (input > 0)"
    paper = (
        "Springenberg et al., Striving for Simplicity: The All Convolutional Net, "
        "ICLR workshop 2015, https://arxiv.org/abs/1412.6806"
    )
    zennit = "GuidedBackprop"

    def relu(self, x: Tensor, inplace: bool) -> Tensor:
        if inplace:
            return GuidedBackpropReLU.apply(x, True)  # type: ignore[no-any-return]
        output = torch.relu(x)
        node = output.grad_fn
        if node is not None and type(node) is _RELU_NODE:
            node.register_hook(_positive_part)
            return output
        # Not the native node (say, under a tracer): ReLU is idempotent, so the Function
        # applied to the output adds the rule and changes no value.
        return GuidedBackpropReLU.apply(output, False)  # type: ignore[no-any-return]


class PassRule(_FunctionRule):
    """The pass-through rule (:class:`PassReLU`): the ReLU is linear in the backward pass,
    as in zennit's LRP composites, which give activations this rule."""

    name = "pass"
    backward = "grad_output"
    paper = (
        "Anders et al., Software for Dataset-wide XAI: From Local Explanations to Global "
        "Insights with Zennit, CoRelAy, and ViRelAy, 2021, https://arxiv.org/abs/2106.13200"
    )
    zennit = "Pass"
    function = PassReLU


DECONVOLUTION = register_rule(DeconvolutionRule())
GUIDED_BACKPROP = register_rule(GuidedBackpropRule())
PASS = register_rule(PassRule())

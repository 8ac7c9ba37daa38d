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
    "apply_function",
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


class _ReluFunction(Function):
    """ReLU (in place when ``inplace``) with a rule's backward, in the form functorch
    transforms (``torch.vmap``) and ``torch.compile`` trace: a forward without ``ctx``
    and a :meth:`setup_context`.

    A rule's backward computes with ``clamp``, not a ReLU spelling, so that a backward
    pass run inside the rule override (which it is, for checkpointing) never sends its
    own computation to a rule.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, inplace: bool) -> Tensor:
        """The ordinary ReLU, in place when ``inplace``."""
        if inplace:
            torch.relu_(x)
            return x
        return torch.relu(x)

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Tensor) -> None:
        """Mark an input changed in place as such."""
        x, inplace = inputs
        if inplace:
            ctx.mark_dirty(x)


class DeconvolutionReLU(_ReluFunction):
    """ReLU whose backward passes ``relu(grad_output)``, whatever the sign of the input
    (the deconvnet rule of Zeiler & Fergus, 2014)."""

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        """``relu(grad_output)``."""
        return grad_output.clamp_min(0), None


class GuidedBackpropReLU(_ReluFunction):
    """ReLU whose backward passes ``relu(grad_output) * (input > 0)`` (the guided
    backpropagation rule of Springenberg et al., 2015)."""

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Tensor) -> None:
        """Mark an input changed in place as such; save the output for the mask."""
        _ReluFunction.setup_context(ctx, inputs, output)
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        """``relu(grad_output)`` where the input was positive, else 0."""
        (output,) = ctx.saved_tensors  # type: ignore[attr-defined]
        # output > 0 exactly where input > 0; threshold_backward masks in one kernel.
        masked = torch.ops.aten.threshold_backward(grad_output, output, 0)
        return masked.clamp_min_(0), None


class PassReLU(_ReluFunction):
    """ReLU whose backward passes ``grad_output`` unchanged (zennit's ``Pass`` rule)."""

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        """``grad_output``."""
        return grad_output, None


_functorch: Any = torch._C._functorch
_compiling = torch.compiler.is_compiling


def apply_function(function: type[Function], x: Tensor, inplace: bool) -> Tensor:
    """``function(x, inplace)``; in place under a functorch transform (``torch.vmap``),
    where a function cannot change its input, as its result copied into ``x``."""
    if inplace and not _compiling() and _functorch.is_functorch_wrapped_tensor(x):
        return x.copy_(function.apply(x, False))
    return function.apply(x, inplace)  # type: ignore[no-any-return]


class _FunctionRule(ReluRule):
    """A ReLU rule computed by a :class:`~torch.autograd.Function` ``(x, inplace)``."""

    function: type[Function]

    def relu(self, x: Tensor, inplace: bool) -> Tensor:
        return apply_function(self.function, x, inplace)


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
        if inplace or _compiling() or _functorch.is_functorch_wrapped_tensor(x):
            return apply_function(GuidedBackpropReLU, x, inplace)
        output = torch.relu(x)
        node = output.grad_fn
        if node is not None and type(node) is _RELU_NODE:
            node.register_hook(_positive_part)
            return output
        # Not the native node (say, under a tracer): the Function, on the input.
        return apply_function(GuidedBackpropReLU, x, False)


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

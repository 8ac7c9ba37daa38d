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
    "for_transforms",
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
    """The ordinary ReLU in a ``Function.forward``, in place when ``inplace``.

    The rules' backward functions compute with ``clamp``, not a ReLU spelling, so that a
    backward pass run inside the rule override (which it is, for checkpointing) never
    sends its own computation to a rule.
    """
    if inplace:
        ctx.mark_dirty(x)
        torch.relu_(x)
        return x  # the input itself, as torch.compile needs to see
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
        return grad_output.clamp_min(0), None


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


def for_transforms(function: type[Function], saves_output: bool) -> type[Function]:
    """``function`` in the form functorch transforms (``torch.vmap``) run: a forward
    without ``ctx``, a ``setup_context`` and a generated vmap rule, with the same
    backward. (Slower to apply than the ``ctx`` form, so used only under a transform.)"""

    def forward(x: Tensor, inplace: bool) -> Tensor:
        return torch.relu_(x) if inplace else torch.relu(x)

    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Tensor) -> None:
        if inputs[1]:
            ctx.mark_dirty(inputs[0])
        if saves_output:
            ctx.save_for_backward(output)

    namespace = {
        "__doc__": f"{function.__name__} for functorch transforms.",
        "generate_vmap_rule": True,
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(function.backward),
    }
    return type(f"{function.__name__}UnderTransforms", (Function,), namespace)


_functorch: Any = torch._C._functorch
_compiling = torch.compiler.is_compiling
_UNDER_TRANSFORMS = {
    DeconvolutionReLU: for_transforms(DeconvolutionReLU, saves_output=False),
    GuidedBackpropReLU: for_transforms(GuidedBackpropReLU, saves_output=True),
    PassReLU: for_transforms(PassReLU, saves_output=False),
}


def apply_function(function: type[Function], x: Tensor, inplace: bool) -> Tensor:
    """``function(x, inplace)``. Under a functorch transform (``torch.vmap``), its
    transformable form, and in place as its result copied into ``x`` (a transformed
    function cannot change its input)."""
    if not _compiling() and _functorch.is_functorch_wrapped_tensor(x):
        transformable = _UNDER_TRANSFORMS[function]
        if inplace:
            return x.copy_(transformable.apply(x, False))
        return transformable.apply(x, False)  # type: ignore[no-any-return]
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

"""Give every ReLU of one forward pass a different backward rule.

:class:`ReluOverride` is a :class:`~torch.overrides.TorchFunctionMode`: while it is
active *on the current thread*, every ReLU application, whatever its spelling
(``nn.ReLU`` modules, reused or created inside ``forward``, ``F.relu``, ``torch.relu``,
``Tensor.relu``, the in-place forms and ``torch.ops.aten.relu``), goes through a rule:
a function whose forward is the ordinary ReLU and whose backward is the method's
(:class:`DeconvolutionReLU`, :func:`guided_backprop_relu`). Nothing is installed on the
user's modules, nothing outlives the ``with`` block, and other threads never see the mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import FunctionCtx
from torch.overrides import TorchFunctionMode

__all__ = [
    "DeconvolutionReLU",
    "GuidedBackpropReLU",
    "ReluOverride",
    "ReluRule",
    "UnsupportedModelError",
    "check_overridable",
    "deconvolution_relu",
    "guided_backprop_relu",
    "relu_call",
]

#: ``rule(input, inplace) -> output``: the ordinary ReLU (in place when ``inplace``) with
#: a method's backward.
ReluRule = Callable[[Tensor, bool], Tensor]


class DeconvolutionReLU(Function):
    """ReLU whose backward passes ``relu(grad_output)``, whatever the sign of the input
    (the deconvnet rule of Zeiler & Fergus, 2014)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, inplace: bool) -> Tensor:
        """The ordinary ReLU, in place when ``inplace``."""
        if inplace:
            ctx.mark_dirty(x)
            return torch.relu_(x)
        return torch.relu(x)

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
        if inplace:
            ctx.mark_dirty(x)
            output = torch.relu_(x)
        else:
            output = torch.relu(x)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        """``relu(grad_output)`` where the input was positive, else 0."""
        (output,) = ctx.saved_tensors  # type: ignore[attr-defined]
        # output > 0 exactly where input > 0; threshold_backward masks in one kernel.
        masked = torch.ops.aten.threshold_backward(grad_output, output, 0)
        return masked.clamp_min_(0), None


#: The deconvolution rule, :class:`DeconvolutionReLU`'s ``apply``. (Measured against a
#: hook on the native ``ReluBackward0`` node that replaces its result by
#: ``relu(grad_output)``: the ``Function`` costs less, and computes nothing twice.)
deconvolution_relu: ReluRule = DeconvolutionReLU.apply


def _positive_part(grad_inputs: tuple[Tensor, ...], grad_outputs: tuple[Tensor, ...]) -> None:
    # The ReLU node's result is a tensor threshold_backward has just made for it alone.
    grad_inputs[0].clamp_min_(0)


_RELU_NODE = type(torch.relu(torch.ones(1, requires_grad=True)).grad_fn)


def guided_backprop_relu(x: Tensor, inplace: bool) -> Tensor:
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


# Every spelling of ReLU -> whether it is in place (None: read F.relu's `inplace`).
_RELU_SPELLINGS: dict[Callable[..., Any], bool | None] = {
    F.relu: None,
    F.relu_: True,
    torch.relu: False,
    torch.relu_: True,
    Tensor.relu: False,
    Tensor.relu_: True,
    torch.ops.aten.relu: False,
    torch.ops.aten.relu.default: False,
    torch.ops.aten.relu_: True,
    torch.ops.aten.relu_.default: True,
}
_NOT_RELU = object()


def relu_call(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
    """For a call of ``func`` that is a ReLU in any spelling, ``(input, inplace)``;
    for any other call, ``None``."""
    spelling = _RELU_SPELLINGS.get(func, _NOT_RELU)
    if spelling is _NOT_RELU:
        return None
    x = args[0] if args else kwargs["input"]
    if spelling is None:  # F.relu(x, inplace)
        return x, bool(args[1] if len(args) > 1 else kwargs and kwargs.get("inplace"))
    return x, bool(spelling)


class ReluOverride(TorchFunctionMode):
    """Route every ReLU of the forward pass through ``rule`` on this thread.

    Args:
        rule: A function ``(input, inplace) -> output``: ``deconvolution_relu`` (the
            ``apply`` of :class:`DeconvolutionReLU`), :func:`guided_backprop_relu`, or
            the ``apply`` of another :class:`~torch.autograd.Function`.

    Attributes:
        relu_count: How many ReLU applications the mode saw.
    """

    def __init__(self, rule: ReluRule) -> None:
        super().__init__()
        self.rule = rule
        self.relu_count = 0

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        # Every torch call of the forward pass comes through here: the common path (not
        # a ReLU) is one dictionary lookup.
        if func not in _RELU_SPELLINGS:
            return func(*args, **kwargs) if kwargs else func(*args)
        self.relu_count += 1
        x, inplace = relu_call(func, args, kwargs)
        if not (x.requires_grad and torch.is_grad_enabled()):
            return func(*args, **kwargs) if kwargs else func(*args)
        return self.rule(x, inplace)


class UnsupportedModelError(TypeError):
    """The model runs code that a ReLU override cannot reach (TorchScript)."""


_TORCHSCRIPT = (
    "is TorchScript (scripted or traced): its ReLUs run inside the TorchScript interpreter, "
    "where attrkit cannot give them the method's backward rule, and the result would "
    "silently be the plain gradient. Pass the original Python nn.Module instead "
    "(torch.compile'd models are supported)."
)
_DATA_PARALLEL = (
    "is a DataParallel over several devices: its replicas run in worker threads, where the "
    "ReLU override (which is local to the calling thread) cannot reach them. Pass "
    "`model.module` instead."
)


_SCRIPT_CALLABLES = (torch.jit.ScriptFunction, torch._C.ScriptMethod)
_SUSPECTS = (torch.jit.ScriptModule, torch.nn.DataParallel)
_suspect_types: dict[type, bool] = {}  # module class -> whether it is a suspect
_WALK_LIMIT = 100_000


def _unsupported_part(module: torch.nn.Module) -> str:
    if isinstance(module, torch.jit.ScriptModule):
        return _TORCHSCRIPT
    if isinstance(module, torch.nn.DataParallel) and len(module.device_ids) > 1:
        return _DATA_PARALLEL
    return ""


def _has_suspect(model: torch.nn.Module) -> bool:
    """Whether ``model`` or a submodule may be TorchScript or a DataParallel.

    It runs on every call, so that a submodule replaced after the method was built is
    still caught, and so it is a plain walk over the ``_modules`` dictionaries with one
    dictionary lookup per module class (``isinstance`` against ``ScriptModule`` costs
    several times more, and ``named_modules()`` builds generators, names and a memo).
    Like ``Module.train()`` it keeps no memo of visited modules; should the walk exceed
    ``_WALK_LIMIT`` modules (a module graph with a cycle), it answers "maybe", and the
    caller's ``named_modules()`` decides.
    """
    stack: list[torch.nn.Module | None] = [model]
    suspects = _suspect_types
    visited = 0
    while stack:
        module = stack.pop()
        if module is None:
            continue
        cls = type(module)
        suspect = suspects.get(cls)
        if suspect is None:
            suspect = suspects[cls] = issubclass(cls, _SUSPECTS)
        visited += 1
        if suspect or visited > _WALK_LIMIT:
            return True
        stack += module._modules.values()
    return False


def check_overridable(model: object) -> None:
    """Raise :class:`UnsupportedModelError` if ``model`` runs code that a thread-local
    ReLU override cannot reach (TorchScript; DataParallel over several devices), where the
    result would silently be the plain gradient."""
    if not isinstance(model, torch.nn.Module):
        if isinstance(model, _SCRIPT_CALLABLES):
            raise UnsupportedModelError(f"`model` {_TORCHSCRIPT}")
        return
    if not _has_suspect(model):
        return
    for name, module in model.named_modules():
        reason = _unsupported_part(module)
        if reason:
            where = f"`model.{name}`" if name else "`model`"
            raise UnsupportedModelError(f"{where} {reason}")

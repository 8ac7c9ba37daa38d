"""Give every ReLU of one forward pass a different backward rule.

:class:`ReluOverride` is a :class:`~torch.overrides.TorchFunctionMode`: while it is
active *on the current thread*, every ReLU application, whatever its spelling
(``nn.ReLU`` modules, reused or created inside ``forward``, ``F.relu``, ``torch.relu``,
``Tensor.relu``, the in-place forms and ``torch.ops.aten.relu``), goes through a
:class:`~torch.autograd.Function` whose forward is the ordinary ReLU and whose backward is
the method's rule. Nothing is installed on the user's modules, nothing outlives the
``with`` block, and other threads never see the mode.
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
    "UnsupportedModelError",
    "check_overridable",
]


def _relu_forward(ctx: FunctionCtx, x: Tensor, inplace: bool) -> Tensor:
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
        return _relu_forward(ctx, x, inplace)

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
        output = _relu_forward(ctx, x, inplace)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        """``relu(grad_output)`` where the input was positive, else 0."""
        (output,) = ctx.saved_tensors  # type: ignore[attr-defined]
        # output > 0 exactly where input > 0; threshold_backward masks in one kernel.
        masked = torch.ops.aten.threshold_backward(grad_output, output, 0)
        return masked.clamp_min_(0), None


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


class ReluOverride(TorchFunctionMode):
    """Route every ReLU of the forward pass through ``rule`` on this thread.

    Args:
        rule: A :class:`~torch.autograd.Function` taking ``(input, inplace)``, such as
            :class:`DeconvolutionReLU` or :class:`GuidedBackpropReLU`.

    Attributes:
        relu_count: How many ReLU applications the mode saw.
    """

    def __init__(self, rule: type[Function]) -> None:
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
        if kwargs is None:
            kwargs = {}
        inplace = _RELU_SPELLINGS.get(func, _NOT_RELU)
        if inplace is _NOT_RELU:
            return func(*args, **kwargs)
        self.relu_count += 1
        x = args[0] if args else kwargs["input"]
        if inplace is None:
            inplace = bool(args[1] if len(args) > 1 else kwargs.get("inplace", False))
        if not (torch.is_grad_enabled() and x.requires_grad):
            return func(*args, **kwargs)
        return self.rule.apply(x, inplace)


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


def _unsupported_part(module: torch.nn.Module) -> str:
    if isinstance(module, torch.jit.ScriptModule):
        return _TORCHSCRIPT
    if isinstance(module, torch.nn.DataParallel) and len(module.device_ids) > 1:
        return _DATA_PARALLEL
    return ""


def check_overridable(model: object) -> None:
    """Raise :class:`UnsupportedModelError` if ``model`` runs code that a thread-local
    ReLU override cannot reach (TorchScript; DataParallel over several devices), where the
    result would silently be the plain gradient."""
    if isinstance(model, (torch.jit.ScriptFunction, torch._C.ScriptMethod)):
        raise UnsupportedModelError(f"`model` {_TORCHSCRIPT}")
    if not isinstance(model, torch.nn.Module):
        return
    for name, module in model.named_modules():
        reason = _unsupported_part(module)
        if reason:
            where = f"`model.{name}`" if name else "`model`"
            raise UnsupportedModelError(f"{where} {reason}")

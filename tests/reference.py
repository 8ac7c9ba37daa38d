"""The definition of deconvolution and guided backpropagation, written independently of
attrkit: every ReLU spelling is monkeypatched to a custom autograd Function whose backward
is the method's rule, and the attribution is an ordinary ``torch.autograd.grad``.

Deconvolution (Zeiler & Fergus 2014): a ReLU passes back ``max(grad_output, 0)``.
Guided backpropagation (Springenberg et al. 2015): ``max(grad_output, 0)`` where the
ReLU's input was positive, else 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F
from torch import Tensor

RULES = ("deconvolution", "guided_backprop")


class _DefinitionReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, inplace: bool, rule: str) -> Tensor:
        ctx.rule = rule
        ctx.input_positive = x > 0
        if inplace:
            ctx.mark_dirty(x)
            return x.clamp_(min=0)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        positive_part = grad_output.clamp(min=0)
        if ctx.rule == "deconvolution":
            return positive_part, None, None
        return positive_part * ctx.input_positive, None, None


@contextlib.contextmanager
def definition_relus(rule: str) -> Iterator[None]:
    """Within the block, every Python-level ReLU spelling applies ``rule`` on backward."""
    assert rule in RULES

    def relu(input: Tensor, inplace: bool = False) -> Tensor:
        return _DefinitionReLU.apply(input, bool(inplace), rule)

    def relu_(input: Tensor) -> Tensor:
        return _DefinitionReLU.apply(input, True, rule)

    patches = [
        mock.patch.object(F, "relu", relu),
        mock.patch.object(F, "relu_", relu_),
        mock.patch.object(torch, "relu", relu),
        mock.patch.object(torch, "relu_", relu_),
        mock.patch.object(torch.Tensor, "relu", relu),
        mock.patch.object(torch.Tensor, "relu_", relu_),
    ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield


def select_reference(output: Tensor, target: object) -> Tensor:
    """One value per example, picked the plain way: ``output[i][target_i]``."""
    n = output.shape[0]
    if isinstance(target, Tensor):
        target = int(target.item()) if target.numel() == 1 else target.tolist()
    if target is None:
        picks = [output[i] for i in range(n)]
    elif isinstance(target, int):
        picks = [output[i, target] for i in range(n)]
    elif isinstance(target, tuple):
        picks = [output[(i, *target)] for i in range(n)]
    else:
        assert isinstance(target, list)
        picks = [output[(i, *(t if isinstance(t, tuple) else (t,)))] for i, t in enumerate(target)]
    return torch.stack([p.reshape(()) for p in picks])


def reference_attribution(
    model: Any,
    inputs: tuple[Tensor, ...],
    target: object,
    additional_forward_args: tuple[Any, ...],
    rule: str | None,
) -> tuple[Tensor, ...]:
    """The definition-based attribution (``rule=None``: the plain gradient)."""
    leaves = tuple(x.detach().clone().requires_grad_() for x in inputs)
    patch = definition_relus(rule) if rule else contextlib.nullcontext()
    with patch, torch.enable_grad():
        output = model(*(x.clone() for x in leaves), *additional_forward_args)
    grads = torch.autograd.grad(select_reference(output, target).sum(), leaves, allow_unused=True)
    return tuple(
        torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads, strict=True)
    )

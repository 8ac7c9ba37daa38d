"""The definitions the tests compare attrkit with, written independently of attrkit.

Backward rules: :data:`RULE_BACKWARDS` gives each rule's backward in one line, from the
ReLU's input and the gradient arriving at its output. :func:`definition_relus`
monkeypatches every Python-level ReLU spelling with a custom autograd Function whose backward
is that line, so that the definition of a rule-based attribution is an ordinary
``torch.autograd.grad``. A new ReLU rule needs one line here (the tests read the registry
for everything else); ``tests/engine/test_rules.py`` fails for a registered rule that has
neither a line nor an entry in :data:`RULES_WITHOUT_BACKWARD_LINE`.

Deconvolution (Zeiler & Fergus 2014): a ReLU passes back ``max(grad_output, 0)``.
Guided backpropagation (Springenberg et al. 2015): ``max(grad_output, 0)`` where the
ReLU's input was positive, else 0. Pass (zennit): ``grad_output`` unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Rule name -> what a ReLU passes back to its input, from that input ``x`` and the
#: gradient ``g`` arriving at its output. One line per rule.
RULE_BACKWARDS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "deconvolution": lambda x, g: g.clamp(min=0),
    "guided_backprop": lambda x, g: g.clamp(min=0) * (x > 0),
    "pass": lambda x, g: g,
}
#: Registered rules whose definition is not a backward of the ReLU alone (rule name ->
#: the reason and where the rule's definition is tested instead).
RULES_WITHOUT_BACKWARD_LINE: dict[str, str] = {}
#: The rules with a line.
RULES = tuple(RULE_BACKWARDS)


class _DefinitionReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, inplace: bool, rule: str) -> Tensor:
        ctx.rule = rule
        ctx.input = x.detach().clone()
        if inplace:
            ctx.mark_dirty(x)
            return x.clamp_(min=0)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        return RULE_BACKWARDS[ctx.rule](ctx.input, grad_output), None, None


@contextlib.contextmanager
def definition_relus(rule: str) -> Iterator[None]:
    """Within the block, every Python-level ReLU spelling applies ``rule`` on backward."""
    assert rule in RULE_BACKWARDS, f"no reference line for rule {rule!r}"

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


def reference_one_gradient(
    model: Any,
    inputs: tuple[Tensor, ...],
    target: object,
    additional_forward_args: tuple[Any, ...] = (),
    *,
    rule: str | None = None,
    absolute: bool = False,
    times_inputs: bool = False,
) -> tuple[Tensor, ...]:
    """An attribution made of one gradient: with ``rule``'s backward at every ReLU (or
    the plain gradient), its absolute value (``absolute``: saliency) or times the inputs
    (``times_inputs``: input x gradient)."""
    grads = reference_attribution(model, inputs, target, additional_forward_args, rule)
    if absolute:
        return tuple(g.abs() for g in grads)
    if times_inputs:
        return tuple(x * g for x, g in zip(inputs, grads, strict=True))
    return grads


def quadrature(method: str, n_steps: int) -> list[tuple[float, float]]:
    """(point, weight) pairs on [0, 1] of each of Integrated Gradients' rules, written out
    from its definition."""
    n = n_steps
    if method == "gausslegendre":
        points, weights = np.polynomial.legendre.leggauss(n)
        return [(0.5 * (1 + p), 0.5 * w) for p, w in zip(points, weights, strict=True)]
    if method == "riemann_trapezoid":
        return [(k / (n - 1), (0.5 if k in (0, n - 1) else 1.0) / (n - 1)) for k in range(n)]
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return [((k + offset) / n, 1.0 / n) for k in range(n)]


def _capture(layer: Any, to_input: bool, store: list[Tensor]) -> Any:
    """A hook recording the layer's tensor (and handing on a clone, so that in-place
    operations further on cannot change the recorded one)."""
    if to_input:
        return layer.register_forward_pre_hook(
            lambda module, args: (store.append(args[0]), (args[0].clone(), *args[1:]))[1]
        )
    return layer.register_forward_hook(
        lambda module, args, output: (store.append(output), output.clone())[1]
    )


def reference_neuron_attribution(
    model: Any,
    inputs: tuple[Tensor, ...],
    layer: Any,
    selector: Any,
    additional_forward_args: tuple[Any, ...],
    rule: str | None,
    to_input: bool = False,
) -> tuple[Tensor, ...]:
    """The definition-based attribution of one neuron of ``layer`` (``rule=None``: the
    plain gradient)."""
    leaves = tuple(x.detach().clone().requires_grad_() for x in inputs)
    store: list[Tensor] = []
    handle = _capture(layer, to_input, store)
    try:
        patch = definition_relus(rule) if rule else contextlib.nullcontext()
        with patch, torch.enable_grad():
            model(*(x.clone() for x in leaves), *additional_forward_args)
    finally:
        handle.remove()
    (tensor,) = store
    n = tensor.shape[0]
    if callable(selector):
        picked = selector(tensor)
    elif isinstance(selector, int):
        picked = torch.stack([tensor[i, selector] for i in range(n)])
    else:
        picked = torch.stack([tensor[(i, *selector)].sum() for i in range(n)])
    grads = torch.autograd.grad(picked.sum(), leaves, allow_unused=True)
    pairs = zip(leaves, grads, strict=True)
    return tuple(torch.zeros_like(x) if g is None else g for x, g in pairs)


def reference_grad_cam(
    model: Any,
    inputs: tuple[Tensor, ...],
    layer: Any,
    target: object,
    additional_forward_args: tuple[Any, ...],
) -> Tensor:
    """Grad-CAM with ReLU, per the paper: channel weights are the spatial means of the
    plain gradient; the map is the ReLU of the weighted sum of the activations."""
    leaves = tuple(x.detach().clone().requires_grad_() for x in inputs)
    store: list[Tensor] = []
    handle = _capture(layer, False, store)
    try:
        with torch.enable_grad():
            output = model(*(x.clone() for x in leaves), *additional_forward_args)
    finally:
        handle.remove()
    (activation,) = store
    (grad,) = torch.autograd.grad(select_reference(output, target).sum(), activation)
    weights = grad.mean(dim=tuple(range(2, grad.dim())), keepdim=True) if grad.dim() > 2 else grad
    return (weights * activation).sum(dim=1, keepdim=True).clamp(min=0).detach()

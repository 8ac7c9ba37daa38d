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

DeepLift (Shrikumar et al. 2017): :class:`DeepLiftDefinitionModel` runs a graph of
``tests/strategies.py`` with the rescale and max-pool rules written out.
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

from tests.strategies import Act, Apply, Graph, GraphModel, MaxPool

#: Rule name -> what a ReLU passes back to its input, from that input ``x`` and the
#: gradient ``g`` arriving at its output. One line per rule.
RULE_BACKWARDS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "deconvolution": lambda x, g: g.clamp(min=0),
    "guided_backprop": lambda x, g: g.clamp(min=0) * (x > 0),
    "pass": lambda x, g: g,
}
#: Registered rules whose definition is not a backward of the ReLU alone (rule name ->
#: the reason and where the rule's definition is tested instead).
RULES_WITHOUT_BACKWARD_LINE: dict[str, str] = {
    "lrp": (
        "LRP's relevance rules (epsilon, gamma, alpha-beta, ... of the composite or the "
        "module's rule) on linear layers, pooling, sums and activations, chosen per "
        "application: tests/methods/test_lrp.py checks them against reference_lrp and "
        "conservation"
    ),
    **dict.fromkeys(
        ("rescale", "deeplift_max_pool", "deeplift_softmax"),
        "DeepLift's rules need each application's reference input as well as its input: "
        "tests/engine/test_deeplift_rules.py checks them against summation to delta and "
        "against DeepLiftDefinitionModel (below), which is fed by a separate pass over the "
        "baselines",
    ),
}
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


def pick_neuron(tensor: Tensor, selector: Any) -> Tensor:
    """The selected neuron of every example: ``tensor[i, selector]`` (slices summed), or
    the callable's value."""
    n = tensor.shape[0]
    if callable(selector):
        return selector(tensor)
    if isinstance(selector, int):
        return torch.stack([tensor[i, selector] for i in range(n)])
    return torch.stack([tensor[(i, *selector)].sum() for i in range(n)])


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
    patch = definition_relus(rule) if rule else contextlib.nullcontext()
    try:
        with patch, torch.enable_grad():
            model(*(x.clone() for x in leaves), *additional_forward_args)
    finally:
        handle.remove()
    (tensor,) = store
    grads = torch.autograd.grad(pick_neuron(tensor, selector).sum(), leaves, allow_unused=True)
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


def reference_layer(
    model: Any,
    inputs: tuple[Tensor, ...],
    layer: Any,
    target: object,
    to_input: bool = False,
    value: Tensor | None = None,
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """The layer's tensor (replaced by ``value`` when given), the target's gradient with
    respect to it, and the leaves of the inputs (the graph kept for more gradients)."""
    leaves = tuple(x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs)
    store: list[Tensor] = []
    if value is None:
        handle = _capture(layer, to_input, store)
    elif to_input:
        handle = layer.register_forward_pre_hook(
            lambda module, args: (store.append(value), (value.clone(), *args[1:]))[1]
        )
    else:
        handle = layer.register_forward_hook(
            lambda module, args, output: (store.append(value), value.clone())[1]
        )
    try:
        with torch.enable_grad():
            output = model(*(x.clone() for x in leaves))
    finally:
        handle.remove()
    (tensor,) = store
    (grad,) = torch.autograd.grad(
        select_reference(output, target).sum(), tensor, retain_graph=True, allow_unused=True
    )
    return tensor, torch.zeros_like(tensor) if grad is None else grad, leaves


def reference_neuron_conductance(
    model: Any,
    inputs: tuple[Tensor, ...],
    baselines: tuple[Tensor, ...],
    layer: Any,
    selector: Any,
    target: object,
    *,
    method: str,
    n_steps: int,
    to_input: bool = False,
    multiply_by_inputs: bool = True,
) -> tuple[Tensor, ...]:
    """Conductance (Dhamdhere et al., How Important Is a Neuron?, 2018) of the neurons
    ``selector`` picks from ``layer``: for each selected neuron ``y_j`` separately, the
    integral along the straight path from ``baselines`` to ``inputs`` of
    ``dF/dy_j * dy_j/dx`` (``F`` the target output, ``quadrature(method, n_steps)``), summed
    over the neurons with the selector's coefficient (1 for a picked neuron), times
    ``inputs - baselines`` where ``multiply_by_inputs``. One gradient per neuron and
    example, so a set of neurons gets the sum of their conductances by construction."""
    totals = [torch.zeros_like(x) for x in inputs]
    for alpha, weight in quadrature(method, n_steps):
        point = tuple(b + alpha * (x - b) for x, b in zip(inputs, baselines, strict=True))
        tensor, target_grad, leaves = reference_layer(model, point, layer, target, to_input)
        (coefficients,) = torch.autograd.grad(
            pick_neuron(tensor, selector).sum(), tensor, retain_graph=True
        )
        for position in coefficients.nonzero().tolist():  # (example, *neuron)
            neuron = tuple(position)
            grads = torch.autograd.grad(
                tensor[neuron], leaves, retain_graph=True, allow_unused=True
            )
            scale = weight * coefficients[neuron] * target_grad[neuron]
            for total, grad in zip(totals, grads, strict=True):
                if grad is not None:
                    total += scale * grad.detach()
    if multiply_by_inputs:
        return tuple(t * (x - b) for t, x, b in zip(totals, inputs, baselines, strict=True))
    return tuple(totals)


# --------------------------------------------------------------------------------- LRP
# Layer-wise relevance propagation with Captum's default rules (Bach et al. 2015): every
# linear layer, convolution, pooling, mean and batch-norm passes back ``x * J^T (R / (z +
# eps * sign(z)))`` (the epsilon rule, ``sign(0) = 1``), a sum ``a + b`` of two tensors
# that carry relevance gives each ``summand * R / (z + eps * sign(z))`` (Captum's
# Addition_Module), a product with (or quotient by) a constant passes the relevance on (the
# epsilon rule of ``c * x``), every activation passes the relevance on unchanged, and the
# relevance of the target output is its value. Written as monkeypatched functions (the layers'
# modules call them), independent of attrkit.

LRP_EPSILON = 1e-9


class _EpsilonLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, layer: Any, epsilon: float) -> Tensor:
        ctx.layer, ctx.epsilon = layer, epsilon
        ctx.save_for_backward(x)
        return layer(x)

    @staticmethod
    def backward(ctx: Any, relevance: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            leaf = x.detach().requires_grad_()
            z = ctx.layer(leaf)
            sign = torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
            (grad,) = torch.autograd.grad(z, leaf, relevance / (z + ctx.epsilon * sign))
        return x.detach() * grad, None, None


class _EpsilonSum(torch.autograd.Function):
    """``a + b`` with both carrying relevance: each gets ``summand * R / stabilized z``."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, epsilon: float) -> Tensor:
        ctx.epsilon = epsilon
        ctx.save_for_backward(a, b)
        return a + b

    @staticmethod
    def backward(ctx: Any, relevance: Tensor) -> tuple[Tensor, Tensor, None]:
        a, b = ctx.saved_tensors
        z = a + b
        share = relevance / (z + ctx.epsilon * torch.where(z >= 0, 1.0, -1.0).to(z.dtype))
        return (a * share).sum_to_size(a.shape), (b * share).sum_to_size(b.shape), None


class _PassScaling(torch.autograd.Function):
    """``x * c`` or ``x / c`` with a constant ``c``: the relevance passes on to ``x``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scaled: Any) -> Tensor:
        ctx.shape = x.shape
        return scaled(x)

    @staticmethod
    def backward(ctx: Any, relevance: Tensor) -> tuple[Tensor, None]:
        return relevance.sum_to_size(ctx.shape), None


class _PassActivation(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, activation: Any, inplace: bool) -> Tensor:
        if inplace:
            ctx.mark_dirty(x)
        return activation(x)

    @staticmethod
    def backward(ctx: Any, relevance: Tensor) -> tuple[Tensor, None, None]:
        return relevance, None, None


_LRP_LAYERS = (
    "linear",
    "conv1d",
    "conv2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "batch_norm",
)
_LRP_ACTIVATIONS = {
    F: ("relu", "relu_", "gelu", "leaky_relu", "relu6", "elu", "silu"),
    torch: ("relu", "relu_", "tanh", "sigmoid"),
    torch.Tensor: ("relu", "relu_", "tanh", "sigmoid"),
}


@contextlib.contextmanager
def definition_lrp(epsilon: float = LRP_EPSILON) -> Iterator[None]:
    """Within the block, the layers (``F.linear``, ``F.conv2d``, ``F.max_pool2d``, ...:
    what the layer modules call) apply the epsilon rule and the activations pass the
    relevance on."""

    def layer(original: Any) -> Any:
        def patched(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            def apply(x: Tensor) -> Tensor:
                return original(x, *args, **kwargs)

            if not torch.is_grad_enabled():  # inside a rule's forward: the op itself
                return apply(input)
            if kwargs.get("return_indices"):  # max-pooling's (output, indices)
                indices = apply(input.detach())[1]
                return _EpsilonLayer.apply(input, lambda x: apply(x)[0], epsilon), indices
            return _EpsilonLayer.apply(input, apply, epsilon)

        return patched

    def activation(original: Any, name: str) -> Any:
        def patched(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            inplace = name.endswith("_") or bool(kwargs.get("inplace"))
            if name in ("relu", "relu6", "silu") and args:
                inplace = bool(args[0])

            def apply(x: Tensor) -> Tensor:
                return original(x, *args, **kwargs)

            if not torch.is_grad_enabled():  # inside a rule's forward: the op itself
                return apply(input)
            return _PassActivation.apply(input, apply, inplace)

        return patched

    original_add = torch.Tensor.__add__

    def add(a: Tensor, b: Any) -> Tensor:
        both = isinstance(b, Tensor) and a.requires_grad and b.requires_grad
        if both and torch.is_grad_enabled():
            return _EpsilonSum.apply(a, b, epsilon)
        return original_add(a, b)

    def scaling(original: Any) -> Any:
        def patched(a: Tensor, b: Any) -> Tensor:
            constant = not (isinstance(b, Tensor) and b.requires_grad)
            if constant and a.requires_grad and torch.is_grad_enabled():
                return _PassScaling.apply(a, lambda x: original(x, b))
            return original(a, b)

        return patched

    patches = [mock.patch.object(F, name, layer(getattr(F, name))) for name in _LRP_LAYERS]
    patches += [
        mock.patch.object(torch.Tensor, name, scaling(getattr(torch.Tensor, name)))
        for name in ("__mul__", "__rmul__", "__truediv__")
    ]
    patches += [
        mock.patch.object(torch.Tensor, "__add__", add),
        mock.patch.object(torch.Tensor, "mean", layer(torch.Tensor.mean)),
        mock.patch.object(torch, "mean", layer(torch.mean)),
    ]
    for owner, names in _LRP_ACTIVATIONS.items():
        patches += [
            mock.patch.object(owner, name, activation(getattr(owner, name), name)) for name in names
        ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield


def reference_lrp(
    model: Any,
    inputs: tuple[Tensor, ...],
    target: object,
    additional_forward_args: tuple[Any, ...] = (),
    layer: Any = None,
    to_input: bool = False,
    epsilon: float = LRP_EPSILON,
) -> tuple[Tensor, ...]:
    """The relevance of the inputs (or of ``layer``'s output, or input with ``to_input``)
    under Captum's default LRP rules: the gradient, with :func:`definition_lrp`'s rules,
    of the target outputs weighted by their own values."""
    leaves = tuple(x.detach().clone().requires_grad_() for x in inputs)
    store: list[Tensor] = []
    handle = None if layer is None else _capture(layer, to_input, store)
    try:
        with definition_lrp(epsilon), torch.enable_grad():
            output = model(*(x.clone() for x in leaves), *additional_forward_args)
    finally:
        if handle is not None:
            handle.remove()
    selected = select_reference(output, target)
    wrt = leaves if layer is None else tuple(store)
    grads = torch.autograd.grad(selected, wrt, selected.detach(), allow_unused=True)
    return tuple(torch.zeros_like(x) if g is None else g for x, g in zip(wrt, grads, strict=True))


# ---------------------------------------------------------------------------- DeepLift


def pool_with_indices(node: MaxPool, x: Tensor) -> tuple[Tensor, Tensor]:
    """Max-pooling ``node`` of ``x``, and for each output the flat position of its
    maximum within its channel."""
    if node.kind == "adaptive":
        return F.adaptive_max_pool2d(x, 2, return_indices=True)
    return F.max_pool2d(x, node.kernel, node.stride, return_indices=True)


class _Rescale(torch.autograd.Function):
    """``fn`` with DeepLift's rescale rule: ``(fn(x) - fn(x_ref)) / (x - x_ref)``, the
    derivative where ``|x - x_ref| < eps``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, reference: Tensor, fn: Apply, eps: float) -> Tensor:
        with torch.enable_grad():
            leaf = x.detach().clone().requires_grad_()
            (derivative,) = torch.autograd.grad(fn(leaf.clone()).sum(), leaf)
        y, y_ref = fn(x.clone()), fn(reference.clone())
        delta = x - reference
        ctx.multiplier = torch.where(delta.abs() < eps, derivative, (y - y_ref) / delta)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        return grad * ctx.multiplier, None, None, None


class _MaxPoolRule(torch.autograd.Function):
    """Max-pooling with DeepLift's rule, written out per window: the window's output
    difference is split into ``max(y, y_ref) - y_ref`` at the input's maximum and
    ``y - max(y, y_ref)`` at the reference's; each position receives the sum of its
    shares (over every window it belongs to) divided by its own ``x - x_ref``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, reference: Tensor, node: MaxPool, eps: float) -> Tensor:
        y, at_x = pool_with_indices(node, x)
        y_ref, at_ref = pool_with_indices(node, reference)
        peak = torch.maximum(y, y_ref)
        ctx.save_for_backward(x - reference, at_x, at_ref, peak - y_ref, y - peak)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        delta, at_x, at_ref, share_x, share_ref = ctx.saved_tensors

        def unpool(values: Tensor, where: Tensor) -> Tensor:
            flat = torch.zeros_like(delta).flatten(2)
            return flat.scatter_add_(2, where.flatten(2), values.flatten(2)).view_as(delta)

        spread = unpool(grad * share_x, at_x) + unpool(grad * share_ref, at_ref)
        plain = unpool(grad, at_x)
        return torch.where(delta.abs() < ctx.eps, plain, spread / delta), None, None, None


class DeepLiftDefinitionModel(GraphModel):
    """The model of a graph with DeepLift's rules written out, independently of attrkit:
    a first pass over the baselines records the input of every nonlinearity and
    max-pool application, in order; in the second pass each application is a custom
    autograd function that knows its reference input."""

    def __init__(self, graph: Graph, eps: float = 1e-10) -> None:
        super().__init__(graph)
        self.eps = eps
        self.references: list[Tensor] = []
        self.recording = True

    def act(self, key: str, node: Act, x: Tensor) -> Tensor:
        if self.recording:
            self.references.append(x.detach().clone())
            return super().act(key, node, x)
        reference = self.references.pop(0)
        return _Rescale.apply(
            x, reference, lambda t: super(DeepLiftDefinitionModel, self).act(key, node, t), self.eps
        )

    def max_pool(self, key: str, node: MaxPool, x: Tensor) -> Tensor:
        if self.recording:
            self.references.append(x.detach().clone())
            return super().max_pool(key, node, x)
        return _MaxPoolRule.apply(x, self.references.pop(0), node, self.eps)

    def multipliers(
        self, inputs: tuple[Tensor, ...], baselines: tuple[Tensor, ...], target: Any
    ) -> tuple[Tensor, ...]:
        """The DeepLift multipliers of ``inputs`` against ``baselines``, by definition."""
        self.recording, self.references = True, []
        with torch.no_grad():
            self(*baselines)
        self.recording = False
        leaves = tuple(x.detach().clone().requires_grad_() for x in inputs)
        output = self(*leaves)
        grads = torch.autograd.grad(
            select_reference(output, target).sum(), leaves, allow_unused=True
        )
        return tuple(
            torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads, strict=True)
        )

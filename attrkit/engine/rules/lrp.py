"""Layer-wise relevance propagation (LRP) rules.

What flows backward is the relevance (zennit's convention): a rule's backward receives the
relevance of the op's output and returns the relevance of its input, so the "gradient" that
reaches the model's input is the attribution. Each rule keeps the op's own forward.

A :class:`LayerRule` applies to one application of a layer op (a linear layer, a
convolution, a pooling, a batch-norm: :data:`~attrkit.engine.ops.LAYERS`, and max-pool) with
that application's own input. The rules of zennit (``Epsilon``, ``Gamma``, ``ZPlus``,
``AlphaBeta``, ``ZBox``, ``Flat``, ``WSquare``, ``Norm``, ``Pass``) are written as zennit
writes them: terms of an input modifier and a parameter modifier, whose outputs the
relevance is divided by and whose vector-Jacobian products it is multiplied back with.
Captum's ``GammaRule`` and ``Alpha1_Beta0_Rule`` change only the weights
(:class:`WeightRule`). Activations pass the relevance on unchanged
(:class:`ActivationPassRule`); a batch-norm after a linear layer can be merged into it
(:class:`MergeBatchNormRule`), as zennit's ``SequentialMergeBatchNorm`` canonizer does.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import FunctionCtx

from attrkit.engine.ops import (
    ADAPTIVE_MAX_POOL,
    ADD,
    BATCH_NORM,
    CONVOLUTION,
    DIV,
    DROPOUT,
    ELEMENTWISE,
    LAYERS,
    LINEAR,
    MAX_POOL,
    MUL,
    RELU,
    LayerOp,
    Op,
    OpCall,
)
from attrkit.engine.reach import UnsupportedModelError
from attrkit.engine.rule import Rule

__all__ = [
    "LRP_OPS",
    "LRP_PAPER",
    "ActivationPassRule",
    "AlphaBetaRule",
    "BetaSmoothRule",
    "EpsilonRule",
    "FlatRule",
    "GammaRule",
    "GradientRule",
    "IdentityRule",
    "LayerCall",
    "LayerRelevance",
    "LayerRule",
    "MergeBatchNormRule",
    "NormRule",
    "ScaleRule",
    "Stabilizer",
    "SumRule",
    "Term",
    "TermRule",
    "WSquareRule",
    "WeightRule",
    "ZBoxRule",
    "ZPlusRule",
    "stabilize",
]

LRP_PAPER = (
    "Bach et al., On Pixel-Wise Explanations for Non-Linear Classifier Decisions by "
    "Layer-Wise Relevance Propagation, PLOS ONE 2015, "
    "https://doi.org/10.1371/journal.pone.0130140"
)
_MONTAVON_2017 = (
    "Montavon et al., Explaining nonlinear classification decisions with deep Taylor "
    "decomposition, Pattern Recognition 2017, https://doi.org/10.1016/j.patcog.2016.11.008"
)
_MONTAVON_2019 = (
    "Montavon et al., Layer-Wise Relevance Propagation: An Overview, in Explainable AI, "
    "LNCS 11700, 2019, https://doi.org/10.1007/978-3-030-28954-6_10"
)
_ZENNIT_PAPER = (
    "Anders et al., Software for Dataset-wide XAI: From Local Explanations to Global "
    "Insights with Zennit, CoRelAy, and ViRelAy, 2021, https://arxiv.org/abs/2106.13200"
)

#: The layer ops (with max-pool, whose rule depends on the convention) LRP rules apply to.
LRP_OPS: tuple[Op, ...] = (*LAYERS, MAX_POOL, ADAPTIVE_MAX_POOL)

#: A stabilizer: a float ``eps`` (``z + eps * sign(z)``, with ``sign(0) = 1``) or a function
#: of the denominator, as zennit takes it.
Stabilizer = float | Callable[[Tensor], Tensor]

#: The names of the parameters that rules modify (zennit's ``ParamMod`` changes every
#: parameter of the module: a layer's weight and bias).
PARAMETERS = ("weight", "bias")


def stabilize(z: Tensor, epsilon: Stabilizer) -> Tensor:
    """``z`` pushed away from 0 by ``epsilon`` in the direction of its sign (``+`` for 0),
    as Captum and zennit divide by it; a callable ``epsilon`` is applied to ``z``."""
    if callable(epsilon):
        return epsilon(z)
    # z + s * eps, s = sign(sign(z) + 0.5): 1 for z >= 0 (-0.0 included), else -1; in place
    # on one new tensor (several times faster than torch.where on a CPU).
    return z.sign().add_(0.5).sign_().mul_(epsilon).add_(z)


def _rebuild(call: OpCall, **values: Any) -> Any:
    """Run ``call`` with its arguments in ``values`` replaced (for an op without named
    arguments, only ``input``, its first argument)."""
    if isinstance(call.op, LayerOp):
        return call.op.rebuild(call, **values)
    (value,) = values.values()
    if call.args:
        return call.func(value, *call.args[1:], **call.kwargs)
    return call.func(**{**call.kwargs, "input": value})


# ------------------------------------------------------------------- one layer, backward


@dataclass
class _MergedNorm:
    """The eval-mode batch-norm merged into a linear layer: ``scale * (z - mean) + shift``."""

    scale: Tensor
    mean: Tensor
    shift: Tensor


class LayerCall:
    """One application of a layer op, as its rule sees it in the backward pass.

    Attributes:
        call: The intercepted call.
        input: The value of the layer's input.
    """

    def __init__(self, ctx: Any, x: Tensor) -> None:
        self.call: OpCall = ctx.call
        self.input = x.detach()
        self._ctx = ctx

    def parameters(self) -> dict[str, Tensor]:
        """The layer's weight and bias (those it has), merged with a following
        batch-norm where one was merged into it."""
        op = self.call.op
        if not isinstance(op, LayerOp):
            return {}
        names = op.arguments[self.call.func]
        found = {
            name: value
            for name in PARAMETERS
            if name in names and isinstance(value := op.argument(self.call, name), Tensor)
        }
        norm: _MergedNorm | None = self._ctx.norm
        if norm is None:
            return {name: value.detach() for name, value in found.items()}
        weight = found["weight"].detach()
        shape = [1] * weight.dim()
        shape[op.channel_dim or 0] = -1
        bias = found["bias"].detach() if "bias" in found else torch.zeros_like(norm.mean)
        return {
            "weight": weight * norm.scale.reshape(shape),
            "bias": (bias - norm.mean) * norm.scale + norm.shift,
        }

    def forward(self, x: Tensor, parameters: dict[str, Tensor | None] | None = None) -> Tensor:
        """The op applied to ``x`` with ``parameters`` (its own by default), with autograd
        recording (the first output where the op returns several)."""
        values: dict[str, Any] = dict(self.parameters() if parameters is None else parameters)
        op = self.call.op
        if op is BATCH_NORM and BATCH_NORM.argument(self.call, "training"):
            # Batch statistics, as in the forward pass, without moving the running ones again.
            values |= {"running_mean": None, "running_var": None}
        with torch.enable_grad():
            result = _rebuild(self.call, input=x, **values)
        return cast(Tensor, result[0] if isinstance(result, tuple) else result)

    def output(self) -> Tensor:
        """The value of the layer's output (recomputed if it was changed in place since)."""
        ctx = self._ctx
        if ctx.output is not None and ctx.output._version == ctx.version and ctx.norm is None:
            return cast(Tensor, ctx.output.detach())
        with torch.no_grad():
            return self.forward(self.input)

    def gradient(self, grad_output: Tensor) -> Tensor:
        """The vector-Jacobian product of the op (with its own parameters) at the input."""
        ctx = self._ctx
        if ctx.leaf is not None and ctx.norm is None:
            (grad,) = torch.autograd.grad(ctx.output, ctx.leaf, grad_output)
            return cast(Tensor, grad)
        leaf = self.input.detach().requires_grad_()
        (grad,) = torch.autograd.grad(self.forward(leaf), leaf, grad_output)
        return grad

    def merge(self, norm: _MergedNorm) -> None:
        """Merge an eval-mode batch-norm applied to this layer's output into the layer."""
        self._ctx.norm = norm


class LayerRelevance(Function):
    """A layer op whose backward is the relevance rule ``rule``: its forward is the op's
    own, its backward ``rule.relevance(LayerCall, relevance)``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, rule: LayerRule, call: OpCall) -> Any:
        """The op's own result; with ``rule.keeps_graph``, computed with autograd recording
        from a detached copy of ``x``, so that the backward needs no second forward."""
        ctx.rule, ctx.call, ctx.norm, ctx.leaf, ctx.output = rule, call, None, None, None
        if rule.keeps_graph:
            with torch.enable_grad():
                ctx.leaf = x.detach().requires_grad_()
                result = _rebuild(call, input=ctx.leaf)
        else:
            result = _rebuild(call, input=x)
        ctx.save_for_backward(x)
        outputs = result if isinstance(result, tuple) else (result,)
        first = outputs[0]
        if ctx.leaf is not None:
            ctx.output, ctx.version = first, first._version
        ctx.mark_non_differentiable(*outputs[1:])
        if isinstance(result, tuple):
            return (first.detach(), *outputs[1:])
        return first.detach()

    @staticmethod
    def backward(ctx: Any, relevance: Tensor, *unused: Any) -> tuple[Tensor | None, None, None]:
        """The relevance of the input."""
        (x,) = ctx.saved_tensors
        return ctx.rule.relevance(LayerCall(ctx, x), relevance), None, None


def relevance_node(tensor: Tensor) -> Any:
    """The :class:`LayerRelevance` node that made ``tensor``, or ``None``."""
    node = tensor.grad_fn
    return node if type(node) is LayerRelevance._backward_cls else None


class LayerRule(Rule):
    """A relevance rule for the layer ops (:data:`LRP_OPS`).

    Attributes:
        keeps_graph: Whether the forward pass records the op's graph, for a backward that
            needs the plain vector-Jacobian product (the epsilon rule) and no second
            forward (class attribute).
    """

    ops: tuple[Op, ...] = LRP_OPS
    paper = LRP_PAPER
    keeps_graph: ClassVar[bool] = False

    def apply(self, call: OpCall) -> Any:
        return LayerRelevance.apply(call.input, self, call)

    @abstractmethod
    def relevance(self, layer: LayerCall, relevance: Tensor) -> Tensor:
        """The relevance of ``layer``'s input, given the relevance of its output."""

    def __repr__(self) -> str:
        return f"<rule {self.name!r}>"


@dataclass(frozen=True)
class Term:
    """One term of a :class:`TermRule` (one entry of zennit's ``input_modifiers`` and
    ``param_modifiers``): the op applied to ``input(x)`` with each present parameter ``p``
    replaced by ``parameter(p)``, or by zeros where its name is in ``zero``."""

    input: Callable[[Tensor], Tensor]
    parameter: Callable[[Tensor], Tensor]
    zero: frozenset[str] = frozenset()


def _same(tensor: Tensor) -> Tensor:
    return tensor


def _positive(tensor: Tensor) -> Tensor:
    return tensor.clamp(min=0)


def _negative(tensor: Tensor) -> Tensor:
    return tensor.clamp(max=0)


def _zero_set(zero_params: str | Iterable[str] | None, *more: str) -> frozenset[str]:
    """zennit's ``zero_params`` (a name or names) as a set, with ``more`` added."""
    if zero_params is None:
        names: frozenset[str] = frozenset()
    elif isinstance(zero_params, str):
        names = frozenset({zero_params})
    else:
        names = frozenset(zero_params)
    return names | frozenset(more)


class TermRule(LayerRule):
    """A rule in zennit's ``BasicHook`` form: for each :class:`Term`, the op's output
    ``z_k`` on the modified input ``x_k``; then the input's relevance
    ``reduce(x_k, J_k^T g_k)`` with ``g_k = map(relevance, z_k)``."""

    terms: tuple[Term, ...]

    def relevance(self, layer: LayerCall, relevance: Tensor) -> Tensor:
        x = layer.input
        parameters = layer.parameters()
        inputs, outputs = [], []
        for term in self.terms:
            modified = term.input(x).detach().requires_grad_()
            values: dict[str, Tensor | None] = {
                name: torch.zeros_like(value) if name in term.zero else term.parameter(value)
                for name, value in parameters.items()
            }
            inputs.append(modified)
            outputs.append(layer.forward(modified, values))
        grads = torch.autograd.grad(outputs, inputs, self.map(relevance, outputs, layer))
        return self.reduce(inputs, grads)

    @abstractmethod
    def map(self, relevance: Tensor, outputs: Sequence[Tensor], layer: LayerCall) -> list[Tensor]:
        """The vectors ``g_k`` (zennit's ``gradient_mapper``)."""

    def reduce(self, inputs: Sequence[Tensor], grads: Sequence[Tensor]) -> Tensor:
        """The input's relevance (zennit's ``reducer``; here ``sum(x_k * grad_k)``)."""
        total = inputs[0] * grads[0]
        for x, g in zip(inputs[1:], grads[1:], strict=True):
            total = total + x * g
        return total


# ---------------------------------------------------------------------------- the rules


class EpsilonRule(LayerRule):
    """The epsilon rule: ``x * J^T (R / (z + eps * sign(z)))`` (LRP-0 at ``epsilon=0``).

    zennit's ``Epsilon`` (``zero_params`` sets parameters to zero) and Captum's
    ``EpsilonRule``, whose default ``epsilon`` is ``1e-9``. The plain backward of the op
    gives ``J^T``, from the graph the forward pass recorded.
    """

    name = "epsilon"
    backward = "x * J^T (R / stabilize(z, epsilon))"
    zennit = "Epsilon"
    keeps_graph = True

    def __init__(
        self, epsilon: Stabilizer = 1e-6, zero_params: str | Iterable[str] | None = None
    ) -> None:
        self.epsilon = epsilon
        self.zero = _zero_set(zero_params)
        self.keeps_graph = not self.zero  # type: ignore[misc]

    def relevance(self, layer: LayerCall, relevance: Tensor) -> Tensor:
        x = layer.input
        if not self.zero:
            z = layer.output()
            return x * layer.gradient(relevance / stabilize(z, self.epsilon))
        values: dict[str, Tensor | None] = {
            name: torch.zeros_like(value) if name in self.zero else value
            for name, value in layer.parameters().items()
        }
        leaf = x.detach().requires_grad_()
        z = layer.forward(leaf, values)
        (grad,) = torch.autograd.grad(z, leaf, relevance / stabilize(z.detach(), self.epsilon))
        return x * grad

    def __repr__(self) -> str:
        return f"<rule {self.name!r} epsilon={self.epsilon}>"


class NormRule(EpsilonRule):
    """zennit's ``Norm`` rule (for sums and average pooling): the epsilon rule with a
    stabilizer, without parameters to change."""

    name = "norm"
    zennit = "Norm"

    def __init__(self, stabilizer: Stabilizer = 1e-6) -> None:
        super().__init__(stabilizer)


class WeightRule(LayerRule):
    """The epsilon rule on the layer with changed weights: Captum's ``GammaRule``
    (``w + gamma * w+``) and ``Alpha1_Beta0_Rule`` (``w+``), or any Captum rule that only
    changes the weights. ``x * J'^T (R / stabilize(z'))`` with ``z'`` the output of the
    changed layer on the original input.

    Args:
        name: The rule's name.
        change: ``(weight, bias) -> (weight, bias)``, given the tensors the layer has
            (``None`` where it has none).
        epsilon: The stabilizer (Captum's ``STABILITY_FACTOR``).
    """

    backward = "x * J'^T (R / stabilize(z', epsilon)), weights changed"

    def __init__(
        self,
        name: str,
        change: Callable[[Tensor | None, Tensor | None], tuple[Tensor | None, Tensor | None]],
        epsilon: Stabilizer = 1e-9,
    ) -> None:
        self.name = name
        self.change = change
        self.epsilon = epsilon

    def relevance(self, layer: LayerCall, relevance: Tensor) -> Tensor:
        parameters = layer.parameters()
        weight, bias = self.change(parameters.get("weight"), parameters.get("bias"))
        values = {
            name: value
            for name, value in (("weight", weight), ("bias", bias))
            if name in parameters or value is not None
        }
        leaf = layer.input.detach().requires_grad_()
        z = layer.forward(leaf, values)
        (grad,) = torch.autograd.grad(z, leaf, relevance / stabilize(z.detach(), self.epsilon))
        return layer.input * grad


def captum_gamma(gamma: float, set_bias_to_zero: bool) -> Callable[..., Any]:
    """Captum's ``GammaRule`` weight change: ``w + gamma * w+`` (and a zero bias)."""

    def change(weight: Tensor | None, bias: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        if weight is not None:
            weight = weight + gamma * weight.clamp(min=0)
        if set_bias_to_zero and bias is not None:
            bias = torch.zeros_like(bias)
        return weight, bias

    return change


def captum_alpha1_beta0(set_bias_to_zero: bool) -> Callable[..., Any]:
    """Captum's ``Alpha1_Beta0_Rule`` weight change: ``w+`` (and a zero bias)."""

    def change(weight: Tensor | None, bias: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        if weight is not None:
            weight = weight.clamp(min=0)
        if set_bias_to_zero and bias is not None:
            bias = torch.zeros_like(bias)
        return weight, bias

    return change


class GammaRule(TermRule):
    """zennit's generalized gamma rule: positive and negative inputs and weights, with
    ``w + gamma * w+`` (or ``w-``) where the output is positive (or negative)."""

    name = "gamma"
    backward = "gamma rule (zennit's Gamma)"
    paper = _MONTAVON_2019
    zennit = "Gamma"

    def __init__(
        self,
        gamma: float = 0.25,
        stabilizer: Stabilizer = 1e-6,
        zero_params: str | Iterable[str] | None = None,
    ) -> None:
        self.gamma, self.stabilizer = gamma, stabilizer
        zero, no_bias = _zero_set(zero_params), _zero_set(zero_params, "bias")

        def plus(p: Tensor) -> Tensor:
            return p + gamma * p.clamp(min=0)

        def minus(p: Tensor) -> Tensor:
            return p + gamma * p.clamp(max=0)

        self.terms = (
            Term(_positive, plus, zero),
            Term(_negative, minus, no_bias),
            Term(_positive, minus, zero),
            Term(_negative, plus, no_bias),
        )

    def map(self, relevance: Tensor, outputs: Sequence[Tensor], layer: LayerCall) -> list[Tensor]:
        z = layer.output()
        up = relevance * (z > 0) / stabilize(outputs[0] + outputs[1], self.stabilizer)
        down = relevance * (z < 0) / stabilize(outputs[2] + outputs[3], self.stabilizer)
        return [up, up, down, down]


class ZPlusRule(TermRule):
    """zennit's ``ZPlus``: alpha=1, beta=0 with negative inputs allowed."""

    name = "zplus"
    backward = "x+ J+^T g + x- J-^T g, g = R / stabilize(z+ + z-)"
    paper = _MONTAVON_2017
    zennit = "ZPlus"

    def __init__(
        self, stabilizer: Stabilizer = 1e-6, zero_params: str | Iterable[str] | None = None
    ) -> None:
        self.stabilizer = stabilizer
        self.terms = (
            Term(_positive, _positive, _zero_set(zero_params)),
            Term(_negative, _negative, _zero_set(zero_params, "bias")),
        )

    def map(self, relevance: Tensor, outputs: Sequence[Tensor], layer: LayerCall) -> list[Tensor]:
        g = relevance / stabilize(outputs[0] + outputs[1], self.stabilizer)
        return [g, g]


class AlphaBetaRule(TermRule):
    """zennit's ``AlphaBeta``: ``alpha`` times the positive contributions minus ``beta``
    times the negative ones (``alpha - beta = 1``)."""

    name = "alpha_beta"
    backward = "alpha * positive part - beta * negative part"
    zennit = "AlphaBeta"

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 1.0,
        stabilizer: Stabilizer = 1e-6,
        zero_params: str | Iterable[str] | None = None,
    ) -> None:
        if alpha < 0 or beta < 0:
            raise ValueError(f"`alpha` and `beta` must be >= 0, got {alpha} and {beta}")
        if alpha - beta != 1:
            raise ValueError(f"`alpha` - `beta` must be 1, got {alpha} - {beta}")
        self.alpha, self.beta, self.stabilizer = alpha, beta, stabilizer
        zero, no_bias = _zero_set(zero_params), _zero_set(zero_params, "bias")
        self.terms = (
            Term(_positive, _positive, zero),
            Term(_negative, _negative, no_bias),
            Term(_positive, _negative, zero),
            Term(_negative, _positive, no_bias),
        )

    def map(self, relevance: Tensor, outputs: Sequence[Tensor], layer: LayerCall) -> list[Tensor]:
        up = relevance / stabilize(outputs[0] + outputs[1], self.stabilizer)
        down = relevance / stabilize(outputs[2] + outputs[3], self.stabilizer)
        return [up, up, down, down]

    def reduce(self, inputs: Sequence[Tensor], grads: Sequence[Tensor]) -> Tensor:
        up = inputs[0] * grads[0] + inputs[1] * grads[1]
        down = inputs[2] * grads[2] + inputs[3] * grads[3]
        return self.alpha * up - self.beta * down


def _bound(value: float | Tensor, like: Tensor) -> Tensor:
    """zennit's ``expand(value, like.shape, cut_batch_dim=True)``: a number, or a tensor
    broadcast to ``like`` (trailing dimensions added; a longer batch cut)."""
    tensor = torch.as_tensor(value).to(like)
    if tensor.dim() == 0:
        return tensor.expand(like.shape)
    if tensor.dim() < like.dim():
        tensor = tensor[(...,) + (None,) * (like.dim() - tensor.dim())]
    if tensor.dim() == like.dim() and tensor.shape[0] > like.shape[0]:
        tensor = tensor[: like.shape[0]]
    try:
        return tensor.expand(like.shape)
    except RuntimeError as error:
        raise ValueError(
            f"the z-box bounds (`low`, `high`) of shape {tuple(tensor.shape)} cannot be "
            f"broadcast to the first layer's input of shape {tuple(like.shape)}"
        ) from error


class ZBoxRule(TermRule):
    """zennit's ``ZBox`` for inputs bounded by ``low`` and ``high``."""

    name = "zbox"
    backward = "x J^T g - low J+^T g - high J-^T g, g = R / stabilize(z - z_low - z_high)"
    paper = _MONTAVON_2017
    zennit = "ZBox"

    def __init__(
        self,
        low: float | Tensor,
        high: float | Tensor,
        stabilizer: Stabilizer = 1e-6,
        zero_params: str | Iterable[str] | None = None,
    ) -> None:
        self.low, self.high, self.stabilizer = low, high, stabilizer
        zero = _zero_set(zero_params)
        self.terms = (
            Term(_same, _same, zero),
            Term(lambda x: _bound(low, x), _positive, zero),
            Term(lambda x: _bound(high, x), _negative, zero),
        )

    def map(self, relevance: Tensor, outputs: Sequence[Tensor], layer: LayerCall) -> list[Tensor]:
        g = relevance / stabilize(outputs[0] - outputs[1] - outputs[2], self.stabilizer)
        return [g, g, g]

    def reduce(self, inputs: Sequence[Tensor], grads: Sequence[Tensor]) -> Tensor:
        return inputs[0] * grads[0] - inputs[1] * grads[1] - inputs[2] * grads[2]


class _UniformRule(TermRule):
    """A rule on an input of ones that does not multiply by the input (``WSquare``,
    ``Flat``)."""

    stabilizer: Stabilizer

    def map(self, relevance: Tensor, outputs: Sequence[Tensor], layer: LayerCall) -> list[Tensor]:
        return [relevance / stabilize(outputs[0], self.stabilizer)]

    def reduce(self, inputs: Sequence[Tensor], grads: Sequence[Tensor]) -> Tensor:
        return grads[0]


class WSquareRule(_UniformRule):
    """zennit's ``WSquare``: the squared parameters on an input of ones."""

    name = "wsquare"
    backward = "J_w2^T (R / stabilize(z_w2(1)))"
    paper = _MONTAVON_2017
    zennit = "WSquare"

    def __init__(
        self, stabilizer: Stabilizer = 1e-6, zero_params: str | Iterable[str] | None = None
    ) -> None:
        self.stabilizer = stabilizer
        self.terms = (Term(torch.ones_like, torch.square, _zero_set(zero_params)),)


class FlatRule(_UniformRule):
    """zennit's ``Flat``: weights of ones, no bias, on an input of ones."""

    name = "flat"
    backward = "J_1^T (R / stabilize(z_1(1)))"
    paper = (
        "Lapuschkin et al., Unmasking Clever Hans predictors and assessing what machines "
        "really learn, Nature Communications 2019, https://doi.org/10.1038/s41467-019-08987-4"
    )
    zennit = "Flat"

    def __init__(
        self, stabilizer: Stabilizer = 1e-6, zero_params: str | Iterable[str] | None = None
    ) -> None:
        self.stabilizer = stabilizer
        self.terms = (Term(torch.ones_like, torch.ones_like, _zero_set(zero_params, "bias")),)


class IdentityRule(LayerRule):
    """The relevance passes through the layer unchanged (Captum's ``IdentityRule``,
    zennit's ``Pass`` on a layer): only for layers whose input and output have one shape."""

    name = "identity"
    backward = "R"
    zennit = "Pass"

    def relevance(self, layer: LayerCall, relevance: Tensor) -> Tensor:
        if relevance.shape != layer.input.shape:
            raise ValueError(
                f"the identity rule passes the relevance of a {layer.call.op.title}'s output "
                f"(shape {tuple(relevance.shape)}) to its input, which has another shape "
                f"{tuple(layer.input.shape)}; give that layer another rule"
            )
        return relevance


class MergeBatchNormRule(Rule):
    """An eval-mode batch-norm applied right after a linear layer or a convolution is
    merged into that layer (zennit's ``SequentialMergeBatchNorm`` canonizer): the layer's
    rule then sees the merged weights and bias, and the batch-norm passes the relevance on.
    Any other batch-norm is refused with :class:`UnsupportedModelError`."""

    name = "merge_batch_norm"
    ops = (BATCH_NORM,)
    backward = "R (merged into the preceding linear layer)"
    paper = _ZENNIT_PAPER
    zennit = "SequentialMergeBatchNorm"

    def apply(self, call: OpCall) -> Any:
        op = BATCH_NORM
        node = relevance_node(call.input)
        layer_op = node.call.op if node is not None else None
        argument = op.argument
        training = argument(call, "training")
        mean, var = argument(call, "running_mean"), argument(call, "running_var")
        if training or mean is None or var is None:
            raise UnsupportedModelError(
                "a batch-norm in training mode (or without running statistics) cannot be "
                "merged into the layer before it for LRP; call model.eval()"
            )
        if layer_op not in (LINEAR, CONVOLUTION) or node.norm is not None:
            raise UnsupportedModelError(
                "a batch-norm that does not directly follow a linear layer or a convolution "
                "has no LRP rule under zennit's composites (which merge it into that "
                "layer); this batch-norm follows "
                + ("another batch-norm's layer" if node is not None else "another op")
            )
        eps = argument(call, "eps")
        weight, bias = argument(call, "weight"), argument(call, "bias")
        scale = (var + (1e-5 if eps is None else eps)).rsqrt()
        if weight is not None:
            scale = weight.detach() * scale
        shift = bias.detach() if bias is not None else torch.zeros_like(mean)
        LayerCall(node, call.input).merge(_MergedNorm(scale, mean, shift))
        return _PassLayer.apply(call.input, call)


class _PassLayer(Function):
    """A layer op whose backward passes the relevance on unchanged."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, call: OpCall) -> Any:
        """The op's own result."""
        return _rebuild(call, input=x)

    @staticmethod
    def backward(ctx: FunctionCtx, relevance: Tensor) -> tuple[Tensor, None]:
        """``relevance``."""
        return relevance, None


# -------------------------------------------------------------------------- sums, products


def _operands(call: OpCall) -> tuple[Tensor, Any]:
    """The two operands of a binary op's call, in the order written."""
    first = call.args[0] if call.args else call.kwargs.get("input", call.kwargs.get("self"))
    other = call.args[1] if len(call.args) > 1 else call.kwargs.get("other")
    return cast(Tensor, first), other


class _ScaleRelevance(Function):
    """A product with (or a quotient by) a constant: the relevance passes on unchanged to
    the operand that carries it (the epsilon rule of ``z = c * x``: ``x * c * R / z``),
    summed back over broadcast dimensions. Which operand carries it is decided once the
    forward pass is over (:func:`~attrkit.engine.relevance.check_relevance_path` calls
    ``ctx.on_carriers``); until then, the first that requires grad."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Any, call: OpCall) -> Tensor:
        """The op itself, in place when the call is."""
        operands = [a, b]
        ctx.slots = [i for i, t in enumerate(operands) if isinstance(t, Tensor)]
        ctx.shapes = [t.shape if isinstance(t, Tensor) else None for t in operands]
        ctx.carrier = 0 if a.requires_grad else 1
        ctx.on_carriers = _scale_carriers
        ctx.title = call.op.title
        if call.inplace:
            ctx.mark_dirty(a)
        return call.plain()  # type: ignore[no-any-return]

    @staticmethod
    def backward(ctx: Any, relevance: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        """The relevance, to the operand that carries it."""
        grads: list[Tensor | None] = [None, None]
        grads[ctx.carrier] = relevance.sum_to_size(ctx.shapes[ctx.carrier])
        return grads[0], grads[1], None


def _scale_carriers(node: Any, carriers: list[bool]) -> None:
    """Given which tensor operands of a product or quotient carry relevance, pass it to
    the one that does; refuse a product of two, or a quotient by one."""
    carrying = [slot for slot, carries in zip(node.slots, carriers, strict=True) if carries]
    if len(carrying) > 1:
        raise UnsupportedModelError(
            f"LRP has no relevance rule for a {node.title} of two tensors that both carry "
            "relevance (a gate, an attention product); attrkit refuses the call rather than "
            "return a result that is silently not LRP's"
        )
    if carrying == [1] and node.title == "quotient":
        raise UnsupportedModelError(
            "LRP has no relevance rule for a quotient by a tensor that carries relevance; "
            "attrkit refuses the call rather than return a result that is silently not LRP's"
        )
    if carrying:
        node.carrier = carrying[0]


class ScaleRule(Rule):
    """A product with a constant (``0.5 * x``, ``x * scale``, ``x / std``) passes the
    relevance on unchanged, as the epsilon rule of ``z = c * x`` does; a product of two
    tensors that both carry relevance, or a quotient by one, is refused."""

    name = "scale"
    ops = (MUL, DIV)
    backward = "R (to the operand that carries relevance)"
    paper = LRP_PAPER

    def apply(self, call: OpCall) -> Any:
        first, other = _operands(call)
        return _ScaleRelevance.apply(first, other, call)


class _SumRelevance(Function):
    """``input + alpha * other``, both carrying relevance: each gets its share
    ``contribution * R / stabilize(z)``, summed back over broadcast dimensions."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, call: OpCall, epsilon: Stabilizer) -> Tensor:
        """The sum itself, in place when the call is."""
        ctx.epsilon, ctx.alpha = epsilon, call.kwargs.get("alpha", 1)
        ctx.save_for_backward(a.clone() if call.inplace else a, b)
        if call.inplace:
            ctx.mark_dirty(a)
        return call.plain()  # type: ignore[no-any-return]

    @staticmethod
    def backward(ctx: Any, relevance: Tensor) -> tuple[Tensor, Tensor, None, None]:
        """Each summand's share of the relevance."""
        a, b = (t.detach() for t in ctx.saved_tensors)
        contribution = ctx.alpha * b
        share = relevance / stabilize(a + contribution, ctx.epsilon)
        first = (a * share).sum_to_size(a.shape)
        return first, (contribution * share).sum_to_size(b.shape), None, None


class SumRule(Rule):
    """The sum of two tensors that both carry relevance (a residual connection) divides it
    in proportion to their values: the epsilon rule of Captum's ``Addition_Module`` and
    zennit's ``Norm`` rule of its ``Sum`` layer. A sum with a constant (a tensor that does
    not require grad, a number) keeps its gradient: the relevance passes on."""

    name = "sum"
    ops = (ADD,)
    backward = "x_i * R / stabilize(x_1 + x_2)"
    paper = LRP_PAPER
    zennit = "Norm"

    def __init__(self, epsilon: Stabilizer = 1e-6) -> None:
        self.epsilon = epsilon

    def apply(self, call: OpCall) -> Any:
        first, other = _operands(call)
        if not (isinstance(other, Tensor) and other.requires_grad and first.requires_grad):
            return call.plain()
        return _SumRelevance.apply(first, other, call, self.epsilon)

    def __repr__(self) -> str:
        return f"<rule {self.name!r} epsilon={self.epsilon}>"


# ------------------------------------------------------------------------- activations


class _PassActivation(Function):
    """An elementwise activation whose backward passes the relevance on unchanged."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, call: OpCall) -> Any:
        """The activation itself, in place when the call is."""
        if call.inplace:
            ctx.mark_dirty(x)
        return call.plain()

    @staticmethod
    def backward(ctx: FunctionCtx, relevance: Tensor) -> tuple[Tensor, None]:
        """``relevance``."""
        return relevance, None


class ActivationPassRule(Rule):
    """Every elementwise activation, and dropout, passes the relevance on unchanged
    (zennit's ``Pass``, and what Captum does on ``nn.ReLU``, ``nn.Tanh`` and
    ``nn.Dropout``)."""

    name = "pass_activation"
    ops = (*ELEMENTWISE, DROPOUT)
    backward = "R"
    paper = LRP_PAPER
    zennit = "Pass"

    def apply(self, call: OpCall) -> Any:
        return _PassActivation.apply(call.input, call)


class GradientRule(Rule):
    """The op's own gradient (what zennit's composites leave max-pooling and, in
    ``excitation_backprop``, the activations with)."""

    name = "gradient"
    ops = (*ELEMENTWISE, MAX_POOL, ADAPTIVE_MAX_POOL)
    backward = "the op's own gradient"
    paper = LRP_PAPER

    def apply(self, call: OpCall) -> Any:
        return call.plain()


class _BetaSmoothReLU(Function):
    """ReLU whose backward passes ``sigmoid(beta * x) * grad_output``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, inplace: bool, beta: float) -> Tensor:
        """The ordinary ReLU, in place when ``inplace``."""
        ctx.beta = beta
        ctx.save_for_backward(torch.sigmoid(beta * x))
        if inplace:
            ctx.mark_dirty(x)
            return torch.relu_(x)
        return torch.relu(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        """``sigmoid(beta * x) * grad_output``."""
        (smooth,) = ctx.saved_tensors
        return smooth * grad_output, None, None


class BetaSmoothRule(Rule):
    """zennit's ``ReLUBetaSmooth``: the ReLU's gradient replaced by the softplus's,
    ``sigmoid(beta_smooth * x)``."""

    name = "beta_smooth"
    ops = (RELU,)
    backward = "sigmoid(beta_smooth * x) * grad_output"
    paper = (
        "Dombrowski et al., Explanations can be manipulated and geometry is to blame, "
        "NeurIPS 2019, https://arxiv.org/abs/1906.07983"
    )
    zennit = "ReLUBetaSmooth"

    def __init__(self, beta_smooth: float = 10.0) -> None:
        self.beta_smooth = beta_smooth

    def apply(self, call: OpCall) -> Any:
        return _BetaSmoothReLU.apply(call.input, call.inplace, self.beta_smooth)

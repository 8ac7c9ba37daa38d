"""DeepLift's rules: rescale at every elementwise nonlinearity, and DeepLift's rules for
max-pooling and softmax.

DeepLift (Shrikumar et al., 2017) propagates *multipliers*: at a nonlinearity ``y = f(x)``
the multiplier is ``(f(x) - f(x_ref)) / (x - x_ref)`` instead of the gradient ``f'(x)``,
where ``x_ref`` is the value the same unit takes when the model runs on the baseline. As
in Captum, the forward pass runs once over the inputs followed by their baselines, one
batch of twice the rows: each rule application sees its input half and its reference half.
The override hands the rule every application of a ruled op whose input requires grad;
:class:`PairedBatch` (entered by the method around its forward pass) tells the rules how
many rows that batch has.

With these rules the multipliers of the inputs satisfy *summation to delta*:
``sum((x - baseline) * multipliers) = F(x) - F(baseline)`` for any network of linear
operations and these nonlinearities (exactly, up to rounding and ``eps``), in whatever
spelling, module reuse or in-place form the model applies them. Multiplicative
interactions (gates) and the softmax rule's normalization are outside that guarantee.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import FunctionCtx

from attrkit.engine.backward import saved_tensor_hooks_active
from attrkit.engine.ops import (
    ADAPTIVE_MAX_POOL,
    ELEMENTWISE,
    MAX_POOL,
    SOFTMAX,
    Op,
    OpCall,
    register_op,
)
from attrkit.engine.reach import UnsupportedModelError
from attrkit.engine.rule import Rule, register_rule

__all__ = [
    "DEEPLIFT_MAX_POOL",
    "DEEPLIFT_SOFTMAX",
    "DEFAULT_EPS",
    "RESCALE",
    "DeepLiftRule",
    "MaxPoolRule",
    "PairedBatch",
    "RescaleRule",
    "SoftmaxRule",
    "deeplift_rules",
    "elementwise_ops",
    "register_elementwise_op",
]

#: Below this ``|input - reference input|`` a rule passes the plain gradient (Captum's
#: default ``eps``).
DEFAULT_EPS = 1e-10

PAPER = (
    "Shrikumar et al., Learning Important Features Through Propagating Activation "
    "Differences, ICML 2017, https://arxiv.org/abs/1704.02685"
)

_user_elementwise: list[Op] = []


def elementwise_ops() -> tuple[Op, ...]:
    """The elementwise nonlinearities the rescale rule applies to: those of
    :data:`attrkit.engine.ops.ELEMENTWISE` and those registered with
    :func:`register_elementwise_op`."""
    return (*ELEMENTWISE, *_user_elementwise)


def register_elementwise_op(op: Op) -> Op:
    """Register ``op`` (:func:`~attrkit.engine.ops.register_op`) as an elementwise
    nonlinearity: DeepLift methods built afterwards give every application of it the
    rescale rule. ``op`` must act elementwise (each output depends on the input at the
    same position only)."""
    register_op(op)
    _user_elementwise.append(op)
    RESCALE.ops = elementwise_ops()
    return op


# ------------------------------------------------------------------ the paired batch


class _Pairing(threading.local):
    """Per thread: the rows of the batch of inputs and baselines the current DeepLift
    forward pass runs, its input leaves, and which autograd nodes depend on them."""

    rows: int | None = None
    leaves: tuple[Tensor, ...] = ()
    depends: dict[Any, bool]

    def __init__(self) -> None:
        self.depends = {}


_PAIRING = _Pairing()


class PairedBatch:
    """Within the block, on this thread, DeepLift's rules split every tensor a ruled op
    applies to into ``rows // 2`` input rows and as many reference rows.

    Args:
        rows: The rows of the batch of inputs followed by their baselines.
        leaves: The tensors the model receives (to tell a tensor that depends on them
            from a constant, when its dimension 0 is not the batch).
    """

    __slots__ = ("_leaves", "_previous", "_rows")

    def __init__(self, rows: int, leaves: tuple[Tensor, ...]) -> None:
        self._rows = rows
        self._leaves = leaves

    def __enter__(self) -> PairedBatch:
        self._previous = (_PAIRING.rows, _PAIRING.leaves, _PAIRING.depends)
        _PAIRING.rows, _PAIRING.leaves, _PAIRING.depends = self._rows, self._leaves, {}
        return self

    def __exit__(self, *exc_info: object) -> None:
        _PAIRING.rows, _PAIRING.leaves, _PAIRING.depends = self._previous


def _depends_on_leaves(tensor: Tensor) -> bool:
    """Whether ``tensor`` was computed from the current pass's leaves (an iterative walk
    over its autograd graph, remembered per node for the rest of the pass)."""
    known = _PAIRING.depends
    leaves = {id(leaf) for leaf in _PAIRING.leaves}
    root = tensor.grad_fn
    if root is None:
        return id(tensor) in leaves
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in known:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in children if child not in known)
            continue
        variable = getattr(node, "variable", None)
        known[node] = (variable is not None and id(variable) in leaves) or any(
            known.get(child, False) for child in children
        )
    return known[root]


def _input_rows(call: OpCall) -> int | None:
    """How many input rows the tensor ``call`` applies to has (half its rows), or
    ``None`` where it is a constant of the pass (its dimension 0 is not the paired batch
    and it does not depend on the inputs)."""
    x = call.input
    if torch._C._functorch.is_functorch_wrapped_tensor(x):
        raise UnsupportedModelError(
            f"DeepLift: a {call.op.title} ({getattr(call.func, '__name__', call.func)}) "
            "applies under torch.vmap (or another torch.func transform), which hides the "
            "batch of inputs and baselines whose halves DeepLift's rules compare; run the "
            "model without the transform"
        )
    expected = _PAIRING.rows
    rows = x.shape[0] if x.dim() else 0
    if expected is None:  # outside a method's pass: the tensor is taken as the paired batch
        expected = rows
    if rows == expected and rows % 2 == 0:
        return rows // 2
    if not _depends_on_leaves(x):
        return None
    raise UnsupportedModelError(
        f"DeepLift: a {call.op.title} ({getattr(call.func, '__name__', call.func)}) applies "
        f"to a tensor of shape {tuple(x.shape)} that depends on the inputs, but DeepLift "
        f"runs the inputs and their baselines as one batch of {expected} rows and needs "
        "that batch as dimension 0 of every tensor a nonlinearity applies to (a model "
        "that moves the batch to another dimension, or mixes the examples of a batch, "
        "cannot be attributed with DeepLift)"
    )


def _applied_to(call: OpCall, tensor: Tensor) -> Any:
    """The op of ``call`` applied to ``tensor`` in place of its input."""
    if call.args:
        return call.func(tensor, *call.args[1:], **call.kwargs)
    return call.func(**{**call.kwargs, "input": tensor})


def _values(output: Any) -> Tensor:
    """The values of an op's output (a max-pool may also return indices)."""
    values: Tensor = output[0] if isinstance(output, (tuple, list)) else output
    return values


# ----------------------------------------------------------------------- the rules


class DeepLiftRule(Rule):
    """A DeepLift rule: the op's own forward over the paired batch, and a backward that
    passes multipliers (computed from the input and reference halves) to the input half.

    The reference half of what the backward passes back is the plain gradient of the
    reference half (zero, as the target is selected on the input half only), so that
    nothing of it reaches the inputs.

    Args:
        eps: Below this ``|input - reference input|`` the plain gradient is passed.
    """

    paper = PAPER

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        self.eps = eps

    def apply(self, call: OpCall) -> Any:
        half = _input_rows(call)
        if half is None:
            return call.plain()
        return self._apply(call, half)

    def _apply(self, call: OpCall, half: int) -> Any:
        return _RuleFunction.apply(call.input, call, self, half)

    def prepare(self, x: Tensor, y: Tensor, half: int) -> tuple[Tensor | None, ...]:
        """What the backward needs from the input ``x`` and output ``y`` (both paired)."""
        return _rescale_multipliers(x, y, half, self.eps)

    def settings(self, call: OpCall) -> Any:
        """What the backward needs to know of the call's arguments (here: nothing). The
        call itself is not kept: its arguments hold the op's input, which an in-place
        application returns, and the graph would then keep itself alive."""
        return None

    def combine(
        self,
        settings: Any,
        saved: tuple[Tensor, ...],
        native: Any,
        grad: Tensor,
        half: int,
        x: Tensor,
    ) -> Tensor:
        """The gradient to pass to the op's input ``x`` (its values, intact: the op's own
        backward saved them), from ``grad`` (the gradient of its output) and
        ``native(v)``, the op's plain vector-Jacobian product."""
        multipliers, small = saved
        passed: Tensor = native(grad)
        _pass_multiplied(passed[:half], grad[:half], multipliers, small)
        return passed


def _rescale_multipliers(
    x: Tensor, y: Tensor, half: int, eps: float
) -> tuple[Tensor, Tensor | None]:
    """``(y - y_ref) / (x - x_ref)`` and where ``|x - x_ref| < eps``, for the input half
    (values only: no graph is recorded)."""
    x = x.detach()
    return _multipliers(x[:half] - x[half:], y, half, eps)


def _multipliers(
    delta_in: Tensor, y: Tensor, half: int, eps: float
) -> tuple[Tensor, Tensor | None]:
    """``(y - y_ref) / delta_in``, and where ``|delta_in| < eps`` (:func:`_small`). Two
    new tensors where no position is small: ``delta_in`` and the multipliers (each new
    tensor costs page faults on the CPU)."""
    magnitude = delta_in.abs()
    small = _small(magnitude, eps)
    y = y.detach()
    free = magnitude if small is not magnitude else None  # a buffer the mask did not take
    difference = torch.sub(y[:half], y[half:], out=free)
    return _divide_(difference, delta_in, small), small


def _small(magnitude: Tensor, eps: float) -> Tensor | None:
    """Where ``magnitude`` (``|x - x_ref|``) is below ``eps``: there the plain gradient
    passes. On the CPU a mask of 0.0 and 1.0 written over ``magnitude``, or ``None``
    where no position is small (comparisons into booleans, ``any`` and ``torch.where``
    on a boolean mask run several times slower there than float arithmetic); on other
    devices a boolean mask (and no synchronization)."""
    if magnitude.device.type != "cpu":
        return magnitude < eps
    if magnitude.numel() == 0 or bool(magnitude.amin() >= eps):  # (NaN: not small)
        return None
    return torch.lt(magnitude, eps, out=magnitude)


def _divide_(numerator: Tensor, delta_in: Tensor, small: Tensor | None) -> Tensor:
    """``numerator / delta_in``, in place; 0 (not inf or nan) where a float mask marks a
    small position (a boolean mask selects around them instead)."""
    if small is None or small.dtype == torch.bool:
        return numerator.div_(delta_in)
    numerator.div_(delta_in + small)
    return numerator.addcmul_(numerator, small, value=-1.0)


def _own(passed: Tensor, grad: Tensor) -> Tensor:
    """``passed``, or a copy where it shares memory with ``grad`` (a backward that hands
    its gradient on unchanged): the rules write into what they pass back."""
    if passed.untyped_storage().data_ptr() == grad.untyped_storage().data_ptr():
        return passed.clone()
    return passed


def _pass_values(passed: Tensor, values: Tensor, small: Tensor | None) -> None:
    """``passed = values`` in place, except where ``small``: there ``passed`` keeps the
    plain gradient it holds (``values`` are 0 there under a float mask, which selects by
    arithmetic: ``values + small * passed``, exact where both are finite)."""
    if small is None:
        passed.copy_(values)
    elif small.dtype == torch.bool:
        torch.where(small, passed, values, out=passed)
    elif bool((values.sum() + passed.sum()).isfinite()):
        torch.addcmul(values, small, passed, out=passed)
    else:  # an infinite gradient: 0 * inf would make a nan, a selection does not
        torch.where(small.bool(), passed, values, out=passed)


def _pass_multiplied(
    passed: Tensor, grad: Tensor, multipliers: Tensor, small: Tensor | None
) -> None:
    """``passed = grad * multipliers`` in place, except where ``small``."""
    if small is None:
        torch.mul(grad, multipliers, out=passed)
    else:
        _pass_values(passed, grad * multipliers, small)


def _kept(tensor: Tensor) -> Tensor:
    return tensor


def _rule_graph() -> AbstractContextManager[Any]:
    """The context in which a rule records its copy of the op: where saved-tensor hooks
    are active (a checkpointed block), hooks that keep the tensors as they are, so that
    the copy's saved tensors are the rule's own and not the block's (whose recomputation
    in the backward pass must save what the forward pass saved)."""
    if saved_tensor_hooks_active():
        return torch.autograd.graph.saved_tensors_hooks(_kept, _kept)
    return nullcontext()


class _RuleFunction(Function):
    """A ruled op: its own forward (in place when the call is), and the rule's backward
    built on the op's plain vector-Jacobian product (which a copy of the op, recorded on
    a detached input, gives)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, call: OpCall, rule: DeepLiftRule, half: int) -> Any:
        with torch.enable_grad(), _rule_graph():
            leaf = x.detach().requires_grad_()
            # An in-place spelling runs on a copy (a leaf cannot be modified in place).
            recorded = _applied_to(call, leaf.clone() if call.inplace else leaf)
        values = _values(recorded)
        saved = rule.prepare(x, values, half)
        ctx.settings, ctx.rule, ctx.half = rule.settings(call), rule, half  # type: ignore[attr-defined]
        ctx.leaf, ctx.recorded = leaf, values  # type: ignore[attr-defined]
        ctx.save_for_backward(*saved)  # type: ignore[arg-type]  # (None entries are kept)
        if call.inplace:
            ctx.mark_dirty(x)
            return x.copy_(values.detach())
        if isinstance(recorded, (tuple, list)):  # values and indices
            indices = tuple(item.detach() for item in recorded[1:])
            ctx.mark_non_differentiable(*indices)
            return (values.detach(), *indices)
        return values.detach()

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor, *_: Any) -> tuple[Tensor, None, None, None]:
        state: Any = ctx

        def native(vector: Tensor, retain: bool = False) -> Tensor:
            result: tuple[Tensor, ...] = torch.autograd.grad(
                state.recorded, state.leaf, vector, retain_graph=retain
            )
            return _own(result[0], vector)

        passed: Tensor = state.rule.combine(
            state.settings, state.saved_tensors, native, grad, state.half, state.leaf
        )
        return passed, None, None, None


class RescaleRule(DeepLiftRule):
    """The rescale rule on every elementwise nonlinearity: the input half receives
    ``grad_output * (y - y_ref) / (x - x_ref)``, the plain gradient where
    ``|x - x_ref| < eps``.

    An application whose autograd node is the op's own (out of place, or in place on a
    tensor that is not a view) keeps that node and replaces its result with a hook: no
    second copy of the op, and of the op's values only the multipliers are kept. In-place
    applications to views, composites and user-registered ops go through
    :class:`_RuleFunction`.
    """

    name = "rescale"
    backward = "grad_output * (y - y_ref) / (x - x_ref); the gradient where |x - x_ref| < eps"

    def __init__(self, eps: float = DEFAULT_EPS, ops: tuple[Op, ...] | None = None) -> None:
        super().__init__(eps)
        self.ops = elementwise_ops() if ops is None else ops

    def _apply(self, call: OpCall, half: int) -> Any:
        x, nodes = call.input, call.op.native_nodes
        if not nodes or (call.inplace and x._is_view()):
            return _RuleFunction.apply(x, call, self, half)
        with torch.no_grad():
            delta_in = x[:half] - x[half:]  # before an in-place application overwrites x
        output = call.plain()
        node = output.grad_fn if isinstance(output, Tensor) else None
        if node is None or type(node).__name__ not in nodes:
            if call.inplace:  # every in-place spelling makes its op's node (tested)
                raise RuntimeError(
                    f"attrkit: an in-place {call.op.title} made a "
                    f"{type(node).__name__} node, not one of {sorted(nodes)}"
                )
            return _RuleFunction.apply(x, call, self, half)  # say, under a tracer
        multipliers, small = _multipliers(delta_in, output, half, self.eps)

        def rescale(grad_inputs: Any, grad_outputs: Any) -> Any:
            passed = grad_inputs[0]
            if passed is None:
                return None
            passed = _own(passed, grad_outputs[0])
            _pass_multiplied(passed[:half], grad_outputs[0][:half], multipliers, small)
            return (passed, *grad_inputs[1:])

        node.register_hook(rescale)
        return output


class MaxPoolRule(DeepLiftRule):
    """DeepLift's max-pool rule (as Captum's): the output difference of each window is
    split at the window's maximum in the input, ``max(y, y_ref) - y_ref``, and at its
    maximum in the reference, ``y - max(y, y_ref)``; each input position receives the
    sum of its shares divided by its own ``x - x_ref`` (the plain gradient where
    ``|x - x_ref| < eps``). Shares of overlapping windows add up."""

    name = "deeplift_max_pool"
    ops = (MAX_POOL, ADAPTIVE_MAX_POOL)
    backward = (
        "unpool(grad * (max(y, y_ref) - y_ref)) at x's maxima + unpool(grad * (y - max(y, "
        "y_ref))) at x_ref's maxima, divided by x - x_ref"
    )

    def prepare(self, x: Tensor, y: Tensor, half: int) -> tuple[Tensor | None, ...]:
        output, reference = y[:half], y[half:]
        peak = torch.maximum(output, reference)
        return peak - reference, output - peak

    def combine(
        self,
        settings: Any,
        saved: tuple[Tensor, ...],
        native: Any,
        grad: Tensor,
        half: int,
        x: Tensor,
    ) -> Tensor:
        at_input, at_reference = saved
        grad_in = grad[:half]
        # One product over the paired batch unpools both shares: the input half at the
        # input's maxima, the reference half at the reference's.
        both = torch.empty_like(grad)
        torch.mul(grad_in, at_input, out=both[:half])
        torch.mul(grad_in, at_reference, out=both[half:])
        shares: Tensor = native(both, retain=True)
        del both
        spread = shares[:half].add_(shares[half:])
        delta_in = torch.sub(x[:half], x[half:], out=shares[half:])  # (no new tensor)
        small = _small(delta_in.abs(), self.eps)
        _divide_(spread, delta_in, small)
        if small is None:  # the shares' tensor is what passes back
            shares[half:].zero_()
            return shares
        passed: Tensor = native(grad)
        _pass_values(passed[:half], spread, small)
        return passed


class SoftmaxRule(DeepLiftRule):
    """DeepLift's softmax rule: the rescale rule applied position by position, then,
    for each example, the mean over the softmax dimension subtracted (Captum subtracts
    one mean over the whole batch). It does not preserve summation to delta."""

    name = "deeplift_softmax"
    ops = (SOFTMAX,)
    backward = "rescale(grad_output), minus its mean over the softmax dimension per example"

    def settings(self, call: OpCall) -> int:
        """The softmax dimension."""
        return _softmax_dim(call)

    def combine(
        self,
        settings: Any,
        saved: tuple[Tensor, ...],
        native: Any,
        grad: Tensor,
        half: int,
        x: Tensor,
    ) -> Tensor:
        multipliers, small = saved
        passed: Tensor = native(grad)
        rescaled = passed[:half]
        _pass_multiplied(rescaled, grad[:half], multipliers, small)
        rescaled.sub_(rescaled.mean(dim=settings, keepdim=True))
        return passed


def _softmax_dim(call: OpCall) -> int:
    """The dimension a softmax call normalizes over (``F.softmax``'s implicit choice
    where none is given)."""
    dim = call.args[1] if len(call.args) > 1 else call.kwargs.get("dim")
    ndim = call.input.dim()
    if dim is None:
        dim = 0 if ndim in (0, 1, 3) else 1
    dim = int(dim) % max(ndim, 1)
    if dim == 0:
        raise UnsupportedModelError(
            "DeepLift: a softmax over dimension 0, the batch, mixes the examples of a batch "
            "(and the inputs with their baselines); pass `dim` to the softmax"
        )
    return dim


def deeplift_rules(eps: float = DEFAULT_EPS) -> tuple[Rule, ...]:
    """DeepLift's rules with ``eps`` (the rescale rule on every elementwise op
    registered so far)."""
    return (RescaleRule(eps), MaxPoolRule(eps), SoftmaxRule(eps))


RESCALE = register_rule(RescaleRule())
DEEPLIFT_MAX_POOL = register_rule(MaxPoolRule())
DEEPLIFT_SOFTMAX = register_rule(SoftmaxRule())

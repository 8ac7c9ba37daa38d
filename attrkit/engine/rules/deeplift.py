"""DeepLift's rules: rescale at every elementwise nonlinearity, and DeepLift's rules for
max-pooling and softmax.

DeepLift (Shrikumar et al., 2017) propagates *multipliers*: at a nonlinearity ``y = f(x)``
the multiplier is ``(f(x) - f(x_ref)) / (x - x_ref)`` instead of the gradient ``f'(x)``,
where ``x_ref`` is the value the same unit takes when the model runs on the baseline. A
method runs the model on the inputs and on their baselines in one of two ways:

* :class:`SplitPasses`: a *reference pass* over the baselines, in which every rule
  application records the values the rule needs (:class:`Reference`), then an *input pass*
  over the inputs, in which the same application, in the same order, takes its record.
  Only the input pass is differentiated: the backward pass runs over the inputs' rows, half
  the rows of a paired batch. An application that does not match its record (the model's
  control flow depends on the values), a value recorded and then modified in place, and a
  rule applied where the backward pass re-runs forward code (a checkpointed block) raise
  :class:`SplitMismatch`, and the method runs the paired batch instead.
* :class:`PairedBatch`: as in Captum, one forward pass over the inputs followed by their
  baselines, one batch of twice the rows: each rule application sees its input half and
  its reference half.

The override hands the rule every application of a ruled op whose input requires grad.

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
    "Pair",
    "PairedBatch",
    "Reference",
    "RescaleRule",
    "SoftmaxRule",
    "SplitMismatch",
    "SplitPasses",
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
    """Per thread: how the current DeepLift forward pass runs (``mode``: ``"paired"``,
    or the ``"reference"`` or ``"input"`` pass of split passes), the rows of its batch
    (paired: inputs and baselines; split: one pass's), its input leaves, which autograd
    nodes depend on them, and the split passes' records."""

    rows: int | None = None
    leaves: tuple[Tensor, ...] = ()
    depends: dict[Any, bool]
    mode: str = "paired"
    records: list[Reference]
    cursor: int = 0

    def __init__(self) -> None:
        self.depends = {}
        self.records = []

    def enter(
        self, rows: int, leaves: tuple[Tensor, ...], mode: str, records: list[Reference]
    ) -> tuple[Any, ...]:
        previous = (self.rows, self.leaves, self.depends, self.mode, self.records, self.cursor)
        self.rows, self.leaves, self.depends = rows, leaves, {}
        self.mode, self.records, self.cursor = mode, records, 0
        return previous

    def restore(self, previous: tuple[Any, ...]) -> None:
        (self.rows, self.leaves, self.depends, self.mode, self.records, self.cursor) = previous


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
        self._previous = _PAIRING.enter(self._rows, self._leaves, "paired", [])
        return self

    def __exit__(self, *exc_info: object) -> None:
        _PAIRING.restore(self._previous)


class SplitMismatch(Exception):  # noqa: N818 - a signal to the method, not an error a user sees
    """The input pass of :class:`SplitPasses` cannot use the reference pass's records (the
    method then runs the paired batch)."""


class SplitPasses:
    """The two passes of split DeepLift: :meth:`reference` (over the baselines, with
    autograd off) records what every rule application needs, :meth:`inputs` (over the
    inputs) takes the records in order. Use each block once, the reference pass first,
    on one thread.

    Args:
        rows: The rows of each pass.
    """

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.records: list[Reference] = []
        self._previous: tuple[Any, ...] = ()
        self._mode = ""
        self._leaves: tuple[Tensor, ...] = ()

    def reference(self, leaves: tuple[Tensor, ...]) -> SplitPasses:
        self._mode, self._leaves = "reference", leaves
        return self

    def inputs(self, leaves: tuple[Tensor, ...]) -> SplitPasses:
        self._mode, self._leaves = "input", leaves
        return self

    def __enter__(self) -> SplitPasses:
        self._previous = _PAIRING.enter(self.rows, self._leaves, self._mode, self.records)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        cursor = _PAIRING.cursor
        _PAIRING.restore(self._previous)
        if exc_type is None and self._mode == "input" and cursor != len(self.records):
            raise SplitMismatch(
                f"the input pass applied {cursor} ruled ops, the reference pass {len(self.records)}"
            )


class Reference:
    """What the reference pass recorded of one rule application: the op's input and
    output values on the baselines, and for a rule that needs it the op's graph on them.

    Attributes:
        rule: The rule applied.
        op: The op it applied to.
        shape: The shape of the op's input.
        x: The input values (a copy when the op ran in place).
        y: The output values.
        graph: ``(leaf, output)``: the op applied to a leaf of the input values, whose
            vector-Jacobian products the rule's backward pass needs (or ``None``).
    """

    __slots__ = ("_versions", "graph", "op", "rule", "shape", "x", "y")

    def __init__(
        self,
        rule: DeepLiftRule,
        call: OpCall,
        x: Tensor,
        y: Tensor,
        graph: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        self.rule, self.op, self.shape = rule, call.op, call.input.shape
        self.x, self.y, self.graph = x, y, graph
        self._versions = (x._version, y._version)

    def intact(self) -> bool:
        """Whether neither value was modified in place since it was recorded."""
        return (self.x._version, self.y._version) == self._versions


def _record(reference: Reference) -> None:
    _PAIRING.records.append(reference)


def _take(rule: DeepLiftRule, call: OpCall) -> Reference:
    """The reference pass's record of the application ``call`` of ``rule``."""
    records, cursor = _PAIRING.records, _PAIRING.cursor
    if cursor >= len(records):
        raise SplitMismatch("the input pass applied more ruled ops than the reference pass")
    reference = records[cursor]
    if (reference.rule, reference.op, reference.shape) != (rule, call.op, call.input.shape):
        raise SplitMismatch(f"application {cursor} differs between the passes")
    if not reference.intact():
        raise SplitMismatch(f"the values of application {cursor} were modified in place")
    records[cursor] = None  # type: ignore[call-overload]  # (freed once the rule took them)
    _PAIRING.cursor = cursor + 1
    return reference


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
    """How many input rows the tensor ``call`` applies to has (half its rows in a paired
    batch, all of them in a split pass), or ``None`` where it is a constant of the pass
    (its dimension 0 is not the batch and it does not depend on the inputs)."""
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
    if rows == expected and _PAIRING.mode != "paired":
        return rows
    if rows == expected and rows % 2 == 0:
        return rows // 2
    if not _depends_on_leaves(x):
        return None
    raise UnsupportedModelError(
        f"DeepLift: a {call.op.title} ({getattr(call.func, '__name__', call.func)}) applies "
        f"to a tensor of shape {tuple(x.shape)} that depends on the inputs, but DeepLift "
        f"runs the inputs and their baselines in batches of {expected} rows and needs "
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


class Pair:
    """Where a rule application finds its reference values: the rows ``half:`` of a
    paired batch (``half`` the number of input rows), or a split pass's record
    (``reference``; ``half`` is ``None`` and every row is an input row)."""

    __slots__ = ("half", "reference", "rows")

    def __init__(self, half: int | None, reference: Reference | None = None) -> None:
        self.half, self.reference = half, reference
        self.rows = slice(None, half)  # the input rows

    def of(self, tensor: Tensor, recorded: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The input rows and the reference values of a paired tensor, or of a split
        pass's tensor and its ``recorded`` reference."""
        if self.half is None:
            assert recorded is not None
            return tensor, recorded
        return tensor[: self.half], tensor[self.half :]


class DeepLiftRule(Rule):
    """A DeepLift rule: the op's own forward, and a backward that passes multipliers
    (computed from the input values and the reference values) to the input rows.

    In a paired batch, the reference half of what the backward passes back is the plain
    gradient of the reference half (zero, as the target is selected on the input half
    only), so that nothing of it reaches the inputs.

    Args:
        eps: Below this ``|input - reference input|`` the plain gradient is passed.
    """

    paper = PAPER
    #: Whether the backward pass needs the op's graph on the reference values.
    reference_graph = False

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        self.eps = eps

    def apply(self, call: OpCall) -> Any:
        half = _input_rows(call)
        if half is None:
            return call.plain()
        mode = _PAIRING.mode
        if mode == "paired":
            return self._apply(call, Pair(half))
        if saved_tensor_hooks_active() or torch.compiler.is_compiling():
            raise SplitMismatch("a rule applied in a checkpointed or compiled block")
        if mode == "reference":
            return self._reference(call)
        return self._apply(call, Pair(None, _take(self, call)))

    def applies_without_grad(self) -> bool:
        """In the reference pass of split passes, which runs with autograd off."""
        return _PAIRING.mode == "reference"

    def _apply(self, call: OpCall, pair: Pair) -> Any:
        return _RuleFunction.apply(call.input, call, self, pair)

    def _reference(self, call: OpCall) -> Any:
        """The op applied in the reference pass, and what it records."""
        x = call.input
        if not self.reference_graph:
            before = x.detach().clone() if call.inplace else x.detach()
            output = call.plain()
            _record(Reference(self, call, before, _values(output).detach()))
            return output
        with torch.enable_grad():
            leaf = (x.detach().clone() if call.inplace else x.detach()).requires_grad_()
            recorded = _applied_to(call, leaf.clone() if call.inplace else leaf)
        values = _values(recorded)
        _record(Reference(self, call, leaf.detach(), values.detach(), (leaf, values)))
        with torch.no_grad():
            if call.inplace:
                return x.copy_(values)
            if isinstance(recorded, (tuple, list)):
                return (values.detach(), *(item.detach() for item in recorded[1:]))
            return values.detach()

    def prepare(
        self, x: Tensor, y: Tensor, x_ref: Tensor, y_ref: Tensor
    ) -> tuple[Tensor | None, ...]:
        """What the backward needs from the input rows' input ``x`` and output ``y`` and
        their references."""
        with torch.no_grad():
            return _multipliers(x - x_ref, y, y_ref, self.eps)

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
        pair: Pair,
        x: Tensor,
    ) -> Tensor:
        """The gradient to pass to the op's input ``x`` (its values, intact: the op's own
        backward saved them), from ``grad`` (the gradient of its output) and
        ``native(v)``, the op's plain vector-Jacobian product."""
        multipliers, small = saved
        passed: Tensor = native(grad)
        _pass_multiplied(passed[pair.rows], grad[pair.rows], multipliers, small)
        return passed


def _multipliers(
    delta_in: Tensor, y: Tensor, y_ref: Tensor, eps: float
) -> tuple[Tensor, Tensor | None]:
    """``(y - y_ref) / delta_in``, and where ``|delta_in| < eps`` (:func:`_small`). Two
    new tensors where no position is small: ``delta_in`` and the multipliers (each new
    tensor costs page faults on the CPU)."""
    magnitude = delta_in.abs()
    small = _small(magnitude, eps)
    free = magnitude if small is not magnitude else None  # a buffer the mask did not take
    difference = torch.sub(y.detach(), y_ref.detach(), out=free)
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
    small position (a boolean mask selects around them instead). A float mask is added to
    ``delta_in`` in place (no new tensor): the callers do not use it afterwards."""
    if small is None or small.dtype == torch.bool:
        return numerator.div_(delta_in)
    numerator.div_(delta_in.add_(small))
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
    def forward(ctx: FunctionCtx, x: Tensor, call: OpCall, rule: DeepLiftRule, pair: Pair) -> Any:
        with torch.enable_grad(), _rule_graph():
            leaf = x.detach().requires_grad_()
            # An in-place spelling runs on a copy (a leaf cannot be modified in place).
            recorded = _applied_to(call, leaf.clone() if call.inplace else leaf)
        values = _values(recorded)
        reference = pair.reference
        x_in, x_ref = pair.of(x.detach(), None if reference is None else reference.x)
        y_in, y_ref = pair.of(values.detach(), None if reference is None else reference.y)
        saved = rule.prepare(x_in, y_in, x_ref, y_ref)
        # (the backward keeps a record only where it needs the reference's graph)
        kept = pair if rule.reference_graph else Pair(pair.half)
        ctx.settings, ctx.rule, ctx.pair = rule.settings(call), rule, kept  # type: ignore[attr-defined]
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
            state.settings, state.saved_tensors, native, grad, state.pair, state.leaf
        )
        return passed, None, None, None


class RescaleRule(DeepLiftRule):
    """The rescale rule on every elementwise nonlinearity: the input rows receive
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

    def _apply(self, call: OpCall, pair: Pair) -> Any:
        x, nodes = call.input, call.op.native_nodes
        if not nodes or (call.inplace and x._is_view()):
            return _RuleFunction.apply(x, call, self, pair)
        reference = pair.reference
        with torch.no_grad():  # before an in-place application overwrites x
            x_in, x_ref = pair.of(x, None if reference is None else reference.x)
            delta_in = x_in - x_ref
        output = call.plain()
        node = output.grad_fn if isinstance(output, Tensor) else None
        if node is None or type(node).__name__ not in nodes:
            if call.inplace:  # every in-place spelling makes its op's node (tested)
                raise RuntimeError(
                    f"attrkit: an in-place {call.op.title} made a "
                    f"{type(node).__name__} node, not one of {sorted(nodes)}"
                )
            return _RuleFunction.apply(x, call, self, pair)  # say, under a tracer
        y_in, y_ref = pair.of(output, None if reference is None else reference.y)
        multipliers, small = _multipliers(delta_in, y_in, y_ref, self.eps)
        rows = pair.rows

        def rescale(grad_inputs: Any, grad_outputs: Any) -> Any:
            passed = grad_inputs[0]
            if passed is None:
                return None
            passed = _own(passed, grad_outputs[0])
            _pass_multiplied(passed[rows], grad_outputs[0][rows], multipliers, small)
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
    reference_graph = True

    def prepare(
        self, x: Tensor, y: Tensor, x_ref: Tensor, y_ref: Tensor
    ) -> tuple[Tensor | None, ...]:
        peak = torch.maximum(y, y_ref)
        return peak - y_ref, y - peak

    def combine(
        self,
        settings: Any,
        saved: tuple[Tensor, ...],
        native: Any,
        grad: Tensor,
        pair: Pair,
        x: Tensor,
    ) -> Tensor:
        at_input, at_reference = saved
        grad_in = grad[pair.rows]
        half, reference = pair.half, pair.reference
        if reference is not None:  # each share unpooled by its own pass's graph
            assert reference.graph is not None
            leaf, output = reference.graph
            spread: Tensor = native(grad_in * at_input, retain=True)
            spread.add_(torch.autograd.grad(output, leaf, grad_in * at_reference)[0])
            delta_in = x.detach() - reference.x
        else:
            # One product over the paired batch unpools both shares: the input half at
            # the input's maxima, the reference half at the reference's.
            both = torch.empty_like(grad)
            torch.mul(grad_in, at_input, out=both[:half])
            torch.mul(grad_in, at_reference, out=both[half:])
            shares: Tensor = native(both, retain=True)
            del both
            spread = shares[:half].add_(shares[half:])
            delta_in = torch.sub(x[:half], x[half:], out=shares[half:])  # (no new tensor)
        small = _small(delta_in.abs(), self.eps)
        _divide_(spread, delta_in, small)
        if small is None and reference is not None:
            return spread
        if small is None:  # the shares' tensor is what passes back
            shares[half:].zero_()
            return shares
        passed: Tensor = native(grad)
        _pass_values(passed[pair.rows], spread, small)
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
        pair: Pair,
        x: Tensor,
    ) -> Tensor:
        multipliers, small = saved
        passed: Tensor = native(grad)
        rescaled = passed[pair.rows]
        _pass_multiplied(rescaled, grad[pair.rows], multipliers, small)
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

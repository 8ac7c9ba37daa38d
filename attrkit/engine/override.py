"""Give every application of a ruled op, in every spelling, its rule, during one call.

:class:`RuleOverride` is a :class:`~torch.overrides.TorchFunctionMode`: while it is active
*on the current thread*, every call of a spelling of an op its :class:`~attrkit.engine.rule.RuleSet`
covers (for ReLU: ``nn.ReLU`` modules, reused or created inside ``forward``, ``F.relu``,
``torch.relu``, ``Tensor.relu``, the in-place forms and ``torch.ops.aten.relu``) goes
through the op's rule, whose forward is the op's own and whose backward is the rule's.
Nothing is installed on the user's modules, nothing outlives the ``with`` block, and other
threads never see the mode.

What a mode does not see by itself, it is made to see:

* the ops inside torch's Python and C++ composites (``F.lp_pool2d``, ``nn.RNN``): the
  override runs them through a route (:mod:`~attrkit.engine.routes`) with itself active;
* ops under ``torch.vmap`` and other functorch transforms, whose wrapped tensors do not
  tell that they require grad: the override looks through the wrapper;
* the forward pass that a checkpointed block re-runs during the backward pass: the
  override intercepts ``torch.autograd.grad`` and runs the backward pass with itself
  active (a torch-function mode is part of the thread-local state the autograd engine
  gives the backward pass, but a mode is off while its handler runs), so the recomputed
  ops get the same rules and save the same tensors.

And what it cannot reach, it refuses: before each backward pass it runs inside, it checks
the graph (:func:`~attrkit.engine.verify.find_escapes`) and raises
:class:`~attrkit.engine.reach.UnsupportedModelError`, naming where, when an application
of a ruled op on the gradient path escaped it.

An attribution call made inside the forward pass of another (by the model itself) is the
inner call's: the override rules only the calls of the attribution call it was made in
(:func:`~attrkit.core.scope.current_call`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from attrkit.core.scope import current_call
from attrkit.engine.backward import (
    GRAD_PARAMETERS,
    backward_pass,
    saved_tensor_hooks_active,
    tensors,
)
from attrkit.engine.locate import creation_stacks, describe
from attrkit.engine.reach import UnsupportedModelError, dynamo_refusal
from attrkit.engine.routes import GRADIENT
from attrkit.engine.rule import RuleSet
from attrkit.engine.verify import Escape, find_escapes

__all__ = ["RuleOverride"]


def _UNSEEN(*args: Any) -> Any:  # noqa: N802 - a sentinel: a function not yet looked up
    raise AssertionError("not a route")


_functorch: Any = torch._C._functorch
_compiling = torch.compiler.is_compiling


def _wrapped_requires_grad(x: Tensor) -> bool:
    """Whether ``x``, a tensor that says it does not require grad, is a functorch
    wrapper (``torch.vmap``) of one that does."""
    while _functorch.is_functorch_wrapped_tensor(x):
        x = _functorch.get_unwrapped(x)
    return bool(x.requires_grad)


def _activate(mode: TorchFunctionMode) -> None:
    """Put ``mode`` back on the stack (from inside its handler, where it is off)."""
    TorchFunctionMode.__enter__(mode)  # type: ignore[no-untyped-call]


def _deactivate(mode: TorchFunctionMode) -> None:
    TorchFunctionMode.__exit__(mode, None, None, None)  # type: ignore[no-untyped-call]


class RuleOverride(TorchFunctionMode):
    """Route every application of the ops ``rules`` covers through their rules, on this
    thread, and refuse a backward pass that an application escaped.

    An application whose input does not require grad (a constant: a parameter-only
    branch, an additional argument), or that runs with autograd off, keeps the plain op,
    which has no backward anyway (unless its rule records values in such a pass:
    :meth:`~attrkit.engine.rule.Rule.applies_without_grad`).

    Args:
        rules: The method's rules.
        rerun: Runs the forward pass again (for the error message: where the escaped
            applications were made); ``None``: the message names no place.
        verify: Check the graph before each backward pass run inside the override.
        ruling: Rule the ops applied anywhere inside the block (``True``), or only inside
            :meth:`forward_pass` blocks and the backward passes the override runs
            (``False``: a method's own computation around its forward passes, such as
            ``selected * selected.detach()``, keeps the plain ops).

    Attributes:
        applications: How many applications of a ruled op the mode saw.
        made: The autograd nodes the rules made (and, outside forward passes, the
            method's own applications of ruled ops).
    """

    def __init__(
        self,
        rules: RuleSet,
        rerun: Callable[[], Any] | None = None,
        verify: bool = True,
        ruling: bool = True,
    ) -> None:
        super().__init__()
        self.rules = rules
        self.rerun = rerun
        self.verify = verify
        self.ruling = ruling
        self._table = rules.table
        self._owner = current_call()
        self._backward = 0  # backward passes running inside the override
        # whether a rule ran under saved-tensor hooks (checkpointing), so that the
        # backward pass may run forward code again
        self._recompute = False
        self.applications = 0
        self.made: set[Any] = set()

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        """Leave the mode; torch.compile's refusal to trace the forward pass with it
        active becomes :class:`~attrkit.engine.reach.UnsupportedModelError`."""
        super().__exit__(exc_type, *exc_info)  # type: ignore[no-untyped-call]
        refusal = None if exc_type is None else dynamo_refusal(exc_info[0])
        if refusal is not None:
            raise refusal from exc_info[0]

    def _foreign(self) -> bool:
        """Whether the current operation belongs to an attribution call made inside the
        one this override was made in (or to none, on a thread of a backward pass);
        asked when the current call is not the override's own."""
        call = current_call()
        return call is not self._owner and (call is not None or not self._backward)

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        # Every torch call of the forward pass comes through here: the common path (not
        # a ruled op, no route) is one dictionary lookup.
        entry = self._table.get(func, _UNSEEN)
        if entry is None:
            return func(*args, **kwargs) if kwargs else func(*args)
        if entry is _UNSEEN:
            entry = self.rules.lookup(func)
            if entry is None:
                return func(*args, **kwargs) if kwargs else func(*args)
        if type(entry) is not tuple:  # a route
            if (self._owner is not current_call() and self._foreign()) or not (
                self.ruling or self._backward or entry is GRADIENT
            ):
                return func(*args, **kwargs) if kwargs else func(*args)
            return self._reroute(entry, func, types, args, kwargs or {})
        if not (self.ruling or self._backward):  # the method's own computation
            return self._own(func, args, kwargs)
        self.applications += 1
        op, rule = entry
        call = op.read(func, args, kwargs)
        x = call.input
        wrapped = False
        if (
            not torch.is_grad_enabled()
            or (not x.requires_grad and not (wrapped := _wrapped_requires_grad(x)))
        ) and not rule.applies_without_grad():
            return func(*args, **kwargs) if kwargs else func(*args)
        if self._owner is not current_call() and self._foreign():
            return func(*args, **kwargs) if kwargs else func(*args)
        if _compiling():  # traced by dynamo: no bookkeeping on the tensors
            return rule.apply(call)
        if not self._recompute and saved_tensor_hooks_active():
            self._recompute = True
        result = rule.apply(call)
        if not wrapped:
            if type(result) is Tensor:
                node = result.grad_fn
                if node is not None:
                    self.made.add(node)
            else:
                self._record(result)
        return result

    def _own(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
        """A ruled op that the method applies outside its forward passes (to the selected
        outputs, say): the plain op, whose node the check then does not hold against the
        model."""
        result = func(*args, **kwargs) if kwargs else func(*args)
        self._record(result)
        return result

    def forward_pass(self) -> _ForwardPass:
        """A context: within it a forward pass runs, and its ruled ops get their rules (an
        override made with ``ruling=False`` rules only inside such blocks, and in the
        backward passes it runs)."""
        return _ForwardPass(self)

    def _record(self, result: Any) -> None:
        for tensor in result if isinstance(result, tuple | list) else (result,):
            if isinstance(tensor, Tensor) and tensor.grad_fn is not None:
                self.made.add(tensor.grad_fn)

    # -------------------------------------------------------------------- routes
    def _reroute(
        self,
        route: Callable[..., Any],
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        if route is GRADIENT:
            return self._gradient(func, args, kwargs)
        if _compiling() or any(t is not Tensor for t in types):
            # dynamo traces the function itself; a tensor subclass handles it its way
            return func(*args, **kwargs)
        _activate(self)
        try:
            return route(*args, **kwargs)
        finally:
            _deactivate(self)

    def _gradient(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """``torch.autograd.grad``: check the graph, then run the backward pass with the
        override active."""
        outputs = tensors(args[0] if args else kwargs.get("outputs"))
        inputs = tensors(args[1] if len(args) > 1 else kwargs.get("inputs"))
        if outputs is None or inputs is None or self._backward:
            # (inside a backward pass the override runs: a rule's own vector-Jacobian
            # product, over a graph of plain ops that the rule made, not the model's)
            return func(*args, **kwargs)
        if self.verify:
            self.check(outputs, inputs)
        options = dict(zip(GRAD_PARAMETERS, args[2:], strict=False))
        options.update((k, v) for k, v in kwargs.items() if k not in ("outputs", "inputs"))
        backward = backward_pass(func, outputs, inputs, options)
        if backward is None:
            return func(*args, **kwargs)
        if not self._recompute:  # no forward code runs again: no need of the override
            return backward()
        self._backward += 1
        _activate(self)
        try:
            return backward()
        finally:
            _deactivate(self)
            self._backward -= 1

    # -------------------------------------------------------------- verification
    def check(self, outputs: Sequence[Tensor], inputs: Sequence[Tensor]) -> None:
        """Raise :class:`~attrkit.engine.reach.UnsupportedModelError` if an application
        of a ruled op on the gradient path from ``outputs`` to ``inputs`` escaped the
        override (see :mod:`~attrkit.engine.verify`)."""
        rules = self.rules
        escapes = find_escapes(outputs, inputs, rules.native_nodes, self.made, rules.node_kinds)
        if escapes:
            locate = None if self.rerun is None else lambda: self._locate(inputs)
            raise UnsupportedModelError(describe(escapes, self.rules, locate))

    def _locate(self, inputs: Sequence[Tensor]) -> list[Escape]:
        """The escapes of a re-run of the forward pass whose nodes record their stacks."""
        rerun = self.rerun
        if rerun is None:
            return []
        diagnostic = RuleOverride(self.rules, verify=False)
        with creation_stacks(), diagnostic:
            output = rerun()
        outputs = [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, Tensor)]
        rules = self.rules
        return find_escapes(outputs, inputs, rules.native_nodes, diagnostic.made, rules.node_kinds)


class _ForwardPass:
    """:meth:`RuleOverride.forward_pass` (a class: it runs on every forward pass, and a
    ``@contextmanager`` generator costs several microseconds more)."""

    __slots__ = ("_override", "_ruling")

    def __init__(self, override: RuleOverride) -> None:
        self._override = override

    def __enter__(self) -> None:
        self._ruling = self._override.ruling
        self._override.ruling = True

    def __exit__(self, *exc_info: object) -> None:
        self._override.ruling = self._ruling

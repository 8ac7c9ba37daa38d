"""Give every application of a ruled op, in every spelling, its rule, during one forward pass.

:class:`RuleOverride` is a :class:`~torch.overrides.TorchFunctionMode`: while it is active
*on the current thread*, every call of a spelling of an op its :class:`~attrkit.engine.rule.RuleSet`
covers (for ReLU: ``nn.ReLU`` modules, reused or created inside ``forward``, ``F.relu``,
``torch.relu``, ``Tensor.relu``, the in-place forms and ``torch.ops.aten.relu``) goes
through the op's rule, whose forward is the op's own and whose backward is the rule's.
Nothing is installed on the user's modules, nothing outlives the ``with`` block, and other
threads never see the mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from attrkit.engine.rule import RuleSet

__all__ = ["RuleOverride"]


class RuleOverride(TorchFunctionMode):
    """Route every application of the ops ``rules`` covers through their rules, on this
    thread.

    An application whose input does not require grad (a constant: a parameter-only
    branch, an additional argument) keeps the plain op, which has no backward anyway.

    Args:
        rules: The method's rules.

    Attributes:
        applications: How many applications of a ruled op the mode saw.
    """

    def __init__(self, rules: RuleSet) -> None:
        super().__init__()
        self.rules = rules
        self._dispatch = rules.dispatch
        self.applications = 0

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        # Every torch call of the forward pass comes through here: the common path (not
        # a ruled op) is one dictionary lookup.
        entry = self._dispatch.get(func)
        if entry is None:
            return func(*args, **kwargs) if kwargs else func(*args)
        self.applications += 1
        op, rule = entry
        call = op.read(func, args, kwargs)
        if not (call.input.requires_grad and torch.is_grad_enabled()):
            return func(*args, **kwargs) if kwargs else func(*args)
        return rule.apply(call)

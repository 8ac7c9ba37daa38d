"""What every method that declares backward rules shares: its computation (forward passes
and gradients) runs inside the rule override, and models the override cannot reach are
refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar

from attrkit.core.call import AttributionCall
from attrkit.core.warnings import warn_at_caller
from attrkit.engine.override import RuleOverride
from attrkit.engine.reach import check_overridable
from attrkit.engine.rule import Rule, RuleSet

__all__ = ["RuleBased"]


class RuleBased:
    """Mixin of the methods that declare backward rules.

    A subclass declares :attr:`rules` (the registry records them); its constructor calls
    :meth:`_use_rules`, after which :meth:`_compute_context` (the hook of
    :class:`~attrkit.core.attribution.GradientAttribution`) runs each call's computation
    inside a :class:`~attrkit.engine.override.RuleOverride`, which rules the ops of its
    forward passes (:meth:`_forward_context`), checks the graph before each gradient and
    refuses a call that a ruled op escaped.

    Attributes:
        rules: The rules the method applies (class attribute).
        no_application_warning: A warning category, shown once per method object, when a
            call applied none of the ruled ops (class attribute; ``None``: no warning).
    """

    rules: ClassVar[tuple[Rule, ...]] = ()
    no_application_warning: ClassVar[type[Warning] | None] = None

    model: Callable[..., Any]
    _rule_set: RuleSet
    _warned: bool

    def _use_rules(self, model: Callable[..., Any], rules: tuple[Rule, ...]) -> None:
        check_overridable(model)
        self.model = model
        self._rule_set = RuleSet(rules)
        self._warned = False

    def _compute_context(self, call: AttributionCall) -> _RuleScope:
        check_overridable(self.model)
        return _RuleScope(self, call)

    def _forward_context(self) -> AbstractContextManager[Any]:
        scope = _scopes.innermost(self)
        return nullcontext() if scope is None else scope.forward_pass()

    def _warn_no_application(self) -> None:
        category = self.no_application_warning
        if category is not None and not self._warned:
            self._warned = True
            ops = " or ".join(sorted({op.title for r in self._rule_set.rules for op in r.ops}))
            warn_at_caller(
                f"{type(self).__name__}: the model applied no {ops}, "
                "so the attribution equals the plain gradient (this warning is shown once "
                "per object)",
                category,
            )


class _RuleScope(RuleOverride):
    """The override for one call of ``method``: it re-runs the call's forward pass to say
    where an escaped application was made, and warns (once per method object) when the
    call applied no ruled op. (A class rather than a
    ``@contextmanager`` generator around the override: this runs on every call, and a
    generator costs several microseconds more.)"""

    def __init__(self, method: RuleBased, call: AttributionCall) -> None:
        super().__init__(method._rule_set, rerun=lambda: _run_model(method, call), ruling=False)
        self.method = method

    def __enter__(self) -> _RuleScope:
        super().__enter__()  # type: ignore[no-untyped-call]
        _scopes.stack.append(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        _scopes.stack.pop()
        super().__exit__(exc_type, *exc_info)
        if exc_type is None and self.applications == 0:
            self.method._warn_no_application()


class _Scopes(threading.local):
    """The rule scopes of the calls running on this thread, innermost last."""

    def __init__(self) -> None:
        self.stack: list[_RuleScope] = []

    def innermost(self, method: RuleBased) -> _RuleScope | None:
        for scope in reversed(self.stack):
            if scope.method is method:
                return scope
        return None


_scopes = _Scopes()


def _run_model(method: RuleBased, call: AttributionCall) -> Any:
    return method.model(*call.model_inputs(), *call.additional_forward_args)

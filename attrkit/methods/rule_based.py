"""What every method that declares backward rules shares: its forward passes run inside the
rule override, and models the override cannot reach are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from attrkit.core.warnings import warn_at_caller
from attrkit.engine.override import RuleOverride
from attrkit.engine.reach import check_overridable
from attrkit.engine.rule import Rule, RuleSet

__all__ = ["RuleBased"]


class RuleBased:
    """Mixin of the methods that declare backward rules.

    A subclass declares :attr:`rules` (the registry records them); its constructor calls
    :meth:`_use_rules`, after which :meth:`_forward_context` (the hook of
    :class:`~attrkit.core.attribution.GradientAttribution`) runs every forward pass of the
    model inside a :class:`~attrkit.engine.override.RuleOverride`.

    Attributes:
        rules: The rules the method applies (class attribute).
        no_application_warning: A warning category, shown once per method object, when a
            forward pass applied none of the ruled ops (class attribute; ``None``: no
            warning).
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

    def _forward_context(self) -> _RuleForward:
        check_overridable(self.model)
        return _RuleForward(self)

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


class _RuleForward(RuleOverride):
    """The override for one forward pass of ``method``, which warns (once per method
    object) when the pass applied no ruled op. (A class rather than a ``@contextmanager``
    generator around the override: this runs on every call, and a generator costs
    several microseconds more.)"""

    def __init__(self, method: RuleBased) -> None:
        super().__init__(method._rule_set)
        self.method = method

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        super().__exit__(exc_type, *exc_info)  # type: ignore[no-untyped-call]
        if exc_type is None and self.applications == 0:
            self.method._warn_no_application()

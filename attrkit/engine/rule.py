"""Backward rules as objects, and the set of rules one method applies.

A :class:`Rule` knows its name, the ops it applies to, how to apply one of them with the
rule's backward (:meth:`Rule.apply`, usually through a :class:`torch.autograd.Function`), the
paper that defines it and zennit's equivalent. A method declares its rules; a
:class:`RuleSet` turns them into the table the override looks every torch call up in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from attrkit.engine.ops import Op, OpCall
from attrkit.engine.routes import lookup_route, route_table

__all__ = ["RULES", "Rule", "RuleSet", "register_rule"]


class Rule(ABC):
    """A backward rule for one or more ops.

    Attributes:
        name: Its name (``"deconvolution"``).
        ops: The ops it applies to.
        backward: What the backward passes, in one line (``"relu(grad_output)"``).
        paper: The paper that defines it, with a link.
        zennit: The name of zennit's equivalent (a composite or a rule), or ``""``.
    """

    name: str
    ops: tuple[Op, ...]
    backward: str
    paper: str
    zennit: str = ""

    @abstractmethod
    def apply(self, call: OpCall) -> Any:
        """The result of ``call`` (the op's own forward), with this rule's backward."""

    def applies_without_grad(self) -> bool:
        """Whether the override hands the rule applications that run with autograd off
        or on tensors that do not require grad (here: no, they have no backward; a rule
        recording values in a pass that is not differentiated says yes)."""
        return False

    def __repr__(self) -> str:
        return f"<rule {self.name!r} on {', '.join(op.name for op in self.ops)}>"


#: Every rule by name.
RULES: dict[str, Rule] = {}


def register_rule(rule: Rule) -> Rule:
    """Add ``rule`` to :data:`RULES` (by its name, which must be new) and return it."""
    if rule.name in RULES:
        raise ValueError(f"a rule named {rule.name!r} is already registered: {RULES[rule.name]}")
    RULES[rule.name] = rule
    return rule


class RuleSet:
    """The rules of one method: for every spelling of every op they cover, the op and the rule.

    Args:
        rules: Rules for different ops (two rules for one op raise ``ValueError``).

    Attributes:
        rules: The rules, as given.
        dispatch: Spelling -> (op, rule), what the override looks every torch call up in.
        native_nodes: The autograd node names of the ruled ops' plain backward.
        routes: Function -> how to run it so that the ruled ops inside it are seen
            (:func:`~attrkit.engine.routes.find_route`), or ``None``: filled as the
            override meets functions, and shared by the rule sets of the same ops.
        table: What the override looks every torch call up in: :attr:`dispatch`, and
            the routes of the functions met so far (see :meth:`lookup`).
        node_kinds: Autograd node class -> what its nodes are to the check of the graph
            (:func:`~attrkit.engine.verify.find_escapes`), filled as it meets them.
    """

    __slots__ = ("dispatch", "native_nodes", "node_kinds", "routes", "rules", "table")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self.dispatch: dict[Callable[..., Any], tuple[Op, Rule]] = {}
        owner: dict[str, Rule] = {}
        for rule in self.rules:
            for op in rule.ops:
                if op.name in owner:
                    raise ValueError(
                        f"op {op.name!r} has two rules: {owner[op.name].name!r} and {rule.name!r}"
                    )
                owner[op.name] = rule
                self.dispatch.update(dict.fromkeys(op.spellings, (op, rule)))
        self.native_nodes = frozenset(
            node for rule in self.rules for op in rule.ops for node in op.native_nodes
        )
        self.routes = route_table(self.ops)
        self.table: dict[Callable[..., Any], Any] = dict(self.dispatch)
        self.node_kinds: dict[type, int] = {}

    @property
    def ops(self) -> tuple[Op, ...]:
        """Every op the rules cover."""
        return tuple(op for rule in self.rules for op in rule.ops)

    def lookup(self, func: Callable[..., Any]) -> Any:
        """What the override does with ``func``, which is not in :attr:`table` yet:
        ``(op, rule)`` for a spelling of a ruled op, a route, or ``None`` (remembered in
        :attr:`table`)."""
        entry: Any = self.dispatch.get(func)
        if entry is None:
            entry = lookup_route(func, self.ops)
        self.table[func] = entry
        return entry

    def rule_for(self, op: Op) -> Rule | None:
        """The rule of ``op``, or ``None``."""
        for rule in self.rules:
            if op in rule.ops:
                return rule
        return None

    def __repr__(self) -> str:
        return f"RuleSet({', '.join(rule.name for rule in self.rules)})"

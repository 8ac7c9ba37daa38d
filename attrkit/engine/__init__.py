"""The rule engine: backward rules as objects (:mod:`~attrkit.engine.rule`), the ops they
apply to in every spelling (:mod:`~attrkit.engine.ops`), the thread-local override that gives
every application its rule during one forward pass (:mod:`~attrkit.engine.override`), and
what the override cannot reach (:mod:`~attrkit.engine.reach`)."""

from attrkit.engine import rules
from attrkit.engine.ops import OPS, Op, OpCall
from attrkit.engine.override import RuleOverride
from attrkit.engine.reach import UnsupportedModelError, check_overridable
from attrkit.engine.rule import RULES, Rule, RuleSet

__all__ = [
    "OPS",
    "RULES",
    "Op",
    "OpCall",
    "Rule",
    "RuleOverride",
    "RuleSet",
    "UnsupportedModelError",
    "check_overridable",
    "rules",
]

"""The backward rules, one module per op family; importing this package registers them all
in :data:`attrkit.engine.rule.RULES`."""

from attrkit.engine.rules import deeplift, lrp, relu

__all__ = ["deeplift", "lrp", "relu"]

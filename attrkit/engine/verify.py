"""Check, before the backward pass, that every application of a ruled op on the gradient
path got its rule.

A ruled op that runs with its ordinary backward leaves its native autograd node
(``ReluBackward0`` for ReLU) in the graph. The rule override records the nodes its rules
make (the guided-backpropagation rule keeps the native node and hooks it); any other
native node of a ruled op between the attributed outputs and the inputs is an application
the override did not reach. So are the nodes that hide ops from it altogether (the
reentrant checkpoint's, TorchScript's differentiable graphs, higher-order operators'):
:data:`~attrkit.engine.reach.HIDDEN_OPS`.

The check walks the graph once from the outputs (every node, in Python: a few hundred
nanoseconds each). Only when it finds a suspect does it work out which nodes lead to an
input, so that a ReLU on a branch no gradient reaches the inputs through (a buffer
computed before the call, say) is not held against the model.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd.graph import Node

from attrkit.engine.reach import HIDDEN_OPS, HIGHER_ORDER, HIGHER_ORDER_SUFFIX

__all__ = ["Escape", "find_escapes", "node_name"]

# Node class -> its name; ``None`` for the class of nodes without their own Python class
# (``CppFunction``), whose name each node tells.
_NAMES: dict[type, str | None] = {}


def node_name(node: Any) -> str:
    """The name of an autograd node (``ReluBackward0``)."""
    cls = type(node)
    name = _NAMES.get(cls, "")
    if name == "":
        name = _NAMES[cls] = None if cls.__name__ == "CppFunction" else cls.__name__
    return str(node.name()) if name is None else name


@dataclass(frozen=True)
class Escape:
    """An application of a ruled op that the override did not reach.

    Attributes:
        node: Its autograd node.
        name: The node's name.
        hidden: What hides the op (a sentence of :data:`HIDDEN_OPS`), or ``""`` for the
            native node of a ruled op that ran with its plain backward.
    """

    node: Any
    name: str
    hidden: str = ""


def _roots(outputs: Iterable[Any]) -> list[Any]:
    return [t.grad_fn for t in outputs if isinstance(t, Tensor) and t.grad_fn is not None]


def _hidden(name: str) -> str:
    hidden = HIDDEN_OPS.get(name, "")
    if not hidden and name.endswith(HIGHER_ORDER_SUFFIX):
        return HIGHER_ORDER
    return hidden


def find_escapes(
    outputs: Sequence[Any],
    inputs: Sequence[Any],
    native: Collection[str],
    made: Collection[Any],
    kinds: dict[type, int] | None = None,
) -> list[Escape]:
    """The escaped applications on the gradient path from ``outputs`` to ``inputs``.

    Args:
        outputs: The tensors whose gradient is taken.
        inputs: The tensors the gradient is taken with respect to.
        native: The names of the ruled ops' native nodes.
        made: The nodes the rules made (native or not).
        kinds: A cache, node class -> what its nodes are, for this ``native`` (one
            dictionary per rule set: the walk then costs one lookup per node).
    """
    kinds = {} if kinds is None else kinds
    roots = _roots(outputs)
    seen = set(roots)
    stack = list(roots)
    suspects: list[Escape] = []
    while stack:
        node = stack.pop()
        kind = kinds.get(type(node))
        if kind is None:
            kind = _kind(node, native, kinds)
        if kind:
            name = node_name(node)
            if kind == _NATIVE or name in native:
                if node not in made:
                    suspects.append(Escape(node, name))
            elif kind == _HIDDEN or _hidden(name):
                suspects.append(Escape(node, name, _hidden(name)))
        for next_node, _ in node.next_functions:
            if next_node is not None and next_node not in seen:
                seen.add(next_node)
                stack.append(next_node)
    if not suspects:
        return suspects
    leading = _leading_to(roots, _input_nodes(inputs))
    return [escape for escape in suspects if escape.node in leading]


_NATIVE, _HIDDEN, _ASK = 1, 2, 3  # (0: an ordinary node)


def _kind(node: Any, native: Collection[str], kinds: dict[type, int]) -> int:
    """What the nodes of ``node``'s class are (remembered in ``kinds``): ordinary, a
    ruled op's native node, a node that hides ops, or (``CppFunction``, the class of
    nodes without their own) to be asked by name."""
    cls = type(node)
    if cls.__name__ == "CppFunction":
        kinds[cls] = _ASK
    else:
        name = cls.__name__
        kinds[cls] = _NATIVE if name in native else _HIDDEN if _hidden(name) else 0
    return kinds[cls]


def _input_nodes(inputs: Iterable[Any]) -> set[Any]:
    nodes = set()
    for tensor in inputs:
        if isinstance(tensor, Tensor) and tensor.requires_grad:
            nodes.add(torch.autograd.graph.get_gradient_edge(tensor).node)
    return nodes


def _leading_to(roots: Iterable[Node], targets: set[Any]) -> set[Any]:
    """The nodes reachable from ``roots`` from which one of ``targets`` is reachable."""
    leads: dict[Any, bool] = {}
    stack: list[tuple[Any, bool]] = [(root, False) for root in roots]
    while stack:
        node, expanded = stack.pop()
        children = [child for child, _ in node.next_functions if child is not None]
        if expanded:
            leads[node] = node in targets or any(leads.get(child, False) for child in children)
            continue
        if node in leads:
            continue
        leads[node] = False  # until its children are done (the graph has no cycles)
        stack.append((node, True))
        stack.extend((child, False) for child in children if child not in leads)
    return {node for node, lead in leads.items() if lead}

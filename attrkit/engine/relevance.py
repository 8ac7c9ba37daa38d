"""What LRP cannot propagate, found after the forward pass and before the backward pass.

Relevance flows backward as a gradient. On the path from the inputs to the output, every
autograd node must be an application a rule made, or an op whose plain gradient passes the
relevance on unchanged: one that only moves, copies, selects or sums values (a reshape, a
transpose, a slice, a concatenation, a broadcast, a padding), or the sum of a tensor that
carries relevance and one that does not (a bias). Any other node (a product, a softmax, a
normalization without a rule) would scale the relevance by its gradient, and the result
would silently not be LRP's: :func:`check_relevance_path` raises
:class:`~attrkit.engine.reach.UnsupportedModelError` naming it instead.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from torch import Tensor

from attrkit.engine.ops import OPS
from attrkit.engine.reach import UnsupportedModelError

__all__ = ["REARRANGING_NODES", "check_relevance_path"]

#: The nodes whose gradient moves, copies, selects or sums values and nothing else.
REARRANGING_NODES = frozenset(
    {
        "AliasBackward0",
        "AsStridedBackward0",
        "CatBackward0",
        "CloneBackward0",
        "ConstantPadNdBackward0",
        "ExpandBackward0",
        "GatherBackward0",
        "IndexBackward0",
        "IndexSelectBackward0",
        "NarrowBackward0",
        "PermuteBackward0",
        "ReflectionPad1DBackward0",
        "ReflectionPad2DBackward0",
        "ReflectionPad3DBackward0",
        "RepeatBackward0",
        "ReplicationPad1DBackward0",
        "ReplicationPad2DBackward0",
        "ReplicationPad3DBackward0",
        "ReshapeAliasBackward0",
        "SelectBackward0",
        "SliceBackward0",
        "SplitBackward0",
        "SplitWithSizesBackward0",
        "SqueezeBackward0",
        "SqueezeBackward1",
        "SqueezeBackward2",
        "StackBackward0",
        "TBackward0",
        "ToCopyBackward0",
        "TransposeBackward0",
        "UnbindBackward0",
        "UnflattenBackward0",
        "UnsafeSplitBackward0",
        "UnsafeViewBackward0",
        "UnsqueezeBackward0",
        "ViewBackward0",
    }
)
#: Sums: they pass the relevance on where at most one of their inputs carries it.
_SUMS = frozenset({"AddBackward0", "AddBackward1", "SubBackward0", "SubBackward1"})
_HINTS = {
    "softmax": "explain the logits: leave the softmax out of the model you attribute",
    "log_softmax": "explain the logits: leave the log-softmax out of the model you attribute",
    "mul": "a product scales the relevance (in training mode, dropout is one: call model.eval())",
    "div": "a quotient scales the relevance (for an input normalization, normalize "
    "the inputs before the model)",
    "sum": "a sum over dimensions copies the relevance to every summand",
}


def _leaf(node: Any) -> Any:
    return getattr(node, "variable", None)


def _what(node_name: str) -> str:
    """The op an autograd node belongs to, in words (``MulBackward0`` -> ``mul``)."""
    for op in OPS.values():
        if node_name in op.native_nodes:
            return op.title
    base = re.sub(r"Backward\d*$", "", node_name)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def check_relevance_path(
    output: Tensor,
    inputs: Sequence[Tensor],
    ruled: Mapping[Any, Any] | Collection[Any],
    merged: Collection[Any] = (),
) -> None:
    """Raise :class:`UnsupportedModelError` if a node on a path from ``inputs`` to
    ``output`` neither was made by a rule (``ruled``: the nodes of the ruled applications)
    nor passes the relevance on unchanged, or if a layer that a batch-norm was merged into
    (``merged``) passes its output to another op as well."""
    root = output.grad_fn
    if root is None:
        return
    targets = {id(x) for x in inputs}
    reaches: dict[Any, bool] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in reaches:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in children if child not in reaches)
            continue
        variable = _leaf(node)
        if variable is not None:
            reaches[node] = id(variable) in targets
        else:
            reaches[node] = any(reaches.get(child, False) for child in children)
    consumers: dict[Any, int] = {}
    for node, on_path in reaches.items():
        if not on_path:
            continue
        carriers = [
            child for child, _ in node.next_functions if child is not None and reaches[child]
        ]
        for child in carriers:
            consumers[child] = consumers.get(child, 0) + 1
        name = type(node).__name__
        on_carriers = getattr(node, "on_carriers", None)
        if on_carriers is not None and node in ruled:
            on_carriers(node, [c is not None and reaches[c] for c, _ in node.next_functions])
        if node in ruled or _leaf(node) is not None or name in REARRANGING_NODES:
            continue
        if name in _SUMS and len(carriers) <= 1:
            continue
        raise UnsupportedModelError(_refusal(name, len(carriers)))
    for node in merged:
        if consumers.get(node, 0) > 1:
            raise UnsupportedModelError(
                f"a batch-norm was merged into the {node.call.op.title} before it (as "
                "zennit's SequentialMergeBatchNorm does), but that layer's output is used "
                "by other ops too, so the merged layer's rule would be wrong for them"
            )


def _refusal(name: str, carriers: int) -> str:
    what = _what(name)
    if name in _SUMS:
        hint = (
            "a sum of two tensors that both carry relevance (a residual connection) has no "
            "LRP rule here"
        )
    else:
        hint = _HINTS.get(what, "its plain gradient would not pass the relevance on")
    return (
        f"LRP has no relevance rule for {what} (autograd node {name}) on the path from "
        f"the inputs to the output: {hint}. attrkit refuses the call rather than return "
        "a result that is silently not LRP's"
    )

"""The ops the engine can rule (attrkit/engine/ops.py), for every op in ``OPS``: each
spelling of the op, called as a user calls it, reaches the override once, read correctly
(the call, its input tensor, and whether it runs in place, by position and by keyword);
the override hands back what the plain call gives; and, run plainly, the spelling makes
one of the op's ``native_nodes`` (where the op lists any), the nodes the engine looks for
to find applications it did not reach.

An op whose spellings need arguments besides the input gets them from ``ARGUMENTS``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from attrkit.engine.ops import OPS, Op, OpCall
from attrkit.engine.override import RuleOverride
from attrkit.engine.rule import Rule, RuleSet


def _tensor(*shape: int) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))


def _weight(spelling: Callable[..., Any], transposed: bool = False) -> tuple[Any, ...]:
    """A weight (and bias) for a convolution of the spelling's dimensions."""
    kernel = (2,) * (len(_shape(_name(spelling))) - 2)
    channels = (3, 4) if transposed else (4, 3)
    return (_tensor(*channels, *kernel), _tensor(4))


def _mean(spelling: Callable[..., Any]) -> tuple[Any, ...]:
    name = _name(spelling)
    return () if name == "mean.default" else ([1],) if name == "mean.dim" else (1,)


def _batch_norm(spelling: Callable[..., Any]) -> tuple[Any, ...]:
    mean, var, weight, bias = _tensor(3), _tensor(3).exp(), _tensor(3), _tensor(3)
    if spelling is F.batch_norm:  # (input, running_mean, running_var, weight, bias, ...)
        return (mean, var, weight, bias)
    return (weight, bias, mean, var, False, 0.1, 1e-5, False)


#: Op name -> the arguments its spellings take after the input (a function of the
#: spelling's name, for ops whose spellings differ).
ARGUMENTS: dict[str, Callable[[Callable[..., Any]], tuple[Any, ...]]] = {
    "threshold": lambda spelling: (0.1, -1.0),
    "prelu": lambda spelling: (torch.tensor([0.25]),),
    "softmax": lambda spelling: (1, False) if _name(spelling).startswith("_softmax") else (1,),
    "max_pool": lambda spelling: (2,),
    "adaptive_max_pool": lambda spelling: (2,),
    "linear": lambda spelling: (_tensor(5, 4), _tensor(5)),
    "convolution": lambda spelling: (
        (*_weight(spelling), [1] * (len(_shape(_name(spelling))) - 2), "same")
        if _name(spelling).endswith(".padding")
        else _weight(spelling)
    ),
    "transposed_convolution": lambda spelling: _weight(spelling, transposed=True),
    "avg_pool": lambda spelling: (2,),
    "adaptive_avg_pool": lambda spelling: ([2] * (len(_shape(_name(spelling))) - 2),),
    "mean": _mean,
    "batch_norm": _batch_norm,
    "add": lambda spelling: (_tensor(*_shape(_name(spelling))),),
    "mul": lambda spelling: (_tensor(*_shape(_name(spelling))),),
    "div": lambda spelling: (_tensor(*_shape(_name(spelling))).exp(),),
    "dropout": lambda spelling: (0.5, True),
}
#: Ops whose listed native nodes a plain run on the CPU does not make, and why.
NO_NATIVE_NODE_ON_CPU = {
    "dropout": (
        "on the CPU dropout is a product with a random mask (MulBackward0); "
        "NativeDropoutBackward0 is the node of the fused kernel of other devices"
    ),
}
#: Spellings a plain tensor cannot call, and why.
UNCALLED = {"mean.dtype_out": "an out= overload: it writes into a tensor given as `out`"}


def _name(spelling: Callable[..., Any]) -> str:
    return str(getattr(spelling, "__name__", spelling))


def _shape(spelling: str) -> tuple[int, ...]:
    """A batch of the dimensions the spelling takes (pooling ops: 1, 2 or 3 spatial)."""
    for spatial, shape in (("1d", (2, 3, 6)), ("2d", (2, 3, 6, 6)), ("3d", (2, 3, 4, 4, 4))):
        if spatial in spelling:
            return shape
    return (2, 3, 4, 4)


def _leaf(spelling: str) -> Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(_shape(spelling), generator=generator, requires_grad=True)


def _first(result: Any) -> Tensor:
    """The op's output (the ``*_with_indices`` spellings also return the indices)."""
    return result[0] if isinstance(result, tuple) else result


def _variants(op: Op, spelling: Callable[..., Any]) -> list[tuple[str, tuple, dict]]:
    """(id, arguments after the input, keyword arguments) of the ways to call
    ``spelling``: as it is, and, for a spelling with an ``inplace`` argument, with it
    given by position and by keyword."""
    extra = ARGUMENTS.get(op.name, lambda spelling: ())(spelling)
    variants: list[tuple[str, tuple, dict]] = [("plain", extra, {})]
    position = op.spellings[spelling]
    if position is True or position is False:
        return variants
    parameters = list(inspect.signature(spelling).parameters.values())
    between = tuple(p.default for p in parameters[1 + len(extra) : position])
    for inplace in (False, True):
        variants.append((f"inplace={inplace}-keyword", extra, {"inplace": inplace}))
        variants.append((f"inplace={inplace}-positional", (*extra, *between, inplace), {}))
    return variants


SPELLINGS = [
    pytest.param(op, spelling, extra, kwargs, id=f"{op.name}-{_name(spelling)}-{variant}")
    for op in OPS.values()
    for spelling in op.spellings
    if _name(spelling) not in UNCALLED
    for variant, extra, kwargs in _variants(op, spelling)
]


class Recording(Rule):
    """Records each call the override hands it and computes the plain op."""

    name = "recording"
    backward = "the op's own"
    paper = ""

    def __init__(self, op: Op) -> None:
        self.ops = (op,)
        self.calls: list[OpCall] = []

    def apply(self, call: OpCall) -> Any:
        self.calls.append(call)
        return call.plain()


def test_every_op_is_tested():
    assert SPELLINGS
    assert {param.values[0].name for param in SPELLINGS} == set(OPS)


@pytest.mark.parametrize(("op", "spelling", "extra", "kwargs"), SPELLINGS)
def test_every_spelling_reaches_the_override_read_as_it_runs(op, spelling, extra, kwargs):
    name = _name(spelling)
    # What the call does on its own: its result, and whether it changed its input.
    alone = _leaf(name) * 1.0
    version = alone._version
    torch.manual_seed(0)  # the same draws for dropout
    expected = _first(spelling(alone, *extra, **kwargs)).detach().clone()
    runs_in_place = alone._version != version

    rule = Recording(op)
    x = _leaf(name) * 1.0  # not a leaf: in-place spellings may write into it
    torch.manual_seed(0)
    with RuleOverride(RuleSet([rule])):
        got = _first(spelling(x, *extra, **kwargs))
    assert len(rule.calls) == 1
    (call,) = rule.calls
    assert call.op is op
    assert call.func is spelling
    assert call.input is x
    assert call.inplace == runs_in_place
    torch.testing.assert_close(got.detach(), expected)


NATIVE = [
    pytest.param(op, spelling, extra, id=f"{op.name}-{_name(spelling)}")
    for op in OPS.values()
    if op.native_nodes and op.name not in NO_NATIVE_NODE_ON_CPU
    for spelling in op.spellings
    if _name(spelling) not in UNCALLED
    for variant, extra, kwargs in _variants(op, spelling)[:1]
]


def _nodes(tensor: Tensor, depth: int = 4) -> set[str]:
    """The names of the autograd nodes within ``depth`` steps of ``tensor``."""
    names: set[str] = set()
    frontier = [tensor.grad_fn]
    for _ in range(depth):
        nodes = [node for node in frontier if node is not None]
        names |= {type(node).__name__ for node in nodes}
        frontier = [child for node in nodes for child, _ in node.next_functions]
    return names


@pytest.mark.parametrize(("op", "spelling", "extra"), NATIVE)
def test_plain_spelling_makes_a_native_node(op, spelling, extra):
    """Run plainly, each spelling makes one of the nodes the engine knows the op by."""
    x = _leaf(_name(spelling)) * 1.0
    output = _first(spelling(x, *extra))
    assert _nodes(output) & op.native_nodes, _nodes(output)

"""Run a function so that the rule override sees the ruled ops inside it.

A :class:`~torch.overrides.TorchFunctionMode` sees the functions a forward pass calls, not
always the ops inside them:

* a **Python composite** of torch (``F.lp_pool2d``, whose ``relu`` is a Python call) hands
  itself to the mode through ``handle_torch_function``, and the mode is off while its
  handler runs, so the composite's own calls pass unseen;
* a **C++ composite** (``torch.rnn_relu``, which ``nn.RNN(nonlinearity="relu")`` calls)
  applies its ops in C++ or in a fused kernel.

A route runs such a function as Python code whose ops the mode sees, with the same
result: the composite's own code without its ``handle_torch_function`` check, or torch's
decomposition of the C++ composite (from ``torch._decomp``). :func:`find_route` says
which route a function needs, if any, for the ops a rule set covers; the override runs
the route with itself active again.

(Higher-order operators such as ``torch.cond`` compile themselves with dynamo, which runs
their branches where no route reaches: the override refuses them, see
:mod:`~attrkit.engine.verify`.)
"""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from attrkit.engine.ops import OPS, Op
from attrkit.engine.reach import UnsupportedModelError, caller_location

__all__ = [
    "DECOMPOSITIONS",
    "GRADIENT",
    "Decomposition",
    "find_route",
    "lookup_route",
    "route_table",
]

#: The route of ``torch.autograd.grad``: the override checks the graph and runs the
#: backward pass with itself active (checkpointed blocks recompute under the rules).
GRADIENT: Callable[..., Any] = torch.autograd.grad

_DISPATCH_CHECKS = ("has_torch_function", "has_torch_function_unary", "has_torch_function_variadic")
_NAMESPACES: tuple[Any, ...] = (torch, Tensor, F, torch._C._nn, torch._C._VariableFunctions)
_SEARCH_DEPTH = 3


def _never(*args: Any) -> bool:
    return False


def _resolve(name: str, namespace: dict[str, Any]) -> Iterator[Any]:
    """What ``name`` in a function's code may refer to: a global, or an attribute of
    torch's namespaces (``torch.relu``, ``x.relu()``, ``F.relu``)."""
    if name in namespace:
        yield namespace[name]
    for owner in _NAMESPACES:
        value = getattr(owner, name, None)
        if value is not None:
            yield value


def _code_reaches(
    code: types.CodeType,
    namespace: dict[str, Any],
    targets: Collection[Any],
    depth: int,
    seen: set[types.CodeType],
) -> bool:
    """Whether ``code`` (or a function it names, ``depth`` calls deep) may call one of
    ``targets``: a conservative reading of the names the code uses."""
    if code in seen:
        return False
    seen.add(code)
    for name in code.co_names:
        for value in _resolve(name, namespace):
            try:
                if value in targets:
                    return True
            except TypeError:  # unhashable
                continue
            if (
                depth > 0
                and isinstance(value, types.FunctionType)
                and _code_reaches(value.__code__, value.__globals__, targets, depth - 1, seen)
            ):
                return True
    return any(
        isinstance(const, types.CodeType) and _code_reaches(const, namespace, targets, depth, seen)
        for const in code.co_consts
    )


def _python_composite(
    func: Callable[..., Any], targets: Collection[Any]
) -> Callable[..., Any] | None:
    """A copy of torch's Python function ``func`` that skips its ``handle_torch_function``
    check, when ``func`` has one and may call one of ``targets``; else ``None``.

    The copy shares the function's code; its globals are a snapshot of the function's
    module namespace (taken now) in which the dispatch checks answer ``False``.
    """
    if not isinstance(func, types.FunctionType):
        return None
    if not (func.__module__ or "").startswith("torch"):
        return None
    code = func.__code__
    if not any(name in code.co_names for name in _DISPATCH_CHECKS):
        return None
    if not _code_reaches(code, func.__globals__, targets, _SEARCH_DEPTH, set()):
        return None
    namespace = dict(func.__globals__)
    namespace.update(dict.fromkeys(_DISPATCH_CHECKS, _never))
    copy = types.FunctionType(code, namespace, func.__name__, func.__defaults__, func.__closure__)
    copy.__kwdefaults__ = func.__kwdefaults__
    copy.__qualname__ = func.__qualname__
    return copy


# ---------------------------------------------------------------- C++ composites
def _decomposition(overload: Any) -> Callable[..., Any] | None:
    try:
        from torch._decomp import decomposition_table
    except ImportError:  # pragma: no cover - torch without decompositions
        return None
    return decomposition_table.get(overload)


def _rnn(name: str, hidden_is_list: bool) -> Callable[..., Any]:
    """torch's decomposition of ``torch.<name>`` (``rnn_relu``, ``lstm``, ...), for its
    padded (``.input``) or packed (``.data``) form.

    Their layers drop no units between them in training mode (torch's decomposition
    skips that dropout), so a call in training mode with dropout is refused.
    """
    packet = getattr(torch.ops.aten, name)

    def route(*args: Any, **kwargs: Any) -> Any:
        # input form: (input, hx, params, ..., dropout, train, ...); packed form:
        # (data, batch_sizes, hx, params, ...). ``hx`` is a list for the LSTM.
        packed = not isinstance(args[1 if hidden_is_list else 2], list | tuple)
        dropout, train = args[6:8] if packed else args[5:7]
        decomposed = _decomposition(packet.data if packed else packet.input)
        if decomposed is None or (train and dropout):
            raise UnsupportedModelError(
                f"`torch.{name}` (an nn.{_RNN_MODULES[name]} layer{caller_location()}) "
                "applies its nonlinearity inside a fused kernel that attrkit cannot give "
                "the method's rule"
                + (
                    " when it drops units between layers in training mode; call "
                    "`model.eval()` (or set its dropout to 0)"
                    if decomposed is not None
                    else "; write the layer as Python code (a loop over time steps)"
                )
            )
        return decomposed(*args, **kwargs)

    return route


def _rnn_cell(nonlinearity: Callable[[Tensor], Tensor]) -> Callable[..., Any]:
    """``torch.rnn_relu_cell`` / ``rnn_tanh_cell`` (``nn.RNNCell``), as written in C++."""

    def route(
        input: Tensor,
        hx: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None = None,
        b_hh: Tensor | None = None,
    ) -> Tensor:
        return nonlinearity(F.linear(input, w_ih, b_ih) + F.linear(hx, w_hh, b_hh))

    return route


_RNN_MODULES = {"rnn_relu": "RNN", "rnn_tanh": "RNN", "lstm": "LSTM", "gru": "GRU"}


@dataclass(frozen=True)
class Decomposition:
    """A C++ composite whose ops a rule override cannot see, and how to run it as Python.

    Attributes:
        func: The composite, as the mode sees it (``torch.rnn_relu``).
        ops: The ruled ops it applies inside.
        route: Python code with the same result, which calls the ops through their
            ordinary spellings.
    """

    func: Callable[..., Any]
    ops: tuple[Op, ...]
    route: Callable[..., Any]


_relu, _tanh, _sigmoid = OPS["relu"], OPS["tanh"], OPS["sigmoid"]
#: The C++ composites with a route, by function.
DECOMPOSITIONS: dict[Callable[..., Any], Decomposition] = {
    d.func: d
    for d in (
        Decomposition(torch.rnn_relu, (_relu,), _rnn("rnn_relu", hidden_is_list=False)),
        Decomposition(torch.rnn_tanh, (_tanh,), _rnn("rnn_tanh", hidden_is_list=False)),
        Decomposition(torch.lstm, (_sigmoid, _tanh), _rnn("lstm", hidden_is_list=True)),
        Decomposition(torch.gru, (_sigmoid, _tanh), _rnn("gru", hidden_is_list=False)),
        Decomposition(torch.rnn_relu_cell, (_relu,), _rnn_cell(torch.relu)),
        Decomposition(torch.rnn_tanh_cell, (_tanh,), _rnn_cell(torch.tanh)),
    )
}


def find_route(func: Callable[..., Any], ops: Collection[Op]) -> Callable[..., Any] | None:
    """How to run ``func`` so that a mode sees the applications of ``ops`` inside it
    (``GRADIENT`` for ``torch.autograd.grad``), or ``None`` when it needs no route."""
    if func is GRADIENT:
        return GRADIENT
    decomposition = DECOMPOSITIONS.get(func)
    if decomposition is not None:
        return decomposition.route if set(decomposition.ops) & set(ops) else None
    targets = {spelling for op in ops for spelling in op.spellings}
    if func in targets:  # a spelling of a ruled op is ruled, not routed
        return None
    return _python_composite(func, targets)


_TABLES: dict[frozenset[str], dict[Callable[..., Any], Callable[..., Any] | None]] = {}


def route_table(ops: Collection[Op]) -> dict[Callable[..., Any], Callable[..., Any] | None]:
    """The table of the routes found so far for ``ops`` (function -> route or ``None``),
    shared by every rule set that covers the same ops: a function is looked into once
    per process, not once per method object."""
    return _TABLES.setdefault(frozenset(op.name for op in ops), {})


_UNSEEN: Any = object()


def lookup_route(func: Callable[..., Any], ops: Collection[Op]) -> Callable[..., Any] | None:
    """:func:`find_route`, remembered in the :func:`route_table` of ``ops``."""
    table = route_table(ops)
    route = table.get(func, _UNSEEN)
    if route is _UNSEEN:
        route = table[func] = find_route(func, ops)
    return route  # type: ignore[no-any-return]

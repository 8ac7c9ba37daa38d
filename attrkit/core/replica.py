"""A private structural copy of a model, for computations that put hooks on its modules.

Captum's layer and neuron perturbation methods register forward hooks on the layer module
itself for the duration of a call; on the caller's model, another thread's forward pass of
the same model would run them. :func:`model_replica` gives such a computation a model of
its own: new module objects (each with its own hook dictionaries, holding the hooks the
caller registered, so that they run in the copy as in the model) whose parameters, buffers
and every other tensor or object are the model's own, the very same objects: no tensor
data is copied and nothing moves between devices. Only the modules and the containers,
bound methods and ``functools.partial`` objects that may refer to modules are new (a
``copy.deepcopy`` whose memo maps everything else to itself), so references between the
model's modules (a module in a plain list, a parent reference, a ``forward`` bound to the
module) point into the copy.

A model holds state a structural copy cannot reproduce when a module is TorchScript (its
code is compiled and its copy would copy its tensors) or compiled by ``torch.compile``
(its compiled function calls the original modules): there :func:`model_replica` gives
``None``.
"""

from __future__ import annotations

import copy
import functools
import sys
import types
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["ModelReplica", "model_replica"]


def _is_opaque(module: nn.Module) -> bool:
    """Whether a structural copy would not carry ``module``'s behaviour over: TorchScript,
    or a ``torch.compile`` wrapper (only where torch's compiler has been imported can
    there be one)."""
    if isinstance(module, torch.jit.ScriptModule):
        return True
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    return eval_frame is not None and isinstance(module, eval_frame.OptimizedModule)


class ModelReplica:
    """A structural copy of a model (:func:`model_replica`).

    Attributes:
        model: The copy.
        forward_func: The copy in the form the caller's forward function had: the copy
            itself, or the same method bound to the copy.
        layers: The copies of the requested layers, in their order.
    """

    def __init__(
        self, model: nn.Module, forward_func: Callable[..., Any], layers: tuple[nn.Module, ...]
    ) -> None:
        self.model = model
        self.forward_func = forward_func
        self.layers = layers
        self._layer_calls = [0]
        calls = self._layer_calls  # (the hook holds the list, not the replica: no cycle)

        def count(module: nn.Module, args: tuple[Any, ...]) -> None:
            calls[0] += 1

        for layer in dict.fromkeys(layers):
            layer.register_forward_pre_hook(count)

    @property
    def layer_calls(self) -> int:
        """How many times the copies of the layers have run: none after a forward pass of
        the copy means that the model reaches its layers other than through its modules
        (a function that closes over one), where the copy is no copy of the model."""
        return self._layer_calls[0]


#: The objects through which a module can refer to another one: a deep copy copies them.
_LINKS = (nn.Module, list, tuple, set, frozenset, dict, types.MethodType, functools.partial)

#: Containers whose ``copy`` method makes a shallow copy of the same type.
_PLAIN_CONTAINERS = (dict, OrderedDict, defaultdict, list, set, tuple, frozenset)


def _deepcopy_memo(model: nn.Module) -> dict[int, object]:
    """A ``copy.deepcopy`` memo for a structural copy of ``model``: every object reachable
    from its modules maps to itself, except the :data:`_LINKS`; of those, a mutable
    container of other objects only (a module's parameters, buffers, hooks) maps to a
    shallow copy of itself, an immutable one to itself, and the rest are left to the deep
    copy."""
    memo: dict[int, object] = {}
    seen: set[int] = set()
    stack: list[object] = [model]
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if not isinstance(value, _LINKS):
            memo[id(value)] = value
            continue
        if isinstance(value, nn.Module):
            links: list[object] = list(value.__dict__.values())
        elif isinstance(value, dict):
            links = [*value.keys(), *value.values()]
        elif isinstance(value, types.MethodType):
            links = [value.__self__]
        elif isinstance(value, functools.partial):
            links = [value.func, *value.args, *value.keywords.values()]
        else:
            links = list(value)
        if type(value) in _PLAIN_CONTAINERS and not any(isinstance(x, _LINKS) for x in links):
            memo[id(value)] = value.copy() if isinstance(value, (dict, list, set)) else value
            continue
        stack.extend(links)
    return memo


def _as_module(forward_func: object) -> nn.Module | None:
    """The module whose copy can replace ``forward_func``: the module itself, or the
    module a method is bound to."""
    if isinstance(forward_func, nn.Module):
        return forward_func
    if isinstance(forward_func, types.MethodType) and isinstance(forward_func.__self__, nn.Module):
        return forward_func.__self__
    return None


def model_replica(forward_func: object, layers: Sequence[object]) -> ModelReplica | None:
    """A structural copy of the model behind ``forward_func`` and the copies of ``layers``.

    Args:
        forward_func: The model (a module) or a method bound to it.
        layers: Modules of the model (a module registered under several names counts once).

    Returns:
        The copy, or ``None`` where there is none to make: ``forward_func`` is neither a
        module nor a method of one (a function that calls a model), a layer is not one
        of its modules, or a module is TorchScript or compiled.
    """
    model = _as_module(forward_func)
    if model is None:
        return None
    names: dict[int, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if _is_opaque(module):
            return None
        names.setdefault(id(module), name)
    if not all(id(layer) in names for layer in layers):
        return None
    replica = copy.deepcopy(model, _deepcopy_memo(model))
    copies = tuple(replica.get_submodule(names[id(layer)]) for layer in layers)
    if isinstance(forward_func, types.MethodType):
        return ModelReplica(replica, types.MethodType(forward_func.__func__, replica), copies)
    return ModelReplica(replica, replica, copies)

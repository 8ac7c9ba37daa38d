"""A private structural copy of a model, for computations that put hooks on its modules.

Captum's layer and neuron perturbation methods register forward hooks on the layer module
itself for the duration of a call; on the caller's model, another thread's forward pass of
the same model would run them. :func:`model_replica` gives such a computation a model of
its own: new module objects (each with its own hook dictionaries, holding the hooks the
caller registered, so that they run in the copy as in the model) whose parameters, buffers
and every other tensor or object are the model's own, the very same objects: no tensor
data is copied and nothing moves between devices.

What is new: every module, with its own containers of parameters, buffers, submodules
and hooks, and every plain container (``dict``, ``OrderedDict``, ``defaultdict``,
``list``, ``tuple``, ``set``, ``frozenset``), bound method and ``functools.partial`` in a
module's attributes that holds a module, so that references between the model's modules
(a module in a plain list, a parent reference, a ``forward`` bound to the module at
instance level, a hook that is a method of a module) point into the copy. Everything else
(tensors, numbers, strings, functions, containers of other objects, any other object) is
shared, as the model's forward pass would use it: a list the model appends to is the
model's list. A module's attribute dictionary is copied as it is (not through
``__getstate__``), except the function ``module.compile()`` left there, which runs the
original module; an attribute that the copy's forward pass assigns is the copy's.

Where a copy cannot carry a module's behaviour over, :func:`model_replica` gives ``None``:
TorchScript (its code is compiled and refers to its own submodules), a ``torch.compile``
wrapper (its compiled function calls the original modules), and a module class with
``__slots__`` (state outside its attribute dictionary).
"""

from __future__ import annotations

import functools
import sys
import types
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["ModelReplica", "model_replica"]

#: Values shared without a look: immutable, or a tensor.
_SHARED = frozenset(
    (type(None), bool, int, float, complex, str, bytes, torch.Tensor, torch.nn.Parameter)
)

#: Mappings whose ``copy`` method makes a shallow copy of the same type.
_MAPPINGS = frozenset((dict, OrderedDict, defaultdict))

#: The containers every module holds (its parameters, buffers, submodules, hooks): a copy
#: of a module has its own.
_MODULE_CONTAINERS = frozenset(
    key for key, value in nn.Module().__dict__.items() if isinstance(value, (dict, set))
)

#: The attribute ``module.compile()`` sets: a compiled function of the original module.
_COMPILED_CALL = "_compiled_call_impl"


class _NotCopyableError(Exception):
    """A module whose behaviour a structural copy would not carry over."""


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


def _is_opaque(module: nn.Module) -> bool:
    """Whether a structural copy would not carry ``module``'s behaviour over: TorchScript,
    a ``torch.compile`` wrapper (only where torch's compiler has been imported can there
    be one), or a class with ``__slots__``."""
    if isinstance(module, torch.jit.ScriptModule):
        return True
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    if eval_frame is not None and isinstance(module, eval_frame.OptimizedModule):
        return True
    for cls in type(module).__mro__:
        slots = vars(cls).get("__slots__", ())
        names = (slots,) if isinstance(slots, str) else slots
        if any(name not in ("__dict__", "__weakref__") for name in names):
            return True
    return False


class _StructuralCopy:
    """One structural copy: :meth:`copy` of a value, with every object it made so far by
    the ``id`` of its original (so that shared references and cycles stay so)."""

    def __init__(self) -> None:
        self.made: dict[int, Any] = {}
        self.opaque: dict[type, bool] = {}  # by module class

    def copy(self, value: Any) -> Any:
        """``value`` itself, unless it is a module or holds one (directly or through
        containers, bound methods and partials): then a copy with the copies in it."""
        kind = type(value)
        if kind in _SHARED:
            return value
        made = self.made.get(id(value), self)
        if made is not self:
            return made
        if isinstance(value, nn.Module):
            return self._module(value)
        self.made[id(value)] = value  # (until it turns out to hold a module)
        result: Any = value
        if kind in _MAPPINGS:
            changed = self._changed(value)
            if changed:
                result = value.copy()
                result.update(changed)
        elif kind in (list, tuple, set, frozenset):
            items = [self.copy(item) for item in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                result = kind(items)
        elif kind is types.MethodType:
            owner = self.copy(value.__self__)
            if owner is not value.__self__:
                result = types.MethodType(value.__func__, owner)
        elif kind is functools.partial:
            parts = (value.func, value.args, value.keywords)
            func, args, keywords = (self.copy(part) for part in parts)
            if any(a is not b for a, b in zip((func, args, keywords), parts, strict=True)):
                result = functools.partial(func, *args, **keywords)
        self.made[id(value)] = result
        return result

    def _changed(self, mapping: Any) -> dict[Any, Any]:
        """The entries of ``mapping`` whose values hold a module, with their copies."""
        changed = {}
        for key, item in mapping.items():
            if type(item) not in _SHARED:
                copied = self.copy(item)
                if copied is not item:
                    changed[key] = copied
        return changed

    def _module(self, module: nn.Module) -> nn.Module:
        """A new module of the same class, whose own containers (parameters, buffers,
        submodules, hooks) are new and whose other attributes are :meth:`copy`'s."""
        cls = type(module)
        opaque = self.opaque.get(cls)
        if opaque is None:
            opaque = self.opaque[cls] = _is_opaque(module)
        if opaque:
            raise _NotCopyableError
        new = cls.__new__(cls)
        self.made[id(module)] = new
        state = module.__dict__.copy()
        state.pop(_COMPILED_CALL, None)
        for key, item in state.items():
            kind = type(item)
            if key in _MODULE_CONTAINERS and (kind in _MAPPINGS or kind is set):
                own = state[key] = item.copy()
                if item and kind is not set:
                    own.update(self._changed(item))
            elif kind not in _SHARED:
                state[key] = self.copy(item)
        object.__setattr__(new, "__dict__", state)
        return new


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
        of its modules, or a module is one a copy would not reproduce (TorchScript,
        compiled, with ``__slots__``).
    """
    model = _as_module(forward_func)
    if model is None:
        return None
    names: dict[int, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), name)
    if not all(id(layer) in names for layer in layers):
        return None
    try:
        replica = _StructuralCopy().copy(model)
    except _NotCopyableError:
        return None
    copies = tuple(replica.get_submodule(names[id(layer)]) for layer in layers)
    if isinstance(forward_func, types.MethodType):
        return ModelReplica(replica, types.MethodType(forward_func.__func__, replica), copies)
    return ModelReplica(replica, replica, copies)

"""What the rule override cannot reach, found before the forward pass: TorchScript models
and functions (their ops run inside the TorchScript interpreter) and ``DataParallel`` over
several devices (its replicas run in other threads)."""

from __future__ import annotations

import torch

__all__ = ["UnsupportedModelError", "check_overridable"]


class UnsupportedModelError(TypeError):
    """The model runs code that the rule override cannot reach (TorchScript, DataParallel
    over several devices), where the result would silently not be the method's."""


_TORCHSCRIPT = (
    "is TorchScript (scripted or traced): its ReLUs run inside the TorchScript interpreter, "
    "where attrkit cannot give them the method's backward rule, and the result would "
    "silently be the plain gradient. Pass the original Python nn.Module instead "
    "(torch.compile'd models are supported)."
)
_DATA_PARALLEL = (
    "is a DataParallel over several devices: its replicas run in worker threads, where the "
    "rule override (which is local to the calling thread) cannot reach them. Pass "
    "`model.module` instead."
)


_SCRIPT_CALLABLES = (torch.jit.ScriptFunction, torch._C.ScriptMethod)
_SUSPECTS = (torch.jit.ScriptModule, torch.nn.DataParallel)
_suspect_types: dict[type, bool] = {}  # module class -> whether it is a suspect
_WALK_LIMIT = 100_000


def _unsupported_part(module: torch.nn.Module) -> str:
    if isinstance(module, torch.jit.ScriptModule):
        return _TORCHSCRIPT
    if isinstance(module, torch.nn.DataParallel) and len(module.device_ids) > 1:
        return _DATA_PARALLEL
    return ""


def _has_suspect(model: torch.nn.Module) -> bool:
    """Whether ``model`` or a submodule may be TorchScript or a DataParallel.

    It runs on every call, so that a submodule replaced after the method was built is
    still caught, and so it is a plain walk over the ``_modules`` dictionaries with one
    dictionary lookup per module class (``isinstance`` against ``ScriptModule`` costs
    several times more, and ``named_modules()`` builds generators, names and a memo).
    Like ``Module.train()`` it keeps no memo of visited modules; should the walk exceed
    ``_WALK_LIMIT`` modules (a module graph with a cycle), it answers "maybe", and the
    caller's ``named_modules()`` decides.
    """
    stack: list[torch.nn.Module | None] = [model]
    suspects = _suspect_types
    visited = 0
    while stack:
        module = stack.pop()
        if module is None:
            continue
        cls = type(module)
        suspect = suspects.get(cls)
        if suspect is None:
            suspect = suspects[cls] = issubclass(cls, _SUSPECTS)
        visited += 1
        if suspect or visited > _WALK_LIMIT:
            return True
        stack += module._modules.values()
    return False


def check_overridable(model: object) -> None:
    """Raise :class:`UnsupportedModelError` if ``model`` runs code that a thread-local
    rule override cannot reach (TorchScript; DataParallel over several devices), where the
    result would silently be the plain gradient."""
    if not isinstance(model, torch.nn.Module):
        if isinstance(model, _SCRIPT_CALLABLES):
            raise UnsupportedModelError(f"`model` {_TORCHSCRIPT}")
        return
    if not _has_suspect(model):
        return
    for name, module in model.named_modules():
        reason = _unsupported_part(module)
        if reason:
            where = f"`model.{name}`" if name else "`model`"
            raise UnsupportedModelError(f"{where} {reason}")

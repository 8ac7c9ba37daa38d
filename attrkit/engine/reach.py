"""What the rule override cannot reach, and the error that says so.

Found before the forward pass: TorchScript models (their ops run inside the TorchScript
interpreter) and ``DataParallel`` over several devices (its replicas run in other
threads). Found after it, by :mod:`~attrkit.engine.verify`: any other application of a
ruled op that the override did not reach, and the autograd nodes that hide ops from it.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from types import FrameType

import torch

__all__ = [
    "HIDDEN_OPS",
    "HIGHER_ORDER",
    "HIGHER_ORDER_SUFFIX",
    "UnsupportedModelError",
    "caller_location",
    "check_overridable",
    "dynamo_refusal",
    "is_internal_file",
]


class UnsupportedModelError(TypeError):
    """The model runs code that the rule override cannot reach (TorchScript, worker
    threads, reentrant checkpointing, ...), where the result would silently not be the
    method's. The message names where, and what to do."""


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

#: Autograd nodes that hide the ops they stand for -> what they are and what to do.
HIDDEN_OPS: dict[str, str] = {
    "CheckpointFunctionBackward": (
        "a block checkpointed with `torch.utils.checkpoint.checkpoint(..., "
        "use_reentrant=True)`: the reentrant form runs the block without autograd and "
        "again inside the backward pass, which `torch.autograd.grad` cannot run. Pass "
        "`use_reentrant=False` (attrkit is exact with it; for timm's "
        "`set_grad_checkpointing()` and Hugging Face's `gradient_checkpointing_enable()`, "
        'pass `gradient_checkpointing_kwargs={"use_reentrant": False}` or set it in '
        "the checkpoint call)"
    ),
    "DifferentiableGraphBackward": (
        "a TorchScript function (`torch.jit.script` or `torch.jit.trace`) called from "
        "`forward`: its ops run inside the TorchScript interpreter, out of attrkit's "
        "reach. Call the original Python function instead"
    ),
}
#: Autograd nodes of higher-order operators (``torch.cond``, ``torch.while_loop``, ...),
#: which hide the ops of their subgraphs, end with this.
HIGHER_ORDER_SUFFIX = "AutogradOpBackward"
HIGHER_ORDER = (
    "a higher-order operator (`torch.cond`, `torch.while_loop`, ...), which compiles its "
    "subgraphs with dynamo and runs them out of attrkit's reach. Write it as Python "
    "control flow (an `if` or a `for`)"
)
_COMPILED = (
    "a model compiled with torch.compile, whose forward pass dynamo cannot trace with "
    "attrkit's rule override active ({error}). Pass the uncompiled model "
    "(`model._orig_mod`), or compile it without `fullgraph=True` so that dynamo runs "
    "what it cannot trace as Python code"
)


_SCRIPT_CALLABLES = (torch.jit.ScriptFunction, torch._C.ScriptMethod)
_SUSPECTS = (torch.jit.ScriptModule, torch.nn.DataParallel)
_suspect_types: dict[type, bool] = {}  # module class -> whether it is a suspect
_WALK_LIMIT = 100_000

_ATTRKIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_PACKAGES = (os.path.dirname(os.path.abspath(torch.__file__)) + os.sep, _ATTRKIT)
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep


def is_internal_file(filename: str) -> bool:
    """Whether ``filename`` is torch's, attrkit's or the Python standard library's (or
    code that torch.fx generated)."""
    if filename.startswith(("<eval_with_key>", "<string>", "<frozen ")):
        return True
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGES):
        return True
    return path.startswith(_STDLIB) and "-packages" + os.sep not in path


def caller_location() -> str:
    """`` at file:line`` of the innermost frame of the caller's own code (outside torch,
    attrkit and the standard library), or ``""``."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if not is_internal_file(frame.f_code.co_filename):
            return f" at {frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def dynamo_refusal(error: BaseException) -> UnsupportedModelError | None:
    """The :class:`UnsupportedModelError` that stands for ``error`` when it is
    torch.compile's (dynamo's) refusal to trace a forward pass with the override active,
    naming where; else ``None``."""
    exc = sys.modules.get("torch._dynamo.exc")
    if exc is None or not isinstance(error, exc.TorchDynamoException):
        return None
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if not is_internal_file(f.filename)]
    where = f" at {own[-1].filename}:{own[-1].lineno}" if own else ""
    if any(f"{os.sep}_higher_order_ops{os.sep}" in f.filename for f in frames):
        return UnsupportedModelError(f"The forward pass calls{where} {HIGHER_ORDER}.")
    first_line = str(error).strip().split("\n")[0]
    return UnsupportedModelError(
        f"The forward pass calls{where} {_COMPILED.format(error=first_line)}."
    )


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

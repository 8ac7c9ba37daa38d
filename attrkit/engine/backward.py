"""Run ``torch.autograd.grad`` with the rule override still active.

A torch-function mode is part of the thread-local state that the autograd engine gives a
backward pass, so a backward pass started while the override is active runs with it: a
block that ``torch.utils.checkpoint`` recomputes during that pass gets the same rules as
in the forward pass (and saves the same tensors). But the override sees
``torch.autograd.grad`` itself as a call to handle, and a mode is off while it handles a
call; :func:`backward_pass` runs the backward pass in a way that asks for no handler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["GRAD_PARAMETERS", "backward_pass", "saved_tensor_hooks_active", "tensors"]

_top_hooks = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)


def saved_tensor_hooks_active() -> bool:
    """Whether saved-tensor hooks are active (``torch.utils.checkpoint`` installs them
    over a checkpointed block); ``True`` where torch cannot tell."""
    if _top_hooks is None:
        return True
    try:
        return _top_hooks(False) is not None
    except TypeError:  # torch before the ``ignore_is_tracing`` argument
        return _top_hooks() is not None


def tensors(value: Any) -> tuple[Tensor, ...] | None:
    """``value`` as a tuple of tensors (a tensor or a sequence of them), or ``None``."""
    if isinstance(value, Tensor):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, Tensor) for v in value):
        return tuple(value)
    return None


GRAD_PARAMETERS = (
    "grad_outputs",
    "retain_graph",
    "create_graph",
    "only_inputs",
    "allow_unused",
    "is_grads_batched",
    "materialize_grads",
)
_run_engine: Callable[..., Any] | None = getattr(torch.autograd.graph, "_engine_run_backward", None)


def _grad_outputs(outputs: tuple[Tensor, ...], given: Any) -> tuple[Tensor, ...] | None:
    """``grad_outputs`` as ``torch.autograd.grad`` would make them, in the plain cases
    (one tensor per output, of its shape, dtype and device; or ones for scalar outputs);
    ``None`` for any other."""
    if given is None:
        if all(t.dim() == 0 for t in outputs):
            return tuple(torch.ones_like(t) for t in outputs)
        return None
    grads = tensors(given)
    if grads is None or len(grads) != len(outputs):
        return None
    for grad, output in zip(grads, outputs, strict=True):
        if (grad.shape, grad.dtype, grad.device) != (output.shape, output.dtype, output.device):
            return None
    return grads


def backward_pass(
    grad: Callable[..., Any],
    outputs: tuple[Tensor, ...],
    inputs: tuple[Tensor, ...],
    options: dict[str, Any],
) -> Callable[[], Any] | None:
    """A call that runs ``grad(outputs, inputs, **options)`` without asking for a
    torch-function handler (so that a mode on the stack stays there for the backward
    pass), or ``None`` where there is none.

    In the plain case, the autograd engine itself, as ``torch.autograd.grad`` calls it;
    otherwise ``grad`` on the gradient edges of the tensors (edges are not tensors, so
    ``grad`` asks no handler).
    """
    simple = (
        _run_engine is not None
        and not options.get("is_grads_batched")
        and not options.get("materialize_grads")
        and options.get("only_inputs", True)
    )
    grad_outputs = _grad_outputs(outputs, options.get("grad_outputs")) if simple else None
    if grad_outputs is not None and _run_engine is not None:
        create_graph = bool(options.get("create_graph", False))
        retain_graph = options.get("retain_graph")
        retain = create_graph if retain_graph is None else retain_graph
        allow_unused = bool(options.get("allow_unused"))
        run = _run_engine
        return lambda: run(
            outputs, grad_outputs, retain, create_graph, inputs, allow_unused, accumulate_grad=False
        )
    get_edge = torch.autograd.graph.get_gradient_edge
    try:
        output_edges = tuple(get_edge(t) for t in outputs)
        input_edges = tuple(get_edge(t) for t in inputs)
    except (RuntimeError, AttributeError):  # one that cannot have a gradient: torch's error
        return None
    return lambda: grad(output_edges, input_edges, **options)

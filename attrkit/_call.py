"""The canonical form of one ``attribute`` call and the packing of its result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attrkit._targets import Target, parse_target

__all__ = [
    "AttributionCall",
    "format_additional_forward_args",
    "format_tensors",
    "gradients",
    "prepare_call",
]


def format_tensors(value: object, name: str) -> tuple[tuple[Tensor, ...], bool]:
    """Check that ``value`` is a tensor or a non-empty tuple of floating-point tensors
    sharing dimension 0; return them as a tuple and whether a tuple was given."""
    is_tuple = isinstance(value, tuple)
    tensors: tuple[object, ...] = value if isinstance(value, tuple) else (value,)
    if not is_tuple and not isinstance(value, Tensor):
        hint = " (convert it with torch.as_tensor)" if hasattr(value, "__array__") else ""
        hint = " (pass a tuple of tensors)" if isinstance(value, list) else hint
        raise TypeError(
            f"`{name}` must be a torch.Tensor or a tuple of tensors, "
            f"got {type(value).__name__}{hint}"
        )
    if not tensors:
        raise ValueError(f"`{name}` is an empty tuple; give at least one tensor")
    batch_size = None
    for position, tensor in enumerate(tensors):
        label = f"{name}[{position}]" if is_tuple else name
        if not isinstance(tensor, Tensor):
            raise TypeError(f"`{label}` must be a torch.Tensor, got {type(tensor).__name__}")
        if not tensor.is_floating_point():
            raise TypeError(
                f"`{label}` has dtype {tensor.dtype}; gradients need a floating-point "
                "tensor (convert it with .float())"
            )
        if tensor.dim() == 0:
            raise ValueError(f"`{label}` is 0-dimensional; dimension 0 must be the batch")
        if batch_size is None:
            batch_size = tensor.shape[0]
        elif tensor.shape[0] != batch_size:
            raise ValueError(
                f"`{name}` disagree on the batch size: {name}[0] has {batch_size} "
                f"examples, {label} has {tensor.shape[0]}"
            )
    return tuple(tensors), is_tuple  # type: ignore[arg-type]


def format_additional_forward_args(value: object) -> tuple[Any, ...]:
    """``None`` → ``()``, a tuple as it is, anything else → a one-element tuple."""
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def _leaf(tensor: Tensor) -> Tensor:
    """A new leaf that requires grad and shares the caller's values, never their graph
    or their ``requires_grad`` flag."""
    if tensor.is_inference():
        tensor = tensor.clone()
    return tensor.detach().requires_grad_()


@dataclass(frozen=True)
class AttributionCall:
    """One call's arguments in canonical form.

    ``inputs`` are leaves that require grad (the attributions are gradients with respect
    to them); the model receives :meth:`model_inputs`, copies that it may modify in place.
    """

    inputs: tuple[Tensor, ...]
    is_tuple: bool
    target: Target
    additional_forward_args: tuple[Any, ...]

    @property
    def batch_size(self) -> int:
        return int(self.inputs[0].shape[0])

    def model_inputs(self) -> tuple[Tensor, ...]:
        return tuple(leaf.clone() for leaf in self.inputs)

    def pack(self, results: Sequence[Tensor]) -> Tensor | tuple[Tensor, ...]:
        """Tensor in, tensor out; tuple in, tuple out."""
        return tuple(results) if self.is_tuple else results[0]


def prepare_call(
    inputs: object, target: object, additional_forward_args: object
) -> AttributionCall:
    """Validate and normalize the three common arguments of ``attribute``."""
    tensors, is_tuple = format_tensors(inputs, "inputs")
    parsed = parse_target(target, int(tensors[0].shape[0]))
    return AttributionCall(
        inputs=tuple(_leaf(t) for t in tensors),
        is_tuple=is_tuple,
        target=parsed,
        additional_forward_args=format_additional_forward_args(additional_forward_args),
    )


def gradients(selected: Tensor, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Gradient of ``selected.sum()`` with respect to each input; zeros where an input
    does not reach the output."""
    if not selected.requires_grad:
        return tuple(torch.zeros_like(x) for x in inputs)
    return torch.autograd.grad(
        selected,
        inputs,
        grad_outputs=torch.ones_like(selected),
        allow_unused=True,
        materialize_grads=True,
    )

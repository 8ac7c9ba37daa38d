"""``target`` in every form Captum accepts, validated once and applied to the model output.

:func:`parse_target` checks what can be checked before the forward pass (types, lengths);
:meth:`Target.select` checks the rest against the output and returns one value per
example, shape ``(N,)``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor

__all__ = ["Target", "parse_target", "predicted_target"]

_FORMS = (
    "None, an int, a tuple of ints, a list with one int or one tuple per example, "
    "or an integer tensor"
)


def _brief(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shape(tensor: Tensor) -> str:
    return str(tuple(tensor.shape))


def _as_index(value: object, name: str) -> int:
    if isinstance(value, bool) or (isinstance(value, Tensor) and value.dtype == torch.bool):
        raise TypeError(f"`{name}` must be an int, got a bool ({value!r})")
    if isinstance(value, Tensor) and value.is_floating_point():
        raise TypeError(f"`{name}` must be an int, got a {value.dtype} tensor")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}") from None


class Target:
    """A validated target: either one index shared by every example, one row of indices
    per example, or nothing (the model returns one value per example).

    ``given`` is the target as the caller gave it; its text (:attr:`text`) is made only
    for an error message (the ``repr`` of a tensor costs more than a forward pass of a
    small model).
    """

    __slots__ = ("bounds", "given", "name", "per_example", "shared")

    def __init__(
        self,
        shared: tuple[int, ...] | None = None,
        per_example: Tensor | None = None,
        given: object = None,
        name: str = "target",
    ) -> None:
        self.shared = shared
        self.per_example = per_example  # int64 on the CPU, shape (N, depth)
        self.given = given
        self.name = name  # the argument, for error messages
        # Per dimension, the smallest and the largest index: the range check of select
        # then compares Python ints (the full check runs only to word an error).
        self.bounds: list[tuple[int, int]] = []
        if per_example is not None and per_example.numel():
            low, high = torch.aminmax(per_example, dim=0)
            self.bounds = list(zip(low.tolist(), high.tolist(), strict=True))

    @property
    def text(self) -> str:
        """The target as the caller gave it, abbreviated, for messages."""
        return _brief(self.given)

    @property
    def depth(self) -> int:
        """How many output dimensions after the batch the target indexes."""
        if self.per_example is not None:
            return int(self.per_example.shape[1])
        return len(self.shared) if self.shared is not None else 0

    def take(self, rows: Tensor) -> Target:
        """The target of an expanded batch whose row ``i`` is example ``rows[i]``."""
        if self.per_example is None:
            return self
        return Target(self.shared, self.per_example[rows.cpu()], self.given, self.name)

    def select(self, output: Any, batch_size: int, source: str = "the model's output") -> Tensor:
        """Return the targeted value of every example of ``output`` (described as
        ``source`` in errors), shape ``(batch_size,)``."""
        if not isinstance(output, Tensor):
            raise TypeError(
                f"{source} must be a tensor whose dimension 0 is the batch, "
                f"got {type(output).__name__}"
            )
        shape = output.shape
        if not shape or shape[0] != batch_size:
            raise ValueError(
                f"{source} has shape {_shape(output)}, but dimension 0 must "
                f"be the batch of {batch_size} examples given in `inputs`"
            )
        if self.depth > len(shape) - 1:
            raise IndexError(
                f"`{self.name}` {self.text} has {self.depth} indices, but {source} "
                f"(shape {_shape(output)}) has only {len(shape) - 1} dimension(s) "
                "after the batch"
            )
        if batch_size == 0:
            return output.reshape(-1)[:0]
        if self.per_example is not None:
            selected = self._select_per_example(output, self.per_example, source)
        elif self.shared:
            self._check_range(self.shared, output, source)
            selected = output
            for position in self.shared:  # Tensor.select: the cheapest view per index
                selected = selected.select(1, position)
        else:
            selected = output
        if selected.dim() == 1:
            return selected
        per_example = math.prod(selected.shape[1:])
        if per_example != 1:
            if self.depth == 0:
                raise ValueError(
                    f"`{self.name}` is required: {source} has {per_example} values per "
                    f"example (shape {_shape(output)}); pass {_FORMS}"
                )
            raise ValueError(
                f"`{self.name}` {self.text} leaves {per_example} values per example of "
                f"{source} (shape {_shape(output)}); give one index for every "
                "dimension after the batch"
            )
        return selected.reshape(batch_size)

    def _check_range(self, index: tuple[int, ...], output: Tensor, source: str) -> None:
        for dim, position in enumerate(index, start=1):
            size = output.shape[dim]
            if not -size <= position < size:
                raise IndexError(
                    f"`{self.name}` {self.text}: index {position} is out of range for "
                    f"dimension {dim} of {source} (shape {_shape(output)})"
                )

    def _select_per_example(self, output: Tensor, index: Tensor, source: str) -> Tensor:
        shape = output.shape
        if any(
            low < -size or high >= size
            for (low, high), size in zip(self.bounds, shape[1:], strict=False)
        ):
            self._raise_out_of_range(output, index, source)
        index = index.to(output.device, non_blocking=True)
        if len(shape) == 2 and self.bounds and self.bounds[0][0] >= 0:  # one class: one kernel
            return output.gather(1, index).squeeze(1)
        rows = torch.arange(shape[0], device=output.device)
        return output[(rows, *index.unbind(1))]

    def _raise_out_of_range(self, output: Tensor, index: Tensor, source: str) -> None:
        depth = index.shape[1]
        sizes = torch.tensor(output.shape[1 : 1 + depth], dtype=torch.int64)
        bad = (index < -sizes) | (index >= sizes)
        row, col = (int(v) for v in bad.nonzero()[0])
        entry = index[row].tolist() if depth > 1 else int(index[row, 0])
        raise IndexError(
            f"`{self.name}[{row}]` = {_brief(entry)}: index {int(index[row, col])} is out "
            f"of range for dimension {col + 1} of {source} (shape {_shape(output)})"
        )


def parse_target(target: object, batch_size: int, name: str = "target") -> Target:
    """Check the type and length of ``target`` (the argument called ``name``) against the
    batch; see :class:`Target`."""
    if target is None:
        return Target(name=name)
    if isinstance(target, int) and not isinstance(target, bool):  # the common case, first
        return Target(shared=(target,), given=target, name=name)
    if isinstance(target, Tensor):
        return _parse_tensor(target, batch_size, name)
    if isinstance(target, tuple):
        index = tuple(_as_index(v, f"{name}[{i}]") for i, v in enumerate(target))
        return Target(shared=index, given=target, name=name)
    if isinstance(target, list):
        return _parse_list(target, batch_size, name)
    if isinstance(target, bool) or not hasattr(target, "__index__"):
        raise TypeError(f"`{name}` must be {_FORMS}; got {type(target).__name__}")
    return Target(shared=(_as_index(target, name),), given=target, name=name)


def predicted_target(
    model: Callable[..., Any], *args: Any, argument: str = "target='predicted'"
) -> Tensor:
    """The model's top class for each example: the argmax over dimension 1 of
    ``model(*args)``, computed without gradients (one int64 per example, on the output's
    device). The batch is dimension 0 of ``args[0]``.

    Raises:
        ValueError: if the output is not a tensor of class scores, shape
            ``(batch, classes)``; the message names the option that asked for it
            (``argument``).

    Example:
        >>> model = torch.nn.Linear(3, 4)
        >>> predicted_target(model, torch.randn(2, 3)).shape
        torch.Size([2])
    """
    batch_size = int(args[0].shape[0])
    with torch.no_grad():
        output = model(*args)
    if not isinstance(output, Tensor) or output.dim() != 2 or output.shape[0] != batch_size:
        shape = _shape(output) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(
            f"{argument} needs a model that returns N x classes scores, shape "
            f"({batch_size}, C); got {shape}"
        )
    return output.argmax(dim=1)


def _check_length(length: int, batch_size: int, name: str) -> None:
    if length != batch_size:
        raise ValueError(
            f"`{name}` has {length} entries but the batch has {batch_size} examples; "
            "give one entry per example, or a single int or tuple for all of them"
        )


def _parse_tensor(target: Tensor, batch_size: int, name: str) -> Target:
    if target.dtype == torch.bool or target.is_floating_point() or target.is_complex():
        raise TypeError(f"`{name}` tensor must have an integer dtype, got {target.dtype}")
    if target.device.type == "meta":
        raise ValueError(f"`{name}` tensor is on the meta device and holds no values")
    if target.layout != torch.strided:
        raise TypeError(f"`{name}` must be a dense tensor, got a {target.layout} tensor")
    if target.numel() == 1:
        return Target(shared=(int(target.item()),), given=target, name=name)
    if target.dim() != 1:
        raise ValueError(
            f"`{name}` tensor must be 0-d, hold one element, or be 1-d with one entry per "
            f"example; got shape {_shape(target)}"
        )
    _check_length(target.numel(), batch_size, name)
    per_example = target.detach().to("cpu", torch.int64).reshape(-1, 1)
    return Target(per_example=per_example, given=target, name=name)


def _parse_list(target: list[object], batch_size: int, name: str) -> Target:
    _check_length(len(target), batch_size, name)
    if not target:
        return Target(per_example=torch.empty((0, 0), dtype=torch.int64), given=target, name=name)
    if all(isinstance(entry, tuple) for entry in target):
        tuples = cast("list[tuple[object, ...]]", target)
        rows = [
            [_as_index(v, f"{name}[{i}][{j}]") for j, v in enumerate(entry)]
            for i, entry in enumerate(tuples)
        ]
        depths = {len(row) for row in rows}
        if len(depths) != 1:
            raise ValueError(
                f"`{name}` tuples must all have the same length, got lengths {sorted(depths)}"
            )
    elif any(isinstance(entry, tuple) for entry in target):
        raise TypeError(f"`{name}` list must hold only ints or only tuples of ints, not both")
    else:
        rows = [[_as_index(v, f"{name}[{i}]")] for i, v in enumerate(target)]
    try:
        per_example = torch.tensor(rows, dtype=torch.int64).reshape(len(rows), -1)
    except (OverflowError, ValueError, RuntimeError):  # an index beyond int64
        row = next(i for i, r in enumerate(rows) if any(not -(2**63) <= v < 2**63 for v in r))
        raise IndexError(
            f"`{name}[{row}]` = {_brief(target[row])}: index out of range for any tensor"
        ) from None
    return Target(per_example=per_example, given=target, name=name)

"""Type aliases shared by the public API (the same shapes as ``captum._utils.typing``)."""

from typing import TypeVar

from torch import Tensor

#: A tensor, or a tuple of tensors; the result of ``attribute`` has the same structure.
TensorOrTupleOfTensorsGeneric = TypeVar("TensorOrTupleOfTensorsGeneric", Tensor, tuple[Tensor, ...])

#: Every form of ``target`` that Captum accepts.
TargetType = None | int | tuple[int, ...] | Tensor | list[int] | list[tuple[int, ...]]

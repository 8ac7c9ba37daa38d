"""What one batch of a dataset holds: the inputs, the labels and the additional forward
arguments, taken from the default layouts or from a user's ``batch_fn``; and the targets
(a fixed class, the label, or the model's prediction) resolved for it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attrkit.core.call import format_additional_forward_args, format_tensors
from attrkit.core.targets import predicted_target

__all__ = ["Batch", "BatchFn", "TargetSpec", "parse_batch", "parse_target_spec"]

#: ``batch_fn(batch) -> (inputs, labels or None, additional_forward_args or None)``.
BatchFn = Callable[[Any], tuple[Any, Any, Any]]

LAYOUTS = (
    "a tensor (the inputs), an (inputs, labels) pair, or a dict with an 'inputs' key "
    "(and optionally 'labels' and 'additional_forward_args')"
)
TARGET_FORMS = "None, an int, a tuple of ints, 'label' or 'predicted'"


@dataclass(frozen=True)
class Batch:
    """One batch in canonical form.

    Attributes:
        inputs: The tensors to attribute, sharing dimension 0.
        is_tuple: Whether the inputs came as a tuple (the method then returns a tuple).
        labels: The labels, if the batch has any (not yet validated: only ``target="label"``
            needs them).
        additional_forward_args: Extra model arguments, as a tuple.
    """

    inputs: tuple[Tensor, ...]
    is_tuple: bool
    labels: object
    additional_forward_args: tuple[Any, ...]

    @property
    def size(self) -> int:
        return int(self.inputs[0].shape[0])

    def to(self, device: torch.device) -> Batch:
        """The batch with its tensors (inputs and top-level additional arguments) on
        ``device``."""
        return Batch(
            inputs=tuple(x.to(device, non_blocking=True) for x in self.inputs),
            is_tuple=self.is_tuple,
            labels=self.labels,
            additional_forward_args=tuple(
                arg.to(device, non_blocking=True) if isinstance(arg, Tensor) else arg
                for arg in self.additional_forward_args
            ),
        )


def _where(position: int) -> str:
    return f"batch {position} of `data`"


def _split_default(batch: object, position: int) -> tuple[object, object, object]:
    if isinstance(batch, Tensor):
        return batch, None, None
    if isinstance(batch, Mapping):
        if "inputs" not in batch:
            keys = ", ".join(map(repr, batch)) or "none"
            raise ValueError(
                f"{_where(position)} is a dict without an 'inputs' key (its keys: {keys}); "
                "pass `batch_fn` to say where the inputs are"
            )
        if "labels" in batch and "label" in batch:
            raise ValueError(f"{_where(position)} has both 'labels' and 'label' keys")
        labels = batch.get("labels", batch.get("label"))
        return batch["inputs"], labels, batch.get("additional_forward_args")
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            inputs = tuple(batch[0]) if isinstance(batch[0], list) else batch[0]
            return inputs, batch[1], None
        raise ValueError(
            f"{_where(position)} is a {type(batch).__name__} of {len(batch)} entries; the "
            f"default layouts are {LAYOUTS}. Pass `batch_fn` to say which entries are the "
            "inputs, the labels and the additional forward arguments"
        )
    raise TypeError(
        f"{_where(position)} is a {type(batch).__name__}; the default layouts are "
        f"{LAYOUTS}. Pass `batch_fn` for other layouts"
    )


def parse_batch(batch: object, position: int, batch_fn: BatchFn | None) -> Batch:
    """Take the inputs, labels and additional forward arguments from ``batch``.

    Raises:
        TypeError, ValueError: naming the batch, if it has no usable inputs.
    """
    if batch_fn is None:
        inputs, labels, extra = _split_default(batch, position)
    else:
        parts = batch_fn(batch)
        if not isinstance(parts, tuple) or len(parts) != 3:
            raise TypeError(
                f"`batch_fn` must return a tuple (inputs, labels or None, "
                f"additional_forward_args or None); for {_where(position)} it returned "
                f"{type(parts).__name__}"
                + (f" of {len(parts)} entries" if isinstance(parts, tuple) else "")
            )
        inputs, labels, extra = parts
    try:
        tensors, is_tuple = format_tensors(inputs, "inputs")
    except (TypeError, ValueError) as error:
        raise type(error)(f"{_where(position)}: {error}") from None
    if tensors[0].shape[0] == 0:
        raise ValueError(f"{_where(position)} is empty (0 examples)")
    return Batch(tensors, is_tuple, labels, format_additional_forward_args(extra))


@dataclass(frozen=True)
class TargetSpec:
    """How targets are chosen for every batch.

    Attributes:
        mode: ``"none"`` (the model returns one value per example), ``"fixed"``,
            ``"label"`` or ``"predicted"``.
        value: The fixed target (an int or a tuple of ints) in ``"fixed"`` mode.
    """

    mode: str
    value: int | tuple[int, ...] | None = None

    def describe(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"mode": self.mode, "value": value}

    def resolve(
        self, batch: Batch, position: int, forward: Callable[..., Any]
    ) -> tuple[Any, Tensor | None]:
        """The ``target`` to pass to ``attribute`` for ``batch``, and the per-example
        targets to store (int64, shape ``(N,)`` or ``(N, depth)``; ``None`` in ``"none"``
        mode)."""
        size = batch.size
        if self.mode == "none":
            return None, None
        if self.mode == "fixed":
            value = self.value if isinstance(self.value, tuple) else (self.value,)
            stored = torch.tensor([value] * size, dtype=torch.int64)
            return self.value, stored.reshape(size) if stored.shape[1] == 1 else stored
        if self.mode == "label":
            labels = _labels(batch.labels, size, position)
        else:
            labels = _predicted(batch, position, forward)
        target = labels if labels.dim() == 1 else [tuple(row) for row in labels.tolist()]
        return target, labels


def parse_target_spec(target: object) -> TargetSpec:
    """Check ``target`` (see :func:`~attrkit.attribute_dataset`)."""
    if target is None:
        return TargetSpec("none")
    if isinstance(target, str):
        if target in ("label", "labels"):
            return TargetSpec("label")
        if target == "predicted":
            return TargetSpec("predicted")
        raise ValueError(f"`target` must be {TARGET_FORMS}; got the string {target!r}")
    if isinstance(target, bool):
        raise TypeError(f"`target` must be {TARGET_FORMS}; got a bool")
    if isinstance(target, int):
        return TargetSpec("fixed", target)
    if isinstance(target, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in target
    ):
        return TargetSpec("fixed", tuple(target))
    hint = (
        "; for one target per example, return them as the labels of each batch "
        "(see `batch_fn`) and pass target='label'"
        if isinstance(target, (list, Tensor, np.ndarray))
        else ""
    )
    raise TypeError(f"`target` must be {TARGET_FORMS}; got {type(target).__name__}{hint}")


def _labels(labels: object, size: int, position: int) -> Tensor:
    where = f"{_where(position)} (target='label')"
    if labels is None:
        raise ValueError(
            f"{where} has no labels; give batches as (inputs, labels) pairs, or pass "
            "`batch_fn`, or choose target='predicted' or a fixed class"
        )
    try:
        tensor = torch.as_tensor(labels).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{where}: the labels are not a tensor of ints: {error}") from None
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise TypeError(f"{where}: the labels must be integers, got dtype {tensor.dtype}")
    if tensor.dim() == 0 or tensor.dim() > 2 or tensor.shape[0] != size:
        raise ValueError(
            f"{where}: the labels have shape {tuple(tensor.shape)}; expected one label per "
            f"example, shape ({size},) (or ({size}, k) for k-index targets)"
        )
    return tensor.to(torch.int64)


def _predicted(batch: Batch, position: int, forward: Callable[..., Any]) -> Tensor:
    try:
        predicted = predicted_target(forward, *batch.inputs, *batch.additional_forward_args)
    except ValueError as error:
        raise ValueError(f"{_where(position)}: {error}") from None
    return predicted.to("cpu", torch.int64)

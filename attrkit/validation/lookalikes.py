"""ReLU look-alikes: expressions that compute ``max(x, 0)`` without calling a ReLU.

``clamp(min=0)``, ``torch.where(x > 0, x, 0)``, ``maximum(x, 0)``, ``x * (x > 0)``,
``threshold(x, 0, 0)`` and ``hardtanh(x, 0, inf)`` give a ReLU's values, but they are
other operations, with their own gradients: no ReLU-override method changes them, in any
library (Captum and zennit hook ``nn.ReLU`` modules; attrkit rules ReLU calls in every
spelling, and these are not ReLU calls). :func:`audit <attrkit.validation.audit>` lists
them so that a model author can write them as ReLUs where the method should apply.

:class:`LookalikeWatch` recognizes them one torch call at a time, as a torch-function
mode sees the calls (:class:`~attrkit.validation.trace.ForwardTrace` asks it).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LOOKALIKE_NOTE", "LookalikeWatch"]

#: What the audit says about every look-alike.
LOOKALIKE_NOTE = "not a ReLU: plain gradient in every library"

_nn: Any = torch._C._nn
_POSITIVE_MASKS = {Tensor.__gt__, Tensor.gt, torch.gt, Tensor.__ge__, Tensor.ge, torch.ge}
_CONVERSIONS = {Tensor.float, Tensor.double, Tensor.half, Tensor.to, Tensor.type_as}
_PRODUCTS = {Tensor.__mul__, Tensor.__rmul__, Tensor.mul, torch.mul}
_WHERE = {torch.where, Tensor.where}
_CLAMPS = {
    torch.clamp,
    torch.clamp_,
    torch.clip,
    torch.clip_,
    Tensor.clamp,
    Tensor.clamp_,
    Tensor.clip,
    Tensor.clip_,
}
_CLAMP_MINS = {torch.clamp_min, torch.clamp_min_, Tensor.clamp_min, Tensor.clamp_min_}
_MAXIMUMS = {torch.maximum, torch.max, torch.fmax, Tensor.maximum, Tensor.max, Tensor.fmax}
_THRESHOLDS = {F.threshold, torch.threshold, torch.threshold_}
_HARDTANHS = {F.hardtanh, _nn.hardtanh, _nn.hardtanh_}


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    if len(args) > position:
        return args[position]
    return kwargs.get(name)


def _is_zero(value: Any) -> bool:
    """Whether ``value`` is the number 0 or a tensor of zeros."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, Tensor) and value.numel() > 0 and not value.is_complex():
        return not bool(value.detach().any())
    return False


def _is_infinite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isinf(value) and value > 0


class LookalikeWatch:
    """Recognize ReLU look-alikes in a sequence of torch calls.

    It remembers the masks ``x > 0`` (and ``x >= 0``, also converted to another dtype)
    that the calls make, to recognize ``x * (x > 0)`` and ``torch.where(x > 0, x, 0)``.
    """

    def __init__(self) -> None:
        # id(mask) -> (the mask, the tensor it is the positive part of), both weakly
        self._masks: dict[int, tuple[weakref.ref[Tensor], weakref.ref[Tensor]]] = {}

    def _mask_of(self, value: Any) -> Tensor | None:
        """The tensor ``value`` is the positive mask of, if it is one."""
        if not isinstance(value, Tensor):
            return None
        entry = self._masks.get(id(value))
        if entry is None or entry[0]() is not value:
            return None
        return entry[1]()

    def _remember(self, mask: Any, of: Tensor) -> None:
        if isinstance(mask, Tensor):
            self._masks[id(mask)] = (weakref.ref(mask), weakref.ref(of))

    def expression(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> str | None:
        """The look-alike that the call ``func(*args, **kwargs)`` spells (as it reads,
        e.g. ``"clamp(x, min=0)"``), or ``None``."""
        x = _argument(args, kwargs, 0, "input")
        if func in _PRODUCTS:
            other = _argument(args, kwargs, 1, "other")
            if (self._mask_of(other) is x and x is not None) or (
                isinstance(other, Tensor) and self._mask_of(x) is other
            ):
                return "x * (x > 0)"
            return None
        if not isinstance(x, Tensor) or not x.is_floating_point():
            return None
        if func in _CLAMPS:
            low, high = _argument(args, kwargs, 1, "min"), _argument(args, kwargs, 2, "max")
            return "clamp(x, min=0)" if _is_zero(low) and high is None else None
        if func in _CLAMP_MINS:
            return "clamp_min(x, 0)" if _is_zero(_argument(args, kwargs, 1, "min")) else None
        if func in _MAXIMUMS:
            other = _argument(args, kwargs, 1, "other")
            if isinstance(other, Tensor) and _is_zero(other):
                return "maximum(x, 0)"
            return None
        if func in _THRESHOLDS:
            threshold = _argument(args, kwargs, 1, "threshold")
            value = _argument(args, kwargs, 2, "value")
            return "threshold(x, 0, 0)" if _is_zero(threshold) and _is_zero(value) else None
        if func in _HARDTANHS:
            low = _argument(args, kwargs, 1, "min_val")
            high = _argument(args, kwargs, 2, "max_val")
            return "hardtanh(x, 0, inf)" if _is_zero(low) and _is_infinite(high) else None
        return None

    def where(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """``torch.where(x > 0, x, 0)`` among the arguments of a ``where`` call."""
        condition = _argument(args, kwargs, 0, "condition")
        x = _argument(args, kwargs, 1, "input")
        other = _argument(args, kwargs, 2, "other")
        if isinstance(x, Tensor) and self._mask_of(condition) is x and _is_zero(other):
            return "torch.where(x > 0, x, 0)"
        return None

    def observe(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        output: Any,
    ) -> str | None:
        """Take note of a call and its output; return the look-alike it spells, if any."""
        x = _argument(args, kwargs, 0, "input")
        if func in _POSITIVE_MASKS and isinstance(x, Tensor):
            if _is_zero(_argument(args, kwargs, 1, "other")):
                self._remember(output, x)
            return None
        if func in _CONVERSIONS:
            of = self._mask_of(x)
            if of is not None:
                self._remember(output, of)
            return None
        if func in _WHERE:
            return self.where(args, kwargs)
        return self.expression(func, args, kwargs)

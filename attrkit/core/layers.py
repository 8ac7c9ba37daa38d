"""Capturing one layer's input or output during a forward pass, and selecting a neuron.

:class:`LayerCapture` registers a forward (pre-)hook on the layer for the duration of one
``with`` block. The hook only acts on the thread that entered the block, so other threads
running the same model at the same time are unaffected; it replaces what it captures with
a clone, so that in-place operations further on cannot change the captured tensors.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from attrkit.core.errors import ArgumentIndexError, ArgumentTypeError, ArgumentValueError
from attrkit.core.targets import Target, _as_index, parse_target

__all__ = ["LayerCapture", "capture_layers", "check_layer", "check_layers", "select_neuron"]


def check_layer(layer: object, model: object) -> nn.Module:
    """``layer`` must be a module (of ``model``, when ``model`` is one)."""
    if not isinstance(layer, nn.Module):
        raise TypeError(f"`layer` must be a torch.nn.Module, got {type(layer).__name__}")
    if isinstance(model, nn.Module) and not any(m is layer for m in model.modules()):
        raise ValueError(f"`layer` ({type(layer).__name__}) is not a submodule of the model")
    return layer


def check_layers(layer: object, model: object) -> tuple[tuple[nn.Module, ...], bool]:
    """``layer``: a module of ``model`` or a non-empty list of them (the multi-layer form
    of Captum's layer methods); returns the modules and whether a list was given."""
    if not isinstance(layer, list):
        return (check_layer(layer, model),), False
    if not layer:
        raise ValueError("`layer` is an empty list; give at least one module")
    for position, module in enumerate(layer):
        try:
            check_layer(module, model)
        except (TypeError, ValueError) as error:
            raise type(error)(str(error).replace("`layer`", f"`layer[{position}]`")) from None
    return tuple(layer), True


class LayerCapture:
    """Within the block, record the tensors entering (``inputs=True``) or leaving the layer.

    With ``replace``, the layer's tensors are replaced by those (the rest of the model
    computes with them; integrated gradients of a layer move along a path of the layer's
    values) and :attr:`tensors` are the replacements.

    Attributes:
        tensors: The captured tensors (a tuple), once the forward pass has run.
        is_tuple: Whether there is more than one (a layer's single input or a one-tensor
            tuple counts as one tensor, as in Captum).
    """

    def __init__(
        self, layer: nn.Module, inputs: bool = False, replace: tuple[Tensor, ...] | None = None
    ) -> None:
        self.layer = layer
        self.inputs = inputs
        self.replace = replace
        self.tensors: tuple[Tensor, ...] = ()
        self.calls = 0
        self._thread = threading.get_ident()
        self._handle: RemovableHandle | None = None

    def _capture(self, value: Any) -> Any:
        """Record the tensors of ``value`` (a tensor, or a tuple/list of values) and return
        ``value`` with those tensors replaced by clones."""
        items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        tensors = tuple(item for item in items if isinstance(item, Tensor))
        if not tensors:
            where = "inputs" if self.inputs else "output"
            raise TypeError(f"`layer`'s {where} holds no tensor")
        self.calls += 1
        if self.replace is not None:
            tensors = self._replacements(tensors)
        self.tensors = tensors
        substitutes = iter(tensors)
        clones = [next(substitutes).clone() if isinstance(item, Tensor) else item for item in items]
        if isinstance(value, (tuple, list)):
            return type(value)(clones)
        return clones[0]

    def _replacements(self, tensors: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        assert self.replace is not None
        if len(self.replace) != len(tensors) or any(
            r.shape != t.shape for r, t in zip(self.replace, tensors, strict=False)
        ):
            raise ValueError(
                f"`layer` ({type(self.layer).__name__}) computed tensors of shapes "
                f"{[tuple(t.shape) for t in tensors]} where the path has "
                f"{[tuple(r.shape) for r in self.replace]}: the layer's shape depends on "
                "its input's values"
            )
        return self.replace

    @property
    def is_tuple(self) -> bool:
        return len(self.tensors) > 1

    def _pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> Any:
        """Registered when ``inputs``: capture the layer's arguments."""
        if threading.get_ident() != self._thread:
            return None
        return self._capture(args)

    def _hook(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        """Registered otherwise: capture the layer's output."""
        if threading.get_ident() != self._thread:
            return None
        return self._capture(output)

    def __enter__(self) -> LayerCapture:
        if self.inputs:
            self._handle = self.layer.register_forward_pre_hook(self._pre_hook)
        else:
            self._handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.remove()
        if exc_type is None and self.calls != 1:
            name = type(self.layer).__name__
            if self.calls == 0:
                raise ValueError(f"`layer` ({name}) did not run during the forward pass")
            raise ValueError(
                f"`layer` ({name}) ran {self.calls} times during one forward pass; "
                "attribution to a layer needs a layer that is applied once"
            )


@contextmanager
def capture_layers(
    layers: tuple[nn.Module, ...],
    inputs: bool = False,
    replace: list[tuple[Tensor, ...]] | None = None,
) -> Iterator[list[LayerCapture]]:
    """One :class:`LayerCapture` per layer (each with its ``replace``), for one block."""
    replacements: list[tuple[Tensor, ...] | None] = [None] * len(layers)
    if replace is not None:
        replacements = list(replace)
    with ExitStack() as stack:
        yield [
            stack.enter_context(LayerCapture(layer, inputs, r))
            for layer, r in zip(layers, replacements, strict=True)
        ]


NeuronSelector = int | tuple[int | slice, ...] | Callable[..., Tensor]


def select_neuron(
    captured: LayerCapture | tuple[Tensor, ...], selector: object, batch_size: int
) -> Tensor:
    """The selected neuron of every example, shape ``(batch_size,)`` (or a 0-d sum).

    ``captured``: a layer's capture, or its tensors. ``selector``: an int or a tuple of
    ints and slices indexing the layer tensor after the batch dimension (slices are summed
    over), or a callable that receives the layer's tensor (or tuple of tensors) and
    returns one value per example.
    """
    tensors = captured.tensors if isinstance(captured, LayerCapture) else captured
    layer_value: Any = tensors if len(tensors) > 1 else tensors[0]
    if callable(selector):
        selected = selector(layer_value)
        if not isinstance(selected, Tensor):
            raise ArgumentTypeError(
                f"`neuron_selector` returned {type(selected).__name__}; it must return a "
                "tensor with one value per example"
            )
        if selected.dim() == 0:
            return selected
        return Target(name="neuron_selector").select(
            selected, batch_size, source="the value `neuron_selector` returned"
        )
    source = "the layer's tensor"
    if len(tensors) > 1:
        raise ArgumentValueError(
            f"the layer's tensors form a tuple of {len(tensors)}; "
            "pass a callable `neuron_selector` that picks one value per example"
        )
    (tensor,) = tensors
    if isinstance(selector, tuple) and any(isinstance(i, slice) for i in selector):
        return _sum_of_slices(tensor, selector, batch_size, source)
    if not isinstance(selector, (int, tuple)) or isinstance(selector, bool):
        raise ArgumentTypeError(
            "`neuron_selector` must be an int, a tuple of ints and slices, or a callable; "
            f"got {type(selector).__name__}"
        )
    return parse_target(selector, batch_size, "neuron_selector").select(tensor, batch_size, source)


def _sum_of_slices(
    tensor: Tensor, selector: tuple[object, ...], batch_size: int, source: str
) -> Tensor:
    """Per example, the sum of the part of ``tensor`` that ``selector`` (ints and slices
    indexing the dimensions after the batch) picks."""
    if len(selector) > tensor.dim() - 1:
        raise ArgumentIndexError(
            f"`neuron_selector` {selector!r} has {len(selector)} indices, but {source} "
            f"(shape {tuple(tensor.shape)}) has only {tensor.dim() - 1} dimension(s) "
            "after the batch"
        )
    index: list[int | slice] = [slice(None)]
    for position, entry in enumerate(selector):
        label = f"neuron_selector[{position}]"
        size = tensor.shape[position + 1]
        if not isinstance(entry, slice):
            value = _as_index(entry, label)
            if not -size <= value < size:
                raise ArgumentIndexError(
                    f"`{label}` = {value} is out of range for dimension {position + 1} of "
                    f"{source} (shape {tuple(tensor.shape)})"
                )
            index.append(value)
            continue
        try:
            start, stop, step = entry.indices(size)
        except TypeError:
            raise ArgumentTypeError(
                f"`{label}` {entry!r}: slice bounds must be ints or None"
            ) from None
        except ValueError:  # a zero step
            step = 0
        if step < 1:
            raise ArgumentValueError(f"`{label}` {entry!r}: the slice step must be positive")
        index.append(slice(start, stop, step))
    picked = tensor[tuple(index)]
    return picked.reshape(batch_size, math.prod(picked.shape[1:])).sum(dim=1)

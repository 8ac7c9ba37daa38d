"""The canonical form of one ``attribute`` call and the packing of its result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attrkit.core.errors import ArgumentTypeError, ArgumentValueError
from attrkit.core.targets import Target, parse_target

__all__ = [
    "GRAD_KWARGS",
    "AttributionCall",
    "Result",
    "check_attributable",
    "check_baseline_tensor",
    "format_additional_forward_args",
    "format_baselines",
    "format_grad_kwargs",
    "format_tensors",
    "gradients",
    "prepare_call",
    "take_rows",
]


def format_tensors(
    value: object, name: str, floating: bool = True
) -> tuple[tuple[Tensor, ...], bool]:
    """Check that ``value`` is a tensor or a non-empty tuple of tensors sharing dimension
    0 (floating-point ones, with ``floating``); return them as a tuple and whether a tuple
    was given."""
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
        if floating and not tensor.is_floating_point():
            raise TypeError(
                f"`{label}` has dtype {tensor.dtype}; gradients need a floating-point "
                "tensor (convert it with .float())"
            )
        if tensor.layout != torch.strided:
            raise TypeError(
                f"`{label}` is a {tensor.layout} tensor; pass a dense tensor "
                "(convert it with .to_dense())"
            )
        if tensor.device.type == "meta":
            raise ValueError(f"`{label}` is on the meta device and holds no values")
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


def check_baseline_tensor(baseline: Tensor, label: str) -> None:
    """Raise a ``TypeError`` (an ``AssertionError`` too, as Captum's) naming ``label``
    unless ``baseline`` is a dense real tensor with values."""
    if baseline.is_complex() or baseline.layout != torch.strided or baseline.is_meta:
        raise ArgumentTypeError(
            f"`{label}` must be a dense real tensor with values, got a {baseline.dtype} "
            f"{baseline.layout} tensor on the {baseline.device.type} device"
        )


def format_baselines(baselines: object, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Baselines in every Captum form -> one tensor per input, broadcastable to it.

    ``None`` (zeros), a number, or a tensor with the input's shape or with a batch of one,
    for every input, or a tuple of those with one entry per input tensor.
    """
    if baselines is None:
        return tuple(torch.zeros((), dtype=x.dtype, device=x.device) for x in inputs)
    entries = baselines if isinstance(baselines, tuple) else (baselines,)
    if len(entries) != len(inputs):
        raise ArgumentValueError(
            f"`baselines` has {len(entries)} entries but `inputs` has {len(inputs)} tensors"
        )
    formatted = []
    for position, (baseline, x) in enumerate(zip(entries, inputs, strict=True)):
        label = f"baselines[{position}]" if isinstance(baselines, tuple) else "baselines"
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
            raise ArgumentTypeError(
                f"`{label}` must be a number or a tensor, got {type(baseline).__name__}"
            )
        if not isinstance(baseline, Tensor):
            formatted.append(torch.tensor(baseline, dtype=x.dtype, device=x.device))
            continue
        check_baseline_tensor(baseline, label)
        if baseline.dim() > 0 and (
            baseline.shape[1:] != x.shape[1:] or baseline.shape[0] not in (1, x.shape[0])
        ):
            raise ArgumentValueError(
                f"`{label}` has shape {tuple(baseline.shape)}; it must be a number, or a "
                f"tensor of the input's shape {tuple(x.shape)} or with a batch of one "
                f"{(1, *x.shape[1:])}"
            )
        formatted.append(baseline.detach().to(dtype=x.dtype, device=x.device))
    return tuple(formatted)


#: The options of :func:`torch.autograd.grad` that a method's ``grad_kwargs`` may set (the
#: others, ``outputs``, ``inputs``, ``grad_outputs`` and ``is_grads_batched``, are the
#: method's own).
GRAD_KWARGS = ("retain_graph", "create_graph", "allow_unused", "materialize_grads")


def format_grad_kwargs(value: object) -> dict[str, Any]:
    """``grad_kwargs``: ``None`` or a dict of options of :func:`torch.autograd.grad`
    (:data:`GRAD_KWARGS`), passed through to it as Captum does."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"`grad_kwargs` must be None or a dict, got {type(value).__name__}")
    unknown = sorted(set(value) - set(GRAD_KWARGS), key=str)
    if unknown:
        raise TypeError(
            f"`grad_kwargs` has {', '.join(map(repr, unknown))}; it may hold "
            f"{', '.join(GRAD_KWARGS)}"
        )
    return value


def take_rows(value: Any, batch_size: int, rows: Tensor) -> Any:
    """``value[rows]`` for a tensor whose dimension 0 is the batch (of ``batch_size``
    examples); anything else (a number, a flag, a shared tensor) as it is."""
    if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch_size:
        return value.index_select(0, rows.to(value.device))
    return value


def _leaf(tensor: Tensor) -> Tensor:
    """A new leaf that shares the caller's values, never their graph or their
    ``requires_grad`` flag, and requires grad (when it is a floating-point tensor)."""
    if tensor.is_inference():  # (a clone made in inference mode is an inference tensor)
        with torch.inference_mode(False):
            tensor = tensor.clone()
    return tensor.detach().requires_grad_(tensor.is_floating_point())


@dataclass(frozen=True)
class Result:
    """What a method computes when it is more than one tensor per input.

    Attributes:
        attributions: One tensor per input (or per layer tensor).
        delta: The convergence delta, returned after the attributions when not ``None``.
        is_tuple: Return a tuple (``True``) or a tensor (``False``); ``None`` follows the
            inputs.
        layers: For a method over a list of layers: how many of ``attributions`` belong
            to each layer, in order; the result is then a list with, per layer, a tensor
            (one) or a tuple (several), as Captum's multi-layer methods return.
    """

    attributions: tuple[Tensor, ...]
    delta: Tensor | None = None
    is_tuple: bool | None = None
    layers: tuple[int, ...] | None = None


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

    def take(self, rows: Tensor, inputs: tuple[Tensor, ...]) -> AttributionCall:
        """The call for an expanded batch: row ``i`` of ``inputs`` belongs to example
        ``rows[i]``, whose target and per-example additional arguments (tensors whose
        dimension 0 is the batch) it gets."""
        return AttributionCall(
            inputs=tuple(_leaf(x) for x in inputs),
            is_tuple=self.is_tuple,
            target=self.target.take(rows),
            additional_forward_args=tuple(
                take_rows(arg, self.batch_size, rows) for arg in self.additional_forward_args
            ),
        )

    def pack(self, results: Sequence[Tensor] | Result) -> Any:
        """Tensor in, tensor out; tuple in, tuple out (or the structure ``results``
        gives); a delta after the attributions."""
        if not isinstance(results, Result):
            return tuple(results) if self.is_tuple else results[0]
        packed: Any
        if results.layers is not None:
            packed, first = [], 0
            for count in results.layers:
                group = results.attributions[first : first + count]
                packed.append(group if count > 1 else group[0])
                first += count
        else:
            is_tuple = self.is_tuple if results.is_tuple is None else results.is_tuple
            packed = results.attributions if is_tuple else results.attributions[0]
        return packed if results.delta is None else (packed, results.delta)


def prepare_call(
    inputs: object, target: object, additional_forward_args: object, floating: bool = True
) -> AttributionCall:
    """Validate and normalize the three common arguments of ``attribute``; ``floating``:
    the inputs must be floating-point tensors (the method differentiates them)."""
    tensors, is_tuple = format_tensors(inputs, "inputs", floating)
    parsed = parse_target(target, int(tensors[0].shape[0]))
    return AttributionCall(
        inputs=tuple(_leaf(t) for t in tensors),
        is_tuple=is_tuple,
        target=parsed,
        additional_forward_args=format_additional_forward_args(additional_forward_args),
    )


def _not_attributable(selected: Tensor) -> TypeError:
    return TypeError(
        f"the attributed output is a {selected.layout} tensor on the "
        f"{selected.device.type} device, which has no gradient to attribute; "
        "it must be a dense tensor with values (check `inputs` and "
        "`additional_forward_args`)"
    )


def check_attributable(selected: Tensor) -> Tensor:
    """``selected``, if it is a dense tensor with values (whose rows can be sliced and
    differentiated); else the ``TypeError`` :func:`gradients` raises for it."""
    if selected.layout != torch.strided or selected.is_meta:
        raise _not_attributable(selected)
    return selected


def gradients(
    selected: Tensor, inputs: tuple[Tensor, ...], **grad_kwargs: Any
) -> tuple[Tensor, ...]:
    """Gradient of ``selected.sum()`` with respect to each input; zeros where an input
    does not reach the output. ``grad_kwargs`` (see :func:`format_grad_kwargs`) go to
    :func:`torch.autograd.grad`."""
    if not selected.requires_grad:
        return tuple(torch.zeros_like(x) for x in inputs)
    # ``materialize_grads`` is what the zeros below do (torch's option does not apply to
    # the gradient edges through which the engine may run the pass).
    options = {key: value for key, value in grad_kwargs.items() if key != "materialize_grads"}
    try:
        grads = torch.autograd.grad(
            selected,
            inputs,
            grad_outputs=torch.ones_like(selected),
            **{"allow_unused": True, **options},
        )
    except (RuntimeError, NotImplementedError) as error:
        if selected.layout == torch.strided and not selected.is_meta:
            raise
        raise _not_attributable(selected) from error
    # Zeros for inputs the output does not reach (what ``materialize_grads=True`` does,
    # without its two extra passes over the results: a few microseconds per call).
    return tuple(
        torch.zeros_like(x, requires_grad=bool(grad_kwargs.get("create_graph")))
        if grad is None
        else grad
        for grad, x in zip(grads, inputs, strict=True)
    )

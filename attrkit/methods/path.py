"""What the path methods share: points on the straight path from baselines to inputs,
evaluated in row chunks, and summed with a quadrature rule.

A path method evaluates an *integrand* (a gradient, with respect to the inputs, a layer or
the path variable itself) at ``n_steps`` points ``start + alpha_k * (end - start)`` of every
example. The rows of all points (step-major: row ``k * batch + i`` is step ``k`` of
example ``i``) are evaluated in chunks of at most ``internal_batch_size`` rows;
:func:`integrate` weights each row by its step's quadrature weight and sums over the steps
with one ``torch.sum`` per chunk (one in all without ``internal_batch_size``, as Captum
does), :func:`evaluate` returns the rows themselves (for methods that difference
consecutive points, such as layer conductance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from attrkit.core.call import AttributionCall
from attrkit.core.errors import ArgumentValueError
from attrkit.methods.quadrature import quadrature

__all__ = [
    "BaselineType",
    "Integrand",
    "check_internal_batch_size",
    "convergence_delta",
    "evaluate",
    "integrate",
    "scale_rows",
    "sum_per_example",
]

BaselineType = None | int | float | Tensor | tuple[int | float | Tensor, ...]

#: Evaluates the integrand at points: ``(examples, points)`` -> one tensor per output,
#: whose row ``r`` belongs to example ``examples[r]`` at ``points[...][r]``.
Integrand = Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]]


def check_internal_batch_size(value: object) -> int | None:
    """``internal_batch_size``: ``None`` or an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentValueError(
            f"`internal_batch_size` must be None or an int >= 1, got {value!r}"
        )
    return value


def scale_rows(values: Tensor, like: Tensor) -> Tensor:
    """Shape ``(rows,)`` -> ``(rows, 1, 1, ...)`` to scale rows of ``like`` (on its
    device and in its dtype: quadrature points and weights are made on the CPU)."""
    return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def _chunks(n_steps: int, batch: int, chunk: int | None) -> Iterator[tuple[Tensor, Tensor]]:
    """``(steps, examples)`` of each chunk of rows of the step-major layout."""
    total = n_steps * batch
    size = chunk or max(total, 1)
    for first in range(0, total, size):
        rows = torch.arange(first, min(first + size, total))
        yield rows // batch, rows % batch


def _points(
    starts: tuple[Tensor, ...],
    ends: tuple[Tensor, ...],
    alphas: Tensor,
    steps: Tensor,
    examples: Tensor,
) -> tuple[Tensor, ...]:
    """``start + alpha * (end - start)`` for the rows ``(steps, examples)``."""
    return tuple(
        start[examples] + scale_rows(alphas[steps], end) * (end[examples] - start[examples])
        for start, end in zip(starts, ends, strict=True)
    )


def integrate(
    integrand: Integrand,
    starts: tuple[Tensor, ...],
    ends: tuple[Tensor, ...],
    *,
    method: str,
    n_steps: int,
    internal_batch_size: int | None,
) -> tuple[Tensor, ...]:
    """Per example, ``sum_k w_k * integrand(point_k)`` over the ``n_steps`` points of the
    quadrature rule ``method`` (see :func:`~attrkit.methods.quadrature.quadrature`).

    Every chunk's weighted rows are summed over their steps with one ``torch.sum`` (rows
    of a step that the chunk holds only in part count as zeros in the others), and the
    chunks' sums are added in order.
    """
    weights, alphas = (torch.from_numpy(a) for a in quadrature(method, n_steps))
    batch = int(starts[0].shape[0])
    chunk = check_internal_batch_size(internal_batch_size)
    totals: list[Tensor] | None = None
    for steps, examples in _chunks(n_steps, batch, chunk):
        values = integrand(examples, _points(starts, ends, alphas, steps, examples))
        first = int(steps[0])
        span = int(steps[-1]) - first + 1
        sums = [
            _sum_over_steps(v * scale_rows(weights[steps], v), steps - first, examples, span, batch)
            for v in values
        ]
        totals = sums if totals is None else [t + s for t, s in zip(totals, sums, strict=True)]
    if totals is None:  # an empty batch
        return tuple(
            torch.zeros_like(v)
            for v in integrand(torch.zeros(0, dtype=torch.long), tuple(s[:0] for s in starts))
        )
    return tuple(totals)


def _sum_over_steps(
    weighted: Tensor, steps: Tensor, examples: Tensor, span: int, batch: int
) -> Tensor:
    """Sum rows ``(steps, examples)`` of ``weighted`` over the ``span`` steps, per example."""
    if weighted.shape[0] != span * batch:  # a chunk that holds some steps in part
        full = weighted.new_zeros((span * batch, *weighted.shape[1:]))
        full[(steps * batch + examples).to(weighted.device)] = weighted
        weighted = full
    return torch.sum(weighted.reshape(span, batch, *weighted.shape[1:]), dim=0)


def evaluate(
    integrand: Integrand,
    starts: tuple[Tensor, ...],
    ends: tuple[Tensor, ...],
    *,
    alphas: Tensor,
    internal_batch_size: int | None,
) -> tuple[Tensor, ...]:
    """The integrand at every point ``alphas`` (float64, on the CPU) of every example:
    one tensor per output with ``len(alphas) * batch`` rows, step-major."""
    batch = int(starts[0].shape[0])
    chunk = check_internal_batch_size(internal_batch_size)
    parts: list[tuple[Tensor, ...]] = [
        tuple(
            v.detach() for v in integrand(examples, _points(starts, ends, alphas, steps, examples))
        )
        for steps, examples in _chunks(len(alphas), batch, chunk)
    ]
    if not parts:
        empty = integrand(torch.zeros(0, dtype=torch.long), tuple(s[:0] for s in starts))
        return tuple(v.detach() for v in empty)
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def sum_per_example(tensors: tuple[Tensor, ...], batch: int) -> Tensor:
    """The sum of every tensor's entries, per example: shape ``(batch,)``."""
    total: Any = sum(t.reshape(batch, math.prod(t.shape[1:])).sum(dim=1) for t in tensors)
    return total if isinstance(total, Tensor) else torch.zeros(batch)


def convergence_delta(
    forward: Callable[[AttributionCall], Any],
    call: AttributionCall,
    attributions: tuple[Tensor, ...],
    starts: tuple[Tensor, ...],
) -> Tensor:
    """``sum(attributions) - (F(inputs) - F(baselines))`` per example, ``F`` the targeted
    output of ``forward`` (a method's forward pass on a call)."""
    with torch.no_grad():
        end = call.target.select(forward(call), call.batch_size)
        start_call = AttributionCall(
            starts, call.is_tuple, call.target, call.additional_forward_args
        )
        start = call.target.select(forward(start_call), call.batch_size)
    return sum_per_example(attributions, call.batch_size) - (end - start)

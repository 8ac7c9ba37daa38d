"""How two libraries' attributions of one tensor compare.

=====================  =============================================================
``max_abs_difference``  ``max |a - b|``
``relative_l2_error``   ``||a - b|| / max(||a||, ||b||)`` (symmetric; 0 when both are 0)
``cosine_similarity``   ``<a, b> / (||a|| ||b||)`` over the whole tensor (``None`` if a
                        norm is 0)
``spearman``            Spearman rank correlation of ``|a|`` and ``|b|``, per example,
                        averaged over the batch (``None`` with fewer than two values per
                        example or a constant one)
``top_k_overlap``       the share of the ``top_k`` largest ``|a|`` positions that are also
                        among the largest ``|b|``, per example, averaged over the batch
=====================  =============================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["TensorComparison", "average_ranks", "compare_tensors", "spearman", "top_k_overlap"]


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties sharing their average rank (as
    ``scipy.stats.rankdata``).

    Example:
        >>> average_ranks(np.array([10.0, 30.0, 20.0, 20.0])).tolist()
        [1.0, 4.0, 2.5, 2.5]
    """
    order = np.argsort(values, kind="mergesort")
    inverse = np.empty(len(values), dtype=np.intp)
    inverse[order] = np.arange(len(values))
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = np.cumsum(starts)[inverse]
    bounds = np.r_[np.nonzero(starts)[0], len(values)]
    return np.asarray(0.5 * (bounds[dense] + bounds[dense - 1] + 1), dtype=np.float64)


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation of two 1-D arrays (``None`` if either is constant or has
    fewer than two values).

    Example:
        >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
        0.5
    """
    if len(a) < 2:
        return None
    ranks_a, ranks_b = average_ranks(a), average_ranks(b)
    ranks_a -= ranks_a.mean()
    ranks_b -= ranks_b.mean()
    denominator = math.sqrt(float(ranks_a @ ranks_a) * float(ranks_b @ ranks_b))
    if denominator == 0:
        return None
    return float(ranks_a @ ranks_b) / denominator


def top_k_overlap(a: np.ndarray, b: np.ndarray, fraction: float) -> float:
    """The share of the ``ceil(fraction * n)`` largest entries of ``a`` whose positions are
    also among the largest of ``b`` (1-D arrays, compared as given; ties broken by
    position).

    Example:
        >>> top_k_overlap(np.array([4.0, 3.0, 2.0, 1.0]), np.array([4.0, 1.0, 2.0, 3.0]), 0.5)
        0.5
    """
    k = max(1, math.ceil(fraction * len(a)))
    largest_a = np.argsort(-a, kind="stable")[:k]
    largest_b = np.argsort(-b, kind="stable")[:k]
    return len(np.intersect1d(largest_a, largest_b)) / k


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


@dataclass(frozen=True)
class TensorComparison:
    """How two libraries' attributions of one tensor compare (see
    :mod:`~attrkit.validation.comparison.metrics` for each metric). ``shape_mismatch`` is
    set, and the metrics are ``None``, when the two shapes differ."""

    index: int
    shape: tuple[int, ...]
    max_abs_difference: float | None
    relative_l2_error: float | None
    cosine_similarity: float | None
    spearman: float | None
    top_k_overlap: float | None
    shape_mismatch: str = ""


def compare_tensors(a: Tensor, b: Tensor, top_k: float = 0.1, index: int = 0) -> TensorComparison:
    """Every agreement metric of two attribution tensors whose dimension 0 is the batch.

    Example:
        >>> import torch
        >>> a = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
        >>> c = compare_tensors(a, 2 * a)
        >>> c.relative_l2_error, c.cosine_similarity, c.spearman, c.top_k_overlap
        (0.5, 1.0, 1.0, 1.0)
    """
    if a.shape != b.shape:
        return TensorComparison(
            index, tuple(a.shape), None, None, None, None, None,
            shape_mismatch=f"shapes differ: {tuple(a.shape)} and {tuple(b.shape)}",
        )  # fmt: skip
    x = a.detach().to("cpu", torch.float64).numpy()
    y = b.detach().to("cpu", torch.float64).numpy()
    norm_x, norm_y = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    difference = float(np.linalg.norm(x - y))
    largest = max(norm_x, norm_y)
    rows_x = np.abs(x.reshape(x.shape[0], -1)) if x.ndim else np.abs(x.reshape(1, 1))
    rows_y = np.abs(y.reshape(y.shape[0], -1)) if y.ndim else np.abs(y.reshape(1, 1))
    return TensorComparison(
        index=index,
        shape=tuple(a.shape),
        max_abs_difference=float(np.max(np.abs(x - y))) if x.size else 0.0,
        relative_l2_error=difference / largest if largest > 0 else 0.0 if difference == 0 else None,
        cosine_similarity=(
            float(np.vdot(x, y)) / (norm_x * norm_y) if norm_x > 0 and norm_y > 0 else None
        ),
        spearman=_mean([spearman(rx, ry) for rx, ry in zip(rows_x, rows_y, strict=True)]),
        top_k_overlap=_mean(
            [top_k_overlap(rx, ry, top_k) for rx, ry in zip(rows_x, rows_y, strict=True) if rx.size]
        ),
    )

"""Run one attribution method through attrkit, Captum and zennit and report how well they
agree: :func:`compare`.

For every pair of libraries and every attributed tensor the report gives

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

and a verdict against :class:`Tolerances`. For methods that override ReLU's backward
(Deconvolution, Guided Backpropagation and their neuron and Grad-CAM variants) the report
includes :func:`attrkit.audit`'s verdict, which explains where Captum's or zennit's module
hooks depart from the definition.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves

from attrkit.core.attribution import check_callable
from attrkit.core.call import format_additional_forward_args, format_tensors
from attrkit.core.docs import fill_doc
from attrkit.core.random import seeded
from attrkit.core.registry import method_info, resolve_layer, split_method_kwargs, takes_argument
from attrkit.core.targets import parse_target
from attrkit.validation.adapters import ADAPTERS, MethodRequest, Support
from attrkit.validation.auditing import LIBRARIES as AUDITED_LIBRARIES
from attrkit.validation.auditing import AuditReport, audit, relu_rule
from attrkit.validation.tables import markdown_table, text_table

__all__ = [
    "CompareReport",
    "LibraryRun",
    "PairComparison",
    "TensorComparison",
    "Tolerances",
    "average_ranks",
    "compare",
    "compare_tensors",
    "spearman",
    "top_k_overlap",
]

DEFAULT_LIBRARIES = ("attrkit", "captum", "zennit")


@dataclass(frozen=True)
class Tolerances:
    """When two libraries' attributions count as agreeing.

    A pair agrees when, for every attributed tensor, ``relative_l2_error <= rtol`` or
    ``max_abs_difference <= atol``. Where a library draws its random numbers differently
    (zennit's SmoothGrad), only statistical agreement can be expected: such a pair agrees
    when also ``cosine_similarity >= stochastic_cosine``.

    Attributes:
        rtol: Largest relative L2 error that counts as agreement. The default, ``1e-4``,
            is far above float32 rounding and far below any difference of definition.
        atol: Largest absolute difference that counts as agreement whatever the relative
            error (for attributions that are all but zero). Default: 0.
        stochastic_cosine: Smallest cosine similarity for pairs that can agree only
            statistically. Default: 0.9.
    """

    rtol: float = 1e-4
    atol: float = 0.0
    stochastic_cosine: float = 0.9

    def __post_init__(self) -> None:
        for name in ("rtol", "atol", "stochastic_cosine"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`tolerances.{name}` must be a number >= 0, got {value!r}")

    def describe(self, stochastic: bool = False) -> str:
        """The agreement criterion in words (with ``stochastic``, also for pairs that can
        agree only statistically)."""
        text = f"agree when rel. L2 error <= {self.rtol:g}"
        if self.atol:
            text += f" or max |diff| <= {self.atol:g}"
        if stochastic:
            text += f" (statistical pairs: or cosine >= {self.stochastic_cosine:g})"
        return text


# ------------------------------------------------------------------------- metrics
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
    """How two libraries' attributions of one tensor compare (see the module docstring
    for each metric). ``shape_mismatch`` is set, and the metrics are ``None``, when the
    two shapes differ."""

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


# -------------------------------------------------------------------------- report
@dataclass(frozen=True)
class LibraryRun:
    """One library's call.

    Attributes:
        library: ``"attrkit"``, ``"captum"`` or ``"zennit"``.
        status: ``"ok"``, ``"unavailable"`` (not installed, or the library lacks the
            method or cannot take these arguments) or ``"error"`` (it raised).
        seconds: Wall time of the call (``None`` unless it ran).
        reason: Why it is unavailable, or the error (``Type: message``).
        stochastic: Why it can agree with attrkit only statistically, if so.
        deviation: A known difference of definition for this call, if any.
        explanation: For an error, the audit's explanation, if it has one.
        attributions: The attributions (not exported by :meth:`CompareReport.to_dict`).
    """

    library: str
    status: Literal["ok", "unavailable", "error"]
    seconds: float | None = None
    reason: str = ""
    stochastic: str = ""
    deviation: str = ""
    explanation: str = ""
    attributions: tuple[Tensor, ...] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "attributions"}


@dataclass(frozen=True)
class PairComparison:
    """Two libraries compared.

    Attributes:
        first: The first library of the pair.
        second: The second.
        verdict: ``"agree"`` or ``"differ"``.
        stochastic: Whether the pair can agree only statistically (then the verdict uses
            :attr:`Tolerances.stochastic_cosine`).
        tensors: One :class:`TensorComparison` per attributed tensor.
        explanation: For a ``"differ"`` verdict, what explains it (the audit's finding on
            a library's ReLU hooks, a known difference of definition), or that nothing
            known does.
    """

    first: str
    second: str
    verdict: Literal["agree", "differ"]
    stochastic: bool
    tensors: tuple[TensorComparison, ...]
    explanation: str = ""

    @property
    def name(self) -> str:
        return f"{self.first} / {self.second}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "second": self.second,
            "verdict": self.verdict,
            "stochastic": self.stochastic,
            "explanation": self.explanation,
            "tensors": [
                {
                    "index": t.index,
                    "shape": list(t.shape),
                    "max_abs_difference": _finite(t.max_abs_difference),
                    "relative_l2_error": _finite(t.relative_l2_error),
                    "cosine_similarity": _finite(t.cosine_similarity),
                    "spearman": _finite(t.spearman),
                    "top_k_overlap": _finite(t.top_k_overlap),
                    "shape_mismatch": t.shape_mismatch,
                }
                for t in self.tensors
            ],
        }


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become ``None``."""
    return value if value is not None and math.isfinite(value) else None


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


@dataclass(frozen=True)
class CompareReport:
    """The result of :func:`compare`: ``str(report)`` is a readable table;
    :meth:`to_dict`, :meth:`to_json` and :meth:`to_markdown` export it.

    Attributes:
        method: The method's registered name.
        display_name: Its human-readable name.
        model: The model's class name.
        input_shapes: The shapes of the attributed tensors.
        target: The target, as text.
        seed: The seed every library's call started from.
        top_k: The fraction used for the top-k overlap.
        tolerances: The agreement criterion.
        runs: One :class:`LibraryRun` per requested library.
        pairs: One :class:`PairComparison` per pair of libraries that both ran.
        audit: The audit of the model's ReLUs, for methods that override ReLU's backward
            (``None`` otherwise).
        relu_rule: That method's ReLU rule (``"deconvolution"``, ``"guided_backprop"``),
            or ``None``.
    """

    method: str
    display_name: str
    model: str
    input_shapes: tuple[tuple[int, ...], ...]
    target: str
    seed: int
    top_k: float
    tolerances: Tolerances
    runs: tuple[LibraryRun, ...]
    pairs: tuple[PairComparison, ...]
    audit: AuditReport | None = None
    relu_rule: str | None = None

    @property
    def agree(self) -> bool:
        """Whether every pair of libraries that ran agrees."""
        return all(pair.verdict == "agree" for pair in self.pairs)

    @property
    def disagreements(self) -> list[PairComparison]:
        """The pairs that differ."""
        return [pair for pair in self.pairs if pair.verdict == "differ"]

    def run(self, library: str) -> LibraryRun:
        """The run of ``library``."""
        for run in self.runs:
            if run.library == library:
                return run
        raise KeyError(f"{library!r} was not compared; libraries: {[r.library for r in self.runs]}")

    def pair(self, first: str, second: str) -> PairComparison:
        """The comparison of ``first`` and ``second`` (in either order)."""
        for pair in self.pairs:
            if {pair.first, pair.second} == {first, second}:
                return pair
        raise KeyError(f"no comparison of {first!r} and {second!r} (did both run?)")

    @property
    def audit_summary(self) -> str:
        """The audit's one-line verdict for this method's ReLU rule ("" without audit)."""
        return self.audit.summary(self.relu_rule) if self.audit is not None else ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole report (attributions excluded)."""
        return {
            "method": self.method,
            "display_name": self.display_name,
            "model": self.model,
            "input_shapes": [list(s) for s in self.input_shapes],
            "target": self.target,
            "seed": self.seed,
            "top_k": self.top_k,
            "tolerances": asdict(self.tolerances),
            "agree": self.agree,
            "runs": [run.to_dict() for run in self.runs],
            "pairs": [pair.to_dict() for pair in self.pairs],
            "audit_summary": self.audit_summary,
            "audit": self.audit.to_dict() if self.audit is not None else None,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON."""
        return json.dumps(self.to_dict(), indent=indent)

    # ---------------------------------------------------------------- rendering
    def _title(self) -> str:
        shapes = ", ".join(str(s) for s in self.input_shapes)
        return (
            f"{self.method} ({self.display_name}) on {self.model}; inputs {shapes}; "
            f"target {self.target}; seed {self.seed}"
        )

    _RUN_HEADERS = ("library", "status", "time", "note")

    def _run_rows(self) -> list[list[str]]:
        rows = []
        for run in self.runs:
            notes = [run.reason, run.explanation, run.deviation, run.stochastic]
            rows.append(
                [run.library, run.status, _seconds(run.seconds), "; ".join(n for n in notes if n)]
            )
        return rows

    def _pair_headers(self) -> tuple[str, ...]:
        top = f"top-{self.top_k:.0%}"
        return ("pair", "input", "max |diff|", "rel. L2", "cosine", "Spearman", top, "verdict")

    def _pair_rows(self) -> list[list[str]]:
        rows = []
        for pair in self.pairs:
            verdict = pair.verdict + (" (statistical)" if pair.stochastic else "")
            for t in pair.tensors:
                if t.shape_mismatch:
                    rows.append(
                        [pair.name, str(t.index), t.shape_mismatch, "", "", "", "", verdict]
                    )
                    continue
                rows.append(
                    [
                        pair.name,
                        str(t.index),
                        _number(t.max_abs_difference, ".2e"),
                        _number(t.relative_l2_error, ".2e"),
                        _number(t.cosine_similarity, ".4f"),
                        _number(t.spearman, ".4f"),
                        _number(t.top_k_overlap, ".2f"),
                        verdict,
                    ]
                )
        return rows

    def _notes(self) -> list[str]:
        notes = [self.tolerances.describe(any(pair.stochastic for pair in self.pairs))]
        if self.audit is not None:
            notes.append(f"audit: {self.audit_summary}")
        notes += [f"{pair.name} differ: {pair.explanation}" for pair in self.disagreements]
        return notes

    def __str__(self) -> str:
        parts = [
            f"attrkit.compare: {self._title()}",
            "",
            text_table(self._RUN_HEADERS, self._run_rows()),
        ]
        if self.pairs:
            parts += ["", text_table(self._pair_headers(), self._pair_rows())]
        return "\n".join([*parts, "", *self._notes()])

    def to_markdown(self) -> str:
        """The report as Markdown: a title, the runs table, the pairs table, notes."""
        parts = [
            f"## attrkit.compare: {self._title()}",
            "",
            markdown_table(self._RUN_HEADERS, self._run_rows()),
        ]
        if self.pairs:
            parts += ["", markdown_table(self._pair_headers(), self._pair_rows())]
        return "\n".join([*parts, "", *(f"- {note}" for note in self._notes())]) + "\n"


# ------------------------------------------------------------------------- compare
@contextmanager
def _seeded(seed: int, inputs: tuple[Tensor, ...]) -> Iterator[None]:
    """Run with torch's (CPU and the inputs' CUDA devices) and NumPy's global generators
    seeded with ``seed``; restore them afterwards."""
    numpy_state = np.random.get_state()
    with seeded(seed, (x.device for x in inputs)):
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def _audit_cause(report: AuditReport | None, library: str, rule: str | None) -> str:
    """The audit's finding on ``library``'s ReLU hooks, if it has one."""
    if report is None or library not in AUDITED_LIBRARIES:
        return ""
    return "" if report.follows_definition(library, rule) else report.library_summary(library, rule)


def _warm_up(request: MethodRequest, seed: int) -> None:
    """One untimed forward and backward pass of the model, so that the first library's
    time does not include what torch does once per process and shape (lazy imports,
    kernel selection)."""
    leaves = tuple(x.detach().clone().requires_grad_(x.is_floating_point()) for x in request.inputs)
    differentiable = tuple(leaf for leaf in leaves if leaf.requires_grad)
    extra = format_additional_forward_args(request.additional_forward_args)
    with _seeded(seed, request.inputs), torch.enable_grad():
        output = request.model(*(leaf.clone() for leaf in leaves), *extra)
        scores = [t.sum() for t in tree_leaves(output) if isinstance(t, Tensor) and t.requires_grad]
        if scores and differentiable:
            total = torch.stack(scores).sum()
            torch.autograd.grad(
                total, differentiable, grad_outputs=torch.ones_like(total), allow_unused=True
            )


def _pair(
    first: LibraryRun,
    second: LibraryRun,
    tolerances: Tolerances,
    top_k: float,
    explain: dict[str, str],
) -> PairComparison:
    assert first.attributions is not None
    assert second.attributions is not None
    tensors = tuple(
        compare_tensors(a, b, top_k, index)
        for index, (a, b) in enumerate(zip(first.attributions, second.attributions, strict=False))
    )
    stochastic = bool(first.stochastic or second.stochastic)

    def agrees(t: TensorComparison) -> bool:
        if t.shape_mismatch or t.relative_l2_error is None or t.max_abs_difference is None:
            return False
        if t.relative_l2_error <= tolerances.rtol or t.max_abs_difference <= tolerances.atol:
            return True
        cosine = t.cosine_similarity
        return stochastic and cosine is not None and cosine >= tolerances.stochastic_cosine

    same_count = len(first.attributions) == len(second.attributions)
    verdict: Literal["agree", "differ"] = (
        "agree" if same_count and all(agrees(t) for t in tensors) else "differ"
    )
    explanation = ""
    if verdict == "differ":
        causes = [explain[run.library] for run in (first, second) if explain.get(run.library)]
        if not same_count:
            causes.insert(0, "the libraries return different numbers of tensors")
        explanation = (
            "; ".join(causes) or "not explained by the audit or a known difference of definition"
        )
    return PairComparison(first.library, second.library, verdict, stochastic, tensors, explanation)


def _check_libraries(libraries: object) -> tuple[str, ...]:
    if isinstance(libraries, str) or not isinstance(libraries, Sequence):
        raise TypeError(
            "`libraries` must be a sequence of library names such as "
            f"('attrkit', 'captum'), got {type(libraries).__name__}"
        )
    names = tuple(dict.fromkeys(libraries))
    unknown = [name for name in names if name not in ADAPTERS]
    if unknown or not names:
        raise ValueError(
            f"`libraries` must name at least one of {', '.join(ADAPTERS)}; got {list(libraries)!r}"
        )
    return names


def _check_top_k(top_k: object) -> float:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, float)) or not 0 < top_k <= 1:
        raise ValueError(f"`top_k` must be a fraction in (0, 1], got {top_k!r}")
    return float(top_k)


def _request(
    method: str,
    model: Any,
    inputs: Any,
    target: Any,
    additional_forward_args: Any,
    method_kwargs: dict[str, Any],
) -> MethodRequest:
    info = method_info(method)
    check_callable(model, "model")
    # Methods that do not differentiate the inputs (layer methods, perturbation) take
    # any dtype (token ids).
    floating = bool(getattr(info.cls, "differentiates_inputs", False))
    tensors, is_tuple = format_tensors(inputs, "inputs", floating)
    parsed_target = parse_target(target, int(tensors[0].shape[0]))
    init_kwargs, attribute_kwargs = split_method_kwargs(info, method_kwargs)
    if attribute_kwargs.get("return_convergence_delta"):
        raise ValueError("`return_convergence_delta`: compare compares attributions only")
    if target is not None and not takes_argument(info, "target"):
        raise ValueError(f"`target`: {info.name} takes no target (pass its own arguments)")
    return MethodRequest(
        info=info,
        model=model,
        inputs=tensors,
        is_tuple=is_tuple,
        target=target,
        parsed_target=parsed_target,
        additional_forward_args=additional_forward_args,
        init_kwargs=resolve_layer(model, init_kwargs),
        attribute_kwargs=attribute_kwargs,
    )


def _run(library: str, request: MethodRequest, seed: int) -> LibraryRun:
    adapter = ADAPTERS[library]()
    missing = adapter.unavailable()
    if missing:
        return LibraryRun(library, "unavailable", reason=missing)
    support: Support = adapter.supports(request)
    if not support:
        return LibraryRun(library, "unavailable", reason=support.reason)
    start = time.perf_counter()
    try:
        with _seeded(seed, request.inputs):
            attributions = adapter.attribute(request)
    except Exception as error:
        if library == "attrkit":
            raise  # the reference: a failure here is the caller's error
        lines = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {lines[0] if lines else ''}"
        return LibraryRun(library, "error", reason=reason, deviation=support.deviation)
    return LibraryRun(
        library,
        "ok",
        seconds=time.perf_counter() - start,
        stochastic=support.stochastic,
        deviation=support.deviation,
        attributions=attributions,
    )


@fill_doc
def compare(
    method: str,
    model: Any,
    inputs: Any,
    /,
    target: Any = None,
    additional_forward_args: Any = None,
    libraries: Sequence[str] = DEFAULT_LIBRARIES,
    tolerances: Tolerances | None = None,
    top_k: float = 0.1,
    seed: int = 0,
    **method_kwargs: Any,
) -> CompareReport:
    """Run ``method`` through several libraries on the same model, inputs and target, and
    report how well they agree.

    Every library gets copies of the same inputs, and each call starts with torch's and
    NumPy's random generators seeded with ``seed`` (restored afterwards), so that noise
    methods draw the same noise where the libraries draw it the same way. A library that
    is not installed, lacks the method or cannot take these arguments is reported as
    ``"unavailable"`` with the reason; one that raises is reported as ``"error"``. attrkit
    is the reference: if it raises, so does ``compare``. Each call is timed after one
    untimed forward and backward pass of the model (torch's one-time setup), so that the
    times compare the libraries.

    Args:
        method (str): A registered method name (see :func:`attrkit.available_methods`).
        %(model)s
        %(inputs)s
        %(target)s
        %(additional_forward_args)s
        libraries (sequence of str): Which of ``"attrkit"``, ``"captum"`` and
            ``"zennit"`` to run. Default: all three.
        tolerances (Tolerances, optional): The agreement criterion. Default:
            ``Tolerances()`` (relative L2 error at most ``1e-4``).
        top_k (float): The fraction of largest ``|attribution|`` positions the top-k
            overlap compares. Default: 0.1.
        seed (int): The seed every library's call starts from. Default: 0.
        **method_kwargs: The method's constructor arguments (e.g. ``layer``, a module or
            its name; ``base_method`` of ``noise_tunnel``) and ``attribute`` arguments
            (e.g. ``n_steps``), split by name as in :func:`attrkit.attribute`. The first
            three parameters are positional-only, so that Integrated Gradients' own
            ``method`` (e.g. ``method="riemann_right"``) is a method argument.

    Returns:
        CompareReport: runs, pairwise metrics and verdicts, and the audit's explanation.

    Raises:
        KeyError: for an unknown method.
        TypeError, ValueError, IndexError: for bad arguments (the message names them).

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> report = attrkit.compare("guided_backprop", model, torch.randn(5, 3), target=1,
        ...                          libraries=("attrkit", "captum"))
        >>> report.pair("attrkit", "captum").verdict
        'agree'
        >>> report.audit_summary
        'Captum overrides the 1 ReLU as defined; zennit overrides the 1 ReLU as defined.'
    """
    names = _check_libraries(libraries)
    tolerances = Tolerances() if tolerances is None else tolerances
    if not isinstance(tolerances, Tolerances):
        raise TypeError(
            f"`tolerances` must be an attrkit.compare.Tolerances, got {type(tolerances).__name__}"
        )
    top_k = _check_top_k(top_k)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}")
    request = _request(method, model, inputs, target, additional_forward_args, method_kwargs)
    base = request.base_info
    rule = relu_rule((base or request.info).name)
    report_audit = (
        audit(model, inputs, additional_forward_args)
        if rule is not None and isinstance(model, nn.Module)
        else None
    )
    _warm_up(request, seed)
    runs = [_run(name, request, seed) for name in names]

    explain: dict[str, str] = {}
    for run in runs:
        causes = [_audit_cause(report_audit, run.library, rule), run.deviation]
        explain[run.library] = "; ".join(cause for cause in causes if cause)
    runs = [
        replace(run, explanation=explain[run.library] if run.status == "error" else "")
        for run in runs
    ]
    done = [run for run in runs if run.status == "ok"]
    pairs = tuple(
        _pair(first, second, tolerances, top_k, explain)
        for i, first in enumerate(done)
        for second in done[i + 1 :]
    )
    return CompareReport(
        method=request.info.name,
        display_name=request.info.display_name,
        model=type(model).__name__,
        input_shapes=tuple(tuple(x.shape) for x in request.inputs),
        target=request.parsed_target.text,
        seed=seed,
        top_k=top_k,
        tolerances=tolerances,
        runs=tuple(runs),
        pairs=pairs,
        audit=report_audit,
        relu_rule=rule,
    )

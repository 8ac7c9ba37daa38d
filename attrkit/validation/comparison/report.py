"""What :func:`attrkit.compare` reports: each library's run, each pair's metrics and
verdict against :class:`Tolerances`, and the audit's explanation; rendered as text,
Markdown and JSON by :mod:`attrkit.validation.rendering`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from torch import Tensor

from attrkit.validation.auditing import AuditReport
from attrkit.validation.comparison.metrics import TensorComparison
from attrkit.validation.rendering import Notes, Report, Section, Table, Title

__all__ = ["CompareReport", "LibraryRun", "PairComparison", "Tolerances"]


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

    def accept(self, comparison: TensorComparison, stochastic: bool = False) -> bool:
        """Whether the two attributions ``comparison`` describes agree (with
        ``stochastic``, for a pair that can agree only statistically)."""
        t = comparison
        if t.shape_mismatch or t.relative_l2_error is None or t.max_abs_difference is None:
            return False
        if t.relative_l2_error <= self.rtol or t.max_abs_difference <= self.atol:
            return True
        cosine = t.cosine_similarity
        return stochastic and cosine is not None and cosine >= self.stochastic_cosine

    def describe(self, stochastic: bool = False) -> str:
        """The agreement criterion in words (with ``stochastic``, also for pairs that can
        agree only statistically)."""
        text = f"agree when rel. L2 error <= {self.rtol:g}"
        if self.atol:
            text += f" or max |diff| <= {self.atol:g}"
        if stochastic:
            text += f" (statistical pairs: or cosine >= {self.stochastic_cosine:g})"
        return text


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
class CompareReport(Report):
    """The result of :func:`attrkit.compare`: ``str(report)`` is a readable table;
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

    # ---------------------------------------------------------------- rendering
    def _sections(self) -> list[Section]:
        shapes = ", ".join(str(s) for s in self.input_shapes)
        title = (
            f"attrkit.compare: {self.method} ({self.display_name}) on {self.model}; "
            f"inputs {shapes}; target {self.target}; seed {self.seed}"
        )
        sections: list[Section] = [[Title(title)], [self._runs_table()]]
        if self.pairs:
            sections.append([self._pairs_table()])
        return [*sections, [Notes(self._notes())]]

    def _runs_table(self) -> Table:
        rows = []
        for run in self.runs:
            notes = [run.reason, run.explanation, run.deviation, run.stochastic]
            rows.append(
                [run.library, run.status, _seconds(run.seconds), "; ".join(n for n in notes if n)]
            )
        return Table(("library", "status", "time", "note"), rows)

    def _pairs_table(self) -> Table:
        top = f"top-{self.top_k:.0%}"
        headers = ("pair", "input", "max |diff|", "rel. L2", "cosine", "Spearman", top, "verdict")
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
        return Table(headers, rows)

    def _notes(self) -> list[str]:
        notes = [self.tolerances.describe(any(pair.stochastic for pair in self.pairs))]
        if self.audit is not None:
            notes.append(f"audit: {self.audit_summary}")
        notes += [f"{pair.name} differ: {pair.explanation}" for pair in self.disagreements]
        return notes

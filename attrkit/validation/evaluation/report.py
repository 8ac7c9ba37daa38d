"""The result of :func:`attrkit.evaluate`: ``str(report)`` is readable tables;
:meth:`EvaluationReport.to_dict`, :meth:`~EvaluationReport.to_json` and
:meth:`~EvaluationReport.to_markdown` export it (the renderer of
:mod:`attrkit.validation.rendering`); :meth:`~EvaluationReport.figure` draws it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from attrkit.validation.evaluation.explainers import RANDOM
from attrkit.validation.evaluation.faithfulness import (
    CompletenessScores,
    CurveScores,
    ValueScores,
)
from attrkit.validation.evaluation.randomization import RandomizationScores, SimilarityStep
from attrkit.validation.rendering import Heading, Notes, Report, Section, Table, Title

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CrossCheck", "EvaluationReport", "EvaluationResult", "Scores"]

Scores = RandomizationScores | CurveScores | ValueScores | CompletenessScores


@dataclass(frozen=True)
class CrossCheck:
    """The same metric computed by another library (Quantus) on the same inputs, seeds
    and attributions.

    Attributes:
        library: ``"quantus"``.
        status: ``"agree"``, ``"differ"``, ``"unavailable"`` (not installed, or it has no
            such metric or cannot take these arguments) or ``"error"`` (it raised).
        max_abs_difference: The largest difference of the values compared, if any ran.
        compared: What was compared, in words.
        explanation: Why the values differ (a known difference of definition), or why
            the check did not run.
    """

    library: str
    status: Literal["agree", "differ", "unavailable", "error"]
    max_abs_difference: float | None = None
    compared: str = ""
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "library": self.library,
            "status": self.status,
            "max_abs_difference": _finite(self.max_abs_difference),
            "compared": self.compared,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class EvaluationResult:
    """One metric of one method.

    Attributes:
        method: The method's registered name (``"random"`` for the reference).
        display_name: Its human-readable name.
        metric: The metric's name.
        status: ``"ok"``, ``"not_applicable"`` (with the reason) or ``"error"`` (the
            method or the metric raised; the reason is the error).
        reason: Why there are no scores.
        scores: The scores (``None`` unless ``status == "ok"``).
        cross_checks: The same metric in other libraries.
    """

    method: str
    display_name: str
    metric: str
    status: Literal["ok", "not_applicable", "error"]
    reason: str = ""
    scores: Scores | None = None
    cross_checks: tuple[CrossCheck, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"method": self.method, "metric": self.metric,
                                  "status": self.status}  # fmt: skip
        if self.reason:
            values["reason"] = self.reason
        if self.scores is not None:
            values.update(_finite_values(self.scores.to_dict()))
        if self.cross_checks:
            values["cross_checks"] = [check.to_dict() for check in self.cross_checks]
        return values


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become ``None``."""
    return value if value is not None and math.isfinite(value) else None


def _finite_values(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _finite_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_values(v) for v in value]
    return value


def _option(value: Any) -> str:
    """An option's value in a note: a list as its items joined by ``+``."""
    return "+".join(map(str, value)) if isinstance(value, list) else str(value)


def _number(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


#: The faithfulness columns: metric -> (heading, the value shown).
_FAITHFULNESS: dict[str, tuple[str, Callable[[Any], float | None]]] = {
    "deletion": ("deletion AUC (lower better)", lambda s: s.auc),
    "insertion": ("insertion AUC (higher better)", lambda s: s.auc),
    "infidelity": ("infidelity (lower better)", lambda s: s.value),
    "sensitivity": ("sensitivity (lower better)", lambda s: s.value),
    "completeness": ("completeness error (lower better)", lambda s: s.error),
}


@dataclass(frozen=True)
class EvaluationReport(Report):
    """The result of :func:`attrkit.evaluate`.

    Attributes:
        model: The model's class name.
        input_shapes: The shapes of the inputs.
        target: The target: ``None``, an index (a list for several dimensions), or a list
            with one per input.
        seed: The seed every random draw started from.
        methods: The evaluated methods' names, the random reference last.
        metrics: Metric name -> its options.
        results: One :class:`EvaluationResult` per method and metric.
        images: The first example's inputs, for the figure (not exported).
    """

    model: str
    input_shapes: tuple[tuple[int, ...], ...]
    target: Any
    seed: int
    methods: tuple[str, ...]
    metrics: dict[str, dict[str, Any]]
    results: tuple[EvaluationResult, ...]
    images: tuple[Any, ...] = ()

    def result(self, method: str, metric: str) -> EvaluationResult:
        """The result of ``metric`` for ``method``."""
        for result in self.results:
            if result.method == method and result.metric == metric:
                return result
        raise KeyError(f"no result of {metric!r} for {method!r}; methods: {list(self.methods)}")

    def scores(self, method: str, metric: str) -> Any:
        """The scores of ``metric`` for ``method``.

        Raises:
            ValueError: if that result has no scores (with its status and reason).
        """
        result = self.result(method, metric)
        if result.scores is None:
            raise ValueError(f"{metric} of {method}: {result.status}: {result.reason}")
        return result.scores

    @property
    def errors(self) -> list[EvaluationResult]:
        """The results whose method or metric raised."""
        return [result for result in self.results if result.status == "error"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the setup and ``"results"``, one entry per method and metric
        (``{"method": ..., "metric": ..., "status": ..., ...scores}``)."""
        return {
            "model": self.model,
            "input_shapes": [list(shape) for shape in self.input_shapes],
            "target": self.target,
            "seed": self.seed,
            "methods": list(self.methods),
            "metrics": self.metrics,
            "results": [result.to_dict() for result in self.results],
        }

    # ---------------------------------------------------------------- rendering
    def _title(self) -> str:
        shapes = ", ".join(str(s) for s in self.input_shapes)
        target = self.target
        if isinstance(target, list) and len(target) == self.input_shapes[0][0] > 1:
            target = "one per input"
        return f"{self.model}; inputs {shapes}; target {target}; seed {self.seed}"

    def _display(self, method: str) -> str:
        return next(r.display_name for r in self.results if r.method == method)

    def _randomization_tables(self) -> list[tuple[str, Table]]:
        tables = []
        results = [r for r in self.results if r.metric == "model_randomization"]
        for order, title in (
            ("cascade", "cascading randomization, from the top layer down"),
            ("independent", "independent randomization, one layer at a time"),
        ):
            rows, layers = [], None
            for result in results:
                if not isinstance(result.scores, RandomizationScores):
                    rows.append([result.display_name, f"{result.status}: {result.reason}"])
                    continue
                steps: tuple[SimilarityStep, ...] = getattr(result.scores, order)
                if not steps:
                    continue
                layers = [step.layer for step in steps]
                rows.append(
                    [result.display_name]
                    + [
                        "/".join(_number(v, ".2f") for v in (s.spearman_abs, s.spearman, s.ssim))
                        for s in steps
                    ]
                )
            if layers is None:
                continue
            heading = [f"to {layer}" if order == "cascade" else layer for layer in layers]
            width = 1 + len(heading)
            rows = [row + [""] * (width - len(row)) for row in rows]
            tables.append(
                (
                    f"model randomization: {title}; similarity to the trained model's "
                    "attributions (Spearman |a| / Spearman / SSIM, mean over the inputs)",
                    Table(["method", *heading], rows),
                )
            )
        return tables

    def _faithfulness_table(self) -> tuple[str, Table] | None:
        metrics = [m for m in _FAITHFULNESS if m in self.metrics]
        if not metrics:
            return None
        rows = []
        for method in self.methods:
            row = [self._display(method)]
            for metric in metrics:
                result = self.result(method, metric)
                if result.scores is None:
                    row.append("-" if result.status == "not_applicable" else result.status)
                else:
                    row.append(_number(_FAITHFULNESS[metric][1](result.scores), ".4g"))
            rows.append(row)
        headers = ["method", *(_FAITHFULNESS[m][0] for m in metrics)]
        return "faithfulness (mean over the inputs)", Table(headers, rows)

    def _notes(self) -> list[str]:
        notes = []
        for option, values in self.metrics.items():
            if values:
                notes.append(
                    f"{option}: " + ", ".join(f"{k}={_option(v)}" for k, v in values.items())
                )
        if RANDOM in self.methods:
            notes.append(
                "random (reference): standard normal attributions, unrelated to the model: "
                "the chance level of every score"
            )
        for result in self.results:
            if result.status == "error":
                notes.append(f"{result.metric} of {result.method}: error: {result.reason}")
            for check in result.cross_checks:
                text = f"{result.metric} of {result.method} vs {check.library}: {check.status}"
                if check.max_abs_difference is not None:
                    text += f" (max |diff| {check.max_abs_difference:.2e}: {check.compared})"
                if check.explanation:
                    text += f"; {check.explanation}"
                notes.append(text)
        return notes

    def _sections(self) -> list[Section]:
        tables = self._randomization_tables()
        faithfulness = self._faithfulness_table()
        if faithfulness is not None:
            tables.append(faithfulness)
        sections: list[Section] = [[Title(f"attrkit.evaluate: {self._title()}")]]
        sections += [[Heading(title, title), table] for title, table in tables]
        return [*sections, [Notes(self._notes())]]

    def figure(self) -> Figure:
        """The report as a figure (needs matplotlib): the paper's grid of the first
        input's attributions (rows methods, columns progressively randomized models) with
        the similarity per step, and the mean deletion and insertion curves."""
        from attrkit.validation.evaluation.figure import report_figure

        return report_figure(self)

    def with_scores(self, metric: str) -> list[EvaluationResult]:
        """The results of ``metric`` that have scores, in method order."""
        return [r for r in self.results if r.metric == metric and r.scores is not None]

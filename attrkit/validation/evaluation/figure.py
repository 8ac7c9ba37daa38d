"""The figure of an :class:`~attrkit.validation.evaluation.report.EvaluationReport` (needs
matplotlib): Adebayo et al.'s grid (rows methods, columns progressively randomized
models), the similarity at each step, and the deletion and insertion curves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrkit.validation.evaluation.faithfulness import CurveScores
from attrkit.validation.evaluation.randomization import RandomizationScores
from attrkit.viz.figures import _new_figure, visualize_image_attr

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from attrkit.validation.evaluation.report import EvaluationReport

__all__ = ["report_figure"]

CELL = 1.1  # inches per heat map


def _cascades(report: EvaluationReport) -> list[tuple[str, RandomizationScores]]:
    """``(method, scores)`` of every method with cascading randomization scores."""
    return [
        (r.display_name, r.scores)
        for r in report.with_scores("model_randomization")
        if isinstance(r.scores, RandomizationScores) and r.scores.cascade
    ]


def _grid(figure: SubFigure, report: EvaluationReport) -> None:
    """Rows: methods; columns: the input, the attribution on the trained model, then after
    each cascading randomization step. Each map has its own colour scale (absolute
    values), as in the paper."""
    rows = _cascades(report)
    columns = ["original", *(step.layer for step in rows[0][1].cascade)]
    axes = figure.subplots(len(rows), 1 + len(columns), squeeze=False)
    image = report.images[0][0]
    for row, (name, scores) in enumerate(rows):
        visualize_image_attr(image, image, method="original_image", ax=axes[row, 0])
        axes[row, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
        for column, key in enumerate(columns, start=1):
            visualize_image_attr(scores.maps[key][0][0], image, ax=axes[row, column])
    axes[0, 0].set_title("input", fontsize=8)
    for column, key in enumerate(columns, start=1):
        axes[0, column].set_title(key if key == "original" else f"to {key}", fontsize=8)
    figure.suptitle(
        "cascading randomization of the model's layers, from the top down (|attribution|)",
        fontsize=9,
    )


def _similarity_plot(ax: Axes, report: EvaluationReport) -> None:
    for result in report.with_scores("model_randomization"):
        scores = result.scores
        assert isinstance(scores, RandomizationScores)
        if not scores.cascade:
            continue
        labels = ["original", *(step.layer for step in scores.cascade)]
        values = [1.0, *(step.spearman_abs for step in scores.cascade)]
        ax.plot(range(len(labels)), [float("nan") if v is None else v for v in values],
                marker="o", label=result.display_name)  # fmt: skip
        ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=30)
    ax.set_ylabel("Spearman |a| to the original", fontsize=8)
    ax.set_title("similarity after cascading randomization", fontsize=9)
    ax.set_ylim(-0.2, 1.05)
    ax.axhline(0.0, color="grey", linewidth=0.5)


def _curve_plot(ax: Axes, report: EvaluationReport, metric: str) -> None:
    for result in report.with_scores(metric):
        scores = result.scores
        assert isinstance(scores, CurveScores)
        ax.plot(scores.fractions, scores.curve, label=f"{result.display_name} ({scores.auc:.3f})")
    better = "lower" if metric == "deletion" else "higher"
    ax.set_title(f"{metric} (AUC, {better} is better)", fontsize=9)
    ax.set_xlabel("fraction of features " + ("removed" if metric == "deletion" else "inserted"),
                  fontsize=8)  # fmt: skip
    ax.set_ylabel("score", fontsize=8)
    ax.legend(fontsize=6)


def report_figure(report: EvaluationReport) -> Figure:
    """See :meth:`EvaluationReport.figure`."""
    cascades = _cascades(report)
    has_grid = bool(cascades) and bool(report.images) and report.images[0].dim() >= 4
    plots = [m for m in ("model_randomization", "deletion", "insertion")
             if report.with_scores(m)]  # fmt: skip
    if not has_grid and not plots:
        raise ValueError("the report has no model randomization, deletion or insertion scores")
    n_columns = 2 + len(cascades[0][1].cascade) if has_grid else 0
    width = max(3.6 * len(plots), CELL * n_columns + 1.0, 4.0)
    grid_height = CELL * len(cascades) + 0.6 if has_grid else 0.0
    plot_height = 3.2 if plots else 0.0
    figure = _new_figure((width, grid_height + plot_height))
    heights = [h for h in (grid_height, plot_height) if h]
    parts = figure.subfigures(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    if has_grid:
        _grid(parts[0], report)
    if plots:
        axes = parts[-1].subplots(1, len(plots), squeeze=False)[0]
        for ax, metric in zip(axes, plots, strict=True):
            if metric == "model_randomization":
                _similarity_plot(ax, report)
            else:
                _curve_plot(ax, report, metric)
        axes[0].legend(fontsize=6)
    return figure

"""Faithfulness: does the attribution point at what the model's output depends on?

- :class:`Deletion` and :class:`Insertion` (Petsiuk et al., "RISE", BMVC 2018; pixel
  flipping, Samek et al. 2017): the model's score as the most-attributed features are
  replaced by a baseline (deletion: a faithful attribution makes it fall fast, a low area
  under the curve) or restored from it (insertion: rise fast, a high area).
- :class:`Infidelity` and :class:`Sensitivity` (Yeh et al., NeurIPS 2019): Captum's
  :func:`captum.metrics.infidelity` and :func:`captum.metrics.sensitivity_max`.
- :class:`Completeness`: how far the attributions' sum is from the change of the output
  between the baseline and the input, for methods defined to sum to it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import captum.metrics
import numpy as np
import torch
from torch import Tensor

from attrkit.core.call import format_baselines
from attrkit.core.random import seeded
from attrkit.core.targets import parse_target
from attrkit.validation.evaluation.explainers import (
    Explainer,
    MethodExplainer,
    Subject,
    flat_features,
)

__all__ = [
    "Completeness",
    "CompletenessScores",
    "CurveScores",
    "Deletion",
    "Infidelity",
    "Insertion",
    "Sensitivity",
    "ValueScores",
    "perturbation_curve",
    "step_features",
]

BaselineSpec = float | str | Tensor | tuple[float | Tensor, ...]


def _check_number(value: object, name: str, low: float = 0.0, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > low:
        kind = "an int" if integer else "a number"
        raise ValueError(f"`{name}` must be {kind} > {low:g}, got {value!r}")


def step_features(step: float, features: int) -> int:
    """How many features one step of a curve changes: ``step`` itself when it is an int,
    else the fraction ``step`` of ``features``, rounded up.

    Example:
        >>> step_features(0.02, 64), step_features(3, 64)
        (2, 3)
    """
    if isinstance(step, int):
        return step
    return max(1, math.ceil(step * features - 1e-9))


def _baseline_tensors(baseline: BaselineSpec, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The replacement values, one tensor per input broadcastable to it: a number, a
    tensor (or a tuple, one per input), or ``"mean"`` (each example's mean value)."""
    if isinstance(baseline, str):
        if baseline != "mean":
            raise ValueError(f"`baseline` must be a number, a tensor or 'mean', got {baseline!r}")
        return tuple(x.reshape(x.shape[0], -1).mean(dim=1).reshape(-1, *[1] * (x.dim() - 1))
                     for x in inputs)  # fmt: skip
    return format_baselines(baseline, inputs)


def perturbation_curve(
    subject: Subject,
    attributions: tuple[Tensor, ...],
    mode: Literal["deletion", "insertion"],
    baseline: BaselineSpec = 0.0,
    step: float = 0.02,
    probability: bool = True,
    absolute: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's score as features are changed in order of decreasing attribution.

    The features are the values of all input tensors of an example; their order is their
    attribution (``|attribution|`` with ``absolute``), largest first, ties in position
    order. After ``k`` steps the ``min(k * s, n)`` first features are the baseline's
    (deletion) or the input's with every other feature the baseline's (insertion), where
    ``s`` is :func:`step_features`.

    Returns:
        ``(fractions, scores)``: the fraction of features changed at each point, from 0 to
        1, and the score of every example there (``N x points``).
    """
    inputs = subject.inputs
    baselines = tuple(b.expand_as(x) for b, x in zip(_baseline_tensors(baseline, inputs), inputs,
                                                     strict=True))  # fmt: skip
    values = flat_features(attributions).detach().to(inputs[0].device)
    values = values.abs() if absolute else values
    n, features = values.shape
    order = torch.sort(-values, dim=1, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(features, device=order.device).expand(n, -1))
    start, end = flat_features(inputs), flat_features(baselines)
    if mode == "insertion":
        start, end = end, start
    size = step_features(step, features)
    counts = [*range(0, features, size), features]
    scores = []
    for count in counts:
        changed = torch.where(rank < count, end, start)
        pieces = torch.split(changed, [x[0].numel() for x in inputs], dim=1)
        perturbed = tuple(p.reshape(x.shape) for p, x in zip(pieces, inputs, strict=True))
        scores.append(subject.score(perturbed, probability).detach().cpu().double())
    return np.array(counts, dtype=np.float64) / features, torch.stack(scores, dim=1).numpy()


@dataclass(frozen=True)
class CurveScores:
    """A deletion or insertion curve of one method.

    Attributes:
        fractions: The fraction of features changed at each point, 0 to 1.
        scores: The score of every example at each point (``N x points``).
    """

    fractions: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)

    @property
    def curve(self) -> np.ndarray:
        """The mean score over the examples at each point."""
        return np.asarray(self.scores.mean(axis=0))

    @property
    def auc_per_example(self) -> np.ndarray:
        """The area under each example's curve (trapezoidal, over the fraction)."""
        return np.asarray(np.trapezoid(self.scores, self.fractions, axis=1))

    @property
    def auc(self) -> float:
        """The mean area under the curve, in units of the score."""
        return float(self.auc_per_example.mean())

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": self.auc,
            "curve": [
                {"fraction": float(f), "score": float(s)}
                for f, s in zip(self.fractions, self.curve, strict=True)
            ],
        }


@dataclass(frozen=True)
class Deletion:
    """The deletion curve: replace the most-attributed features by the baseline, step by
    step, and follow the model's score. Lower area under the curve is better.

    Attributes:
        baseline: What replaces a feature: a number, a tensor broadcastable to the input
            (or a tuple, one per input tensor), or ``"mean"`` (each example's mean).
            Default: 0.
        step: Features changed per step: an int, or a fraction of all features (rounded
            up). Default: 0.02 (50 steps).
        score: ``"probability"`` (the softmax over an ``N x classes`` output, as in the
            paper) or ``"logit"`` (the targeted output as it is). Default: probability.
        absolute: Order the features by ``|attribution|`` rather than by attribution.
    """

    name: ClassVar[str] = "deletion"
    mode: ClassVar[Literal["deletion", "insertion"]] = "deletion"
    baseline: BaselineSpec = 0.0
    step: float = 0.02
    score: Literal["probability", "logit"] = "probability"
    absolute: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.step, int) and not isinstance(self.step, bool):
            _check_number(self.step, "step", 0, integer=True)
        elif not isinstance(self.step, float) or not 0 < self.step <= 1:
            raise ValueError(
                f"`step` must be an int > 0 (features) or a fraction in (0, 1], got {self.step!r}"
            )
        if self.score not in ("probability", "logit"):
            raise ValueError(f"`score` must be 'probability' or 'logit', got {self.score!r}")
        if isinstance(self.baseline, str) and self.baseline != "mean":
            raise ValueError(
                f"`baseline` must be a number, a tensor or 'mean', got {self.baseline!r}"
            )

    def options(self) -> dict[str, Any]:
        baseline = self.baseline
        described = baseline if isinstance(baseline, (int, float, str)) else "tensor"
        return {"baseline": described, "step": self.step, "score": self.score,
                "absolute": self.absolute}  # fmt: skip

    def not_applicable(self, subject: Subject, explainer: Explainer) -> str:
        return ""

    def steps(self, subject: Subject) -> int:
        return 1

    def compute(
        self,
        subject: Subject,
        explainer: Explainer,
        attributions: tuple[Tensor, ...],
        progress: Any = None,
    ) -> CurveScores:
        fractions, scores = perturbation_curve(
            subject, attributions, self.mode, self.baseline, self.step,
            self.score == "probability", self.absolute,
        )  # fmt: skip
        if progress is not None:
            progress.update(1)
        return CurveScores(fractions, scores)


@dataclass(frozen=True)
class Insertion(Deletion):
    """The insertion curve: start from the baseline and restore the most-attributed
    features first. Higher area under the curve is better (options as :class:`Deletion`;
    pass a blurred copy of the input as ``baseline`` for the paper's blurred canvas)."""

    name: ClassVar[str] = "insertion"
    mode: ClassVar[Literal["deletion", "insertion"]] = "insertion"


@dataclass(frozen=True)
class ValueScores:
    """One value per example (infidelity, sensitivity); exported as their mean."""

    values: np.ndarray = field(repr=False)

    @property
    def value(self) -> float:
        return float(self.values.mean())

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value}


def _gaussian_perturbation(scale: float) -> Any:
    """Captum infidelity's ``perturb_func``: noise ``I ~ N(0, scale^2)`` and ``x - I``."""

    def perturb(inputs: Tensor | tuple[Tensor, ...]) -> Any:
        tensors = inputs if isinstance(inputs, tuple) else (inputs,)
        noise = tuple(torch.randn_like(x) * scale for x in tensors)
        perturbed = tuple(x - n for x, n in zip(tensors, noise, strict=True))
        return (noise, perturbed) if isinstance(inputs, tuple) else (noise[0], perturbed[0])

    return perturb


@dataclass(frozen=True)
class Infidelity:
    """Yeh et al.'s infidelity, :math:`E_I[(I^T \\Phi - (f(x) - f(x - I)))^2]` with
    Gaussian perturbations ``I``, through :func:`captum.metrics.infidelity` (with
    ``normalize=True``: the attributions are first scaled by the factor that minimizes
    it, so that methods of different scales compare). Lower is better.

    Attributes:
        noise_scale: The standard deviation of ``I``. Default: 0.1.
        n_perturb_samples: Perturbations per example. Default: 10.
    """

    name: ClassVar[str] = "infidelity"
    noise_scale: float = 0.1
    n_perturb_samples: int = 10

    def __post_init__(self) -> None:
        _check_number(self.noise_scale, "noise_scale")
        _check_number(self.n_perturb_samples, "n_perturb_samples", 0, integer=True)

    def options(self) -> dict[str, Any]:
        return {"noise_scale": self.noise_scale, "n_perturb_samples": self.n_perturb_samples}

    def not_applicable(self, subject: Subject, explainer: Explainer) -> str:
        return ""

    def steps(self, subject: Subject) -> int:
        return 1

    def compute(
        self,
        subject: Subject,
        explainer: Explainer,
        attributions: tuple[Tensor, ...],
        progress: Any = None,
    ) -> ValueScores:
        with seeded(subject.seed, (x.device for x in subject.inputs)):
            values = captum.metrics.infidelity(
                subject.model,
                _gaussian_perturbation(self.noise_scale),
                subject.as_given(subject.inputs),
                subject.as_given(attributions),
                additional_forward_args=subject.additional_forward_args,
                target=subject.target,
                n_perturb_samples=self.n_perturb_samples,
                normalize=True,
            )
        if progress is not None:
            progress.update(1)
        return ValueScores(values.detach().cpu().double().numpy())


@dataclass(frozen=True)
class Sensitivity:
    """The largest change of the attribution (Frobenius norm of the difference, relative
    to the attribution's norm) over random perturbations of the input in an L-infinity
    ball, through :func:`captum.metrics.sensitivity_max`. Lower is better.

    Attributes:
        perturb_radius: The ball's radius. Default: 0.02 (Captum's).
        n_perturb_samples: Perturbations per example. Default: 10.
    """

    name: ClassVar[str] = "sensitivity"
    perturb_radius: float = 0.02
    n_perturb_samples: int = 10

    def __post_init__(self) -> None:
        _check_number(self.perturb_radius, "perturb_radius")
        _check_number(self.n_perturb_samples, "n_perturb_samples", 0, integer=True)

    def options(self) -> dict[str, Any]:
        return {"perturb_radius": self.perturb_radius,
                "n_perturb_samples": self.n_perturb_samples}  # fmt: skip

    def not_applicable(self, subject: Subject, explainer: Explainer) -> str:
        return ""

    def steps(self, subject: Subject) -> int:
        return 1

    def compute(
        self,
        subject: Subject,
        explainer: Explainer,
        attributions: tuple[Tensor, ...],
        progress: Any = None,
    ) -> ValueScores:
        draws = itertools.count(1000)  # the random reference's draws for the perturbations

        def explain(inputs: tuple[Tensor, ...], **kwargs: Any) -> tuple[Tensor, ...]:
            # Captum passes the inputs as a tuple and expects a tuple back.
            perturbed = _perturbed_subject(subject, inputs, kwargs)
            return explainer.attribute(perturbed, subject.model, next(draws))

        kwargs = {"target": subject.target,
                  "additional_forward_args": subject.additional_forward_args}  # fmt: skip
        with seeded(subject.seed, (x.device for x in subject.inputs)):
            values = captum.metrics.sensitivity_max(
                explain,
                subject.as_given(subject.inputs),
                perturb_radius=self.perturb_radius,
                n_perturb_samples=self.n_perturb_samples,
                **kwargs,
            )
        if progress is not None:
            progress.update(1)
        return ValueScores(values.detach().cpu().double().numpy())


def _perturbed_subject(subject: Subject, inputs: tuple[Tensor, ...], kwargs: Any) -> Subject:
    """The subject with the (expanded) inputs, target and extra arguments Captum's
    sensitivity passes to the explanation function."""
    target = kwargs.get("target")
    return Subject(
        model=subject.model,
        inputs=inputs,
        is_tuple=subject.is_tuple,
        target=target,
        parsed_target=parse_target(target, int(inputs[0].shape[0])),
        additional_forward_args=kwargs.get("additional_forward_args"),
        seed=subject.seed,
    )


@dataclass(frozen=True)
class CompletenessScores:
    """How far each example's attribution sum is from the output's change.

    Attributes:
        errors: ``|sum(attributions) - (f(x) - f(baseline))|`` per example.
        deltas: ``f(x) - f(baseline)`` per example.
    """

    errors: np.ndarray = field(repr=False)
    deltas: np.ndarray = field(repr=False)

    @property
    def error(self) -> float:
        return float(self.errors.mean())

    @property
    def relative_error(self) -> float | None:
        """The mean error over the mean ``|f(x) - f(baseline)|`` (``None`` if that is 0)."""
        scale = float(np.abs(self.deltas).mean())
        return self.error / scale if scale > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.error, "relative_error": self.relative_error}


@dataclass(frozen=True)
class Completeness:
    """Summation to delta (completeness, Sundararajan et al. 2017; DeepLift's
    summation-to-delta): ``sum(attributions) = f(x) - f(baseline)`` for the targeted
    output. Applies to the methods the registry records as having a convergence delta or
    multiplying by the inputs; the baseline is the method's ``baselines`` argument (zeros
    when not given; the mean output over the baselines when they are a distribution, as
    for GradientShap). Lower is better; 0 is exact.
    """

    name: ClassVar[str] = "completeness"

    def options(self) -> dict[str, Any]:
        return {}

    def not_applicable(self, subject: Subject, explainer: Explainer) -> str:
        info = explainer.info
        if info is None:
            return "the random reference has no completeness property"
        if not (info.has_convergence_delta or info.multiplies_by_inputs) or info.layer_output:
            return f"{info.display_name} is not defined to sum to the output's change"
        if not info.takes_target:
            return f"{info.display_name} explains a neuron, not the targeted output"
        return ""

    def steps(self, subject: Subject) -> int:
        return 1

    def compute(
        self,
        subject: Subject,
        explainer: Explainer,
        attributions: tuple[Tensor, ...],
        progress: Any = None,
    ) -> CompletenessScores:
        given = (
            explainer.attribute_kwargs.get("baselines")
            if isinstance(explainer, MethodExplainer)
            else None
        )
        start = subject.score(subject.inputs, probability=False).double()
        reference = _baseline_score(subject, given).double()
        totals = flat_features(attributions).double().sum(dim=1)
        deltas = start - reference
        if progress is not None:
            progress.update(1)
        return CompletenessScores(
            errors=(totals - deltas).abs().cpu().numpy(), deltas=deltas.cpu().numpy()
        )


def _baseline_score(subject: Subject, baselines: Any) -> Tensor:
    """The targeted output at the baseline of every example: at one baseline per example
    (or one for all), or the mean over a distribution of baselines (a tensor whose batch
    is neither 1 nor the inputs')."""
    inputs, n = subject.inputs, subject.batch_size
    entries = baselines if isinstance(baselines, tuple) else (baselines,)
    samples = {
        int(b.shape[0])
        for b, x in zip(entries, inputs, strict=False)
        if isinstance(b, Tensor) and b.dim() == x.dim() and b.shape[0] not in (1, n)
    }
    if not samples:
        points = tuple(b.expand_as(x) for b, x in zip(format_baselines(baselines, inputs), inputs,
                                                      strict=True))  # fmt: skip
        return subject.score(points, probability=False)
    (count,) = samples
    scores = []
    for index in range(count):
        point = tuple(
            (b[index : index + 1] if isinstance(b, Tensor) and b.dim() == x.dim() else
             torch.as_tensor(b, dtype=x.dtype, device=x.device)).expand_as(x)
            for b, x in zip(entries, inputs, strict=True)
        )  # fmt: skip
        scores.append(subject.score(point, probability=False))
    return torch.stack(scores).mean(dim=0)

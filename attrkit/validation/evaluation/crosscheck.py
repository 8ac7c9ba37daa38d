"""The metrics Quantus also has, computed by Quantus on the same inputs, seeds and
attributions, and compared with attrkit's, as :func:`attrkit.compare` compares
attributions.

- ``model_randomization`` with ``quantus.MPRT`` (cascading: ``layer_order="top_down"``;
  independent: ``"independent"``): the mean Spearman correlation per layer, of the absolute
  values (``abs=True``) and of the signed values (``abs=False``). Quantus re-initializes
  every layer with ``reset_parameters`` from torch's generator seeded ``seed + 1``, as
  attrkit does, so both randomize to the same weights. SSIM is not compared: Quantus
  computes it on the flattened map (a 1-D signal) with the data range of the two maps,
  attrkit on the 2-D map scaled to [0, 1], as the paper.
- ``deletion`` with ``quantus.PixelFlipping`` (``features_in_step``: attrkit's step,
  ``perturb_baseline``: the baseline, ``softmax``: ``score == "probability"``): the
  curves. Quantus's curve has no point for the unperturbed input, and its AUC sums over
  step numbers (``np.trapz`` with ``dx=1``); attrkit's integrates over the fraction of
  features, from 0 to 1: only the curves are compared.

Infidelity and sensitivity are computed through ``captum.metrics``; Quantus's versions
draw their perturbations differently, so they are not compared. Quantus has no insertion
curve.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attrkit.core.random import seeded
from attrkit.core.targets import parse_target
from attrkit.validation.evaluation.explainers import Explainer, MethodExplainer, Subject
from attrkit.validation.evaluation.faithfulness import CurveScores, Deletion, step_features
from attrkit.validation.evaluation.randomization import (
    ModelRandomization,
    RandomizationScores,
    randomizable_layers,
)
from attrkit.validation.evaluation.report import CrossCheck, Scores

__all__ = ["LIBRARIES", "TOLERANCE", "cross_checks"]

#: The libraries :func:`attrkit.evaluate` can compute metrics with.
LIBRARIES = ("attrkit", "quantus")

#: Largest difference of two libraries' values that counts as agreement: far above
#: float32 rounding of a score or a correlation, far below any difference of definition.
TOLERANCE = 1e-5

NO_EQUIVALENT = {
    "insertion": "Quantus has no insertion curve",
    "infidelity": "not compared: attrkit computes it with captum.metrics, and Quantus's "
    "Infidelity draws its perturbations differently",
    "sensitivity": "not compared: attrkit computes it with captum.metrics, and Quantus's "
    "MaxSensitivity draws its perturbations differently",
    "completeness": "not compared: Quantus's Completeness checks a different baseline",
}


def quantus_missing() -> str:
    """Why Quantus cannot run here ("" if it can)."""
    if importlib.util.find_spec("quantus") is None:
        return 'Quantus is not installed (pip install "attrkit[quantus]")'
    return ""


def _quantus() -> Any:
    return importlib.import_module("quantus")


@contextmanager
def _quiet_and_seeded(seed: int, devices: Any) -> Iterator[None]:
    """Quantus seeds torch's generator itself and warns on every call: restore torch's
    and NumPy's generators afterwards, and keep its warnings out of the caller's."""
    numpy_state = np.random.get_state()
    with seeded(seed, devices), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def _class_indices(subject: Subject) -> np.ndarray | None:
    """The target as one class index per example, as Quantus needs it (``None`` if it
    is not one)."""
    target = subject.parsed_target
    if target.per_example is not None and target.depth == 1:
        return np.asarray(target.per_example[:, 0].numpy())
    if target.shared is not None and len(target.shared) == 1:
        return np.full(subject.batch_size, target.shared[0])
    return None


def _explain_func(subject: Subject, explainer: Explainer) -> Callable[..., np.ndarray]:
    """A Quantus ``explain_func``: the explainer on the model and the inputs Quantus gives."""

    def explain(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: Any) -> Any:
        x = torch.as_tensor(inputs, dtype=subject.inputs[0].dtype, device=subject.inputs[0].device)
        y = torch.as_tensor(targets, dtype=torch.int64)
        local = replace(
            subject, inputs=(x,), target=y, parsed_target=parse_target(y, int(x.shape[0]))
        )
        (attributions,) = explainer.attribute(local, model)
        return attributions.cpu().numpy()

    return explain


def _randomization(
    subject: Subject, explainer: Explainer, metric: ModelRandomization, scores: Scores
) -> CrossCheck:
    quantus = _quantus()
    assert isinstance(scores, RandomizationScores)
    y = _class_indices(subject)
    assert y is not None
    x = subject.inputs[0].cpu().numpy()
    differences: list[float] = []
    compared = []
    for order, steps, layer_order in (
        ("cascade", scores.cascade, "top_down"),
        ("independent", scores.independent, "independent"),
    ):
        if not steps:
            continue
        for absolute, field in ((True, "spearman_abs"), (False, "spearman")):
            test = quantus.MPRT(layer_order=layer_order, seed=subject.seed, abs=absolute,
                                disable_warnings=True, display_progressbar=False)  # fmt: skip
            with _quiet_and_seeded(subject.seed, (t.device for t in subject.inputs)):
                theirs = test(
                    model=copy.deepcopy(subject.model), x_batch=x, y_batch=y, a_batch=None,
                    channel_first=True, explain_func=_explain_func(subject, explainer),
                    batch_size=len(x), device=str(subject.inputs[0].device),
                )  # fmt: skip
            for step in steps:
                ours = getattr(step, field)
                if step.layer in theirs and ours is not None:
                    differences.append(abs(float(np.nanmean(theirs[step.layer])) - ours))
            compared.append(f"{order} {field}")
    return _verdict(
        differences,
        "mean Spearman per layer (" + ", ".join(compared) + ")",
        _layer_difference(subject.model),
    )


def _layer_difference(model: nn.Module) -> str:
    """Modules Quantus randomizes that attrkit does not (a ``reset_parameters`` without
    parameters of their own)."""
    ours = {name for name, _ in randomizable_layers(model)}
    extra = [name for name, module in model.named_modules()
             if hasattr(module, "reset_parameters") and name not in ours]  # fmt: skip
    if not extra:
        return ""
    return f"Quantus also counts {', '.join(extra)} as layers (reset_parameters, no parameters)"


def _deletion(
    subject: Subject,
    explainer: Explainer,
    metric: Deletion,
    attributions: tuple[Tensor, ...],
    scores: Scores,
) -> CrossCheck:
    quantus = _quantus()
    assert isinstance(scores, CurveScores)
    assert isinstance(metric.baseline, (int, float))
    y = _class_indices(subject)
    assert y is not None
    x = subject.inputs[0].cpu().numpy()
    a = attributions[0].cpu().numpy()
    features = x[0].size
    step = step_features(metric.step, features)
    flipping = quantus.PixelFlipping(
        features_in_step=step, abs=metric.absolute, perturb_baseline=float(metric.baseline),
        disable_warnings=True, display_progressbar=False,
    )  # fmt: skip
    with _quiet_and_seeded(subject.seed, (t.device for t in subject.inputs)):
        theirs = flipping(
            model=copy.deepcopy(subject.model), x_batch=x, y_batch=y, a_batch=a,
            channel_first=True, softmax=metric.score == "probability", batch_size=len(x),
            device=str(subject.inputs[0].device),
        )  # fmt: skip
    curves = np.asarray(theirs, dtype=np.float64)
    ours = scores.scores[:, 1:]
    if curves.shape != ours.shape:
        return CrossCheck(
            "quantus", "differ", compared="the curves",
            explanation=f"Quantus's curves have shape {curves.shape}, attrkit's {ours.shape}",
        )  # fmt: skip
    values = np.abs(a.reshape(len(a), -1)) if metric.absolute else a.reshape(len(a), -1)
    ties = any(len(np.unique(row)) < row.size for row in values)
    cause = (
        "the attributions have ties, which Quantus orders by NumPy's unstable sort and "
        "attrkit by position"
        if ties
        else ""
    )
    check = _verdict(
        [float(np.max(np.abs(curves - ours)))],
        "the curve of every input (Quantus's starts after the first step)",
        cause,
    )
    auc = (
        "Quantus's AUC sums the curve over step numbers without the unperturbed point; "
        "attrkit's integrates over the fraction of features from 0 to 1, so only the "
        "curves are compared"
    )
    return replace(check, explanation="; ".join(t for t in (check.explanation, auc) if t))


def _verdict(differences: list[float], compared: str, cause: str) -> CrossCheck:
    if not differences:
        return CrossCheck("quantus", "unavailable", explanation="nothing to compare")
    largest = max(differences)
    if largest <= TOLERANCE:
        return CrossCheck("quantus", "agree", largest, compared)
    return CrossCheck(
        "quantus", "differ", largest, compared,
        cause or "not explained by a known difference of definition",
    )  # fmt: skip


def _unavailable(reason: str) -> tuple[CrossCheck, ...]:
    return (CrossCheck("quantus", "unavailable", explanation=reason),)


def cross_checks(
    libraries: tuple[str, ...],
    metric: Any,
    subject: Subject,
    explainer: Explainer,
    attributions: tuple[Tensor, ...],
    scores: Scores,
) -> tuple[CrossCheck, ...]:
    """The checks of ``metric``'s ``scores`` for ``explainer`` by the other
    ``libraries`` (none unless ``"quantus"`` is one; none for the random reference)."""
    if "quantus" not in libraries or not isinstance(explainer, MethodExplainer):
        return ()
    if metric.name in NO_EQUIVALENT:
        return _unavailable(NO_EQUIVALENT[metric.name])
    reason = quantus_missing()
    if not reason and len(subject.inputs) != 1:
        reason = "Quantus takes one input tensor"
    if not reason and _class_indices(subject) is None:
        reason = "Quantus needs one class index per input as the target"
    if not reason and subject.additional_forward_args is not None:
        reason = "Quantus passes no additional forward arguments to the model"
    if not reason and isinstance(metric, Deletion):
        features = subject.inputs[0][0].numel()
        spatial = int(np.prod(subject.inputs[0].shape[2:]))
        step = step_features(metric.step, features)
        if not isinstance(metric.baseline, (int, float)):
            reason = (
                "Quantus's baselines are computed on the partly perturbed input; only a "
                "number compares"
            )
        elif features % step or spatial % step:
            reason = f"Quantus needs a step ({step} features) that divides the input's size"
    if reason:
        return _unavailable(reason)
    try:
        if isinstance(metric, ModelRandomization):
            return (_randomization(subject, explainer, metric, scores),)
        return (_deletion(subject, explainer, metric, attributions, scores),)
    except Exception as error:
        lines = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {lines[0] if lines else ''}"
        return (CrossCheck("quantus", "error", explanation=text),)

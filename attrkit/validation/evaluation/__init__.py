"""Evaluating attributions: :func:`evaluate` runs sanity checks (the model parameter
randomization test, :mod:`~attrkit.validation.evaluation.randomization`) and faithfulness
metrics (deletion, insertion, infidelity, sensitivity, completeness,
:mod:`~attrkit.validation.evaluation.faithfulness`) on attribution methods, with a
random-attribution reference, and reports them
(:mod:`~attrkit.validation.evaluation.report`); where Quantus is installed it computes the
metrics Quantus also has with Quantus and says whether they agree
(:mod:`~attrkit.validation.evaluation.crosscheck`)."""

from attrkit.validation.evaluation.explainers import (
    RANDOM,
    Explainer,
    MethodExplainer,
    RandomReference,
    Subject,
)
from attrkit.validation.evaluation.faithfulness import (
    Completeness,
    CompletenessScores,
    CurveScores,
    Deletion,
    Infidelity,
    Insertion,
    Sensitivity,
    ValueScores,
    perturbation_curve,
)
from attrkit.validation.evaluation.randomization import (
    ModelRandomization,
    RandomizationScores,
    SimilarityStep,
    randomizable_layers,
    randomized_models,
)
from attrkit.validation.evaluation.report import CrossCheck, EvaluationReport, EvaluationResult
from attrkit.validation.evaluation.run import DEFAULT_METHODS, METRICS, evaluate
from attrkit.validation.evaluation.similarity import MapSimilarity, map_similarity, ssim

__all__ = [
    "DEFAULT_METHODS",
    "METRICS",
    "RANDOM",
    "Completeness",
    "CompletenessScores",
    "CrossCheck",
    "CurveScores",
    "Deletion",
    "EvaluationReport",
    "EvaluationResult",
    "Explainer",
    "Infidelity",
    "Insertion",
    "MapSimilarity",
    "MethodExplainer",
    "ModelRandomization",
    "RandomReference",
    "RandomizationScores",
    "Sensitivity",
    "SimilarityStep",
    "Subject",
    "ValueScores",
    "evaluate",
    "map_similarity",
    "perturbation_curve",
    "randomizable_layers",
    "randomized_models",
    "ssim",
]

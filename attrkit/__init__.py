"""attrkit: gradient attribution for PyTorch that speaks Captum's language and follows
each method's definition exactly."""

from attrkit import methods
from attrkit.core.attribution import GradientAttribution
from attrkit.core.registry import (
    MethodInfo,
    UnknownMethodError,
    attribute,
    available_methods,
    create,
    method_info,
    register,
)
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.dataset import AttributionSet, attribute_dataset, load_attributions
from attrkit.engine.reach import UnsupportedModelError
from attrkit.methods import *  # noqa: F403  (every method; listed in methods.__all__)
from attrkit.validation import (
    AuditReport,
    CompareReport,
    Completeness,
    Deletion,
    EvaluationReport,
    Infidelity,
    Insertion,
    ModelRandomization,
    Sensitivity,
    Tolerances,
    audit,
    compare,
    evaluate,
)

__version__ = "0.1.0"

__all__ = [
    "AttributionSet",
    "AuditReport",
    "CompareReport",
    "Completeness",
    "Deletion",
    "EvaluationReport",
    "GradientAttribution",
    "Infidelity",
    "Insertion",
    "MethodInfo",
    "ModelRandomization",
    "Sensitivity",
    "TargetType",
    "TensorOrTupleOfTensorsGeneric",
    "Tolerances",
    "UnknownMethodError",
    "UnsupportedModelError",
    "__version__",
    "attribute",
    "attribute_dataset",
    "audit",
    "available_methods",
    "compare",
    "create",
    "evaluate",
    "load_attributions",
    "method_info",
    "register",
    *methods.__all__,
]

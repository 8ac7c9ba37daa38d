"""Cross-library validation: :func:`compare` runs one method through attrkit, Captum and
zennit and explains their differences; :func:`audit` lists every ruled op application of a
model and which library's hooks reach it; :func:`evaluate` runs sanity checks and
faithfulness metrics on attribution methods (:mod:`~attrkit.validation.evaluation`). The
library adapters live in
:mod:`~attrkit.validation.adapters`, the forward trace in :mod:`~attrkit.validation.trace`."""

from attrkit.validation.adapters import (
    ADAPTERS,
    Adapter,
    AttrkitAdapter,
    CaptumAdapter,
    MethodRequest,
    Support,
    ZennitAdapter,
)
from attrkit.validation.auditing import (
    ActivationFinding,
    AuditReport,
    LibraryVerdict,
    ReluFinding,
    audit,
    group_paths,
    relu_rule,
)
from attrkit.validation.comparison import (
    CompareReport,
    LibraryRun,
    PairComparison,
    TensorComparison,
    Tolerances,
    compare,
    compare_tensors,
    spearman,
    top_k_overlap,
)
from attrkit.validation.evaluation import (
    Completeness,
    Deletion,
    EvaluationReport,
    Infidelity,
    Insertion,
    ModelRandomization,
    Sensitivity,
    evaluate,
)

__all__ = [
    "ADAPTERS",
    "ActivationFinding",
    "Adapter",
    "AttrkitAdapter",
    "AuditReport",
    "CaptumAdapter",
    "CompareReport",
    "Completeness",
    "Deletion",
    "EvaluationReport",
    "Infidelity",
    "Insertion",
    "LibraryRun",
    "LibraryVerdict",
    "MethodRequest",
    "ModelRandomization",
    "PairComparison",
    "ReluFinding",
    "Sensitivity",
    "Support",
    "TensorComparison",
    "Tolerances",
    "ZennitAdapter",
    "audit",
    "compare",
    "compare_tensors",
    "evaluate",
    "group_paths",
    "relu_rule",
    "spearman",
    "top_k_overlap",
]

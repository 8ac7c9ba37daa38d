"""Cross-library validation: :func:`compare` runs one method through attrkit, Captum and
zennit and explains their differences; :func:`audit` lists every ruled op application of a
model and which library's hooks reach it; :func:`evaluate` runs sanity checks and
faithfulness metrics on attribution methods.

The parts: :mod:`~attrkit.validation.comparison` (compare's metrics, report and run),
:mod:`~attrkit.validation.auditing` (the audit), :mod:`~attrkit.validation.adapters` (one
adapter per library), :mod:`~attrkit.validation.trace` (the forward trace the audit reads)
and :mod:`~attrkit.validation.rendering` (the renderer the reports share);
:mod:`~attrkit.validation.evaluation` (evaluate's metrics, report and run); the audits of
LRP's and DeepLift's ops (:mod:`~attrkit.validation.lrp_audit`,
:mod:`~attrkit.validation.nonlinearity_audit`)."""

from attrkit.validation.adapters import (
    ADAPTERS,
    ZENNIT_METHODS,
    Adapter,
    AttrkitAdapter,
    CaptumAdapter,
    MethodRequest,
    Support,
    ZennitAdapter,
    ZennitMethod,
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
    average_ranks,
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
from attrkit.validation.lrp_audit import LayerFinding, LrpAuditReport, audit_lrp
from attrkit.validation.nonlinearity_audit import (
    DeepLiftAuditReport,
    NonlinearityFinding,
    audit_deeplift,
)
from attrkit.validation.rendering import Report, markdown_table, text_table

__all__ = [
    "ADAPTERS",
    "ZENNIT_METHODS",
    "ActivationFinding",
    "Adapter",
    "AttrkitAdapter",
    "AuditReport",
    "CaptumAdapter",
    "CompareReport",
    "Completeness",
    "DeepLiftAuditReport",
    "Deletion",
    "EvaluationReport",
    "Infidelity",
    "Insertion",
    "LayerFinding",
    "LibraryRun",
    "LibraryVerdict",
    "LrpAuditReport",
    "MethodRequest",
    "ModelRandomization",
    "NonlinearityFinding",
    "PairComparison",
    "ReluFinding",
    "Report",
    "Sensitivity",
    "Support",
    "TensorComparison",
    "Tolerances",
    "ZennitAdapter",
    "ZennitMethod",
    "audit",
    "audit_deeplift",
    "audit_lrp",
    "average_ranks",
    "compare",
    "compare_tensors",
    "evaluate",
    "group_paths",
    "markdown_table",
    "relu_rule",
    "spearman",
    "text_table",
    "top_k_overlap",
]

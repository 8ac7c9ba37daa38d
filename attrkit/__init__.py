"""attrkit: gradient attribution for PyTorch that speaks Captum's language and follows
each method's definition exactly."""

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
from attrkit.methods import (
    Deconvolution,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    ModifiedReluGradientAttribution,
    NeuronDeconvolution,
    NeuronGuidedBackprop,
    NoiseTunnel,
    NoReluWarning,
    Saliency,
)
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
    "Deconvolution",
    "Deletion",
    "EvaluationReport",
    "GradientAttribution",
    "GuidedBackprop",
    "GuidedGradCam",
    "Infidelity",
    "InputXGradient",
    "Insertion",
    "IntegratedGradients",
    "LayerGradCam",
    "MethodInfo",
    "ModelRandomization",
    "ModifiedReluGradientAttribution",
    "NeuronDeconvolution",
    "NeuronGuidedBackprop",
    "NoReluWarning",
    "NoiseTunnel",
    "Saliency",
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
]

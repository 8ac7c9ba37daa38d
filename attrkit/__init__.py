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
    DeepLift,
    DeepLiftShap,
    GradientShap,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerDeepLift,
    LayerDeepLiftShap,
    LayerGradCam,
    LayerGradientShap,
    ModifiedReluGradientAttribution,
    NeuronDeconvolution,
    NeuronDeepLift,
    NeuronDeepLiftShap,
    NeuronGradientShap,
    NeuronGuidedBackprop,
    NoiseTunnel,
    NoReluWarning,
    Saliency,
)
from attrkit.validation import AuditReport, CompareReport, Tolerances, audit, compare

__version__ = "0.1.0"

__all__ = [
    "AttributionSet",
    "AuditReport",
    "CompareReport",
    "Deconvolution",
    "DeepLift",
    "DeepLiftShap",
    "GradientAttribution",
    "GradientShap",
    "GuidedBackprop",
    "GuidedGradCam",
    "InputXGradient",
    "IntegratedGradients",
    "LayerDeepLift",
    "LayerDeepLiftShap",
    "LayerGradCam",
    "LayerGradientShap",
    "MethodInfo",
    "ModifiedReluGradientAttribution",
    "NeuronDeconvolution",
    "NeuronDeepLift",
    "NeuronDeepLiftShap",
    "NeuronGradientShap",
    "NeuronGuidedBackprop",
    "NoReluWarning",
    "NoiseTunnel",
    "Saliency",
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
    "load_attributions",
    "method_info",
    "register",
]

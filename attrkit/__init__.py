"""attrkit: gradient attribution for PyTorch that speaks Captum's language and follows
each method's definition exactly."""

from attrkit._typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.attribution import GradientAttribution
from attrkit.audit import AuditReport, audit
from attrkit.compare import CompareReport, Tolerances, compare
from attrkit.dataset import AttributionSet, attribute_dataset, load_attributions
from attrkit.grad_cam import GuidedGradCam, LayerGradCam
from attrkit.gradient import InputXGradient, Saliency
from attrkit.integrated_gradients import IntegratedGradients
from attrkit.modified_relu import (
    Deconvolution,
    GuidedBackprop,
    ModifiedReluGradientAttribution,
    NoReluWarning,
)
from attrkit.neuron import NeuronDeconvolution, NeuronGuidedBackprop
from attrkit.noise_tunnel import NoiseTunnel
from attrkit.registry import (
    MethodInfo,
    UnknownMethodError,
    attribute,
    available_methods,
    create,
    method_info,
    register,
)
from attrkit.relu_override import UnsupportedModelError

__version__ = "0.1.0"

__all__ = [
    "AttributionSet",
    "AuditReport",
    "CompareReport",
    "Deconvolution",
    "GradientAttribution",
    "GuidedBackprop",
    "GuidedGradCam",
    "InputXGradient",
    "IntegratedGradients",
    "LayerGradCam",
    "MethodInfo",
    "ModifiedReluGradientAttribution",
    "NeuronDeconvolution",
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

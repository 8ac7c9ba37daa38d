"""attrkit: gradient attribution for PyTorch that speaks Captum's language and follows
each method's definition exactly."""

from attrkit._typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.attribution import GradientAttribution
from attrkit.gradient import InputXGradient, Saliency
from attrkit.integrated_gradients import IntegratedGradients
from attrkit.modified_relu import (
    Deconvolution,
    GuidedBackprop,
    ModifiedReluGradientAttribution,
    NoReluWarning,
)
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
    "Deconvolution",
    "GradientAttribution",
    "GuidedBackprop",
    "InputXGradient",
    "IntegratedGradients",
    "MethodInfo",
    "ModifiedReluGradientAttribution",
    "NoReluWarning",
    "NoiseTunnel",
    "Saliency",
    "TargetType",
    "TensorOrTupleOfTensorsGeneric",
    "UnknownMethodError",
    "UnsupportedModelError",
    "__version__",
    "attribute",
    "available_methods",
    "create",
    "method_info",
    "register",
]

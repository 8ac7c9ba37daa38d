"""The attribution methods, one module per family; importing this package registers them."""

from attrkit.methods.deeplift import (
    DeepLift,
    DeepLiftShap,
    LayerDeepLift,
    LayerDeepLiftShap,
    NeuronDeepLift,
    NeuronDeepLiftShap,
)
from attrkit.methods.grad_cam import GuidedGradCam, LayerGradCam
from attrkit.methods.gradient import InputXGradient, Saliency
from attrkit.methods.gradient_shap import GradientShap, LayerGradientShap, NeuronGradientShap
from attrkit.methods.integrated_gradients import IntegratedGradients
from attrkit.methods.lrp import LRP, LayerLRP
from attrkit.methods.modified_relu import (
    Deconvolution,
    GuidedBackprop,
    ModifiedReluGradientAttribution,
    NoReluWarning,
)
from attrkit.methods.neuron import NeuronDeconvolution, NeuronGuidedBackprop
from attrkit.methods.noise_tunnel import NoiseTunnel

__all__ = [
    "LRP",
    "Deconvolution",
    "DeepLift",
    "DeepLiftShap",
    "GradientShap",
    "GuidedBackprop",
    "GuidedGradCam",
    "InputXGradient",
    "IntegratedGradients",
    "LayerDeepLift",
    "LayerDeepLiftShap",
    "LayerGradCam",
    "LayerGradientShap",
    "LayerLRP",
    "ModifiedReluGradientAttribution",
    "NeuronDeconvolution",
    "NeuronDeepLift",
    "NeuronDeepLiftShap",
    "NeuronGradientShap",
    "NeuronGuidedBackprop",
    "NoReluWarning",
    "NoiseTunnel",
    "Saliency",
]

"""The attribution methods, one module per family; importing this package registers them."""

from attrkit.methods.deeplift import (
    DeepLift,
    DeepLiftShap,
    LayerDeepLift,
    LayerDeepLiftShap,
    NeuronDeepLift,
    NeuronDeepLiftShap,
)
from attrkit.methods.grad_cam import GradCamResizeWarning, GuidedGradCam, LayerGradCam
from attrkit.methods.gradient import InputXGradient, Saliency
from attrkit.methods.gradient_shap import GradientShap, LayerGradientShap, NeuronGradientShap
from attrkit.methods.integrated_gradients import IntegratedGradients
from attrkit.methods.layer import (
    InternalInfluence,
    LayerActivation,
    LayerConductance,
    LayerGradientXActivation,
    LayerIntegratedGradients,
)
from attrkit.methods.lrp import LRP, LayerLRP
from attrkit.methods.modified_relu import (
    Deconvolution,
    GuidedBackprop,
    ModifiedReluGradientAttribution,
    NoReluWarning,
)
from attrkit.methods.neuron import (
    NeuronConductance,
    NeuronDeconvolution,
    NeuronGradient,
    NeuronGuidedBackprop,
    NeuronIntegratedGradients,
)
from attrkit.methods.noise_tunnel import NoiseTunnel
from attrkit.methods.perturbation import (
    DataLoaderAttribution,
    FeatureAblation,
    FeaturePermutation,
    KernelShap,
    LayerFeatureAblation,
    LayerFeaturePermutation,
    Lime,
    LimeBase,
    NeuronFeatureAblation,
    Occlusion,
    ShapleyValues,
    ShapleyValueSampling,
)

__all__ = [
    "LRP",
    "DataLoaderAttribution",
    "Deconvolution",
    "DeepLift",
    "DeepLiftShap",
    "FeatureAblation",
    "FeaturePermutation",
    "GradCamResizeWarning",
    "GradientShap",
    "GuidedBackprop",
    "GuidedGradCam",
    "InputXGradient",
    "IntegratedGradients",
    "InternalInfluence",
    "KernelShap",
    "LayerActivation",
    "LayerConductance",
    "LayerDeepLift",
    "LayerDeepLiftShap",
    "LayerFeatureAblation",
    "LayerFeaturePermutation",
    "LayerGradCam",
    "LayerGradientShap",
    "LayerGradientXActivation",
    "LayerIntegratedGradients",
    "LayerLRP",
    "Lime",
    "LimeBase",
    "ModifiedReluGradientAttribution",
    "NeuronConductance",
    "NeuronDeconvolution",
    "NeuronDeepLift",
    "NeuronDeepLiftShap",
    "NeuronFeatureAblation",
    "NeuronGradient",
    "NeuronGradientShap",
    "NeuronGuidedBackprop",
    "NeuronIntegratedGradients",
    "NoReluWarning",
    "NoiseTunnel",
    "Occlusion",
    "Saliency",
    "ShapleyValueSampling",
    "ShapleyValues",
]

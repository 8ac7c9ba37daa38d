"""Captum: the ``captum.attr`` class of the same definition (``MethodInfo.captum_name``)."""

from __future__ import annotations

import warnings
from typing import Any

from torch import Tensor

from attrkit.core.registry import MethodInfo
from attrkit.validation.adapters.base import Adapter, MethodRequest, Support, as_tuple

__all__ = ["CaptumAdapter"]


def _has_captum_lrp_rule(layer: object) -> bool:
    """Whether Captum's LRP gives ``layer`` (a module or a list) a rule it can read."""
    from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES

    layers = layer if isinstance(layer, list) else [layer]
    return all(type(m) in SUPPORTED_LAYERS_WITH_RULES or hasattr(m, "rule") for m in layers)


class CaptumAdapter(Adapter):
    """The ``captum.attr`` class named by the method's :attr:`~attrkit.MethodInfo.captum_name`,
    built and called with the same arguments; ``noise_tunnel`` wraps the Captum class of
    ``base_method``.

    Known differences of definition (reported with a disagreement): everything the audit
    finds about ReLU hooks, and Integrated Gradients' ``riemann_trapezoid``, whose Captum
    weights sum to ``(n - 1) / n``. ``NoiseTunnel`` draws the same noise as attrkit's from
    the same seed, except baselines drawn with ``draw_baseline_from_distrib`` (Captum
    uses NumPy's generator).
    """

    name = "captum"
    module = "captum.attr"

    @staticmethod
    def _class(info: MethodInfo) -> Any:
        import captum.attr

        return getattr(captum.attr, info.captum_name, None) if info.captum_name else None

    def supports(self, request: MethodRequest) -> Support:
        for info in (request.info, request.base_info):
            if info is not None and self._class(info) is None:
                return Support.no(f"captum.attr has no {info.captum_name or info.cls.__name__}")
        if request.init_kwargs.get("composite") is not None:
            return Support.no("Captum's LRP has no zennit composites (it applies its own rules)")
        layer = request.init_kwargs.get("layer")
        if request.info.name == "layer_lrp" and not _has_captum_lrp_rule(layer):
            return Support.no(
                f"Captum's LayerLRP needs a layer it has a rule for; a {type(layer).__name__} "
                "has none (attrkit's LayerLRP gives the relevance of any layer)"
            )
        stochastic = deviation = ""
        if request.base_info is not None and request.option("draw_baseline_from_distrib"):
            stochastic = "Captum draws the baselines with NumPy's generator, attrkit with torch's"
        is_ig = request.info.name == "integrated_gradients"
        if is_ig and request.option("method") == "riemann_trapezoid":
            deviation = (
                "Captum's riemann_trapezoid weights sum to (n_steps - 1) / n_steps, "
                "attrkit's trapezoid rule to 1"
            )
        return Support(True, stochastic=stochastic, deviation=deviation)

    def attribute(self, request: MethodRequest) -> tuple[Tensor, ...]:
        init_kwargs = dict(request.init_kwargs)
        base = request.base_info
        with warnings.catch_warnings():  # Captum warns on every call
            warnings.simplefilter("ignore")
            if base is not None:
                init_kwargs.pop("base_method", None)
                wrapped = self._class(base)(request.model, **init_kwargs)
                explainer = self._class(request.info)(wrapped)
            else:
                explainer = self._class(request.info)(request.model, **init_kwargs)
            result = explainer.attribute(
                request.fresh_inputs(),
                **request.common_kwargs(),
                **request.attribute_kwargs,
            )
        return as_tuple(result)

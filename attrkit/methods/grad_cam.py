"""Grad-CAM on a layer, and Guided Grad-CAM (Grad-CAM upsampled, times guided backprop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution as _CaptumLayerAttribution
from torch import Tensor, nn

from attrkit.core.attribution import GradientAttribution, captum_entry_point, check_callable
from attrkit.core.call import AttributionCall, Result, format_grad_kwargs
from attrkit.core.docs import fill_doc
from attrkit.core.layers import check_layer
from attrkit.core.registry import register
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.core.warnings import warn_at_caller
from attrkit.methods.layer import layer_gradients
from attrkit.methods.modified_relu import GuidedBackprop

__all__ = ["GradCamResizeWarning", "GuidedGradCam", "LayerGradCam"]

INTERPOLATE_MODES = (
    "nearest",
    "nearest-exact",
    "linear",
    "bilinear",
    "bicubic",
    "trilinear",
    "area",
)
#: Modes that interpolate a fixed number of spatial dimensions.
_MODE_DIMENSIONS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


class GradCamResizeWarning(UserWarning):
    """GuidedGradCam cannot resize the Grad-CAM map to an input (its attribution is an
    empty tensor, as in Captum)."""


GRAD_CAM_PAPER = (
    "Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based "
    "Localization, ICCV 2017, https://arxiv.org/abs/1610.02391"
)


@register(
    "layer_grad_cam",
    family="cam",
    aliases=("grad_cam", "gradcam"),
    display_name="Grad-CAM",
    paper=GRAD_CAM_PAPER,
    layer_output=True,
)
@fill_doc
class LayerGradCam(_CaptumLayerAttribution, GradientAttribution):  # type: ignore[misc]
    """Grad-CAM (Selvaraju et al., 2017) on a layer.

    The layer's activations weighted by the spatial mean of the target's gradient with
    respect to them, summed over channels: one map per example with the layer's spatial
    shape (``N x 1 x H x W`` for a convolutional layer). The result has the layer's shape,
    not the inputs'.

    Args:
        %(forward_func)s
        %(layer)s
        %(device_ids)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(),
        ...                             torch.nn.Flatten(), torch.nn.Linear(64, 2))
        >>> cam = attrkit.LayerGradCam(model, model[0])
        >>> cam.attribute(torch.randn(2, 1, 6, 6), target=1).shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: nn.Module,
        device_ids: list[int] | None = None,
    ) -> None:
        GradientAttribution.__init__(self, forward_func)
        self.layer = check_layer(layer, forward_func)
        self.device_ids = device_ids

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: object = None,
        attribute_to_layer_input: bool = False,
        relu_attributions: bool = False,
        attr_dim_summation: bool = True,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> Tensor | tuple[Tensor, ...]:
        """Grad-CAM maps of the target output on the layer.

        Args:
            %(inputs)s
            %(target)s
            %(additional_forward_args)s
            attribute_to_layer_input (bool, optional): Work on the layer's input instead
                of its output. Default: ``False``.
            relu_attributions (bool, optional): Keep only positive evidence (the ReLU of
                the map, as in the paper). Default: ``False``.
            attr_dim_summation (bool, optional): Sum over channels; ``False`` keeps one
                map per channel. Default: ``True``.
            %(grad_kwargs)s

        Returns:
            Tensor or tuple[Tensor, ...]: One map per layer tensor: a tensor when the
            layer's output (or input) is one tensor, a tuple otherwise.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            attribute_to_layer_input=attribute_to_layer_input,
            relu_attributions=relu_attributions,
            attr_dim_summation=attr_dim_summation,
            grad_kwargs=grad_kwargs,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        grad_kwargs = format_grad_kwargs(options["grad_kwargs"])
        grads, (captured,) = layer_gradients(
            self, call, (self.layer,), options["attribute_to_layer_input"], grad_kwargs
        )
        activations = captured.tensors
        maps = []
        for grad, activation in zip(grads, activations, strict=True):
            if grad.dim() > 2:
                grad = grad.mean(dim=tuple(range(2, grad.dim())), keepdim=True)
            weighted = grad * activation.detach()
            if options["attr_dim_summation"]:
                weighted = weighted.sum(dim=1, keepdim=True)
            maps.append(F.relu(weighted) if options["relu_attributions"] else weighted)
        return Result(tuple(maps), is_tuple=captured.is_tuple)


@register(
    "guided_grad_cam",
    family="cam",
    aliases=("guided_gradcam",),
    display_name="Guided Grad-CAM",
    paper=GRAD_CAM_PAPER,
)
@fill_doc
class GuidedGradCam(GradientAttribution):
    """Guided Grad-CAM (Selvaraju et al., 2017): guided backpropagation times the
    Grad-CAM map of a layer (with ReLU), upsampled to each input's spatial size.

    The guided backpropagation part follows the definition on every ReLU, as
    :class:`~attrkit.GuidedBackprop` does. An input whose shape the layer's map cannot be
    interpolated to (e.g. a 2-D input beside an image) gets an empty tensor, as in Captum,
    with a :class:`GradCamResizeWarning` that names it; a layer whose map fits no input
    raises a ``ValueError`` (Captum returns empty tensors). An ``interpolate_mode`` that
    :func:`torch.nn.functional.interpolate` does not know raises a ``ValueError`` (Captum
    warns and returns empty tensors).

    Args:
        %(model)s
        %(layer)s
        %(device_ids)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(),
        ...                             torch.nn.Flatten(), torch.nn.Linear(64, 2))
        >>> explainer = attrkit.GuidedGradCam(model, model[0])
        >>> explainer.attribute(torch.randn(2, 1, 6, 6), target=1).shape
        torch.Size([2, 1, 6, 6])
    """

    #: The rule of its guided backpropagation part.
    rules = GuidedBackprop.rules

    def __init__(
        self, model: Callable[..., Any], layer: nn.Module, device_ids: list[int] | None = None
    ) -> None:
        check_callable(model, "model")
        super().__init__(model)
        self.grad_cam = LayerGradCam(model, layer, device_ids)
        self.guided_backprop = GuidedBackprop(model)

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: object = None,
        interpolate_mode: str = "nearest",
        attribute_to_layer_input: bool = False,
    ) -> TensorOrTupleOfTensorsGeneric:
        """Guided Grad-CAM attributions of the target output.

        Args:
            %(inputs)s
            %(target)s
            %(additional_forward_args)s
            interpolate_mode (str, optional): How the Grad-CAM map is upsampled to the
                inputs' spatial size (a mode of ``torch.nn.functional.interpolate``).
                Default: ``"nearest"``.
            attribute_to_layer_input (bool, optional): Compute Grad-CAM on the layer's
                input instead of its output. Default: ``False``.

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            interpolate_mode=interpolate_mode,
            attribute_to_layer_input=attribute_to_layer_input,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...]:
        mode = options["interpolate_mode"]
        if not isinstance(mode, str) or mode not in INTERPOLATE_MODES:
            raise ValueError(
                f"`interpolate_mode` must be one of {', '.join(INTERPOLATE_MODES)}; "
                f"got {options['interpolate_mode']!r}"
            )
        cam = self.grad_cam._compute(
            call,
            attribute_to_layer_input=options["attribute_to_layer_input"],
            relu_attributions=True,
            attr_dim_summation=True,
            grad_kwargs=None,
        ).attributions
        if len(cam) != 1:
            raise ValueError(
                f"GuidedGradCam needs a layer with one output tensor; it has {len(cam)}"
            )
        if not any(x.dim() == cam[0].dim() > 2 for x in call.inputs):
            raise ValueError(
                f"`layer` ({type(self.grad_cam.layer).__name__}): its Grad-CAM map (shape "
                f"{tuple(cam[0].shape)}) cannot be resized to any input (shapes "
                f"{[tuple(x.shape) for x in call.inputs]}); pick a layer with the inputs' "
                "spatial dimensions"
            )
        with self.guided_backprop._compute_context(call):
            guided = self.guided_backprop._compute(call)
        label = "inputs[{}]" if call.is_tuple else "inputs"
        return tuple(
            self._combine(g, cam[0], x.shape[2:], options["interpolate_mode"], label.format(i))
            for i, (g, x) in enumerate(zip(guided, call.inputs, strict=True))
        )

    @staticmethod
    def _combine(guided: Tensor, cam: Tensor, size: torch.Size, mode: str, label: str) -> Tensor:
        if len(size) == 0 or len(size) != cam.dim() - 2:
            warn_at_caller(
                f"GuidedGradCam: `{label}` (shape {tuple(guided.shape)}) has "
                f"{len(size)} spatial dimension(s), the Grad-CAM map (shape "
                f"{tuple(cam.shape)}) has {cam.dim() - 2}: the map cannot be resized to it, "
                "so its attribution is an empty tensor (as in Captum)",
                GradCamResizeWarning,
            )
            return torch.empty(0, dtype=guided.dtype, device=guided.device)
        if _MODE_DIMENSIONS.get(mode, len(size)) != len(size):
            raise ValueError(
                f"`interpolate_mode` {mode!r} upsamples maps with {_MODE_DIMENSIONS[mode]} "
                f"spatial dimension(s), but the Grad-CAM map has {len(size)} "
                f"(shape {tuple(cam.shape)})"
            )
        return guided * F.interpolate(cam, size=tuple(size), mode=mode)

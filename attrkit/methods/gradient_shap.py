"""GradientShap on the model's inputs, on a layer and on one neuron: expected gradients
at random points between the inputs (with optional noise) and random baseline rows.

The random draws are Captum's, in Captum's order, from the same global generators: for
each input tensor the baseline rows (NumPy), then the noise of each input tensor
(torch, in torch's default dtype, as Captum draws it), then one interpolation coefficient
per sample (NumPy). With both generators seeded alike, attrkit and Captum give the same
result.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from captum.attr import LayerAttribution as _CaptumLayerAttribution
from captum.attr import NeuronAttribution as _CaptumNeuronAttribution
from torch import Tensor, nn

from attrkit.core.attribution import GradientAttribution, MultiplyByInputsOption, captum_entry_point
from attrkit.core.call import AttributionCall, Result, gradients
from attrkit.core.docs import fill_doc
from attrkit.core.layers import LayerCapture, NeuronSelector, check_layer, select_neuron
from attrkit.core.registry import register
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.methods.deeplift import (
    SHAP_PAPER,
    DistributionType,
    format_baseline_distribution,
    mean_over_baselines,
    row_sums,
)
from attrkit.methods.noise_tunnel import _format_stdevs, _positive_int

__all__ = ["GradientShap", "LayerGradientShap", "NeuronGradientShap"]


@dataclasses.dataclass(frozen=True)
class _Samples:
    """The random points of one call: ``samples`` per example, row ``i * samples + s``
    being sample ``s`` of example ``i``; each row has an input (noise added) and a
    baseline row drawn at random.

    Attributes:
        rows: The example of every row.
        points: ``alpha * input + (1 - alpha) * baseline``, ``alpha`` drawn per row.
        differences: ``input - baseline`` per row, where the attributions need it.
        ends: The inputs of every row followed by their baselines, where the attribution
            needs them (a layer's values there, the convergence delta).
    """

    rows: Tensor
    points: tuple[Tensor, ...]
    differences: tuple[Tensor, ...] | None
    ends: tuple[Tensor, ...] | None


def _draw(
    call: AttributionCall, options: dict[str, Any], *, differences: bool, ends: bool
) -> _Samples:
    """Captum's draws for one call, in Captum's order, and what follows from them (only
    what is asked for: each is a copy of the inputs times ``n_samples``)."""
    samples = _positive_int(options["n_samples"], "n_samples")
    scales = _format_stdevs(options["stdevs"], len(call.inputs))
    distribution = format_baseline_distribution(options["baselines"], call, numbers=True)
    count = call.batch_size * samples
    picked = tuple(
        b[np.random.choice(b.shape[0], count).tolist()] if isinstance(b, Tensor) else b
        for b in distribution
    )
    noisy = tuple(
        x.detach().repeat_interleave(samples, dim=0)
        + torch.randn((count, *x.shape[1:]), device=x.device) * scale
        for x, scale in zip(call.inputs, scales, strict=True)
    )
    first = call.inputs[0]
    alpha = torch.tensor(np.random.uniform(0.0, 1.0, count), device=first.device, dtype=first.dtype)
    points = tuple(
        alpha.reshape(-1, *([1] * (x.dim() - 1))) * x
        + (1.0 - alpha.reshape(-1, *([1] * (x.dim() - 1)))) * b
        for x, b in zip(noisy, picked, strict=True)
    )
    references = tuple(
        b if isinstance(b, Tensor) else torch.full_like(x, b)
        for b, x in zip(picked, noisy, strict=True)
    )
    pairs = tuple(zip(noisy, references, strict=True))
    return _Samples(
        rows=torch.arange(call.batch_size).repeat_interleave(samples),
        points=points,
        differences=tuple(x - b for x, b in pairs) if differences else None,
        ends=tuple(torch.cat([x, b]) for x, b in pairs) if ends else None,
    )


class _GradientShapBase(MultiplyByInputsOption, GradientAttribution):
    """What the GradientShap variants share: Captum's draws, made before the call's
    scope (so that they advance the caller's generators as Captum's do), and the forward
    pass over the noisy inputs followed by their baselines."""

    def __init__(self, forward_func: Callable[..., Any], multiply_by_inputs: bool = True) -> None:
        super().__init__(forward_func)
        self._multiply_by_inputs = multiply_by_inputs

    #: Whether the attributions are a layer's (its values at the ends, not the inputs'
    #: differences, multiply the gradients).
    at_layer: ClassVar[bool] = False

    def _prepare(self, call: AttributionCall, options: dict[str, Any]) -> dict[str, Any]:
        samples = _draw(
            call,
            options,
            differences=self._multiply_by_inputs and not self.at_layer,
            ends=self.at_layer or bool(options.get("return_convergence_delta")),
        )
        return {**options, "samples": samples}

    def _scaled(
        self, multipliers: tuple[Tensor, ...], differences: tuple[Tensor, ...] | None
    ) -> tuple[Tensor, ...]:
        if not self._multiply_by_inputs or differences is None:
            return multipliers
        return tuple(d * m for d, m in zip(differences, multipliers, strict=True))

    def _ends(
        self, call: AttributionCall, samples: _Samples, capture: LayerCapture | None = None
    ) -> Tensor:
        """The targeted outputs of the noisy inputs followed by their baselines (no
        gradients), ``capture`` recording the layer on the way."""
        if samples.ends is None:
            raise RuntimeError("attrkit: GradientShap's ends were not drawn")  # (see _prepare)
        rows = torch.cat([samples.rows, samples.rows])
        ends = call.take(rows, samples.ends)
        with torch.no_grad(), capture or contextlib.nullcontext():
            output = self._forward(ends)
        return ends.target.select(output, len(rows))

    @staticmethod
    def _delta(attributions: tuple[Tensor, ...], selected: Tensor) -> Tensor:
        """``sum(attributions) - (F(noisy input) - F(baseline))`` per sample."""
        size = len(selected) // 2
        return row_sums(attributions, size) - (selected[:size] - selected[size:])


@register(
    "gradient_shap",
    family="deeplift",
    aliases=("grad_shap",),
    display_name="GradientShap",
    paper=SHAP_PAPER,
    multiplies_by_inputs=True,
    has_convergence_delta=True,
    draws_random_numbers=True,
)
@fill_doc
class GradientShap(_GradientShapBase):
    """GradientShap (Lundberg & Lee, 2017): the expected value of ``gradient * (input -
    baseline)`` over baselines drawn from a distribution and points drawn uniformly on
    the segment between them, an approximation of SHAP values.

    For each example, ``n_samples`` rows: the input with Gaussian noise of standard
    deviation ``stdevs`` added, a baseline row drawn at random, and a point
    ``alpha * input + (1 - alpha) * baseline`` with ``alpha`` drawn uniformly from
    ``[0, 1]``; the attribution is the mean over the samples of the gradient at the point
    times ``input - baseline``. The draws are Captum's, from the same generators (torch's
    and NumPy's), so that seeding both gives Captum's result.

    Args:
        %(forward_func)s
        %(multiply_by_inputs)s

    Example:
        >>> import numpy as np, torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> np.random.seed(0); _ = torch.manual_seed(0)
        >>> attrkit.GradientShap(model).attribute(torch.randn(2, 3), torch.randn(8, 3),
        ...                                       n_samples=16, target=0).shape
        torch.Size([2, 3])
    """

    def has_convergence_delta(self) -> bool:
        return True

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: DistributionType,
        n_samples: int = 5,
        stdevs: float | tuple[float, ...] = 0.0,
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: bool = False,
    ) -> TensorOrTupleOfTensorsGeneric | tuple[TensorOrTupleOfTensorsGeneric, Tensor]:
        """GradientShap attributions of the target output to ``inputs``.

        Args:
            %(inputs)s
            %(baseline_distribution)s
                After the first, an entry may be a number.
            n_samples (int, optional): Samples per example. Default: 5.
            stdevs (float or tuple[float, ...], optional): Standard deviation of the
                Gaussian noise added to each input tensor. Default: 0.0.
            %(target)s
            %(additional_forward_args)s
            return_convergence_delta (bool, optional): Also return ``sum(attributions) -
                (F(noisy input) - F(baseline))`` for every sample. Default: ``False``.

        Returns:
            %(returns_attributions)s
            With ``return_convergence_delta=True``, a tuple ``(attributions, delta)``
            where ``delta`` has one entry per sample, ordered by example.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            n_samples=n_samples,
            stdevs=stdevs,
            return_convergence_delta=return_convergence_delta,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        samples: _Samples = options["samples"]
        grads = self._gradients(call.take(samples.rows, samples.points))
        attributions = self._scaled(grads, samples.differences)
        delta = None
        if options["return_convergence_delta"]:
            selected = self._ends(call, samples)
            delta = self._delta(attributions, selected)
        return Result(mean_over_baselines(attributions, call.batch_size), delta)


@register(
    "layer_gradient_shap",
    family="deeplift",
    aliases=("layer_grad_shap",),
    display_name="Layer GradientShap",
    paper=SHAP_PAPER,
    multiplies_by_inputs=True,
    has_convergence_delta=True,
    layer_output=True,
    draws_random_numbers=True,
)
@fill_doc
class LayerGradientShap(_GradientShapBase, _CaptumLayerAttribution):  # type: ignore[misc]
    """GradientShap on a layer: the expected value, over Captum's random samples, of the
    gradient at the layer times the layer's difference between the noisy input and the
    baseline.

    Args:
        %(forward_func)s
        %(layer)s
        %(device_ids)s
        %(multiply_by_inputs)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.LayerGradientShap(model, model[0])
        >>> explainer.attribute(torch.randn(2, 3), torch.randn(8, 3), target=1).shape
        torch.Size([2, 4])
    """

    at_layer = True

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: nn.Module,
        device_ids: list[int] | None = None,
        multiply_by_inputs: bool = True,
    ) -> None:
        super().__init__(forward_func, multiply_by_inputs)
        self.layer = check_layer(layer, forward_func)
        self.device_ids = device_ids

    def has_convergence_delta(self) -> bool:
        return True

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: DistributionType,
        n_samples: int = 5,
        stdevs: float | tuple[float, ...] = 0.0,
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
    ) -> Tensor | tuple[Tensor, ...] | tuple[Tensor | tuple[Tensor, ...], Tensor]:
        """GradientShap attributions of the target output to the layer.

        Args:
            %(inputs)s
            %(baseline_distribution)s
                After the first, an entry may be a number.
            n_samples (int, optional): Samples per example. Default: 5.
            stdevs (float or tuple[float, ...], optional): Standard deviation of the
                Gaussian noise added to each input tensor. Default: 0.0.
            %(target)s
            %(additional_forward_args)s
            return_convergence_delta (bool, optional): Also return ``sum(attributions) -
                (F(noisy input) - F(baseline))`` for every sample. Default: ``False``.
            attribute_to_layer_input (bool, optional): Attribute to the layer's input
                instead of its output. Default: ``False``.

        Returns:
            Tensor or tuple[Tensor, ...]: One attribution tensor per layer tensor; with
            ``return_convergence_delta=True``, a tuple ``(attributions, delta)``.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            n_samples=n_samples,
            stdevs=stdevs,
            return_convergence_delta=return_convergence_delta,
            attribute_to_layer_input=attribute_to_layer_input,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        samples: _Samples = options["samples"]
        to_input = options["attribute_to_layer_input"]
        points = call.take(samples.rows, samples.points)
        with LayerCapture(self.layer, inputs=to_input) as at_points:
            output = self._forward(points)
        grads = gradients(points.target.select(output, len(samples.rows)), at_points.tensors)
        ends = LayerCapture(self.layer, inputs=to_input)
        selected = self._ends(call, samples, ends)
        size = len(samples.rows)
        layer_differences = tuple(t[:size] - t[size:] for t in ends.tensors)
        attributions = self._scaled(grads, layer_differences)
        delta = self._delta(attributions, selected) if options["return_convergence_delta"] else None
        return Result(
            mean_over_baselines(attributions, call.batch_size),
            delta,
            is_tuple=len(attributions) > 1,
        )


@register(
    "neuron_gradient_shap",
    family="deeplift",
    aliases=("neuron_grad_shap",),
    display_name="Neuron GradientShap",
    paper=SHAP_PAPER,
    multiplies_by_inputs=True,
    draws_random_numbers=True,
)
@fill_doc
class NeuronGradientShap(_GradientShapBase, _CaptumNeuronAttribution):  # type: ignore[misc]
    """GradientShap of one neuron of a hidden layer: the expected value, over Captum's
    random samples, of the neuron's gradient at the point times ``input - baseline``.

    Args:
        %(forward_func)s
        %(layer)s
        %(device_ids)s
        %(multiply_by_inputs)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.NeuronGradientShap(model, model[0])
        >>> explainer.attribute(torch.randn(2, 3), 1, torch.randn(8, 3)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: nn.Module,
        device_ids: list[int] | None = None,
        multiply_by_inputs: bool = True,
    ) -> None:
        super().__init__(forward_func, multiply_by_inputs)
        self.layer = check_layer(layer, forward_func)
        self.device_ids = device_ids

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        neuron_selector: NeuronSelector,
        baselines: DistributionType,
        n_samples: int = 5,
        stdevs: float = 0.0,
        additional_forward_args: object = None,
        attribute_to_neuron_input: bool = False,
    ) -> TensorOrTupleOfTensorsGeneric:
        """GradientShap attributions of one neuron of the layer to ``inputs``.

        Args:
            %(inputs)s
            %(neuron_selector)s
                A callable receives the layer's tensor over every sample (``n_samples``
                rows per example), as in Captum.
            %(baseline_distribution)s
                After the first, an entry may be a number.
            n_samples (int, optional): Samples per example. Default: 5.
            stdevs (float, optional): Standard deviation of the Gaussian noise added to
                the inputs. Default: 0.0.
            %(additional_forward_args)s
            attribute_to_neuron_input (bool, optional): Select the neuron in the layer's
                input instead of its output. Default: ``False``.

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            None,
            additional_forward_args,
            neuron_selector=neuron_selector,
            baselines=baselines,
            n_samples=n_samples,
            stdevs=stdevs,
            attribute_to_neuron_input=attribute_to_neuron_input,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        samples: _Samples = options["samples"]
        points = call.take(samples.rows, samples.points)
        with LayerCapture(self.layer, inputs=options["attribute_to_neuron_input"]) as captured:
            self._forward(points)
        neuron = select_neuron(captured, options["neuron_selector"], len(samples.rows))
        grads = gradients(neuron, points.inputs)
        attributions = self._scaled(grads, samples.differences)
        return Result(mean_over_baselines(attributions, call.batch_size))

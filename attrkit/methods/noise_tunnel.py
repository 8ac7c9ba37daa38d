"""NoiseTunnel: SmoothGrad, SmoothGrad-squared and VarGrad over any attrkit method."""

from __future__ import annotations

import math
from typing import Any

import captum.attr
import torch
from torch import Tensor

from attrkit.core.attribution import NoFuture, captum_entry_point
from attrkit.core.call import (
    format_additional_forward_args,
    format_baselines,
    format_tensors,
    take_rows,
)
from attrkit.core.docs import fill_doc
from attrkit.core.registry import UnknownMethodError, create, register
from attrkit.core.targets import parse_target

__all__ = ["NoiseTunnel"]

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1, got {value!r}")
    return value


def _format_stdevs(stdevs: object, count: int) -> tuple[float, ...]:
    values = stdevs if isinstance(stdevs, tuple) else (stdevs,) * count
    if len(values) != count:
        raise ValueError(f"`stdevs` has {len(values)} entries but `inputs` has {count} tensors")
    scales = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`stdevs` must be a number or a tuple of numbers, got {value!r}")
        if value < 0:
            raise ValueError(f"`stdevs` must be >= 0, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"`stdevs` must be finite, got {value!r}")
        scales.append(float(value))
    return tuple(scales)


def _expand_target(target: Any, rows: Tensor) -> Any:
    """The target for the noisy batch, whose row ``i`` is example ``rows[i]``."""
    if isinstance(target, Tensor) and target.numel() > 1:
        return target[rows.to(target.device)]
    if isinstance(target, list):
        return [target[i] for i in rows.tolist()]
    return target


def _take_example_rows(value: Any, size: int, rows: Tensor) -> Any:
    """``value`` (a per-example tensor, or a tuple of them) for the rows ``rows`` of the
    noisy batch; anything else as it is."""
    if isinstance(value, tuple):
        return tuple(take_rows(v, size, rows) for v in value)
    return take_rows(value, size, rows)


def _as_tuple(value: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return value if isinstance(value, tuple) else (value,)


def _accumulate(totals: list[Tensor], position: int, value: Tensor) -> None:
    """``totals[position] += value``, starting the entry at the first chunk."""
    if position == len(totals):
        totals.append(value)
    else:
        totals[position].add_(value)


def _noise_tunnel_factory(
    model: Any, base_method: str = "saliency", **base_init_kwargs: Any
) -> NoiseTunnel:
    """``create("noise_tunnel", model, base_method=...)``: a NoiseTunnel over the method
    registered as ``base_method``, built for ``model`` with ``base_init_kwargs``."""
    if not isinstance(base_method, str):
        raise TypeError(
            f"`base_method` must be a method name (str), got {type(base_method).__name__}"
        )
    try:
        method = create(base_method, model, **base_init_kwargs)
    except UnknownMethodError as error:
        raise UnknownMethodError(f"`base_method`: {error}") from None
    return NoiseTunnel(method)


@register(
    "noise_tunnel",
    family="wrapper",
    aliases=("nt", "smoothgrad"),
    display_name="NoiseTunnel (SmoothGrad)",
    paper="Smilkov et al., SmoothGrad: removing noise by adding noise, 2017, "
    "https://arxiv.org/abs/1706.03825; VarGrad: Adebayo et al., Local Explanation "
    "Methods for Deep Neural Networks Lack Sensitivity to Parameter Values, 2018, "
    "https://arxiv.org/abs/1810.03307",
    factory=_noise_tunnel_factory,
    draws_random_numbers=True,
)
class NoiseTunnel(NoFuture, captum.attr.Attribution):  # type: ignore[misc]
    """Average an attribution method over noisy copies of the inputs.

    For each example, ``nt_samples`` copies are drawn with Gaussian noise of standard
    deviation ``stdevs`` added, attributed with the wrapped method, and combined:
    ``smoothgrad`` (the mean; Smilkov et al., 2017), ``smoothgrad_sq`` (the mean of the
    squares) or ``vargrad`` (the variance; Adebayo et al., 2018).

    It wraps any attrkit method (or any Captum attribution), keeps the wrapped method's
    guarantees, and draws its noise from torch's global random generator exactly as
    Captum's ``NoiseTunnel`` does, so that with the same seed both give the same result.
    ``draw_baseline_from_distrib`` draws baseline rows with torch's generator (Captum
    uses NumPy's), and float64 inputs get float64 noise (Captum's is float32).

    How the equivalence is tested: at ``stdevs=0`` the result equals the wrapped method
    (and Captum's NoiseTunnel) in float32 and float64; with noise, float32 results equal
    Captum's from the same seed for every method of the parity table; and, independently
    of Captum, for ``F(x) = sum(relu(x))`` (gradient ``1[x + noise > 0]``) the three
    combinations land within five standard errors of their closed forms ``Phi(x / s)``
    and ``Phi (1 - Phi)`` (``tests/methods/test_noise_tunnel.py``).

    Args:
        attribution_method (captum.attr.Attribution): The method to smooth, e.g.
            ``attrkit.Saliency(model)``.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> nt = attrkit.NoiseTunnel(attrkit.GuidedBackprop(model))
        >>> nt.attribute(torch.randn(2, 3), nt_samples=8, stdevs=0.1, target=0).shape
        torch.Size([2, 3])
    """

    def __init__(self, attribution_method: captum.attr.Attribution) -> None:
        if not isinstance(attribution_method, captum.attr.Attribution):
            raise TypeError(
                "`attribution_method` must be an attribution method such as "
                f"attrkit.Saliency(model), got {type(attribution_method).__name__}"
            )
        super().__init__(attribution_method.forward_func)
        self.attribution_method = attribution_method
        self.is_delta_supported = attribution_method.has_convergence_delta()
        self.is_gradient_method = isinstance(attribution_method, captum.attr.GradientAttribution)

    @property
    def multiplies_by_inputs(self) -> bool:
        return bool(self.attribution_method.multiplies_by_inputs)

    def has_convergence_delta(self) -> bool:
        return bool(self.is_delta_supported)

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        nt_type: str = "smoothgrad",
        nt_samples: int = 5,
        nt_samples_batch_size: int | None = None,
        stdevs: float | tuple[float, ...] = 1.0,
        draw_baseline_from_distrib: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Attribute noisy copies of ``inputs`` with the wrapped method and combine them.

        Args:
            %(inputs)s
            nt_type (str, optional): ``"smoothgrad"``, ``"smoothgrad_sq"`` or
                ``"vargrad"``. Default: ``"smoothgrad"``.
            nt_samples (int, optional): Noisy copies per example. Default: 5.
            nt_samples_batch_size (int, optional): Copies per example attributed in one
                call of the wrapped method; ``None`` attributes all at once.
            stdevs (float or tuple[float, ...], optional): Standard deviation of the
                noise, one per input tensor or one for all. Default: 1.0.
            draw_baseline_from_distrib (bool, optional): For methods with
                ``baselines``: draw each copy's baseline row at random from the given
                baselines instead of using the one of its example. Default: ``False``.
            **kwargs: The wrapped method's ``attribute`` arguments (``target``,
                ``additional_forward_args``, ``baselines``, ``abs``,
                ``return_convergence_delta``, ``feature_mask``, ...). Per-example values
                (tensors whose dimension 0 is the batch, or tuples of them) are expanded
                to the noisy copies.

        Returns:
            The combined attributions, with the structure the wrapped method returns;
            with ``return_convergence_delta=True``, a tuple ``(attributions, delta)``
            where ``delta`` has one entry per noisy copy.
        """
        if not isinstance(nt_type, str) or nt_type not in NT_TYPES:
            raise ValueError(f"`nt_type` must be one of {', '.join(NT_TYPES)}; got {nt_type!r}")
        nt_samples = _positive_int(nt_samples, "nt_samples")
        batch = nt_samples
        if nt_samples_batch_size is not None:
            batch = min(nt_samples, _positive_int(nt_samples_batch_size, "nt_samples_batch_size"))
        tensors, is_tuple = format_tensors(inputs, "inputs")
        noise_scales = _format_stdevs(stdevs, len(tensors))
        return_delta = bool(kwargs.get("return_convergence_delta", False))
        if return_delta and not self.is_delta_supported:
            raise ValueError(
                f"`return_convergence_delta`: {type(self.attribution_method).__name__} has "
                "no convergence delta"
            )
        if draw_baseline_from_distrib and "baselines" not in kwargs:
            raise ValueError(
                "`draw_baseline_from_distrib` needs `baselines` to draw from, and the "
                "wrapped method must take them"
            )
        size = int(tensors[0].shape[0])
        parse_target(kwargs.get("target"), size)  # clear errors before any work
        args = format_additional_forward_args(kwargs.get("additional_forward_args"))
        baselines: tuple[Any, ...] = ()
        if "baselines" in kwargs:
            given = kwargs["baselines"]
            # Drawn rows need tensors; otherwise, as in Captum, a tensor with a row per
            # example is expanded to the copies and anything else (a number, one row, a
            # distribution for DeepLiftShap, a callable) goes to the method as given.
            if draw_baseline_from_distrib:
                baselines = format_baselines(given, tensors)
            else:
                baselines = given if isinstance(given, tuple) else (given,)

        # The sums of the copies' attributions and of their squares, where nt_type uses them.
        sums: list[Tensor] = []
        squares: list[Tensor] = []
        deltas: list[Tensor] = []
        attribution_is_tuple = is_tuple
        chunks = [batch] * (nt_samples // batch) + [nt_samples % batch] * (nt_samples % batch > 0)
        for copies in chunks:
            rows = torch.arange(size).repeat_interleave(copies)
            chunk_kwargs = self._expand_kwargs(
                kwargs, size, rows, args, baselines, draw_baseline_from_distrib
            )
            noisy = tuple(
                x.detach().repeat_interleave(copies, dim=0)
                + torch.randn((size * copies, *x.shape[1:]), dtype=x.dtype, device=x.device) * scale
                for x, scale in zip(tensors, noise_scales, strict=True)
            )
            result = self.attribution_method.attribute(
                noisy if is_tuple else noisy[0], **chunk_kwargs
            )
            if return_delta:
                result, delta = result
                deltas.append(delta)
            attribution_is_tuple = isinstance(result, tuple)
            for position, attribution in enumerate(_as_tuple(result)):
                grouped = attribution.reshape(size, copies, *attribution.shape[1:])
                if nt_type != "smoothgrad_sq":
                    _accumulate(sums, position, grouped.sum(dim=1))
                if nt_type != "smoothgrad":
                    _accumulate(squares, position, (grouped * grouped).sum(dim=1))

        means = [s / nt_samples for s in sums]
        mean_squares = [q / nt_samples for q in squares]
        if nt_type == "smoothgrad":
            combined = means
        elif nt_type == "smoothgrad_sq":
            combined = mean_squares
        else:
            combined = [q - m * m for q, m in zip(mean_squares, means, strict=True)]
        packed = tuple(combined) if attribution_is_tuple else combined[0]
        return (packed, torch.cat(deltas)) if return_delta else packed

    @staticmethod
    def _expand_kwargs(
        kwargs: dict[str, Any],
        size: int,
        rows: Tensor,
        args: tuple[Any, ...],
        baselines: tuple[Any, ...],
        draw_baseline_from_distrib: bool,
    ) -> dict[str, Any]:
        """The wrapped method's arguments for a noisy batch whose row ``i`` is a copy of
        example ``rows[i]`` (of ``size``); ``args`` are the formatted
        ``additional_forward_args``, ``baselines`` the baselines' entries. Any other
        argument that holds one entry per example (a tensor, or a tuple of tensors, whose
        dimension 0 is the batch, such as a per-example ``feature_mask``) is expanded the
        same way."""
        expanded = {name: _take_example_rows(value, size, rows) for name, value in kwargs.items()}
        if "target" in kwargs:
            expanded["target"] = _expand_target(kwargs["target"], rows)
        if kwargs.get("additional_forward_args") is not None:
            expanded["additional_forward_args"] = tuple(take_rows(a, size, rows) for a in args)
        if kwargs.get("baselines") is not None:  # (None: the method's own zeros)
            if draw_baseline_from_distrib:
                picked = tuple(
                    b[torch.randint(b.shape[0], (len(rows),))] if b.dim() > 0 else b
                    for b in baselines
                )
            else:
                picked = tuple(take_rows(b, size, rows) for b in baselines)
            expanded["baselines"] = picked if isinstance(kwargs["baselines"], tuple) else picked[0]
        return expanded

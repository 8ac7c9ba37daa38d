"""zennit (optional, ``pip install "attrkit[zennit]"``): its attributors and composites,
where their definitions match attrkit's, for a single input tensor.

:data:`ZENNIT_METHODS` is the table: one :class:`ZennitMethod` row per attrkit method,
naming zennit's attributor, its arguments and when zennit's definition matches attrkit's.
The composite is not in the table: it is zennit's equivalent of the method's backward rule
(:attr:`attrkit.engine.rule.Rule.zennit`, e.g. ``DeconvNet`` for Deconvolution's ReLU
rule), none for a method of plain gradients. A new method whose rules have a zennit
equivalent needs one row, e.g. ``"deconvolution": GRADIENT``.

Targets: zennit takes the gradient of the output (a one-hot tensor); the adapter builds it
from every target form attrkit accepts, by differentiating attrkit's own target selection.
``additional_forward_args`` are bound to the model in a wrapper module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from attrkit.core.call import format_additional_forward_args, format_baselines, take_rows
from attrkit.core.registry import MethodInfo
from attrkit.core.targets import Target
from attrkit.validation.adapters.base import Adapter, MethodRequest, Support, as_tuple
from attrkit.validation.adapters.zennit_lrp import check_lrp, lrp_composite

__all__ = ["GRADIENT", "ZENNIT_METHODS", "ZennitAdapter", "ZennitMethod", "zennit_composite"]


def _always(request: MethodRequest) -> Support:
    return Support(True)


def _no_options(request: MethodRequest, x: Tensor) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ZennitMethod:
    """How zennit computes one attrkit method: a row of :data:`ZENNIT_METHODS`.

    Attributes:
        attributor: The class of ``zennit.attribution`` (``"Gradient"``, ...).
        options: The attributor's arguments besides the model and the composite, for a
            request and the examples of one call.
        check: Whether zennit's definition matches attrkit's for the request's arguments
            (why not, or why they can agree only statistically).
        per_example: Call the attributor example by example (its arguments depend on the
            example).
        absolute: The method's ``abs`` option takes the absolute value of the result
            (Saliency).
        composite: The composite for a request (``None``: the method's rules' zennit
            equivalent, :func:`zennit_composite`).
        relevance: The output gradient is the target output's value (LRP's initial
            relevance), not one.
    """

    attributor: str
    options: Callable[[MethodRequest, Tensor], dict[str, Any]] = _no_options
    check: Callable[[MethodRequest], Support] = _always
    per_example: bool = False
    absolute: bool = False
    composite: Callable[[MethodRequest], Any] | None = None
    relevance: bool = False


def zennit_composite(info: MethodInfo) -> str | None:
    """The name of the ``zennit.composites`` class that applies the backward rules of the
    method ``info`` describes (each rule's zennit equivalent); ``None`` for a method of
    plain gradients.

    Raises:
        LookupError: if a rule has no zennit equivalent, or the rules name different
            composites.

    Example:
        >>> import attrkit
        >>> zennit_composite(attrkit.method_info("guided_backprop"))
        'GuidedBackprop'
    """
    for rule in info.rules:
        if not rule.zennit:
            raise LookupError(f"zennit has no equivalent of attrkit's {rule.name!r} rule")
    names = sorted({rule.zennit for rule in info.rules})
    if len(names) > 1:
        raise LookupError(f"zennit has no composite with {' and '.join(names)} together")
    return names[0] if names else None


def _composite_class(info: MethodInfo) -> Any:
    """The ``zennit.composites`` class of :func:`zennit_composite` (``None`` without rules).

    Raises:
        LookupError: as :func:`zennit_composite`, or if that name is not a composite.
    """
    from zennit import composites

    name = zennit_composite(info)
    if name is None:
        return None
    found = getattr(composites, name, None)
    if not (isinstance(found, type) and issubclass(found, composites.Composite)):
        raise LookupError(f"zennit's {name} is not a composite (zennit.composites.{name})")
    return found


class _BoundModel(nn.Module):
    """``model(x, *additional_forward_args)`` as a one-argument module (zennit's
    attributors call ``model(input)``); its submodules are the model's, so composites
    find the model's ReLU modules."""

    def __init__(self, model: nn.Module, additional_forward_args: tuple[Any, ...]) -> None:
        super().__init__()
        self.model = model
        self.additional_forward_args = additional_forward_args

    def forward(self, x: Tensor) -> Any:
        return self.model(x, *self.additional_forward_args)


def _bound_model(request: MethodRequest, row: int | None = None) -> nn.Module:
    """The model with ``additional_forward_args`` bound; with ``row``, for that example
    alone (arguments whose dimension 0 is the batch are sliced to it)."""
    extra = format_additional_forward_args(request.additional_forward_args)
    model = cast(nn.Module, request.model)  # ZennitAdapter.supports checked it
    if not extra:
        return model
    if row is not None:
        rows = torch.tensor([row])
        extra = tuple(take_rows(a, request.inputs[0].shape[0], rows) for a in extra)
    return _BoundModel(model, extra)


def _output_gradient(
    target: Target, batch_size: int, relevance: bool = False
) -> Callable[[Tensor], Tensor]:
    """zennit's ``attr_output``: the gradient of attrkit's target selection with respect
    to the model output, i.e. a one-hot tensor, for every target form attrkit accepts
    (times the output with ``relevance``: LRP's initial relevance)."""

    def attr_output(output: Tensor) -> Tensor:
        probe = output.detach().requires_grad_()
        with torch.enable_grad():
            selected = target.select(probe, batch_size)
            (gradient,) = torch.autograd.grad(selected.sum(), probe)
        return gradient * output.detach() if relevance else gradient

    return attr_output


def _ranges(x: Tensor) -> Tensor:
    """``max - min`` of each example."""
    flat = x.detach().reshape(x.shape[0], -1)
    return flat.amax(dim=1) - flat.amin(dim=1)


# ------------------------------------------------------------ Integrated Gradients
def _check_integrated_gradients(request: MethodRequest) -> Support:
    """zennit uses the right Riemann sum (points ``k / n``, ``k = 1..n``, equal weights)
    and always multiplies by ``inputs - baselines``."""
    if request.option("method") != "riemann_right":
        return Support.no(
            "zennit's IntegratedGradients uses the right Riemann sum; pass "
            f"method='riemann_right' to compare (got {request.option('method')!r})"
        )
    if not request.init_kwargs.get("multiply_by_inputs", True):
        return Support.no("zennit's IntegratedGradients always multiplies by the inputs")
    return Support(True)


def _integrated_gradients_options(request: MethodRequest, x: Tensor) -> dict[str, Any]:
    (baseline,) = format_baselines(request.option("baselines"), (x,))
    return {
        "baseline_fn": lambda inp: baseline.expand_as(inp).to(inp),
        "n_iter": request.option("n_steps"),
    }


# ---------------------------------------------------------------------- SmoothGrad
def _stdev(request: MethodRequest) -> float:
    stdevs = request.option("stdevs")
    return float(stdevs[0] if isinstance(stdevs, tuple) else stdevs)


def _check_smoothgrad(request: MethodRequest) -> Support:
    """zennit's noise has standard deviation ``noise_level * (max - min)`` of each example,
    and its last sample is noise-free; the adapter sets ``noise_level`` per example so that
    the standard deviation equals ``stdevs``, and uses ``n_iter = nt_samples``. The noise
    itself is drawn differently, and the last sample is the noise-free gradient (weight
    ``1 / nt_samples``), so zennit agrees with attrkit and Captum only up to Monte-Carlo
    error (``stochastic``). zennit averages signed gradients: Saliency's ``abs=True``
    (per-sample absolute values) has no zennit counterpart. VarGrad and SmoothGrad-squared
    are not in zennit."""
    base = request.base_info
    wrapped = ZENNIT_METHODS.get(base.name) if base is not None else None
    if base is None or wrapped is None or wrapped.attributor != "Gradient":
        shown = base.display_name if base is not None else "this method"
        return Support.no(f"zennit's SmoothGrad cannot wrap {shown}")
    if wrapped.absolute and request.option("abs"):
        return Support.no(
            "zennit's SmoothGrad averages signed gradients; Saliency's abs=True averages "
            "absolute values (pass abs=False to compare)"
        )
    if request.option("nt_type") != "smoothgrad":
        return Support.no(f"zennit has no {request.option('nt_type')}")
    if request.option("draw_baseline_from_distrib"):
        return Support.no("zennit's SmoothGrad takes no baselines")
    if _stdev(request) > 0 and bool((_ranges(request.inputs[0]) == 0).any()):
        return Support.no("zennit's noise scales with each example's value range, which is 0")
    return Support(
        True,
        stochastic="zennit draws its own noise and makes its last sample noise-free",
    )


def _smoothgrad_options(request: MethodRequest, x: Tensor) -> dict[str, Any]:
    """For one example: the noise level that gives standard deviation ``stdevs``."""
    stdev = _stdev(request)
    return {
        "noise_level": stdev / float(_ranges(x)[0]) if stdev > 0 else 0.0,
        "n_iter": int(request.option("nt_samples")),
    }


#: A method of gradients: zennit's ``Gradient`` attributor with the rules' composite.
GRADIENT = ZennitMethod("Gradient")

#: attrkit method -> how zennit computes it.
ZENNIT_METHODS: dict[str, ZennitMethod] = {
    "saliency": ZennitMethod("Gradient", absolute=True),
    "deconvolution": GRADIENT,
    "guided_backprop": GRADIENT,
    "integrated_gradients": ZennitMethod(
        "IntegratedGradients",
        options=_integrated_gradients_options,
        check=_check_integrated_gradients,
    ),
    # over a method of ZENNIT_METHODS with the Gradient attributor
    "noise_tunnel": ZennitMethod(
        "SmoothGrad", options=_smoothgrad_options, check=_check_smoothgrad, per_example=True
    ),
    "lrp": ZennitMethod("Gradient", check=check_lrp, composite=lrp_composite, relevance=True),
}


class ZennitAdapter(Adapter):
    """zennit's attributors and composites, where their definitions match attrkit's
    (:data:`ZENNIT_METHODS`).

    zennit's composites hook ``torch.nn.ReLU`` modules (see :func:`attrkit.audit` for
    which ReLUs that reaches). Where the definitions differ, the method is reported as
    unavailable with the reason:

    * Integrated Gradients: zennit uses the right Riemann sum (points ``k / n``), so only
      ``method="riemann_right"`` matches; it always multiplies by ``inputs - baselines``.
    * SmoothGrad: zennit's noise scales with each example's value range and its last sample
      is noise-free, so it agrees only statistically; the adapter sets ``noise_level`` per
      example so that the standard deviation equals ``stdevs``. Saliency's ``abs=True``,
      VarGrad and SmoothGrad-squared have no zennit counterpart.
    * Input x Gradient, Grad-CAM, neuron methods: no zennit attributor.
    """

    name = "zennit"
    module = "zennit.attribution"
    install_hint = 'pip install "attrkit[zennit]"'

    def supports(self, request: MethodRequest) -> Support:
        method = ZENNIT_METHODS.get(request.info.name)
        if method is None:
            return Support.no(f"zennit has no attributor for {request.info.display_name}")
        if request.is_tuple and len(request.inputs) > 1:
            return Support.no("zennit's attributors take one input tensor")
        if not isinstance(request.model, nn.Module):
            return Support.no("zennit needs a torch.nn.Module")
        support = method.check(request)
        if support and method.composite is None:
            try:
                _composite_class(request.base_info or request.info)
            except LookupError as error:
                return Support.no(str(error))
        return support

    def attribute(self, request: MethodRequest) -> tuple[Tensor, ...]:
        from zennit import attribution

        method = ZENNIT_METHODS[request.info.name]
        attributor = getattr(attribution, method.attributor)
        if method.composite is not None:
            composite = method.composite(request)
        else:
            composite_class = _composite_class(request.base_info or request.info)
            composite = composite_class() if composite_class is not None else None
        (x,) = as_tuple(request.fresh_inputs())
        results = []
        for row in range(x.shape[0]) if method.per_example else (None,):
            part, target = x, request.parsed_target
            if row is not None:
                part, target = x[row : row + 1], target.take(torch.tensor([row]))
            model = _bound_model(request, row)
            with attributor(model, composite, **method.options(request, part)) as explainer:
                output_gradient = _output_gradient(target, part.shape[0], method.relevance)
                _, result = explainer(part, output_gradient)
            results.append(result)
        result = torch.cat(results)
        if method.absolute and request.option("abs"):
            result = result.abs()
        return (result.detach(),)

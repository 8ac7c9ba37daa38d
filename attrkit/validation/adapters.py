"""One adapter per library that :func:`attrkit.compare` can run a method through.

An adapter answers two questions: :meth:`Adapter.supports` (can this library compute
this method with these arguments, exactly or only up to noise, and with which known
difference of definition?) and :meth:`Adapter.attribute` (compute it). Every adapter gets
the same :class:`MethodRequest`; :func:`attrkit.compare` seeds the random number
generators identically before each call and times it.

What each library computes for attrkit's methods:

* **attrkit**: the method itself.
* **Captum**: the ``captum.attr`` class of the same name (``attrkit.method_info(name).cls``'s
  name), built and called with the same arguments; ``noise_tunnel`` wraps the Captum class
  of ``base_method``.
* **zennit** (optional, ``pip install "attrkit[zennit]"``), for a single input tensor:

  ========================  ======================================================
  attrkit method            zennit
  ========================  ======================================================
  ``saliency``              ``Gradient`` attributor (its absolute value when
                            ``abs=True``, Captum's default)
  ``deconvolution``         ``Gradient`` with the ``DeconvNet`` composite
  ``guided_backprop``       ``Gradient`` with the ``GuidedBackprop`` composite
  ``integrated_gradients``  ``IntegratedGradients`` attributor: only with
                            ``method="riemann_right"`` (zennit's fixed rule: points
                            ``k / n``, ``k = 1..n``, equal weights) and
                            ``multiply_by_inputs=True``
  ``noise_tunnel``          ``SmoothGrad`` attributor over ``saliency`` with
                            ``abs=False``, ``deconvolution`` or ``guided_backprop``;
                            ``nt_type="smoothgrad"`` only. Agreement is statistical
                            (see :class:`ZennitAdapter`)
  ``occlusion``             ``Occlusion`` attributor, for windows that tile the
                            input (``strides`` equal to ``sliding_window_shapes``,
                            each size a multiple of the window) and zero
                            baselines: zennit sums the occluded outputs of the
                            windows, so the adapter returns ``F(x)`` minus that
  ========================  ======================================================

  Targets: zennit takes the gradient of the output (a one-hot tensor); the adapter builds
  it from every target form attrkit accepts, by differentiating attrkit's own target
  selection. ``additional_forward_args`` are bound to the model in a wrapper module.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from attrkit.core.call import format_additional_forward_args, format_baselines, take_rows
from attrkit.core.registry import MethodInfo, common_kwargs, create, method_info
from attrkit.core.targets import Target

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AttrkitAdapter",
    "CaptumAdapter",
    "MethodRequest",
    "Support",
    "ZennitAdapter",
]


@dataclass(frozen=True)
class Support:
    """Whether an adapter can run a request; truthy when it can.

    Attributes:
        ok: Whether the library can compute the method with these arguments.
        reason: Why not (when ``ok`` is false).
        stochastic: Non-empty when the library draws random numbers differently from
            attrkit, so that it can agree only statistically; says why.
        deviation: A known difference between the library's definition and attrkit's for
            this request (reported to explain a disagreement).
    """

    ok: bool
    reason: str = ""
    stochastic: str = ""
    deviation: str = ""

    def __bool__(self) -> bool:
        return self.ok

    @classmethod
    def no(cls, reason: str) -> Support:
        return cls(False, reason)


@dataclass(frozen=True)
class MethodRequest:
    """One method call, as every library receives it.

    Attributes:
        info: The attrkit method.
        model: The model.
        inputs: The input tensors (never modified: adapters get copies from
            :meth:`fresh_inputs`).
        is_tuple: Whether the caller passed a tuple.
        parsed_target: The target, parsed for the batch.
        target: The target, as the caller gave it.
        additional_forward_args: As the caller gave them.
        init_kwargs: Constructor arguments (``layer`` already a module).
        attribute_kwargs: ``attribute`` arguments beyond the common three.
    """

    info: MethodInfo
    model: Callable[..., Any]
    inputs: tuple[Tensor, ...]
    is_tuple: bool
    parsed_target: Target
    target: Any = None
    additional_forward_args: Any = None
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    attribute_kwargs: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def base_info(self) -> MethodInfo | None:
        """The wrapped method of ``noise_tunnel`` (``None`` for other methods)."""
        base = self.init_kwargs.get("base_method")
        if base is None:
            factory = self.info.factory or self.info.cls
            parameter = inspect.signature(factory).parameters.get("base_method")
            base = None if parameter is None else parameter.default
        return method_info(base) if isinstance(base, str) else None

    def option(self, name: str) -> Any:
        """The value of ``attribute`` argument ``name``: the caller's, else attrkit's
        default (for ``noise_tunnel``, also the wrapped method's)."""
        if name in self.attribute_kwargs:
            return self.attribute_kwargs[name]
        for info in (self.info, self.base_info):
            if info is not None:
                parameter = inspect.signature(info.cls.attribute).parameters.get(name)  # type: ignore[attr-defined]
                if parameter is not None and parameter.default is not parameter.empty:
                    return parameter.default
        return None

    def fresh_inputs(self) -> Tensor | tuple[Tensor, ...]:
        """Copies of the inputs, in the caller's structure (tensor or tuple)."""
        copies = tuple(x.detach().clone() for x in self.inputs)
        return copies if self.is_tuple else copies[0]

    def common_kwargs(self) -> dict[str, Any]:
        """``target`` and ``additional_forward_args`` for the method's ``attribute``, where
        it takes them (Captum's namesakes take the same)."""
        return common_kwargs(self.info, self.target, self.additional_forward_args)


def as_tuple(value: Tensor | tuple[Tensor, ...] | list[Any]) -> tuple[Tensor, ...]:
    """A tensor as a one-element tuple; a tuple as it is; a list (one result per layer of
    a multi-layer method) as the tuple of all its tensors."""
    if isinstance(value, list):
        return tuple(t for entry in value for t in as_tuple(entry))
    return value if isinstance(value, tuple) else (value,)


class Adapter(ABC):
    """Runs attrkit's methods through one library.

    Subclasses set :attr:`name` and :attr:`module` and implement :meth:`supports` and
    :meth:`attribute`.
    """

    #: The name used in ``compare(libraries=...)`` and in reports.
    name: ClassVar[str]
    #: The module that must be importable for the library to be available.
    module: ClassVar[str]
    #: How to install it, for the "unavailable" message.
    install_hint: ClassVar[str] = ""

    def unavailable(self) -> str:
        """Why the library cannot be used at all (not installed), or ``""``."""
        try:
            importlib.import_module(self.module)
        except ImportError as error:
            hint = f" ({self.install_hint})" if self.install_hint else ""
            return f"{self.module} is not installed{hint}: {error}"
        return ""

    @abstractmethod
    def supports(self, request: MethodRequest) -> Support:
        """Whether this library can compute ``request``."""

    @abstractmethod
    def attribute(self, request: MethodRequest) -> tuple[Tensor, ...]:
        """The attributions, one tensor per attributed tensor."""


class AttrkitAdapter(Adapter):
    """attrkit itself: ``attrkit.create(method, model, **init).attribute(...)``."""

    name = "attrkit"
    module = "attrkit"

    def supports(self, request: MethodRequest) -> Support:
        return Support(True)

    def attribute(self, request: MethodRequest) -> tuple[Tensor, ...]:
        explainer = create(request.info.name, request.model, **request.init_kwargs)
        result = explainer.attribute(
            request.fresh_inputs(),
            **request.common_kwargs(),
            **request.attribute_kwargs,
        )
        return as_tuple(result)


class CaptumAdapter(Adapter):
    """The ``captum.attr`` class with the attrkit class's name, same arguments.

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

        return getattr(captum.attr, info.cls.__name__, None)

    def supports(self, request: MethodRequest) -> Support:
        for info in (request.info, request.base_info):
            if info is not None and self._class(info) is None:
                return Support.no(f"captum.attr has no {info.cls.__name__}")
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


def _output_gradient(target: Target, batch_size: int) -> Callable[[Tensor], Tensor]:
    """zennit's ``attr_output``: the gradient of attrkit's target selection with respect
    to the model output, i.e. a one-hot tensor, for every target form attrkit accepts."""

    def attr_output(output: Tensor) -> Tensor:
        probe = output.detach().requires_grad_()
        with torch.enable_grad():
            selected = target.select(probe, batch_size)
            (gradient,) = torch.autograd.grad(selected.sum(), probe)
        return gradient

    return attr_output


class ZennitAdapter(Adapter):
    """zennit's attributors and composites, where their definitions match attrkit's.

    zennit's composites hook ``torch.nn.ReLU`` modules (see :mod:`attrkit.audit` for
    which ReLUs that reaches). Where the definitions differ, the method is reported as
    unavailable with the reason:

    * Integrated Gradients: zennit uses the right Riemann sum (points ``k / n``), so only
      ``method="riemann_right"`` matches; it always multiplies by ``inputs - baselines``.
    * SmoothGrad: zennit's noise has standard deviation ``noise_level * (max - min)`` of
      each example, and its last sample is noise-free; the adapter sets ``noise_level`` per
      example so that the standard deviation equals ``stdevs``, and uses
      ``n_iter = nt_samples``. The noise itself is drawn differently, and the last
      sample is the noise-free gradient (weight ``1 / nt_samples``), so zennit agrees with
      attrkit and Captum only up to Monte-Carlo error (``stochastic``). zennit averages
      signed gradients: Saliency's ``abs=True`` (per-sample absolute values) has no
      zennit counterpart. VarGrad and SmoothGrad-squared are not in zennit.
    * Input x Gradient, Grad-CAM, neuron methods: no zennit attributor.
    """

    name = "zennit"
    module = "zennit.attribution"
    install_hint = 'pip install "attrkit[zennit]"'

    _COMPOSITES: ClassVar[dict[str, str]] = {
        "deconvolution": "DeconvNet",
        "guided_backprop": "GuidedBackprop",
    }
    _GRADIENT_METHODS = ("saliency", "deconvolution", "guided_backprop")

    def supports(self, request: MethodRequest) -> Support:
        name = request.info.name
        attributors = (*self._GRADIENT_METHODS, "integrated_gradients", "noise_tunnel", "occlusion")
        if name not in attributors:
            return Support.no(f"zennit has no attributor for {request.info.display_name}")
        if request.is_tuple and len(request.inputs) > 1:
            return Support.no("zennit's attributors take one input tensor")
        if not isinstance(request.model, nn.Module):
            return Support.no("zennit needs a torch.nn.Module")
        if name == "saliency" or name in self._COMPOSITES:
            return Support(True)
        if name == "integrated_gradients":
            return self._supports_integrated_gradients(request)
        if name == "occlusion":
            return self._supports_occlusion(request)
        return self._supports_smoothgrad(request)

    @staticmethod
    def _supports_occlusion(request: MethodRequest) -> Support:
        window = request.option("sliding_window_shapes")
        strides = request.option("strides")
        shape = request.inputs[0].shape[1:]
        if isinstance(strides, int) and isinstance(window, tuple):
            strides = (strides,) * len(window)
        if request.option("baselines") not in (None, 0, 0.0):
            return Support.no("zennit's Occlusion fills the windows with zeros (baselines=0)")
        if (
            not isinstance(window, tuple)
            or strides != window
            or len(window) != len(shape)
            or any(
                not isinstance(w, int) or w < 1 or size % w
                for w, size in zip(window, shape, strict=True)
            )
        ):
            return Support.no(
                "zennit's Occlusion sums the windows' outputs; it equals Captum's definition "
                "only for windows that tile the input (strides == sliding_window_shapes, "
                "each input size a multiple of the window)"
            )
        return Support(True)

    @staticmethod
    def _supports_integrated_gradients(request: MethodRequest) -> Support:
        if request.option("method") != "riemann_right":
            return Support.no(
                "zennit's IntegratedGradients uses the right Riemann sum; pass "
                f"method='riemann_right' to compare (got {request.option('method')!r})"
            )
        if not request.init_kwargs.get("multiply_by_inputs", True):
            return Support.no("zennit's IntegratedGradients always multiplies by the inputs")
        return Support(True)

    def _supports_smoothgrad(self, request: MethodRequest) -> Support:
        base = request.base_info
        if base is None or base.name not in self._GRADIENT_METHODS:
            shown = base.display_name if base is not None else "this method"
            return Support.no(f"zennit's SmoothGrad cannot wrap {shown}")
        if base.name == "saliency" and request.option("abs"):
            return Support.no(
                "zennit's SmoothGrad averages signed gradients; Saliency's abs=True averages "
                "absolute values (pass abs=False to compare)"
            )
        if request.option("nt_type") != "smoothgrad":
            return Support.no(f"zennit has no {request.option('nt_type')}")
        if request.option("draw_baseline_from_distrib"):
            return Support.no("zennit's SmoothGrad takes no baselines")
        stdevs = request.option("stdevs")
        if isinstance(stdevs, tuple):
            stdevs = stdevs[0]
        if float(stdevs) > 0 and bool((_ranges(request.inputs[0]) == 0).any()):
            return Support.no("zennit's noise scales with each example's value range, which is 0")
        return Support(
            True,
            stochastic="zennit draws its own noise and makes its last sample noise-free",
        )

    def attribute(self, request: MethodRequest) -> tuple[Tensor, ...]:
        from zennit import attribution, composites

        (x,) = as_tuple(request.fresh_inputs())
        model = _bound_model(request)
        base = request.base_info.name if request.base_info is not None else request.info.name
        composite = (
            getattr(composites, self._COMPOSITES[base])() if base in self._COMPOSITES else None
        )
        attr_output = _output_gradient(request.parsed_target, x.shape[0])
        if request.info.name == "integrated_gradients":
            (baseline,) = format_baselines(request.option("baselines"), (x,))
            ig = attribution.IntegratedGradients(
                model,
                composite,
                baseline_fn=lambda inp: baseline.expand_as(inp).to(inp),
                n_iter=request.option("n_steps"),
            )
            with ig:
                _, result = ig(x, attr_output)
        elif request.info.name == "noise_tunnel":
            result = self._smoothgrad(request, composite, x)
        elif request.info.name == "occlusion":
            result = self._occlusion(request, model, x)
        else:
            with attribution.Gradient(model, composite) as gradient:
                _, result = gradient(x, attr_output)
            if request.info.name == "saliency" and request.option("abs"):
                result = result.abs()
        return (result.detach(),)

    @staticmethod
    def _occlusion(request: MethodRequest, model: nn.Module, x: Tensor) -> Tensor:
        """``F(x) - F(x with the window occluded)`` for the window of each feature: zennit
        returns the second term (for tiling windows, each feature's one window)."""
        from zennit.attribution import Occlusion, occlude_independent

        window = request.option("sliding_window_shapes")
        one_hot = _output_gradient(request.parsed_target, x.shape[0])
        occlusion = Occlusion(
            model,
            attr_output=lambda output: output * one_hot(output),
            # zennit's default keeps the window and occludes the rest; Captum's occludes
            # the window.
            occlusion_fn=functools.partial(occlude_independent, invert=True),
            window=window,
            stride=window,
        )
        with torch.no_grad():
            _, occluded = occlusion(x)
            full = request.parsed_target.select(model(x), x.shape[0])
        difference: Tensor = full.reshape(-1, *([1] * (x.dim() - 1))) - occluded
        return difference

    @staticmethod
    def _smoothgrad(request: MethodRequest, composite: Any, x: Tensor) -> Tensor:
        """zennit's SmoothGrad, example by example, with the noise level that gives
        standard deviation ``stdevs``."""
        from zennit.attribution import SmoothGrad

        stdevs = request.option("stdevs")
        stdev = float(stdevs[0] if isinstance(stdevs, tuple) else stdevs)
        n_iter = int(request.option("nt_samples"))
        ranges = _ranges(x)
        rows = []
        for row in range(x.shape[0]):
            level = stdev / float(ranges[row]) if stdev > 0 else 0.0
            model = _bound_model(request, row)
            smoothgrad = SmoothGrad(model, composite, noise_level=level, n_iter=n_iter)
            attr_output = _output_gradient(request.parsed_target.take(torch.tensor([row])), 1)
            with smoothgrad:
                _, result = smoothgrad(x[row : row + 1], attr_output)
            rows.append(result)
        return torch.cat(rows)


def _ranges(x: Tensor) -> Tensor:
    """``max - min`` of each example."""
    flat = x.detach().reshape(x.shape[0], -1)
    return flat.amax(dim=1) - flat.amin(dim=1)


#: Library name -> adapter class, in the order reports list them.
ADAPTERS: dict[str, type[Adapter]] = {
    AttrkitAdapter.name: AttrkitAdapter,
    CaptumAdapter.name: CaptumAdapter,
    ZennitAdapter.name: ZennitAdapter,
}

"""Integrated Gradients: the path integral of gradients from a baseline to the input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

from torch import Tensor

from attrkit.core.attribution import GradientAttribution, MultiplyByInputsOption, captum_entry_point
from attrkit.core.call import AttributionCall, Result, format_baselines
from attrkit.core.docs import fill_doc
from attrkit.core.registry import register
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.methods.path import BaselineType, convergence_delta, integrate

__all__ = ["IntegratedGradients"]


@register(
    "integrated_gradients",
    family="path",
    aliases=("ig",),
    display_name="Integrated Gradients",
    paper="Sundararajan et al., Axiomatic Attribution for Deep Networks, ICML 2017, "
    "https://arxiv.org/abs/1703.01365",
    multiplies_by_inputs=True,
    has_convergence_delta=True,
)
@fill_doc
class IntegratedGradients(MultiplyByInputsOption, GradientAttribution):
    """Integrated Gradients (Sundararajan et al., 2017).

    The integral of the gradient along the straight path from the baseline ``b`` to the
    input ``x``, approximated by a quadrature rule, times ``x - b``:
    ``(x - b) * integral over alpha in [0, 1] of dF/dx(b + alpha * (x - b))``. The
    attributions of an example add up to ``F(x) - F(b)`` (completeness), up to the
    quadrature error that the convergence delta measures.

    Differences from Captum, where Captum is off: the quadrature weights and points are
    computed in the inputs' dtype from float64 values (Captum rounds them to float32,
    which limits float64 attributions to about 1e-8 relative accuracy), and
    ``riemann_trapezoid`` uses the trapezoid rule's weights, which sum to one (Captum's
    sum to ``(n_steps - 1) / n_steps``, scaling every attribution by that factor).
    ``internal_batch_size`` bounds the rows per forward pass exactly, even below the
    number of examples.

    Args:
        %(forward_func)s
        multiply_by_inputs (bool, optional): Multiply the integrated gradient by
            ``inputs - baselines`` (the method as published: global attribution). With
            ``False`` the result is the integrated gradient alone (local attribution).
            Default: ``True``.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
        ...                             torch.nn.Linear(4, 1))
        >>> x = torch.randn(2, 3)
        >>> ig = attrkit.IntegratedGradients(model)
        >>> attributions, delta = ig.attribute(x, n_steps=64,
        ...                                    return_convergence_delta=True)
        >>> bool(delta.abs().max() < 1e-4)
        True
    """

    def __init__(self, forward_func: Callable[..., Any], multiply_by_inputs: bool = True) -> None:
        super().__init__(forward_func)
        self._multiply_by_inputs = multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return True

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        *,
        return_convergence_delta: Literal[True],
    ) -> tuple[TensorOrTupleOfTensorsGeneric, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: Literal[False] = False,
    ) -> TensorOrTupleOfTensorsGeneric: ...

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        return_convergence_delta: bool = False,
    ) -> TensorOrTupleOfTensorsGeneric | tuple[TensorOrTupleOfTensorsGeneric, Tensor]:
        """Integrated gradients of the target output with respect to ``inputs``.

        Args:
            %(inputs)s
            %(baselines)s
            %(target)s
            %(additional_forward_args)s
            %(n_steps)s
            %(method)s
            %(internal_batch_size)s
            %(return_convergence_delta)s

        Returns:
            %(returns_attributions)s
            With ``return_convergence_delta=True``, a tuple ``(attributions, delta)``
            where ``delta`` has one entry per example.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=return_convergence_delta,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        baselines = format_baselines(options["baselines"], call.inputs)
        inputs = tuple(leaf.detach() for leaf in call.inputs)
        starts = tuple(b.expand_as(x) for b, x in zip(baselines, inputs, strict=True))
        totals = integrate(
            lambda examples, points: self._gradients(call.take(examples, points)),
            starts,
            inputs,
            method=options["method"],
            n_steps=options["n_steps"],
            internal_batch_size=options["internal_batch_size"],
        )
        if self._multiply_by_inputs:
            totals = tuple(t * (x - b) for t, x, b in zip(totals, inputs, starts, strict=True))
        delta = None
        if options["return_convergence_delta"]:
            delta = convergence_delta(self._forward, call, totals, starts)
        return Result(totals, delta)

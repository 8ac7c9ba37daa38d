"""DeepLift and DeepLiftShap on the model's inputs, on a layer and on one neuron.

Every variant runs the model on the baselines and on the inputs with DeepLift's rules at
every nonlinearity application (:mod:`attrkit.engine.rules.deeplift`), and one backward
pass from the inputs' outputs: where the model allows, in two forward passes, the
baselines' recording what each rule needs and the inputs' alone differentiated; otherwise
in one pass over the inputs followed by their baselines, as Captum does (:class:`_Pass`).
DeepLiftShap is DeepLift of every input against every row of a baseline distribution,
averaged over the baselines.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import captum.attr
import torch
from captum.attr import NeuronAttribution as _CaptumNeuronAttribution
from torch import Tensor, nn

from attrkit.core.attribution import (
    GradientAttribution,
    MultiplyByInputsOption,
    captum_entry_point,
    check_callable,
)
from attrkit.core.call import (
    AttributionCall,
    Result,
    check_attributable,
    check_baseline_tensor,
    format_baselines,
    format_grad_kwargs,
    gradients,
)
from attrkit.core.docs import fill_doc
from attrkit.core.layers import LayerCapture, NeuronSelector, check_layer, select_neuron
from attrkit.core.registry import register
from attrkit.core.typing import TargetType, TensorOrTupleOfTensorsGeneric
from attrkit.engine.reach import UnsupportedModelError
from attrkit.engine.rule import Rule
from attrkit.engine.rules.deeplift import (
    DEEPLIFT_MAX_POOL,
    DEEPLIFT_SOFTMAX,
    DEFAULT_EPS,
    PAPER,
    RESCALE,
    PairedBatch,
    SplitMismatch,
    SplitPasses,
    deeplift_rules,
)
from attrkit.methods.rule_based import RuleBased

__all__ = [
    "BaselineError",
    "DeepLift",
    "DeepLiftShap",
    "LayerDeepLift",
    "LayerDeepLiftShap",
    "NeuronDeepLift",
    "NeuronDeepLiftShap",
    "format_baseline_distribution",
]

SHAP_PAPER = (
    "Lundberg & Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017, "
    "https://arxiv.org/abs/1705.07874"
)

BaselineType = None | int | float | Tensor | tuple[int | float | Tensor, ...]
DistributionType = Tensor | tuple[Tensor | int | float, ...] | Callable[..., Any]
CustomFunc = Callable[..., tuple[Tensor, ...]] | None


class BaselineError(ValueError, AssertionError):
    """Baselines that do not form what the method needs (an ``AssertionError`` too, as
    Captum raises one for the same input)."""


# --------------------------------------------------------------------------- arguments


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"`eps` must be a number, got {type(eps).__name__}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"`eps` must be a finite number >= 0, got {eps!r}")
    return float(eps)


def format_baseline_distribution(
    baselines: object,
    call: AttributionCall,
    *,
    min_rows: int = 1,
    numbers: bool = False,
) -> tuple[Tensor | float, ...]:
    """Baselines drawn from a distribution, in every Captum form, one entry per input.

    A tensor (or a tuple of tensors, one per input tensor) whose rows are reference
    examples, or a callable returning them (called with the inputs, as the caller gave
    them, when it takes a parameter). The first entry must be a tensor of at least
    ``min_rows`` rows; with ``numbers`` the others may be numbers (GradientShap), else all
    are tensors with the same rows (DeepLiftShap).
    """
    if callable(baselines) and not isinstance(baselines, Tensor):
        given = tuple(x.detach() for x in call.inputs)
        takes_inputs = len(inspect.signature(baselines).parameters) > 0
        baselines = baselines(given if call.is_tuple else given[0]) if takes_inputs else baselines()
    entries = baselines if isinstance(baselines, tuple) else (baselines,)
    if len(entries) != len(call.inputs):
        raise BaselineError(
            f"`baselines` has {len(entries)} entries but `inputs` has {len(call.inputs)} tensors"
        )
    formatted: list[Tensor | float] = []
    for position, (baseline, x) in enumerate(zip(entries, call.inputs, strict=True)):
        label = f"baselines[{position}]" if isinstance(baselines, tuple) else "baselines"
        if not isinstance(baseline, Tensor):
            number = isinstance(baseline, (int, float)) and not isinstance(baseline, bool)
            if numbers and position > 0 and number:
                formatted.append(float(baseline))
                continue
            raise BaselineError(
                f"`{label}` must be a tensor of reference rows, got {type(baseline).__name__}"
            )
        check_baseline_tensor(baseline, label)
        rows = baseline.shape[0] if baseline.dim() else 0
        if baseline.dim() == 0 or baseline.shape[1:] != x.shape[1:]:
            raise BaselineError(
                f"`{label}` has shape {tuple(baseline.shape)}; its rows must have the "
                f"input's shape {tuple(x.shape[1:])}"
            )
        if position == 0 and rows < min_rows:
            raise BaselineError(
                f"`{label}` has {rows} row(s); a baseline distribution needs at least "
                f"{min_rows} (with a single baseline, use DeepLift)"
            )
        first = formatted[0] if formatted else baseline
        if not numbers and isinstance(first, Tensor) and rows != first.shape[0]:
            raise BaselineError(
                f"`{label}` has {rows} rows but `baselines[0]` has {first.shape[0]}; "
                "every input's distribution needs the same rows"
            )
        formatted.append(baseline.detach().to(dtype=x.dtype, device=x.device))
    return tuple(formatted)


def custom_attributions(
    function: Callable[..., Any],
    multipliers: tuple[Tensor, ...],
    inputs: tuple[Tensor, ...],
    baselines: tuple[Tensor, ...],
) -> tuple[Tensor, ...]:
    """``custom_attribution_func`` applied as Captum applies it: to the multipliers, and
    to the inputs and the baselines where it takes two or three parameters."""
    if not callable(function):
        raise TypeError(
            f"`custom_attribution_func` must be callable, got {type(function).__name__}"
        )
    count = len(inspect.signature(function).parameters)
    if not 1 <= count <= 3:
        raise BaselineError(
            "`custom_attribution_func` must take at least one and at most 3 arguments "
            f"(multipliers, inputs, baselines); it takes {count}"
        )
    result = function(*(multipliers, inputs, baselines)[:count])
    if not isinstance(result, tuple) or len(result) != len(multipliers):
        raise TypeError(
            f"`custom_attribution_func` must return a tuple of {len(multipliers)} tensor(s), "
            f"one per multiplier tensor; got {type(result).__name__}"
        )
    return result


def row_sums(tensors: Sequence[Tensor], rows: int) -> Tensor:
    """Per row, the sum of every tensor's entries in that row."""
    return sum(  # type: ignore[return-value]
        t.reshape(rows, math.prod(t.shape[1:])).sum(dim=1) for t in tensors
    )


def mean_over_baselines(tensors: tuple[Tensor, ...], examples: int) -> tuple[Tensor, ...]:
    """Rows ``i * B ... (i + 1) * B - 1`` (example ``i`` against each of ``B`` baselines,
    or samples) averaged."""
    return tuple(
        t.reshape(examples, len(t) // max(examples, 1), *t.shape[1:]).mean(dim=1) for t in tensors
    )


# ------------------------------------------------------------------------- the passes


def _splittable(model: Callable[..., Any]) -> bool:
    """Whether the model may run the inputs and the baselines in two passes: a module
    none of whose batch or instance normalization layers is in training mode (which would
    normalize each pass by its own statistics, and update the running statistics twice)."""
    if not isinstance(model, nn.Module):
        return False
    return not any(
        module.training
        and isinstance(
            module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
        )
        for module in model.modules()
    )


class _RandomState:
    """The random generators a forward pass on ``devices`` may draw from, to tell
    whether it drew (a pass that draws, say through dropout, would draw differently in
    two passes than in one paired batch)."""

    def __init__(self, devices: set[torch.device]) -> None:
        self.cuda = sorted({d.index or 0 for d in devices if d.type == "cuda"})
        self.states = self._read()

    def _read(self) -> list[Tensor]:
        return [torch.get_rng_state(), *(torch.cuda.get_rng_state(i) for i in self.cuda)]

    def drawn(self) -> bool:
        """Whether a generator moved; if so, put it back."""
        # (the states are byte tensors on the CPU: compared as bytes, outside torch)
        now = [state.numpy().tobytes() for state in self._read()]
        if now == [state.numpy().tobytes() for state in self.states]:
            return False
        torch.set_rng_state(self.states[0])
        for index, state in zip(self.cuda, self.states[1:], strict=True):
            torch.cuda.set_rng_state(state, index)
        return True


class _Pass:
    """The model run on rows of the inputs and on their references.

    Where the model allows (:func:`_splittable`), two passes: the references' first, whose
    rule applications record their values, then the inputs', which alone is
    differentiated (:class:`~attrkit.engine.rules.deeplift.SplitPasses`). Where it does
    not, or the passes do not match, one pass over the inputs followed by their references
    (:class:`~attrkit.engine.rules.deeplift.PairedBatch`), as Captum runs them.

    Attributes:
        size: The rows of the inputs (and of the references).
        target: The target of the inputs' rows.
        leaves: The tensors to differentiate: their first ``size`` rows are the inputs'.
        outputs: The model's output on the inputs' rows and on the references' (paired:
            both the paired batch's output).
        layers: With a layer capture, its tensors on the inputs' rows (to differentiate;
            paired: the paired batch's) and on the references' rows.
    """

    def __init__(
        self,
        method: _DeepLiftRules,
        call: AttributionCall,
        rows: Tensor,
        inputs: tuple[Tensor, ...],
        references: tuple[Tensor, ...],
        capture: Callable[[], LayerCapture] | None = None,
    ) -> None:
        self.size = len(rows)
        self.target = call.target.take(rows)
        self.split = _splittable(method.model)
        if self.split:
            try:
                self._run_split(method, call, rows, inputs, references, capture)
                return
            except UnsupportedModelError:  # a refusal holds for the paired batch too
                raise
            except Exception:
                # SplitMismatch, or a model that fails with autograd off (one that
                # differentiates inside its forward, say): the paired batch, which raises
                # the model's own error if it fails there too.
                self.split = False
        paired = call.take(
            torch.cat([rows, rows]),
            tuple(torch.cat([x, r]) for x, r in zip(inputs, references, strict=True)),
        )
        self.leaves = paired.inputs
        with PairedBatch(2 * self.size, paired.inputs):
            output, captured = _run(method, paired, capture)
        self.outputs = (output, output)
        if captured is not None:
            tensors = _layer_tensors(captured, 2 * self.size)
            self.layers = (tensors, tuple(t[self.size :].detach() for t in tensors))

    def _run_split(
        self,
        method: _DeepLiftRules,
        call: AttributionCall,
        rows: Tensor,
        inputs: tuple[Tensor, ...],
        references: tuple[Tensor, ...],
        capture: Callable[[], LayerCapture] | None,
    ) -> None:
        passes = SplitPasses(self.size)
        reference_call = call.take(rows, references)
        random = _RandomState({x.device for x in inputs})
        with torch.no_grad(), passes.reference(reference_call.inputs):
            reference, reference_layer = _run(method, reference_call, capture)
        reference_tensors = () if reference_layer is None else reference_layer.tensors
        if random.drawn():
            raise SplitMismatch("the forward pass draws random numbers")
        input_call = call.take(rows, inputs)
        self.leaves = input_call.inputs
        with passes.inputs(input_call.inputs):
            output, captured = _run(method, input_call, capture)
        self.outputs = (output, reference)
        if captured is not None:
            tensors = _layer_tensors(captured, self.size)
            if [t.shape for t in tensors] != [t.shape for t in reference_tensors]:
                raise SplitMismatch("the layer's tensors differ between the passes")
            self.layers = (tensors, reference_tensors)

    def select(self) -> Tensor:
        """The targeted output of every row (the input rows first). A bad target or output
        is described by the inputs' rows, as the caller sees the batch."""
        size = self.size
        if self.split:  # (the references' pass ran without autograd)
            return torch.cat([self._select(output, size, 0) for output in self.outputs])
        output = self.outputs[0]
        return torch.cat([self._select(output, 2 * size, 0), self._select(output, 2 * size, 1)])

    def _select(self, output: Any, rows: int, half: int) -> Tensor:
        """The targeted output of the ``half``-th ``size`` rows of a batch of ``rows``."""
        size = self.size
        if not (isinstance(output, Tensor) and output.dim() and output.shape[0] == rows):
            self.target.select(output, size)  # raises, describing the output
            raise ValueError(
                f"the model's output has shape {tuple(output.shape)}, but dimension 0 must be "
                f"the batch of {rows} rows"
                + (f", the {size} of `inputs` followed by their baselines" if rows > size else "")
            )
        check_attributable(output)  # (a sparse output cannot be split in halves)
        return self.target.select(output[half * size : (half + 1) * size], size)

    def delta(self, attributions: tuple[Tensor, ...], selected: Tensor) -> Tensor:
        """``sum(attributions) - (F(input) - F(reference))`` per row."""
        difference = (selected[: self.size] - selected[self.size :]).detach()
        return row_sums(attributions, self.size) - difference


def _run(
    method: _DeepLiftRules,
    call: AttributionCall,
    capture: Callable[[], LayerCapture] | None,
) -> tuple[Any, LayerCapture | None]:
    """The model's output on ``call``, and the layer's tensors ``capture()`` captured."""
    if capture is None:
        return method._forward(call), None
    captured = capture()
    with captured:
        return method._forward(call), captured


def _layer_tensors(captured: LayerCapture, rows: int) -> tuple[Tensor, ...]:
    """The captured tensors of a pass over ``rows`` rows, checked."""
    for tensor in captured.tensors:
        if tensor.layout != torch.strided:
            raise TypeError(f"`layer`'s tensor is a {tensor.layout} tensor; it must be dense")
        if tensor.dim() == 0 or tensor.shape[0] != rows:
            raise ValueError(
                f"`layer`'s tensor has shape {tuple(tensor.shape)}; DeepLift needs its "
                f"dimension 0 to be the batch of the pass ({rows} rows)"
            )
    return captured.tensors


class _DeepLiftRules(MultiplyByInputsOption, RuleBased, GradientAttribution):
    """What every DeepLift variant shares: DeepLift's rules with ``eps`` at every
    nonlinearity of the forward pass, the paired pass, and the attributions from the
    multipliers."""

    rules: ClassVar[tuple[Rule, ...]] = (RESCALE, DEEPLIFT_MAX_POOL, DEEPLIFT_SOFTMAX)

    def __init__(
        self, model: Callable[..., Any], multiply_by_inputs: bool = True, eps: float = DEFAULT_EPS
    ) -> None:
        check_callable(model, "model")
        GradientAttribution.__init__(self, model)
        self._multiply_by_inputs = multiply_by_inputs
        self._use_rules(model, deeplift_rules(_check_eps(eps)))
        self._eps = eps

    @property
    def eps(self) -> float:
        """Below this ``|input - reference input|`` a nonlinearity passes its gradient."""
        return self._eps

    @eps.setter
    def eps(self, value: float) -> None:
        self._use_rules(self.model, deeplift_rules(_check_eps(value)))
        self._eps = value

    def _attributions(
        self,
        multipliers: tuple[Tensor, ...],
        inputs: tuple[Tensor, ...],
        references: tuple[Tensor, ...],
        custom: CustomFunc,
    ) -> tuple[Tensor, ...]:
        if custom is not None:
            return custom_attributions(custom, multipliers, inputs, references)
        if not self._multiply_by_inputs:
            return multipliers
        return tuple((x - r) * m for x, r, m in zip(inputs, references, multipliers, strict=True))

    def _pairs(
        self, call: AttributionCall, baselines: object, shap: bool
    ) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        """The rows to attribute: ``(example of each row, input rows, reference rows)``;
        every example against its baseline (DeepLift) or against every row of the
        baseline distribution (DeepLiftShap)."""
        inputs = tuple(x.detach() for x in call.inputs)
        if not shap:
            references = format_baselines(baselines, inputs)
            expanded = tuple(b.expand_as(x) for b, x in zip(references, inputs, strict=True))
            return torch.arange(call.batch_size), inputs, expanded
        distribution = format_baseline_distribution(baselines, call, min_rows=2)
        count = distribution[0].shape[0]  # type: ignore[union-attr]
        rows = torch.arange(call.batch_size).repeat_interleave(count)
        repeated = tuple(
            b.repeat(call.batch_size, *([1] * (b.dim() - 1)))  # type: ignore[union-attr]
            for b in distribution
        )
        return rows, tuple(x[rows.to(x.device)] for x in inputs), repeated

    def _input_attribution(
        self, call: AttributionCall, shap: bool, **options: Any
    ) -> tuple[tuple[Tensor, ...], _Pass, Tensor]:
        """Attributions of the targeted output to every row of the inputs, the pass, and
        the selected outputs."""
        rows, inputs, references = self._pairs(call, options["baselines"], shap)
        paired = _Pass(self, call, rows, inputs, references)
        selected = paired.select()
        grads = gradients(selected[: paired.size], paired.leaves)
        multipliers = tuple(g[: paired.size] for g in grads)
        attributions = self._attributions(
            multipliers, inputs, references, options["custom_attribution_func"]
        )
        return attributions, paired, selected


@register(
    "deep_lift",
    family="deeplift",
    display_name="DeepLift",
    paper=PAPER,
    multiplies_by_inputs=True,
    has_convergence_delta=True,
)
@fill_doc
class DeepLift(_DeepLiftRules, captum.attr.DeepLift):  # type: ignore[misc]
    """DeepLift with the rescale rule (Shrikumar et al., 2017), in the gradient form of
    Ancona et al. (2018).

    Every elementwise nonlinearity application passes back ``(y - y_ref) / (x - x_ref)``
    instead of its derivative, where ``x_ref`` is the value the unit takes on the
    baseline; max-pooling and softmax get DeepLift's rules for them. The attributions
    ``(inputs - baselines) * multipliers`` of an example then add up to
    ``F(inputs) - F(baselines)`` (summation to delta) on any network of linear operations
    and these nonlinearities.

    Unlike Captum's, the rules reach every application of every nonlinearity in every
    spelling: ``nn`` modules (reused, in place, created inside ``forward``), ``F.*``,
    ``torch.*`` and ``Tensor.*`` calls and their in-place forms, for ReLU, ELU, leaky
    ReLU, sigmoid, tanh, softplus, GELU, SiLU, hardswish, ReLU6 / hardtanh, mish and
    the other ops of :data:`attrkit.engine.ops.ELEMENTWISE` (and ops registered with
    :func:`attrkit.engine.rules.deeplift.register_elementwise_op`), and max-pooling in
    every form. The softmax rule normalizes per example (Captum's over the whole batch).
    ``docs/captum_deviations.rst`` lists the differences.

    Args:
        %(model)s
        %(multiply_by_inputs)s
        eps (float, optional): Where ``|x - x_ref|`` is below ``eps`` a nonlinearity
            passes its plain gradient. Default: ``1e-10``.

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
        ...                             torch.nn.Linear(4, 1))
        >>> x = torch.randn(2, 3, dtype=torch.float64)
        >>> attributions, delta = attrkit.DeepLift(model.double()).attribute(
        ...     x, return_convergence_delta=True)
        >>> bool(delta.abs().max() < 1e-12)
        True
    """

    def __init__(
        self, model: Callable[..., Any], multiply_by_inputs: bool = True, eps: float = DEFAULT_EPS
    ) -> None:
        super().__init__(model, multiply_by_inputs, eps)

    def has_convergence_delta(self) -> bool:
        return True

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: bool = False,
        custom_attribution_func: CustomFunc = None,
    ) -> TensorOrTupleOfTensorsGeneric | tuple[TensorOrTupleOfTensorsGeneric, Tensor]:
        """DeepLift attributions of the target output to ``inputs``.

        Args:
            %(inputs)s
            %(baselines)s
            %(target)s
            %(additional_forward_args)s
            %(return_convergence_delta)s
            %(custom_attribution_func)s

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
            return_convergence_delta=return_convergence_delta,
            custom_attribution_func=custom_attribution_func,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        attributions, paired, selected = self._input_attribution(call, shap=False, **options)
        delta = None
        if options["return_convergence_delta"]:
            delta = paired.delta(attributions, selected)
        return Result(attributions, delta)


@register(
    "deep_lift_shap",
    family="deeplift",
    aliases=("deep_shap",),
    display_name="DeepLiftShap",
    paper=SHAP_PAPER,
    multiplies_by_inputs=True,
    has_convergence_delta=True,
)
@fill_doc
class DeepLiftShap(DeepLift, captum.attr.DeepLiftShap):  # type: ignore[misc]
    """DeepLiftShap (Lundberg & Lee, 2017): DeepLift of every example against every row
    of a baseline distribution, averaged over the baselines, an approximation of SHAP
    values.

    The same rules as :class:`DeepLift`, applied everywhere; each example's attributions
    against each baseline add up to ``F(input) - F(baseline)``, so their average adds
    up to ``F(input)`` minus the mean output over the baselines.

    Args:
        %(model)s
        %(multiply_by_inputs)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> background = torch.randn(10, 3)
        >>> attrkit.DeepLiftShap(model).attribute(torch.randn(2, 3), background,
        ...                                       target=1).shape
        torch.Size([2, 3])
    """

    def __init__(self, model: Callable[..., Any], multiply_by_inputs: bool = True) -> None:
        super().__init__(model, multiply_by_inputs)

    @captum_entry_point
    @fill_doc
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: DistributionType,
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: bool = False,
        custom_attribution_func: CustomFunc = None,
    ) -> TensorOrTupleOfTensorsGeneric | tuple[TensorOrTupleOfTensorsGeneric, Tensor]:
        """DeepLiftShap attributions of the target output to ``inputs``.

        Args:
            %(inputs)s
            %(baseline_distribution)s
                It needs at least two rows.
            %(target)s
            %(additional_forward_args)s
            %(return_convergence_delta)s
            %(custom_attribution_func)s

        Returns:
            %(returns_attributions)s
            With ``return_convergence_delta=True``, a tuple ``(attributions, delta)``
            where ``delta`` has one entry per example and baseline, ordered by example.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            return_convergence_delta=return_convergence_delta,
            custom_attribution_func=custom_attribution_func,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        attributions, paired, selected = self._input_attribution(call, shap=True, **options)
        delta = None
        if options["return_convergence_delta"]:
            delta = paired.delta(attributions, selected)
        return Result(mean_over_baselines(attributions, call.batch_size), delta)


# ------------------------------------------------------------------------------ layers


class _LayerDeepLiftBase(_DeepLiftRules):
    """DeepLift of the target output to a layer's output (or input); each class derives
    from its Captum namesake too (a ``captum.attr.LayerAttribution``)."""

    def __init__(
        self, model: Callable[..., Any], layer: nn.Module, multiply_by_inputs: bool = True
    ) -> None:
        super().__init__(model, multiply_by_inputs)
        self.layer = check_layer(layer, model)
        self.device_ids = None

    def has_convergence_delta(self) -> bool:
        return True

    def _layer_result(self, call: AttributionCall, shap: bool, **options: Any) -> Result:
        rows, inputs, references = self._pairs(call, options["baselines"], shap)
        to_input = options["attribute_to_layer_input"]
        paired = _Pass(
            self, call, rows, inputs, references, lambda: LayerCapture(self.layer, to_input)
        )
        tensors, layer_references = paired.layers
        selected = paired.select()
        grads = gradients(
            selected[: paired.size], tensors, **format_grad_kwargs(options.get("grad_kwargs"))
        )
        multipliers = tuple(g[: paired.size] for g in grads)
        layer_inputs = tuple(t[: paired.size].detach() for t in tensors)
        attributions = self._attributions(
            multipliers, layer_inputs, layer_references, options["custom_attribution_func"]
        )
        delta = None
        if options["return_convergence_delta"]:
            delta = paired.delta(attributions, selected)
        if shap:
            attributions = mean_over_baselines(attributions, call.batch_size)
        return Result(attributions, delta, is_tuple=len(attributions) > 1)


@register(
    "layer_deep_lift",
    family="deeplift",
    display_name="Layer DeepLift",
    paper=PAPER,
    multiplies_by_inputs=True,
    has_convergence_delta=True,
    layer_output=True,
)
@fill_doc
class LayerDeepLift(_LayerDeepLiftBase, captum.attr.LayerDeepLift):  # type: ignore[misc]
    """DeepLift of the target output to a layer's output (or input): the layer's
    multipliers times its difference between inputs and baselines.

    The rules of :class:`DeepLift` apply to every nonlinearity after the layer (and, with
    ``attribute_to_layer_input=True``, to the layer itself when it is one); the
    attributions add up to ``F(inputs) - F(baselines)``. The result has the layer's
    shape: a tensor for a layer with one output tensor, a tuple otherwise.

    Args:
        %(model)s
        %(layer)s
        %(multiply_by_inputs)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> attrkit.LayerDeepLift(model, model[0]).attribute(torch.randn(5, 3),
        ...                                                  target=0).shape
        torch.Size([5, 4])
    """

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: BaselineType = None,
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        custom_attribution_func: CustomFunc = None,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> Tensor | tuple[Tensor, ...] | tuple[Tensor | tuple[Tensor, ...], Tensor]:
        """DeepLift attributions of the target output to the layer.

        Args:
            %(inputs)s
            %(baselines)s
            %(target)s
            %(additional_forward_args)s
            %(return_convergence_delta)s
            attribute_to_layer_input (bool, optional): Attribute to the layer's input
                instead of its output. Default: ``False``.
            %(custom_attribution_func)s
            grad_kwargs (dict, optional): Extra arguments for ``torch.autograd.grad``.

        Returns:
            Tensor or tuple[Tensor, ...]: One attribution tensor per layer tensor; with
            ``return_convergence_delta=True``, a tuple ``(attributions, delta)``.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            return_convergence_delta=return_convergence_delta,
            attribute_to_layer_input=attribute_to_layer_input,
            custom_attribution_func=custom_attribution_func,
            grad_kwargs=grad_kwargs,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        return self._layer_result(call, shap=False, **options)


@register(
    "layer_deep_lift_shap",
    family="deeplift",
    aliases=("layer_deep_shap",),
    display_name="Layer DeepLiftShap",
    paper=SHAP_PAPER,
    multiplies_by_inputs=True,
    has_convergence_delta=True,
    layer_output=True,
)
@fill_doc
class LayerDeepLiftShap(_LayerDeepLiftBase, captum.attr.LayerDeepLiftShap):  # type: ignore[misc]
    """DeepLiftShap on a layer: :class:`LayerDeepLift` of every example against every
    row of a baseline distribution, averaged over the baselines.

    Args:
        %(model)s
        %(layer)s
        %(multiply_by_inputs)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.LayerDeepLiftShap(model, model[0])
        >>> explainer.attribute(torch.randn(5, 3), torch.randn(4, 3), target=0).shape
        torch.Size([5, 4])
    """

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        baselines: DistributionType,
        target: TargetType = None,
        additional_forward_args: object = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        custom_attribution_func: CustomFunc = None,
    ) -> Tensor | tuple[Tensor, ...] | tuple[Tensor | tuple[Tensor, ...], Tensor]:
        """DeepLiftShap attributions of the target output to the layer.

        Args:
            %(inputs)s
            %(baseline_distribution)s
                It needs at least two rows.
            %(target)s
            %(additional_forward_args)s
            %(return_convergence_delta)s
            attribute_to_layer_input (bool, optional): Attribute to the layer's input
                instead of its output. Default: ``False``.
            %(custom_attribution_func)s

        Returns:
            Tensor or tuple[Tensor, ...]: One attribution tensor per layer tensor; with
            ``return_convergence_delta=True``, a tuple ``(attributions, delta)`` where
            ``delta`` has one entry per example and baseline.
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            target,
            additional_forward_args,
            baselines=baselines,
            return_convergence_delta=return_convergence_delta,
            attribute_to_layer_input=attribute_to_layer_input,
            custom_attribution_func=custom_attribution_func,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        return self._layer_result(call, shap=True, **options)


# ----------------------------------------------------------------------------- neurons


class _NeuronDeepLiftBase(_DeepLiftRules, _CaptumNeuronAttribution):  # type: ignore[misc]
    """DeepLift of one neuron of a layer to the inputs."""

    def __init__(
        self, model: Callable[..., Any], layer: nn.Module, multiply_by_inputs: bool = True
    ) -> None:
        super().__init__(model, multiply_by_inputs)
        self.layer = check_layer(layer, model)
        self.device_ids = None

    def _neuron_result(self, call: AttributionCall, shap: bool, **options: Any) -> Result:
        rows, inputs, references = self._pairs(call, options["baselines"], shap)
        to_input = options["attribute_to_neuron_input"]
        paired = _Pass(
            self, call, rows, inputs, references, lambda: LayerCapture(self.layer, to_input)
        )
        # The selector sees the input rows (only they reach the inputs' attributions).
        neuron = select_neuron(
            tuple(t[: paired.size] for t in paired.layers[0]),
            options["neuron_selector"],
            paired.size,
        )
        grads = gradients(neuron, paired.leaves)
        multipliers = tuple(g[: paired.size] for g in grads)
        attributions = self._attributions(
            multipliers, inputs, references, options["custom_attribution_func"]
        )
        if shap:
            attributions = mean_over_baselines(attributions, call.batch_size)
        return Result(attributions)


@register(
    "neuron_deep_lift",
    family="deeplift",
    display_name="Neuron DeepLift",
    paper=PAPER,
    multiplies_by_inputs=True,
)
@fill_doc
class NeuronDeepLift(_NeuronDeepLiftBase):
    """DeepLift of one neuron of a hidden layer to the inputs: its attributions add up to
    the neuron's value on the inputs minus its value on the baselines.

    Args:
        %(model)s
        %(layer)s
        %(multiply_by_inputs)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.NeuronDeepLift(model, model[2])
        >>> explainer.attribute(torch.randn(5, 3), neuron_selector=1).shape
        torch.Size([5, 3])
    """

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        neuron_selector: NeuronSelector,
        baselines: BaselineType = None,
        additional_forward_args: object = None,
        attribute_to_neuron_input: bool = False,
        custom_attribution_func: CustomFunc = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """DeepLift attributions of one neuron of the layer to ``inputs``.

        Args:
            %(inputs)s
            %(neuron_selector)s
                A callable receives the layer's tensor of the inputs' rows (Captum's
                receives the inputs' rows followed by the baselines').
            %(baselines)s
            %(additional_forward_args)s
            attribute_to_neuron_input (bool, optional): Select the neuron in the layer's
                input instead of its output. Default: ``False``.
            %(custom_attribution_func)s

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            None,
            additional_forward_args,
            neuron_selector=neuron_selector,
            baselines=baselines,
            attribute_to_neuron_input=attribute_to_neuron_input,
            custom_attribution_func=custom_attribution_func,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        return self._neuron_result(call, shap=False, **options)


@register(
    "neuron_deep_lift_shap",
    family="deeplift",
    aliases=("neuron_deep_shap",),
    display_name="Neuron DeepLiftShap",
    paper=SHAP_PAPER,
    multiplies_by_inputs=True,
)
@fill_doc
class NeuronDeepLiftShap(_NeuronDeepLiftBase):
    """DeepLiftShap of one neuron of a hidden layer: :class:`NeuronDeepLift` against
    every row of a baseline distribution, averaged over the baselines.

    Args:
        %(model)s
        %(layer)s
        %(multiply_by_inputs)s

    Example:
        >>> import torch, attrkit
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> explainer = attrkit.NeuronDeepLiftShap(model, model[0])
        >>> explainer.attribute(torch.randn(5, 3), 2, torch.randn(4, 3)).shape
        torch.Size([5, 3])
    """

    @captum_entry_point
    @fill_doc
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        neuron_selector: NeuronSelector,
        baselines: DistributionType,
        additional_forward_args: object = None,
        attribute_to_neuron_input: bool = False,
        custom_attribution_func: CustomFunc = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """DeepLiftShap attributions of one neuron of the layer to ``inputs``.

        Args:
            %(inputs)s
            %(neuron_selector)s
                A callable receives the layer's tensor of the inputs' rows, one per
                example and baseline (Captum's receives them followed by the
                baselines').
            %(baseline_distribution)s
                It needs at least two rows.
            %(additional_forward_args)s
            attribute_to_neuron_input (bool, optional): Select the neuron in the layer's
                input instead of its output. Default: ``False``.
            %(custom_attribution_func)s

        Returns:
            %(returns_attributions)s
        """
        return self._attribute(  # type: ignore[no-any-return]
            inputs,
            None,
            additional_forward_args,
            neuron_selector=neuron_selector,
            baselines=baselines,
            attribute_to_neuron_input=attribute_to_neuron_input,
            custom_attribution_func=custom_attribution_func,
        )

    def _compute(self, call: AttributionCall, **options: Any) -> Result:
        return self._neuron_result(call, shap=True, **options)

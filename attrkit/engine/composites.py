"""Which LRP rule each application of an op gets: zennit's composites, and Captum's rules.

A :class:`Composite` picks the rule of one op application (zennit's composites pick one per
module type; here the same choice is made per op application, whatever its spelling). The
method's rule set holds one :class:`CompositeRule` for every op LRP rules (the layer ops,
max-pool, the elementwise activations); while one call's forward pass runs, its
:class:`Propagation` (thread-local, per call) says which composite decides and remembers
what was decided: whether the first linear layer has been applied yet, and the autograd
node of every ruled application (for :func:`~attrkit.engine.relevance.check_relevance_path`).

"The first layer" of a composite (zennit's ``first_map``) is the first application of a
linear layer or a convolution in the forward pass: it gets the composite's first rule if
that rule is defined for its op (``epsilon_gamma_box``'s z-box rule is defined for
convolutions only), and the ordinary rule otherwise.
"""

from __future__ import annotations

import inspect
import sys
import threading
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attrkit.engine.ops import (
    ADD,
    AVERAGES,
    BATCH_NORM,
    CONVOLUTION,
    DIV,
    DROPOUT,
    ELEMENTWISE,
    LINEAR,
    LINEAR_LAYERS,
    MUL,
    RELU,
    TRANSPOSED_CONVOLUTION,
    Op,
    OpCall,
)
from attrkit.engine.rule import Rule, register_rule
from attrkit.engine.rules.lrp import (
    LRP_OPS,
    LRP_PAPER,
    ActivationPassRule,
    AlphaBetaRule,
    BetaSmoothRule,
    EpsilonRule,
    FlatRule,
    GammaRule,
    GradientRule,
    IdentityRule,
    LayerRule,
    MergeBatchNormRule,
    NormRule,
    ScaleRule,
    Stabilizer,
    SumRule,
    WeightRule,
    ZBoxRule,
    ZPlusRule,
    captum_alpha1_beta0,
    captum_gamma,
)
from attrkit.engine.rules.relu import DECONVOLUTION, GUIDED_BACKPROP

__all__ = [
    "COMPOSITES",
    "LRP",
    "CaptumRules",
    "Composite",
    "CompositeRule",
    "LayerMapComposite",
    "Propagation",
    "calling_module",
    "make_composite",
]

ACTIVATION_PASS = ActivationPassRule()
GRADIENT = GradientRule()
MERGE_BATCH_NORM = MergeBatchNormRule()
SCALE = ScaleRule()


class Composite(ABC):
    """Picks the rule of each application of an op.

    Attributes:
        name: Its name (zennit's, for zennit's composites).
        checks_relevance: Whether every op on the path from the inputs to the output must
            have a rule or pass the relevance on unchanged (LRP composites), rather than
            keep its gradient (zennit's gradient composites: ``deconvnet``, ...).
    """

    name: str
    checks_relevance: bool = True

    @abstractmethod
    def rule_for(self, call: OpCall, propagation: Propagation) -> Rule:
        """The rule of the application ``call``."""


class Propagation:
    """The LRP state of one call's forward pass, active on the calling thread while the
    forward pass runs (``with propagation: ...``).

    Attributes:
        composite: What picks each application's rule.
        verbose: Print each application's rule (Captum's ``verbose``).
        first_layer_seen: Whether a linear layer has been applied yet.
        nodes: The autograd node of each ruled application's output -> its rule.
    """

    def __init__(self, composite: Composite, verbose: bool = False) -> None:
        self.composite = composite
        self.verbose = verbose
        self.first_layer_seen = False
        self.nodes: dict[Any, Rule] = {}

    def is_first_layer(self, op: Op) -> bool:
        """Whether this application of ``op`` is the first of a linear layer (call it once
        per application of a linear layer)."""
        if op not in LINEAR_LAYERS:
            return False
        first = not self.first_layer_seen
        self.first_layer_seen = True
        return first

    def __enter__(self) -> Propagation:
        stack: list[Propagation] = _state.__dict__.setdefault("stack", [])
        stack.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _state.stack.pop()


_state = threading.local()


def _current() -> Propagation:
    stack = getattr(_state, "stack", None)
    if not stack:
        raise RuntimeError("the LRP rule applies only during an LRP call's forward pass")
    return stack[-1]  # type: ignore[no-any-return]


class CompositeRule(Rule):
    """The rule of every op LRP rules: the one the active call's composite picks for each
    application (see :class:`Propagation`)."""

    name = "lrp"
    ops = (*LRP_OPS, ADD, MUL, DIV, DROPOUT, *ELEMENTWISE)
    backward = "the composite's rule for this application"
    paper = LRP_PAPER
    # zennit's equivalent is the composite the call names (none for Captum's rules).
    zennit = ""

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def apply(self, call: OpCall) -> Any:
        # Under torch.compile, the choice per application runs eagerly (a graph break):
        # traced, it would recompile for every op and rule.
        propagation = _current()
        rule = propagation.composite.rule_for(call, propagation)
        output = rule.apply(call)
        first = output[0] if isinstance(output, tuple) else output
        if isinstance(first, Tensor) and first.grad_fn is not None:
            propagation.nodes[first.grad_fn] = rule
        if propagation.verbose:
            module = calling_module()
            where = f"layer {module}" if module is not None else f"a {call.op.title} call"
            print(f"Applied {rule!r} on {where}")
        return output


LRP = register_rule(CompositeRule())


_CALL_IMPL = nn.Module._call_impl.__code__


def calling_module() -> nn.Module | None:
    """The innermost module whose call is running on this thread, or ``None``."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _CALL_IMPL:
            module = frame.f_locals.get("self")
            return module if isinstance(module, nn.Module) else None
        frame = frame.f_back
    return None


# ------------------------------------------------------------------- zennit's composites


@dataclass(frozen=True)
class LayerMapComposite(Composite):
    """A composite that picks the rule by op (zennit's ``LayerMapComposite`` and
    ``SpecialFirstLayerMapComposite``, which pick it by module type).

    Attributes:
        name: Its name.
        rules: Op name -> rule; ops not listed keep their gradient.
        first: Op name -> rule of the first linear layer, where it is that op.
        checks_relevance: See :class:`Composite`.
    """

    name: str
    rules: Mapping[str, Rule]
    first: Mapping[str, Rule] = field(default_factory=dict)
    checks_relevance: bool = True

    def rule_for(self, call: OpCall, propagation: Propagation) -> Rule:
        op = call.op
        if propagation.is_first_layer(op) and op.name in self.first:
            return self.first[op.name]
        return self.rules.get(op.name, GRADIENT)


def _names(ops: Iterable[Op], rule: Rule) -> dict[str, Rule]:
    return dict.fromkeys((op.name for op in ops), rule)


def _base(stabilizer: Stabilizer) -> dict[str, Rule]:
    """zennit's ``layer_map_base``: activations pass the relevance on, average pooling
    gets the norm rule; batch-norm is merged into the layer before it (zennit's
    ``SequentialMergeBatchNorm``; zennit's composites alone would pass the relevance
    through it)."""
    return {
        **_names((*ELEMENTWISE, DROPOUT), ACTIVATION_PASS),
        **_names(AVERAGES, NormRule(stabilizer)),
        ADD.name: SumRule(stabilizer),
        **_names((MUL, DIV), SCALE),
        BATCH_NORM.name: MERGE_BATCH_NORM,
    }


_CONVOLUTIONS = (CONVOLUTION, TRANSPOSED_CONVOLUTION)


def _epsilon_and(
    name: str,
    convolution: LayerRule,
    epsilon: Stabilizer,
    stabilizer: Stabilizer,
    zero_params: str | list[str] | None,
    first: Mapping[str, Rule] | None = None,
) -> LayerMapComposite:
    """A composite with ``convolution`` on convolutions and the epsilon rule on the
    linear layers."""
    return LayerMapComposite(
        name,
        {
            **_base(stabilizer),
            **_names(_CONVOLUTIONS, convolution),
            LINEAR.name: EpsilonRule(epsilon, zero_params),
        },
        first or {},
    )


def epsilon_gamma_box(
    low: float | Tensor,
    high: float | Tensor,
    epsilon: Stabilizer = 1e-6,
    gamma: float = 0.25,
    stabilizer: Stabilizer = 1e-6,
    zero_params: str | list[str] | None = None,
) -> LayerMapComposite:
    """z-box on the first layer if it is a convolution, gamma on the other convolutions,
    epsilon on the linear layers."""
    box = ZBoxRule(low, high, stabilizer, zero_params)
    return _epsilon_and(
        "epsilon_gamma_box",
        GammaRule(gamma, stabilizer, zero_params),
        epsilon,
        stabilizer,
        zero_params,
        first=_names(_CONVOLUTIONS, box),
    )


def epsilon_plus(
    epsilon: Stabilizer = 1e-6,
    stabilizer: Stabilizer = 1e-6,
    zero_params: str | list[str] | None = None,
) -> LayerMapComposite:
    """z-plus on the convolutions, epsilon on the linear layers."""
    convolution = ZPlusRule(stabilizer, zero_params)
    return _epsilon_and("epsilon_plus", convolution, epsilon, stabilizer, zero_params)


def epsilon_alpha2_beta1(
    epsilon: Stabilizer = 1e-6,
    stabilizer: Stabilizer = 1e-6,
    zero_params: str | list[str] | None = None,
) -> LayerMapComposite:
    """alpha=2, beta=1 on the convolutions, epsilon on the linear layers."""
    convolution = AlphaBetaRule(2.0, 1.0, stabilizer, zero_params)
    return _epsilon_and("epsilon_alpha2_beta1", convolution, epsilon, stabilizer, zero_params)


def _flat_first(stabilizer: Stabilizer, zero_params: str | list[str] | None) -> dict[str, Rule]:
    return _names(LINEAR_LAYERS, FlatRule(stabilizer, zero_params))


def epsilon_plus_flat(
    epsilon: Stabilizer = 1e-6,
    stabilizer: Stabilizer = 1e-6,
    zero_params: str | list[str] | None = None,
) -> LayerMapComposite:
    """flat on the first layer, z-plus on the other convolutions, epsilon on the other
    linear layers."""
    convolution = ZPlusRule(stabilizer, zero_params)
    first = _flat_first(stabilizer, zero_params)
    return _epsilon_and("epsilon_plus_flat", convolution, epsilon, stabilizer, zero_params, first)


def epsilon_alpha2_beta1_flat(
    epsilon: Stabilizer = 1e-6,
    stabilizer: Stabilizer = 1e-6,
    zero_params: str | list[str] | None = None,
) -> LayerMapComposite:
    """flat on the first layer, alpha=2, beta=1 on the other convolutions, epsilon on
    the other linear layers."""
    convolution = AlphaBetaRule(2.0, 1.0, stabilizer, zero_params)
    first = _flat_first(stabilizer, zero_params)
    return _epsilon_and(
        "epsilon_alpha2_beta1_flat", convolution, epsilon, stabilizer, zero_params, first
    )


def excitation_backprop(
    stabilizer: Stabilizer = 1e-6, zero_params: str | list[str] | None = None
) -> LayerMapComposite:
    """z-plus on every linear layer, the norm rule on average pooling; the activations
    keep their gradient."""
    return LayerMapComposite(
        "excitation_backprop",
        {
            **_names(AVERAGES, NormRule(stabilizer)),
            ADD.name: SumRule(stabilizer),
            DROPOUT.name: ACTIVATION_PASS,
            **_names((MUL, DIV), SCALE),
            **_names(LINEAR_LAYERS, ZPlusRule(stabilizer, zero_params)),
            BATCH_NORM.name: MERGE_BATCH_NORM,
        },
    )


def deconvnet() -> LayerMapComposite:
    """The deconvolution rule on every ReLU; everything else keeps its gradient."""
    return LayerMapComposite("deconvnet", {RELU.name: DECONVOLUTION}, checks_relevance=False)


def guided_backprop() -> LayerMapComposite:
    """The guided backpropagation rule on every ReLU; everything else keeps its gradient."""
    return LayerMapComposite(
        "guided_backprop", {RELU.name: GUIDED_BACKPROP}, checks_relevance=False
    )


def beta_smooth(beta_smooth: float = 10.0) -> LayerMapComposite:
    """Every ReLU's gradient replaced by a softplus's; everything else keeps its gradient."""
    return LayerMapComposite(
        "beta_smooth", {RELU.name: BetaSmoothRule(beta_smooth)}, checks_relevance=False
    )


#: zennit's composites by name: each a function of the composite's parameters.
COMPOSITES: dict[str, Callable[..., LayerMapComposite]] = {
    "epsilon_gamma_box": epsilon_gamma_box,
    "epsilon_plus": epsilon_plus,
    "epsilon_alpha2_beta1": epsilon_alpha2_beta1,
    "epsilon_plus_flat": epsilon_plus_flat,
    "epsilon_alpha2_beta1_flat": epsilon_alpha2_beta1_flat,
    "excitation_backprop": excitation_backprop,
    "deconvnet": deconvnet,
    "guided_backprop": guided_backprop,
    "beta_smooth": beta_smooth,
}


def make_composite(name: object, **parameters: Any) -> LayerMapComposite:
    """zennit's composite ``name`` with ``parameters`` (those not ``None``).

    Raises:
        TypeError: for a name that is not a string, a parameter the composite does not
            take, or a required one left out (``low`` and ``high`` of
            ``epsilon_gamma_box``).
        ValueError: for a name zennit has no composite by.
    """
    if not isinstance(name, str):
        raise TypeError(f"`composite` must be a composite's name (str), got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key not in COMPOSITES:
        raise ValueError(f"`composite` {name!r} is not one of {', '.join(COMPOSITES)}")
    factory = COMPOSITES[key]
    given = {k: v for k, v in parameters.items() if v is not None}
    takes = inspect.signature(factory).parameters
    unknown = sorted(set(given) - set(takes))
    if unknown:
        accepted = ", ".join(takes) or "none"
        raise TypeError(
            f"composite {key!r} does not take {', '.join(map(repr, unknown))} "
            f"(its parameters: {accepted})"
        )
    missing = [p for p, spec in takes.items() if spec.default is spec.empty and p not in given]
    if missing:
        raise TypeError(f"composite {key!r} needs {', '.join(map(repr, missing))}")
    return factory(**given)


# ----------------------------------------------------------------------- Captum's rules


def _captum_rule_classes() -> Any:
    from captum.attr._utils import lrp_rules

    return lrp_rules


#: The methods of Captum's ``PropagationRule`` that hook the modules: a rule that overrides
#: one (beyond ``IdentityRule``'s) is not a change of weights attrkit can apply.
_CAPTUM_HOOKS = (
    "forward_hook",
    "backward_hook_activation",
    "_create_backward_hook_input",
    "_create_backward_hook_output",
    "forward_hook_weights",
    "forward_pre_hook_activations",
)


class CaptumRules(Composite):
    """Captum's ``LRP``: the rule a module holds in its ``rule`` attribute (one of Captum's
    rule classes) on every application of a layer op inside that module's call, Captum's
    default rule (``EpsilonRule()``, epsilon ``1e-9``) on every other application of a
    layer op (max-pool included), and the relevance passed on by every activation.

    Args:
        model: The model whose modules' rules apply (read at each call).

    Raises:
        TypeError: for a module whose ``rule`` is neither ``None`` nor one of Captum's
            ``PropagationRule`` objects, or one whose backward hooks attrkit cannot apply.
    """

    name = "captum"

    def __init__(self, model: object) -> None:
        self.module_rules: dict[int, LayerRule] = {}
        if isinstance(model, nn.Module):
            for module in model.modules():
                rule = getattr(module, "rule", None)
                if rule is not None:
                    self.module_rules[id(module)] = captum_rule(rule, module)
        self.default = EpsilonRule(1e-9)

    def rule_for(self, call: OpCall, propagation: Propagation) -> Rule:
        if call.op in ELEMENTWISE or call.op is DROPOUT:
            return ACTIVATION_PASS
        if call.op is MUL or call.op is DIV:
            return SCALE
        rule: LayerRule = self.default
        if self.module_rules:
            module = calling_module()
            if module is not None and id(module) in self.module_rules:
                rule = self.module_rules[id(module)]
        if call.op is ADD:
            # Captum's Addition_Module: its rule's epsilon (weights: it has none).
            return SumRule(getattr(rule, "epsilon", self.default.epsilon))
        return rule


def captum_rule(rule: object, module: nn.Module) -> LayerRule:
    """attrkit's rule for Captum's rule object ``rule`` (held by ``module``)."""
    captum = _captum_rule_classes()
    if not isinstance(rule, captum.PropagationRule):
        raise TypeError(
            f"`{type(module).__name__}.rule` must be one of Captum's PropagationRule objects "
            f"(captum.attr._utils.lrp_rules) or None, got {type(rule).__name__}"
        )
    cls = type(rule)
    base = captum.PropagationRule
    hooked = [h for h in _CAPTUM_HOOKS if getattr(cls, h) is not getattr(base, h)]
    epsilon = rule.STABILITY_FACTOR
    identity = captum.IdentityRule._create_backward_hook_input
    if hooked == ["_create_backward_hook_input"] and cls._create_backward_hook_input is identity:
        return IdentityRule()
    if hooked:
        raise TypeError(
            f"the rule {cls.__name__} of a {type(module).__name__} overrides Captum's hooks "
            f"({', '.join(hooked)}); attrkit applies Captum rules that change the weights "
            "(`_manipulate_weights`) or IdentityRule"
        )
    manipulate = cls._manipulate_weights
    if manipulate is captum.EpsilonRule._manipulate_weights:
        return EpsilonRule(epsilon)
    if manipulate is captum.GammaRule._manipulate_weights:
        change = captum_gamma(rule.gamma, rule.set_bias_to_zero)
        return WeightRule("captum_gamma", change, epsilon)
    if manipulate is captum.Alpha1_Beta0_Rule._manipulate_weights:
        change = captum_alpha1_beta0(rule.set_bias_to_zero)
        return WeightRule("captum_alpha1_beta0", change, epsilon)
    return WeightRule(f"captum_{cls.__name__}", _captum_weight_change(rule), epsilon)


def _captum_weight_change(rule: Any) -> Callable[..., Any]:
    """A Captum rule's ``_manipulate_weights``, applied to copies of the weights."""

    def change(weight: Tensor | None, bias: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        proxy = types.SimpleNamespace()
        if weight is not None:
            proxy.weight = nn.Parameter(weight.clone(), requires_grad=False)
        if bias is not None:
            proxy.bias = nn.Parameter(bias.clone(), requires_grad=False)
        rule._manipulate_weights(proxy, (), None)
        changed = [
            getattr(proxy, name).detach() if value is not None else None
            for name, value in (("weight", weight), ("bias", bias))
        ]
        return changed[0], changed[1]

    return change

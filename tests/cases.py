"""Tables the tests expand: model cases, methods, and the target forms each case accepts.

``PARITY_CASES`` hold only distinct, single-use ``nn.ReLU`` modules (in place or not), where
Captum follows the definition: attrkit must equal Captum there. ``DEFINITION_CASES`` hold
the ReLU usages where Captum deviates; ``captum_deviation`` says how, and the reference in
``tests/reference.py`` gives the definition.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import captum.attr
import numpy as np
import pytest
import torch
from captum.testing.helpers import basic_models as captum_models
from torch import Tensor, nn

import attrkit
from tests import models
from tests.helpers import baseline_distribution


def _relu_rule_of_class() -> dict[str, str]:
    """The ReLU rule of every registered method class that applies one, from the
    registry."""
    rules = {}
    for name in attrkit.available_methods():
        info = attrkit.method_info(name)
        rule = info.rule_for("relu")
        if rule is not None:
            rules[info.cls.__name__] = rule.name
    return rules


#: The ReLU rule of every method class that applies one (read from the registry).
RULE_OF_CLASS = _relu_rule_of_class()
#: The ReLU-override methods that Captum has too, each with its own rule and nothing but
#: the model to construct (Captum's module-hook classes, which ``Case.captum_wrong_for``
#: names): Deconvolution and GuidedBackprop.
METHODS = tuple(
    sorted(
        attrkit.method_info(name).cls.__name__
        for name in attrkit.available_methods()
        if attrkit.method_info(name).family == "relu_rules"
        and attrkit.method_info(name).captum_name
        and not attrkit.method_info(name).init_arguments
    )
)
RULE_OF = {method: RULE_OF_CLASS[method] for method in METHODS}
#: The ReLU-override method of each rule.
METHOD_OF_RULE = {rule: method for method, rule in RULE_OF.items()}
DTYPES = (torch.float32, torch.float64)
BATCH = 3


def _randomize_norms(model: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)


@dataclass(frozen=True)
class Case:
    """One model with its inputs.

    Attributes:
        id: Test id.
        factory: Builds the model (weights are seeded by :meth:`build`).
        input_shapes: Per-example shape of each attributed input tensor.
        output_shape: Per-example shape of the model's output (decides the target forms).
        extra: Builds ``additional_forward_args`` from (batch size, dtype); ``None`` if none.
        make_inputs: Builds the inputs from (batch size, dtype, generator); defaults to
            standard normal tensors of ``input_shapes``.
        captum_deviation: How Captum deviates from the definition on this model ("" if it
            does not), for the methods in ``captum_wrong_for``.
        reference_factory: A twin of the model for the reference (see
            :meth:`build_reference`).
    """

    id: str
    factory: Callable[[], nn.Module]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    extra: Callable[[int, torch.dtype], tuple[Any, ...]] | None = None
    make_inputs: Callable[[int, torch.dtype, torch.Generator], tuple[Tensor, ...]] | None = None
    captum_deviation: str = ""
    captum_wrong_for: tuple[str, ...] = ("Deconvolution", "GuidedBackprop")
    reference_factory: Callable[[], nn.Module] | None = None

    def build_reference(self, dtype: torch.dtype = torch.float32) -> nn.Module:
        """The model the definition-based reference runs: the same model, or a twin with
        the same weights where the reference cannot patch the ReLU spelling."""
        if self.reference_factory is None:
            return self.build(dtype)
        return Case(self.id, self.reference_factory, (), ()).build(dtype)

    def build(self, dtype: torch.dtype = torch.float32) -> nn.Module:
        torch.manual_seed(0)
        model = self.factory()
        _randomize_norms(model)
        return model.to(dtype).eval()

    def inputs(self, dtype: torch.dtype = torch.float32, batch: int = BATCH) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(1)
        if self.make_inputs is not None:
            return self.make_inputs(batch, dtype, generator)
        return tuple(
            torch.randn((batch, *shape), generator=generator, dtype=dtype)
            for shape in self.input_shapes
        )

    def extra_args(self, dtype: torch.dtype = torch.float32, batch: int = BATCH) -> Any:
        return None if self.extra is None else self.extra(batch, dtype)

    def extra_tuple(
        self, dtype: torch.dtype = torch.float32, batch: int = BATCH
    ) -> tuple[Any, ...]:
        """The additional arguments as the tuple ``forward`` receives after the inputs."""
        extra = self.extra_args(dtype, batch)
        if extra is None:
            return ()
        return extra if isinstance(extra, tuple) else (extra,)

    @staticmethod
    def attribute_inputs(inputs: tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
        """What the user passes: a tensor for one input, a tuple for several."""
        return inputs[0] if len(inputs) == 1 else inputs


def _uniform(
    low: float, high: float, *shapes: tuple[int, ...]
) -> Callable[..., tuple[Tensor, ...]]:
    def make(batch: int, dtype: torch.dtype, generator: torch.Generator) -> tuple[Tensor, ...]:
        return tuple(
            low + (high - low) * torch.rand((batch, *s), generator=generator, dtype=dtype)
            for s in shapes
        )

    return make


PARITY_CASES = [
    Case(
        "captum-conv-one-conv",
        captum_models.BasicModel_ConvNet_One_Conv,
        ((1, 4, 4),),
        (4,),
        make_inputs=_uniform(0.0, 16.0, (1, 4, 4)),
    ),
    Case(
        "captum-conv-one-conv-inplace-two-inputs",
        lambda: captum_models.BasicModel_ConvNet_One_Conv(inplace=True),
        ((1, 4, 4), (1, 4, 4)),
        (4,),
        make_inputs=_uniform(0.0, 8.0, (1, 4, 4), (1, 4, 4)),
    ),
    Case("captum-convnet-pool-softmax", captum_models.BasicModel_ConvNet, ((1, 10, 10),), (10,)),
    Case("captum-convnet-maxpool1d", captum_models.BasicModel_ConvNet_MaxPool1d, ((1, 10),), (10,)),
    Case(
        "captum-conv-padding-dilation",
        captum_models.BasicModel_ConvNetWithPaddingDilation,
        ((1, 5, 5),),
        (8,),
    ),
    Case(
        "captum-multilayer-4d-output",
        captum_models.BasicModel_MultiLayer,
        ((3,),),
        (2, 2, 2),
        extra=lambda n, dtype: (torch.linspace(-1, 1, 3 * n, dtype=dtype).reshape(n, 3), True),
    ),
    Case(
        "captum-multilayer-multi-relu-module",
        lambda: captum_models.BasicModel_MultiLayer(multi_input_module=True),
        ((3,),),
        (2,),
    ),
    Case(
        "captum-multilayer-three-inputs-int-arg",
        captum_models.BasicModel_MultiLayer_MultiInput,
        ((3,), (3,), (3,)),
        (2,),
        extra=lambda n, dtype: 2,
    ),
    Case(
        "captum-relu-linear-inplace",
        lambda: captum_models.ReLULinearModel(inplace=True),
        ((3,), (3,)),
        (1,),
        extra=lambda n, dtype: (2,),
    ),
    Case(
        "captum-linear-relu-linear",
        lambda: captum_models.BasicLinearReLULinear(5),
        ((5,),),
        (1,),
    ),
    Case(
        "captum-maxpool-relu-inplace",
        lambda: captum_models.BasicModel_MaxPool_ReLU(inplace=True),
        ((4, 3),),
        (1,),
    ),
    Case("small-cnn-bn-pool-dropout", models.SmallCNN, ((3, 12, 12),), (5,)),
    Case("residual-block-reused-inplace-relu", models.ResidualBlockNet, ((2, 6, 6),), (3,)),
    Case(
        "mixed-tensor-and-python-args",
        models.MixedArgsNet,
        ((1, 4, 4), (4,)),
        (4,),
        extra=lambda n, dtype: (torch.ones(n, 6, dtype=dtype).tril(), 0.5, "prod"),
    ),
    Case("sequence-tagger-3d-output", models.SequenceTagger, ((2, 7),), (3, 7)),
    Case("captum-deeplift-set", models.CaptumDeepLiftSet, ((2, 6, 6),), (4,)),
    Case("lrp-cnn-every-captum-layer", models.LrpCNN, ((3, 12, 12),), (4,)),
    Case("lrp-mlp-inplace-relu-tanh-dropout", models.LrpMLP, ((6,),), (3,)),
]

FUNCTIONAL = "ignores functional ReLU calls (only nn.ReLU modules are hooked)"
DEFINITION_CASES = [
    *(
        Case(
            f"functional-{spelling}",
            lambda spelling=spelling: models.FunctionalReluMLP(spelling),
            ((5,),),
            (4,),
            captum_deviation=FUNCTIONAL,
            # The reference cannot patch torch.ops.aten; its twin spells the same ReLU
            # as torch.relu / torch.relu_ with the same weights.
            reference_factory=(
                (
                    lambda spelling=spelling: models.FunctionalReluMLP(
                        spelling.replace("aten", "torch")
                    )
                )
                if spelling.startswith("aten")
                else None
            ),
        )
        for spelling in models.RELU_SPELLINGS
    ),
    Case(
        "reused-relu-parallel-branches",
        models.ReusedReluParallel,
        ((5,),),
        (4,),
        captum_deviation=(
            "one nn.ReLU applied to two parallel branches mixes up the branches' gradients"
        ),
        captum_wrong_for=("Deconvolution",),
    ),
    Case("reused-relu-sequential", models.ReusedReluSequential, ((5,),), (4,)),
    *(
        Case(
            f"relu-modules-back-to-back-{name}",
            factory,
            ((5,),),
            (4,),
            captum_deviation=(
                "two nn.ReLU modules back to back: Deconvolution stores the second "
                "module's plain input gradient at the first"
            ),
            captum_wrong_for=("Deconvolution",),
        )
        for name, factory in (
            ("identity", lambda: models.ReluModulesBackToBack(nn.Identity())),
            ("eval-dropout", lambda: models.ReluModulesBackToBack(nn.Dropout())),
        )
    ),
    Case(
        "relu-created-in-forward",
        models.ReluCreatedInForward,
        ((5,),),
        (4,),
        captum_deviation="a ReLU module created inside forward is never hooked",
    ),
    Case(
        "relu-input-used-elsewhere",
        models.ReluInputUsedElsewhere,
        ((5,),),
        (4,),
        captum_deviation="relu(z) combined with z loses the other path's gradient",
    ),
    Case(
        "relu-on-non-grad-argument",
        models.ReluOnNonGradArgument,
        ((5,),),
        (4,),
        extra=lambda n, dtype: torch.linspace(-1, 1, 8 * n, dtype=dtype).reshape(n, 8),
        captum_deviation="crashes on a ReLU whose input does not require grad",
    ),
    Case(
        "inplace-module-relu-on-input",
        lambda: models.InplaceReluOnInput(functional=False),
        ((5,),),
        (4,),
    ),
    Case(
        "inplace-functional-relu-on-input",
        lambda: models.InplaceReluOnInput(functional=True),
        ((5,),),
        (4,),
        captum_deviation="crashes on an in-place functional ReLU applied to the input",
    ),
    Case(
        "densenet-style",
        models.TinyDenseNet,
        ((3, 6, 6),),
        (5,),
        captum_deviation=FUNCTIONAL,
    ),
    Case(
        "inception-style",
        models.TinyInception,
        ((3, 6, 6),),
        (5,),
        captum_deviation=FUNCTIONAL,
    ),
]

ALL_CASES = PARITY_CASES + DEFINITION_CASES
#: One model case of each class of output shape (one value, a vector, several dimensions
#: per example), whose target forms differ (``target_forms``).
OUTPUT_SHAPE_CASES = [
    next(case for case in PARITY_CASES if case.id == case_id)
    for case_id in (
        "captum-relu-linear-inplace",
        "captum-conv-one-conv",
        "sequence-tagger-3d-output",
    )
]


def captum_agrees(case: Case, method: str) -> bool:
    return not case.captum_deviation or method not in case.captum_wrong_for


def case_params(cases: list[Case]) -> list[Any]:
    return [pytest.param(case, id=case.id) for case in cases]


def target_forms(output_shape: tuple[int, ...], batch: int = BATCH) -> list[tuple[str, Any]]:
    """Every target form that selects one value per example from ``output_shape``."""
    if math.prod(output_shape) == 1:
        forms: list[tuple[str, Any]] = [("none", None)]
        if len(output_shape) == 1:
            forms += [
                ("int", 0),
                ("negative-int", -1),
                ("tensor-0d", torch.tensor(0)),
                ("tuple", (0,)),
                ("list", [0] * batch),
            ]
        return forms
    if len(output_shape) == 1:
        k = output_shape[0]
        per_example = [(2 * i + 1) % k for i in range(batch)]
        return [
            ("int", k - 1),
            ("negative-int", -2),
            ("tensor-0d", torch.tensor(1)),
            ("tensor-one-element", torch.tensor([k - 2])),
            ("list", per_example),
            ("tensor-1d", torch.tensor(per_example)),
            ("tuple", (1,)),
            ("list-of-tuples", [(t,) for t in per_example]),
        ]
    per_example_tuples = [
        tuple((i + 2 * d) % size for d, size in enumerate(output_shape)) for i in range(batch)
    ]
    return [
        ("tuple", tuple(size - 1 for size in output_shape)),
        ("negative-tuple", tuple(-1 for _ in output_shape)),
        ("list-of-tuples", per_example_tuples),
    ]


def first_target(case: Case) -> Any:
    """One valid target for ``case`` (for tests that are not about target forms)."""
    return target_forms(case.output_shape)[0][1]


# ----------------------------------------------------------------------- methods table

#: A layer of each case that runs once per forward pass (for the layer and neuron methods).
LAYERS = {
    "captum-conv-one-conv": "conv1",
    "captum-conv-one-conv-inplace-two-inputs": "conv1",
    "captum-convnet-pool-softmax": "conv2",
    "captum-convnet-maxpool1d": "conv2",
    "captum-conv-padding-dilation": "conv1",
    "captum-multilayer-4d-output": "linear1",
    "captum-multilayer-multi-relu-module": "linear0",
    "captum-multilayer-three-inputs-int-arg": "model.linear1",
    "captum-relu-linear-inplace": "l3",
    "captum-linear-relu-linear": "fc1",
    "captum-maxpool-relu-inplace": "maxpool",
    "small-cnn-bn-pool-dropout": "features.4",
    "residual-block-reused-inplace-relu": "conv2",
    "mixed-tensor-and-python-args": "out",
    "sequence-tagger-3d-output": "conv2",
    "captum-deeplift-set": "conv2",
    "lrp-cnn-every-captum-layer": "conv2",
    "lrp-mlp-inplace-relu-tanh-dropout": "net.2",
    "reused-relu-parallel-branches": "out",
    "reused-relu-sequential": "fc3",
    "relu-modules-back-to-back-identity": "fc2",
    "relu-modules-back-to-back-eval-dropout": "fc2",
    "relu-created-in-forward": "fc2",
    "relu-input-used-elsewhere": "fc2",
    "relu-on-non-grad-argument": "fc2",
    "inplace-module-relu-on-input": "fc",
    "inplace-functional-relu-on-input": "fc",
    "densenet-style": "transition.1",
    "inception-style": "branch5.2.conv",
    **{f"functional-{spelling}": "fc2" for spelling in models.RELU_SPELLINGS},
}


@dataclass(frozen=True)
class BaselineOf:
    """Baselines made from the inputs when the call is made (the table cannot know the
    cases' shapes): ``make(inputs)``, one entry per input tensor, given to both libraries
    as tensors."""

    name: str
    make: Callable[[Tensor], Tensor]

    def __repr__(self) -> str:
        return self.name

    def resolve(self, inputs: Tensor | tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
        if isinstance(inputs, tuple):
            return tuple(self.make(x) for x in inputs)
        return self.make(inputs)


#: Baselines: one per example, one row for every example, and a distribution of three
#: reference rows (for the methods that take one).
PER_EXAMPLE = BaselineOf("per-example", lambda x: 0.3 * x.flip(0) - 0.2)
ONE_ROW = BaselineOf("one-row", lambda x: -0.5 * x[:1])
DISTRIBUTION = BaselineOf(
    "distribution", lambda x: torch.stack([0.5 * x[0], -0.3 * x[-1], torch.zeros_like(x[0])])
)


@dataclass(frozen=True)
class MethodSpec:
    """One configuration of one method, run the same way through attrkit and Captum.

    Attributes:
        id: Test id.
        cls: The class name, the same in ``attrkit`` and ``captum.attr``.
        attribute_kwargs: Options for ``attribute`` besides inputs/target/extra args.
        init_kwargs: Options for the constructor besides the model (and the layer).
        wraps: For NoiseTunnel, the class name of the wrapped method.
        layer: The constructor takes the case's layer (``LAYERS``).
        neuron: ``attribute`` takes a ``neuron_selector`` instead of a ``target``.
        float64_kwargs: Overrides in float64 (Captum's NoiseTunnel draws float32 noise,
            so float64 runs are compared at ``stdevs=0``).
        float64_rtol: Tolerance in float64 where Captum rounds to float32 (IG's step
            sizes): ``None`` for the dtype's default.
        no_target: ``attribute`` takes neither a target nor a neuron selector
            (``LayerActivation``).
        also_target: A neuron method that takes a ``target`` too (``NeuronConductance``):
            it gets the case's first target form.
        forms: The target forms (of :func:`target_forms`) or neuron selector forms (of
            :func:`neuron_selectors`) the row runs; empty: all.
        case_kwargs: ``attribute`` arguments built from the case (feature masks, windows
            that depend on the input shapes).
        case_filter: The cases the row runs on (``None``: all); for methods whose cost
            grows with the inputs, or that apply to some models only.
        cases: The ids of the only cases it is compared with Captum on (``None``: every
            case where Captum follows the definition).
        module_rules: Sets Captum's LRP rules on the model's modules before the method
            is built (``None``: none).
    """

    id: str
    cls: str
    attribute_kwargs: dict[str, Any] = field(default_factory=dict)
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    wraps: str = ""
    layer: bool = False
    neuron: bool = False
    float64_kwargs: dict[str, Any] = field(default_factory=dict)
    float64_rtol: float | None = None
    cases: frozenset[str] | None = None
    module_rules: Callable[[nn.Module], None] | None = None
    no_target: bool = False
    also_target: bool = False
    forms: tuple[str, ...] = ()
    case_kwargs: Callable[[Case], dict[str, Any]] | None = None
    case_filter: Callable[[Case], bool] | None = None

    @property
    def needs_case(self) -> bool:
        """Whether the row's arguments depend on a :class:`Case` (not on any model)."""
        return self.case_kwargs is not None or self.also_target

    def runs_on(self, case: Case) -> bool:
        return (not self.layer or case.id in LAYERS) and (
            self.case_filter is None or self.case_filter(case)
        )

    @property
    def relu_rule(self) -> str | None:
        """The ReLU rule the method applies (``None`` for plain-gradient methods)."""
        return RULE_OF_CLASS.get(self.wraps or self.cls)

    def kwargs(self, dtype: torch.dtype, case: Case | None = None) -> dict[str, Any]:
        kwargs = {
            **self.attribute_kwargs,
            **(self.float64_kwargs if dtype == torch.float64 else {}),
        }
        if case is not None and self.case_kwargs is not None:
            kwargs.update(self.case_kwargs(case))
        if case is not None and self.also_target:
            kwargs["target"] = first_target(case)
        return kwargs

    def create(self, library: Any, model: nn.Module, layer: str | None) -> Any:
        """The method from ``library`` (``attrkit`` or ``captum.attr``) for ``model`` (and
        its submodule ``layer``, for a layer method)."""

        def cls(name: str) -> Any:
            if library is attrkit:  # also a registered class that is not exported
                return attrkit.method_info(name).cls
            return getattr(library, name)

        if self.wraps:
            return cls(self.cls)(cls(self.wraps)(model))
        if self.module_rules is not None:
            self.module_rules(model)
        layers = (model.get_submodule(layer),) if self.layer else ()
        return cls(self.cls)(model, *layers, **self.init_kwargs)

    def attribute(
        self,
        library: Any,
        model: nn.Module,
        layer: str | None,
        inputs: Tensor | tuple[Tensor, ...],
        selection: Any,
        **kwargs: Any,
    ) -> Any:
        """Run the method from ``library`` with ``selection`` as its ``neuron_selector``
        (or ``target``) and ``kwargs``; a scalar baseline is given once per input, a
        :class:`BaselineOf` made from the inputs, NumPy's generator is seeded (GradientShap
        draws from it), and Captum's warnings (on every call) are silenced."""
        if not self.no_target:
            kwargs = {"neuron_selector" if self.neuron else "target": selection, **kwargs}
        if isinstance(kwargs.get("baselines"), float) and isinstance(inputs, tuple):
            kwargs["baselines"] = (kwargs["baselines"],) * len(inputs)  # a scalar per input
        if isinstance(kwargs.get("baselines"), BaselineOf):
            kwargs["baselines"] = kwargs["baselines"].resolve(inputs)
        np.random.seed(0)
        with warnings.catch_warnings():
            if library is captum.attr:
                warnings.simplefilter("ignore")
            return self.create(library, model, layer).attribute(inputs, **kwargs)


#: The cases where Captum's LRP runs and is right: networks of the modules it has rules
#: for, each applied once (see tests/methods/test_lrp.py for the others).
LRP_CASES = frozenset(
    {
        "captum-conv-one-conv",
        "captum-conv-padding-dilation",
        "captum-linear-relu-linear",
        "lrp-cnn-every-captum-layer",
        "lrp-mlp-inplace-relu-tanh-dropout",
        "reused-relu-sequential",
        "relu-modules-back-to-back-eval-dropout",
    }
)


def coarse_masks(case: Case, per_input: int = 2) -> tuple[Tensor, ...]:
    """A ``feature_mask`` that groups each input tensor of ``case`` into ``per_input``
    features (ids distinct across the inputs), shared by the batch."""
    masks, first = [], 0
    for shape in case.input_shapes:
        numel = math.prod(shape)
        groups = min(per_input, numel)
        masks.append((first + torch.arange(numel) * groups // numel).reshape(1, *shape))
        first += groups
    return tuple(masks)


def feature_mask_kwargs(per_input: int) -> Callable[[Case], dict[str, Any]]:
    def kwargs(case: Case) -> dict[str, Any]:
        masks = coarse_masks(case, per_input)
        return {"feature_mask": masks if len(masks) > 1 else masks[0]}

    return kwargs


def occlusion_kwargs(case: Case) -> dict[str, Any]:
    """Windows of half of each input (at least 1) sliding by the same amount."""
    windows = tuple(tuple(max(1, size // 2) for size in shape) for shape in case.input_shapes)
    value = windows if len(windows) > 1 else windows[0]
    return {"sliding_window_shapes": value, "strides": value}


def spatial_layer(case: Case) -> bool:
    """Whether Grad-CAM's map of the case's layer can be resized to every input (the
    same number of spatial dimensions, at least one)."""
    spatial = len(layer_shape(case, False)) - 1
    return spatial > 0 and all(len(shape) - 1 == spatial for shape in case.input_shapes)


#: A few cases that cover the code paths of the perturbation methods (one input and
#: several; extra arguments; outputs with one and with several dimensions), whose cost
#: grows with the number of features.
PERTURBATION_CASES = frozenset(
    {
        "captum-conv-one-conv",
        "captum-multilayer-three-inputs-int-arg",
        "mixed-tensor-and-python-args",
        "sequence-tagger-3d-output",
    }
)


def set_captum_rules(model: nn.Module) -> None:
    """Captum's LRP rules on the model's layers: the gamma rule on the first linear layer
    or convolution, alpha-1-beta-0 (without bias) on the other convolutions, epsilon 0.01
    on the other linear layers, the identity on batch-norms, epsilon 0.1 on max-pooling."""
    from captum.attr._utils import lrp_rules

    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for position, module in enumerate(layers):
        if position == 0:
            module.rule = lrp_rules.GammaRule(gamma=0.5)
        elif isinstance(module, nn.Conv2d):
            module.rule = lrp_rules.Alpha1_Beta0_Rule(set_bias_to_zero=True)
        else:
            module.rule = lrp_rules.EpsilonRule(epsilon=0.01)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.rule = lrp_rules.IdentityRule()
        elif isinstance(module, nn.MaxPool2d):
            module.rule = lrp_rules.EpsilonRule(epsilon=0.1)


#: The perturbation cases but one: Captum's Lime and KernelShap fail on a batch whose
#: ``additional_forward_args`` is not a tuple (attrkit's take it).
LIME_CASES = PERTURBATION_CASES - {"captum-multilayer-three-inputs-int-arg"}


#: Target forms but the 0-d tensor, on which Captum's Lime and KernelShap fail for a batch
#: of several examples (attrkit's take it).
NOT_0D_TENSOR = (
    "none",
    "int",
    "negative-int",
    "tensor-one-element",
    "list",
    "tensor-1d",
    "tuple",
    "list-of-tuples",
    "negative-tuple",
)
#: Where Captum's LayerIntegratedGradients crashes on the layer's output: an in-place ReLU
#: right after the layer modifies the leaf Captum puts in place of the output (attrkit's
#: hands on a copy: tests/methods/test_layer.py).
LIG_OUTPUT_CRASHES = frozenset(
    {
        "captum-conv-one-conv-inplace-two-inputs",
        "captum-maxpool-relu-inplace",
        "lrp-cnn-every-captum-layer",
        *(f"functional-{spelling}" for spelling in models.RELU_SPELLINGS if "_" in spelling),
    }
)


#: The classes that apply DeepLift's rules (read from the registry).
DEEPLIFT_CLASSES = frozenset(
    attrkit.method_info(name).cls.__name__
    for name in attrkit.available_methods()
    if attrkit.method_info(name).rule_for("relu") is not None
    and attrkit.method_info(name).rule_for("relu").name == "rescale"
)
#: The cases where Captum's DeepLift follows the definition (summation to delta holds, or
#: fails the same way for both, through a product): every nonlinearity a distinct module
#: of Captum's set applied once, never straight after another hooked module, its input
#: used nowhere else (``test_captum_deeplift_deviates_where_documented`` in
#: tests/methods/test_deeplift.py shows the others).
DEEPLIFT_CASES = frozenset(
    {
        "captum-conv-one-conv",
        "captum-conv-one-conv-inplace-two-inputs",
        "captum-conv-padding-dilation",
        "captum-multilayer-4d-output",
        "captum-multilayer-multi-relu-module",
        "captum-multilayer-three-inputs-int-arg",
        "captum-relu-linear-inplace",
        "captum-linear-relu-linear",
        "mixed-tensor-and-python-args",
        "sequence-tagger-3d-output",
        "captum-deeplift-set",
        "inplace-module-relu-on-input",
    }
)
#: Less where Captum's variants crash: the DeepLiftShap variants expand a non-tuple
#: ``additional_forward_args`` (the int 2) before formatting it into a tuple; the layer
#: variants hook the layer's input, which requires no grad when an in-place ReLU module
#: applies to the model's input.
DEEPLIFT_SHAP_CASES = DEEPLIFT_CASES - {"captum-multilayer-three-inputs-int-arg"}
LAYER_DEEPLIFT_CASES = DEEPLIFT_CASES - {"inplace-module-relu-on-input"}
LAYER_DEEPLIFT_SHAP_CASES = DEEPLIFT_SHAP_CASES & LAYER_DEEPLIFT_CASES


IG = {"n_steps": 8}
LOCAL = {"multiply_by_inputs": False}
SHAP_SAMPLES = {"n_samples": 3, "stdevs": 0.1}


def squared_difference(
    multipliers: tuple[Tensor, ...], inputs: tuple[Tensor, ...], baselines: tuple[Tensor, ...]
) -> tuple[Tensor, ...]:
    """A ``custom_attribution_func`` of three parameters."""
    return tuple(m * (x - b) ** 2 for m, x, b in zip(multipliers, inputs, baselines, strict=True))


NOISE = {"nt_samples": 3, "stdevs": 0.3}
STILL = {"stdevs": 0.0}
METHOD_SPECS = [
    MethodSpec("deconvolution", "Deconvolution"),
    MethodSpec("guided-backprop", "GuidedBackprop"),
    MethodSpec("saliency-abs", "Saliency"),
    MethodSpec("saliency-signed", "Saliency", {"abs": False}),
    MethodSpec("input-x-gradient", "InputXGradient"),
    MethodSpec(
        "ig-gausslegendre-delta",
        "IntegratedGradients",
        {**IG, "return_convergence_delta": True},
        float64_rtol=1e-6,
    ),
    MethodSpec(
        "ig-riemann-left-scalar-baseline",
        "IntegratedGradients",
        {**IG, "method": "riemann_left", "baselines": 0.25},
        float64_rtol=1e-6,
    ),
    MethodSpec(
        "ig-riemann-right-internal-batch",
        "IntegratedGradients",
        {**IG, "method": "riemann_right", "internal_batch_size": 7},
        float64_rtol=1e-6,
    ),
    MethodSpec(
        "ig-riemann-middle-local",
        "IntegratedGradients",
        {**IG, "method": "riemann_middle"},
        {"multiply_by_inputs": False},
        float64_rtol=1e-6,
    ),
    MethodSpec(
        "nt-smoothgrad-guided-backprop",
        "NoiseTunnel",
        {**NOISE, "nt_type": "smoothgrad"},
        wraps="GuidedBackprop",
        float64_kwargs=STILL,
    ),
    MethodSpec(
        "nt-smoothgrad-sq-saliency-batched",
        "NoiseTunnel",
        {**NOISE, "nt_type": "smoothgrad_sq", "nt_samples_batch_size": 2},
        wraps="Saliency",
        float64_kwargs=STILL,
    ),
    MethodSpec(
        "nt-vargrad-deconvolution",
        "NoiseTunnel",
        {**NOISE, "nt_type": "vargrad"},
        wraps="Deconvolution",
        float64_kwargs=STILL,
    ),
    MethodSpec(
        "nt-smoothgrad-ig",
        "NoiseTunnel",
        {**NOISE, "n_steps": 4},
        wraps="IntegratedGradients",
        float64_kwargs=STILL,
        float64_rtol=1e-6,
    ),
    MethodSpec("neuron-deconvolution", "NeuronDeconvolution", layer=True, neuron=True),
    MethodSpec(
        "neuron-deconvolution-layer-input",
        "NeuronDeconvolution",
        {"attribute_to_neuron_input": True},
        layer=True,
        neuron=True,
    ),
    MethodSpec(
        "neuron-guided-backprop-layer-input",
        "NeuronGuidedBackprop",
        {"attribute_to_neuron_input": True},
        layer=True,
        neuron=True,
    ),
    MethodSpec("layer-grad-cam", "LayerGradCam", layer=True),
    MethodSpec(
        "layer-grad-cam-input-relu-per-channel",
        "LayerGradCam",
        {"attribute_to_layer_input": True, "relu_attributions": True, "attr_dim_summation": False},
        layer=True,
    ),
    MethodSpec("guided-grad-cam", "GuidedGradCam", layer=True, case_filter=spatial_layer),
    MethodSpec(
        "deep-lift-delta", "DeepLift", {"return_convergence_delta": True}, cases=DEEPLIFT_CASES
    ),
    MethodSpec(
        "deep-lift-scalar-baseline-local",
        "DeepLift",
        {"baselines": 0.25},
        LOCAL,
        cases=DEEPLIFT_CASES,
    ),
    MethodSpec(
        "deep-lift-per-example-baselines-custom",
        "DeepLift",
        {"baselines": PER_EXAMPLE, "custom_attribution_func": squared_difference},
        cases=DEEPLIFT_CASES,
    ),
    MethodSpec(
        "deep-lift-shap-delta",
        "DeepLiftShap",
        {"baselines": DISTRIBUTION, "return_convergence_delta": True},
        cases=DEEPLIFT_SHAP_CASES,
    ),
    MethodSpec(
        "gradient-shap-noisy-delta",
        "GradientShap",
        {**SHAP_SAMPLES, "baselines": DISTRIBUTION, "return_convergence_delta": True},
    ),
    MethodSpec(
        "gradient-shap-callable-baselines-local",
        "GradientShap",
        {**SHAP_SAMPLES, "baselines": baseline_distribution},
        LOCAL,
    ),
    MethodSpec(
        "layer-deep-lift-one-row-delta",
        "LayerDeepLift",
        {"baselines": ONE_ROW, "return_convergence_delta": True},
        layer=True,
        cases=LAYER_DEEPLIFT_CASES,
    ),
    MethodSpec(
        "layer-deep-lift-input-local",
        "LayerDeepLift",
        {"attribute_to_layer_input": True},
        LOCAL,
        layer=True,
        cases=LAYER_DEEPLIFT_CASES,
    ),
    MethodSpec(
        "layer-deep-lift-shap-delta",
        "LayerDeepLiftShap",
        {"baselines": DISTRIBUTION, "return_convergence_delta": True},
        layer=True,
        cases=LAYER_DEEPLIFT_SHAP_CASES,
    ),
    MethodSpec(
        "layer-gradient-shap-delta",
        "LayerGradientShap",
        {**SHAP_SAMPLES, "baselines": DISTRIBUTION, "return_convergence_delta": True},
        layer=True,
    ),
    MethodSpec(
        "neuron-deep-lift-per-example",
        "NeuronDeepLift",
        {"baselines": PER_EXAMPLE},
        layer=True,
        neuron=True,
        cases=DEEPLIFT_CASES,
    ),
    MethodSpec(
        "neuron-deep-lift-shap-input",
        "NeuronDeepLiftShap",
        {"baselines": DISTRIBUTION, "attribute_to_neuron_input": True},
        layer=True,
        neuron=True,
        cases=DEEPLIFT_SHAP_CASES,
    ),
    MethodSpec(
        "neuron-gradient-shap",
        "NeuronGradientShap",
        {**SHAP_SAMPLES, "baselines": DISTRIBUTION},
        layer=True,
        neuron=True,
    ),
    # Layer and neuron methods of the gradient family (attrkit's own).
    MethodSpec("layer-activation", "LayerActivation", layer=True, no_target=True),
    MethodSpec(
        "layer-activation-input",
        "LayerActivation",
        {"attribute_to_layer_input": True},
        layer=True,
        no_target=True,
    ),
    MethodSpec("layer-gradient-x-activation", "LayerGradientXActivation", layer=True),
    MethodSpec(
        "layer-gradient-input-no-multiply",
        "LayerGradientXActivation",
        {"attribute_to_layer_input": True},
        {"multiply_by_inputs": False},
        layer=True,
    ),
    MethodSpec("internal-influence", "InternalInfluence", IG, layer=True, float64_rtol=1e-6),
    MethodSpec(
        "layer-conductance-delta",
        "LayerConductance",
        {**IG, "return_convergence_delta": True},
        layer=True,
    ),
    MethodSpec(
        "layer-conductance-input-riemann-batched",
        "LayerConductance",
        {
            **IG,
            "method": "riemann_left",
            "internal_batch_size": 7,
            "attribute_to_layer_input": True,
        },
        layer=True,
    ),
    MethodSpec(
        "layer-ig-delta",
        "LayerIntegratedGradients",
        {**IG, "return_convergence_delta": True},
        layer=True,
        float64_rtol=1e-6,
        case_filter=lambda case: case.id not in LIG_OUTPUT_CRASHES,
    ),
    MethodSpec(
        "layer-ig-input-local-batched",
        "LayerIntegratedGradients",
        {
            **IG,
            "method": "riemann_middle",
            "attribute_to_layer_input": True,
            "internal_batch_size": 5,
        },
        {"multiply_by_inputs": False},
        layer=True,
        float64_rtol=1e-6,
    ),
    MethodSpec("neuron-gradient", "NeuronGradient", layer=True, neuron=True),
    MethodSpec(
        "neuron-ig-input",
        "NeuronIntegratedGradients",
        {**IG, "attribute_to_neuron_input": True},
        layer=True,
        neuron=True,
        float64_rtol=1e-6,
    ),
    # One neuron: where several are selected, attrkit sums their conductances and Captum
    # multiplies the sums (tests/methods/test_neuron_paths.py).
    MethodSpec(
        "neuron-conductance",
        "NeuronConductance",
        {**IG, "method": "gausslegendre"},
        layer=True,
        neuron=True,
        also_target=True,
        forms=("tuple", "int"),
        float64_rtol=1e-6,
    ),
    # The perturbation family: Captum's own computation behind attrkit's checks.
    MethodSpec(
        "feature-ablation-mask-batched",
        "FeatureAblation",
        {"perturbations_per_eval": 2},
        case_kwargs=feature_mask_kwargs(2),
        cases=PERTURBATION_CASES,
    ),
    MethodSpec("feature-ablation", "FeatureAblation", cases=PERTURBATION_CASES),
    MethodSpec(
        "feature-permutation",
        "FeaturePermutation",
        case_kwargs=feature_mask_kwargs(2),
        cases=PERTURBATION_CASES,
    ),
    MethodSpec("occlusion", "Occlusion", case_kwargs=occlusion_kwargs, cases=PERTURBATION_CASES),
    MethodSpec(
        "shapley-value-sampling",
        "ShapleyValueSampling",
        {"n_samples": 3},
        case_kwargs=feature_mask_kwargs(2),
        cases=PERTURBATION_CASES,
    ),
    MethodSpec(
        "shapley-values",
        "ShapleyValues",
        case_kwargs=feature_mask_kwargs(1),
        cases=PERTURBATION_CASES,
    ),
    MethodSpec(
        "lime",
        "Lime",
        {"n_samples": 10},
        case_kwargs=feature_mask_kwargs(2),
        cases=LIME_CASES,
        forms=NOT_0D_TENSOR,
    ),
    MethodSpec(
        "kernel-shap",
        "KernelShap",
        {"n_samples": 10},
        case_kwargs=feature_mask_kwargs(2),
        cases=LIME_CASES,
        forms=NOT_0D_TENSOR,
    ),
    MethodSpec(
        "layer-feature-ablation", "LayerFeatureAblation", layer=True, cases=PERTURBATION_CASES
    ),
    # Captum 0.9.0's LayerFeaturePermutation fails with any target: compared on models
    # with one output per example, without one (with targets: test_perturbation.py).
    MethodSpec(
        "layer-feature-permutation",
        "LayerFeaturePermutation",
        layer=True,
        forms=("none",),
        case_filter=lambda case: math.prod(case.output_shape) == 1,
    ),
    MethodSpec(
        "neuron-feature-ablation",
        "NeuronFeatureAblation",
        layer=True,
        neuron=True,
        cases=PERTURBATION_CASES,
    ),
    MethodSpec("lrp", "LRP", cases=LRP_CASES),
    MethodSpec(
        "lrp-user-rules-delta",
        "LRP",
        {"return_convergence_delta": True},
        cases=LRP_CASES,
        module_rules=set_captum_rules,
    ),
    MethodSpec("layer-lrp", "LayerLRP", layer=True, cases=LRP_CASES),
    MethodSpec(
        "layer-lrp-input-user-rules-delta",
        "LayerLRP",
        {"attribute_to_layer_input": True, "return_convergence_delta": True},
        layer=True,
        cases=LRP_CASES,
        module_rules=set_captum_rules,
    ),
]

#: Where plain-gradient Captum methods crash: Captum sets requires_grad on the caller's
#: input tensor itself, so an in-place ReLU on it fails (its ReLU hooks clone the input,
#: which is why Deconvolution survives the module case).
CAPTUM_PLAIN_CRASHES = frozenset(
    {"inplace-functional-relu-on-input", "inplace-module-relu-on-input"}
)


def captum_agrees_with(case: Case, spec: MethodSpec) -> bool:
    """Whether Captum follows the definition for this method on this case."""
    if spec.cases is not None:
        return case.id in spec.cases
    rule = spec.relu_rule
    if rule not in METHOD_OF_RULE:  # no ReLU rule, or none that Captum hooks modules for
        return case.id not in CAPTUM_PLAIN_CRASHES
    return captum_agrees(case, METHOD_OF_RULE[rule])


def neuron_selectors(shape: tuple[int, ...]) -> list[tuple[str, Any]]:
    """Selector forms for a layer tensor of per-example ``shape``."""
    last = tuple(size - 1 for size in shape)
    forms: list[tuple[str, Any]] = [("tuple", last)]
    if len(shape) == 1:
        forms.append(("int", shape[0] - 1))
    forms.append(("tuple-with-slice", (slice(0, 2), *last[1:])))
    forms.append(("callable", lambda t: t.reshape(t.shape[0], -1)[:, :3].sum(dim=1)))
    return forms


@functools.cache
def layer_shape(case: Case, to_input: bool) -> tuple[int, ...]:
    """Per-example shape of the case's layer output (or input)."""
    model = case.build()
    shapes: list[tuple[int, ...]] = []
    layer = model.get_submodule(LAYERS[case.id])
    if to_input:
        handle = layer.register_forward_pre_hook(lambda m, a: shapes.append(a[0].shape[1:]))
    else:
        handle = layer.register_forward_hook(lambda m, a, o: shapes.append(o.shape[1:]))
    with torch.no_grad():
        model(*case.inputs(), *case.extra_tuple())
    handle.remove()
    return tuple(shapes[0])


def selections(spec: MethodSpec, case: Case) -> list[tuple[str, Any]]:
    """Every neuron selector (neuron methods) or target form (the others) of ``case``."""
    if spec.no_target:
        return [("none", None)]
    if spec.neuron:
        to_input = spec.attribute_kwargs.get("attribute_to_neuron_input", False)
        forms = neuron_selectors(layer_shape(case, to_input))
    else:
        forms = target_forms(case.output_shape)
    return [form for form in forms if not spec.forms or form[0] in spec.forms]

"""Tables the tests expand: model cases, methods, and the target forms each case accepts.

``PARITY_CASES`` hold only distinct, single-use ``nn.ReLU`` modules (in place or not), where
Captum follows the definition: attrkit must equal Captum there. ``DEFINITION_CASES`` hold
the ReLU usages where Captum deviates; ``captum_deviation`` says how, and the reference in
``tests/reference.py`` gives the definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from captum.testing.helpers import basic_models as captum_models
from torch import Tensor, nn

from tests import models

METHODS = ("Deconvolution", "GuidedBackprop")
RULE_OF = {"Deconvolution": "deconvolution", "GuidedBackprop": "guided_backprop"}
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

    def attribute_inputs(self, inputs: tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
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

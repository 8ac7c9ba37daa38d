"""Layers and neurons (attrkit/core/layers.py): the layer a method is constructed with is
checked, captured once per forward pass, and its neurons are selected in every selector
form (``select_neuron``) as the definition says, on layers of every shape class; errors
name the argument; regressions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attrkit
from tests import models
from tests.cases import LAYERS, OUTPUT_SHAPE_CASES, PARITY_CASES, layer_shape, neuron_selectors
from tests.helpers import as_tuple, assert_all_close
from tests.models import BATCH, IMAGE, FuzzNet
from tests.reference import reference_neuron_attribution
from tests.tester import definition_kind, method_params, quick_call, takes_neuron_selector

#: Cases whose layers (output and input) have one dimension, or several, per example.
LAYER_CASES = [
    *OUTPUT_SHAPE_CASES,
    next(c for c in PARITY_CASES if c.id == "captum-multilayer-4d-output"),
]


# The methods whose definition is one neuron's gradient (tester.definition_kind); the
# DeepLift family's selectors: tests/methods/test_deeplift.py and the parity table.
@pytest.mark.parametrize(
    "name", method_params(lambda m: takes_neuron_selector(m) and definition_kind(m) == "neuron")
)
@pytest.mark.parametrize(
    ("case", "to_input", "selector"),
    [
        pytest.param(case, to_input, selector, id=f"{case.id}-{side}-{form}")
        for case in LAYER_CASES
        for to_input, side in ((False, "output"), (True, "input"))
        for form, selector in neuron_selectors(layer_shape(case, to_input))
    ],
)
def test_every_neuron_selector_form(name, case, to_input, selector):
    """Every selector form (an int, a tuple, a tuple with slices, a callable) on the
    layer's output and input picks what it picks in the reference, a plain hook and
    ``torch.autograd.grad`` with the method's rule (``reference_neuron_attribution``)."""
    info = attrkit.method_info(name)
    rule = info.rules[0].name if info.rules else None
    inputs = case.inputs()
    call = quick_call(name, layer=LAYERS[case.id], neuron_selector=selector)
    ours = call.run(
        case.build(),
        case.attribute_inputs(inputs),
        additional_forward_args=case.extra_args(),
        attribute_to_neuron_input=to_input,
    )
    twin = case.build_reference()
    layer = twin.get_submodule(LAYERS[case.id])
    expected = reference_neuron_attribution(
        twin, inputs, layer, selector, case.extra_tuple(), rule, to_input
    )
    assert_all_close(as_tuple(ours), expected)


# ------------------------------------------------------------------------------ errors

X = torch.randn(3, 5)
CNN = models.SmallCNN().eval()
IMAGES = torch.randn(2, 3, 12, 12)


class CallsLayerTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 5)

    def forward(self, x):
        return torch.relu(self.fc(torch.relu(self.fc(x))))


OPTION_ERRORS = [
    # (id, call, error, message pattern)
    (
        "layer-not-a-module",
        lambda: attrkit.LayerGradCam(CNN, "features.4"),
        TypeError,
        r"`layer` must be a torch\.nn\.Module, got str",
    ),
    (
        "layer-not-in-model",
        lambda: attrkit.NeuronDeconvolution(CNN, nn.Linear(2, 2)),
        ValueError,
        r"`layer` \(Linear\) is not a submodule of the model",
    ),
    (
        "layer-of-another-model-instance",
        lambda: attrkit.NeuronGuidedBackprop(CallsLayerTwice(), CallsLayerTwice().fc).attribute(
            X, 0
        ),
        ValueError,
        r"is not a submodule",
    ),
    (
        "neuron-selector-out-of-range",
        lambda: attrkit.NeuronDeconvolution(CNN, CNN.features[4]).attribute(
            IMAGES, neuron_selector=(9, 0, 0)
        ),
        IndexError,
        r"`neuron_selector` \(9, 0, 0\): index 9 is out of range for dimension 1 of the layer's tensor \(shape \(2, 8, 4, 4\)\)",
    ),
    (
        "neuron-selector-too-short",
        lambda: attrkit.NeuronDeconvolution(CNN, CNN.features[4]).attribute(
            IMAGES, neuron_selector=1
        ),
        ValueError,
        r"`neuron_selector` 1 leaves 16 values per example of the layer's tensor",
    ),
    (
        "neuron-selector-too-deep",
        lambda: attrkit.NeuronDeconvolution(CNN, CNN.features[4]).attribute(
            IMAGES, neuron_selector=(0, slice(None), 0, 0, 0)
        ),
        IndexError,
        r"`neuron_selector` .* has 5 indices, but the layer's tensor \(shape \(2, 8, 4, 4\)\) has only 3",
    ),
    (
        "neuron-selector-type",
        lambda: attrkit.NeuronDeconvolution(CNN, CNN.features[4]).attribute(
            IMAGES, neuron_selector="top"
        ),
        TypeError,
        r"`neuron_selector` must be an int, a tuple of ints and slices, or a callable; got str",
    ),
    (
        "neuron-selector-returns-non-tensor",
        lambda: attrkit.NeuronDeconvolution(CNN, CNN.features[4]).attribute(
            IMAGES, neuron_selector=lambda t: 3
        ),
        TypeError,
        r"`neuron_selector` returned int; it must return a tensor with one value per example",
    ),
    (
        "neuron-selector-returns-wrong-shape",
        lambda: attrkit.NeuronDeconvolution(CNN, CNN.features[4]).attribute(
            IMAGES, neuron_selector=lambda t: t[:, 0]
        ),
        ValueError,
        r"`neuron_selector` is required: the value `neuron_selector` returned has 16 values per example",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "pattern"), [pytest.param(*c[1:], id=c[0]) for c in OPTION_ERRORS]
)
def test_bad_layer_or_selector_raises_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
    assert torch._C._len_torch_function_stack() == 0


def test_layer_applied_twice_is_refused():
    model = CallsLayerTwice()
    with pytest.raises(ValueError, match=r"`layer` \(Linear\) ran 2 times during one forward pass"):
        attrkit.NeuronGuidedBackprop(model, model.fc).attribute(X, neuron_selector=0)
    assert not model.fc._forward_hooks


def test_layer_that_does_not_run_is_refused():
    model = models.FunctionalReluMLP("F.relu")
    model.unused = nn.Linear(5, 5)
    with pytest.raises(ValueError, match=r"`layer` \(Linear\) did not run during the forward pass"):
        attrkit.LayerGradCam(model, model.unused).attribute(X, target=0)


# ------------------------------------------------------------------------ regressions
# (found by the reliability work: docs/reliability.rst lists them)

MODEL = FuzzNet().eval()
FUZZ_X = torch.randn(BATCH, *IMAGE, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("selector", "error", "pattern"),
    [
        pytest.param(
            (slice(None, None, -1),),
            ValueError,
            r"`neuron_selector\[0\]` .*: the slice step must be positive",
            id="negative-step",
        ),
        pytest.param(
            (slice(None, None, 0),),
            ValueError,
            r"`neuron_selector\[0\]` .*: the slice step must be positive",
            id="zero-step",
        ),
        pytest.param(
            (slice("a"),),
            TypeError,
            r"`neuron_selector\[0\]` .*: slice bounds must be ints or None",
            id="str-bound",
        ),
        pytest.param(
            (slice(0, 2), 1.5),
            TypeError,
            r"`neuron_selector\[1\]` must be an int, got float",
            id="float",
        ),
        pytest.param(
            (slice(0, 2), True),
            TypeError,
            r"`neuron_selector\[1\]` must be an int, got a bool",
            id="bool",
        ),
        pytest.param(
            (slice(0, 2), None),
            TypeError,
            r"`neuron_selector\[1\]` must be an int, got NoneType",
            id="none",
        ),
        pytest.param(
            (slice(0, 2), 7, 0),
            IndexError,
            r"`neuron_selector\[1\]` = 7 is out of range for dimension 2",
            id="out-of-range",
        ),
        pytest.param(
            (slice(None), 2**70),
            IndexError,
            r"`neuron_selector\[1\]` = 1180591620717411303424 is out of range",
            id="beyond-int64",
        ),
    ],
)
def test_regression_neuron_selector_slices_are_checked(selector, error, pattern):
    """Was: torch's own errors ("step must be greater than zero", "only integers, slices
    ... are valid indices", "index 7 is out of bounds", "Overflow when unpacking long")
    naming no argument, and a bool or None entry silently indexed a new axis."""
    with pytest.raises(error, match=pattern):
        attrkit.NeuronDeconvolution(MODEL, MODEL.conv).attribute(FUZZ_X, neuron_selector=selector)


def test_regression_neuron_selector_slice_on_an_empty_batch():
    """Was: RuntimeError ("cannot reshape tensor of 0 elements into shape [0, -1]")."""
    explainer = attrkit.NeuronGuidedBackprop(MODEL, MODEL.conv)
    result = explainer.attribute(FUZZ_X[:0], neuron_selector=(slice(0, 2), 0, 0))
    assert result.shape == (0, *IMAGE)


def test_regression_slice_selector_sums_the_neurons_it_picks():
    """The rewritten slice path still sums exactly the picked neurons: the attribution of
    (0:2, 1, 1:3) is the sum of the attributions of the four single neurons."""
    explainer = attrkit.NeuronDeconvolution(MODEL, MODEL.conv)
    summed = explainer.attribute(FUZZ_X, neuron_selector=(slice(0, 2), 1, slice(1, 3)))
    singles = sum(
        explainer.attribute(FUZZ_X, neuron_selector=(c, 1, w))
        for c in range(2)
        for w in range(1, 3)
    )
    torch.testing.assert_close(summed, singles)

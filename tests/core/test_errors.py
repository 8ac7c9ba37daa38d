"""Every bad input raises TypeError, ValueError or IndexError with a message that names
the argument and what was expected, and leaves nothing behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import attrkit
from tests import models
from tests.cases import METHODS

X = torch.randn(3, 5)
MLP = models.FunctionalReluMLP("F.relu")  # output (N, 4)
TAGGER = models.SequenceTagger()  # output (N, 3, 7)


class TwoInputs(nn.Module):
    def forward(self, a, b):
        return torch.relu(a.sum(1, keepdim=True) + b.sum(1, keepdim=True))


class ReturnsTuple(nn.Module):
    def forward(self, x):
        return (torch.relu(x), x)


class SumsTheBatch(nn.Module):
    def forward(self, x):
        return torch.relu(x).sum(0)


BAD_INPUTS = [
    # (id, model, inputs, target, error, message pattern)
    (
        "inputs-list",
        MLP,
        [X],
        0,
        TypeError,
        r"`inputs` must be a torch\.Tensor or a tuple of tensors, got list \(pass a tuple",
    ),
    (
        "inputs-numpy",
        MLP,
        np.zeros((3, 5), np.float32),
        0,
        TypeError,
        r"`inputs` must be .* got ndarray \(convert it with torch\.as_tensor\)",
    ),
    (
        "inputs-int-dtype",
        MLP,
        torch.zeros(3, 5, dtype=torch.int64),
        0,
        TypeError,
        r"`inputs` has dtype torch\.int64; gradients need a floating-point tensor",
    ),
    (
        "inputs-bool-dtype",
        MLP,
        torch.zeros(3, 5, dtype=torch.bool),
        0,
        TypeError,
        r"`inputs` has dtype torch\.bool",
    ),
    (
        "inputs-tuple-int-dtype",
        TwoInputs(),
        (X, torch.zeros(3, 2, dtype=torch.int32)),
        None,
        TypeError,
        r"`inputs\[1\]` has dtype torch\.int32",
    ),
    (
        "inputs-tuple-non-tensor",
        TwoInputs(),
        (X, 1.5),
        None,
        TypeError,
        r"`inputs\[1\]` must be a torch\.Tensor, got float",
    ),
    ("inputs-empty-tuple", MLP, (), 0, ValueError, r"`inputs` is an empty tuple"),
    (
        "inputs-0d",
        MLP,
        torch.tensor(1.0),
        0,
        ValueError,
        r"`inputs` is 0-dimensional; dimension 0 must be the batch",
    ),
    (
        "inputs-batch-mismatch",
        TwoInputs(),
        (X, torch.randn(2, 5)),
        None,
        ValueError,
        r"`inputs` disagree on the batch size: inputs\[0\] has 3 examples, inputs\[1\] has 2",
    ),
    (
        "target-out-of-range",
        MLP,
        X,
        4,
        IndexError,
        r"`target` 4: index 4 is out of range for dimension 1 of the model's output "
        r"\(shape \(3, 4\)\)",
    ),
    ("target-negative-out-of-range", MLP, X, -5, IndexError, r"index -5 is out of range"),
    ("target-tensor-out-of-range", MLP, X, torch.tensor(7), IndexError, r"index 7 is out of range"),
    (
        "target-list-out-of-range",
        MLP,
        X,
        [0, 9, 1],
        IndexError,
        r"`target\[1\]` = 9: index 9 is out of range for dimension 1",
    ),
    (
        "target-list-of-tuples-out-of-range",
        TAGGER,
        torch.randn(3, 2, 7),
        [(0, 0), (1, 7), (2, 2)],
        IndexError,
        r"`target\[1\]` = \[1, 7\]: index 7 is out of range for dimension 2",
    ),
    (
        "target-list-too-short",
        MLP,
        X,
        [0, 1],
        ValueError,
        r"`target` has 2 entries but the batch has 3 examples",
    ),
    (
        "target-tensor-too-long",
        MLP,
        X,
        torch.tensor([0, 1, 2, 3]),
        ValueError,
        r"`target` has 4 entries but the batch has 3",
    ),
    ("target-float", MLP, X, 1.0, TypeError, r"`target` must be None, an int, .* got float"),
    ("target-str", MLP, X, "cat", TypeError, r"`target` must be .* got str"),
    ("target-bool", MLP, X, True, TypeError, r"`target` must be .* got bool"),
    (
        "target-float-tensor",
        MLP,
        X,
        torch.tensor([0.0, 1.0, 2.0]),
        TypeError,
        r"`target` tensor must have an integer dtype, got torch\.float32",
    ),
    (
        "target-bool-tensor",
        MLP,
        X,
        torch.tensor(True),
        TypeError,
        r"`target` tensor must have an integer dtype, got torch\.bool",
    ),
    (
        "target-2d-tensor",
        MLP,
        X,
        torch.zeros(3, 2, dtype=torch.long),
        ValueError,
        r"`target` tensor must be 0-d, hold one element, or be 1-d .* got shape \(3, 2\)",
    ),
    (
        "target-list-of-floats",
        MLP,
        X,
        [0.0, 1.0, 2.0],
        TypeError,
        r"`target\[0\]` must be an int, got float",
    ),
    (
        "target-list-mixed",
        MLP,
        X,
        [0, (1,), 2],
        TypeError,
        r"`target` list must hold only ints or only tuples of ints",
    ),
    (
        "target-tuples-of-different-lengths",
        TAGGER,
        torch.randn(3, 2, 7),
        [(0, 0), (1,), (2, 2)],
        ValueError,
        r"`target` tuples must all have the same length, got lengths \[1, 2\]",
    ),
    (
        "target-tuple-with-float",
        TAGGER,
        torch.randn(3, 2, 7),
        (0, 1.5),
        TypeError,
        r"`target\[1\]` must be an int, got float",
    ),
    (
        "target-missing",
        MLP,
        X,
        None,
        ValueError,
        r"`target` is required: the model's output has 4 values per example \(shape \(3, 4\)\)",
    ),
    (
        "target-tuple-deeper-than-output",
        MLP,
        X,
        (0, 1, 2),
        IndexError,
        r"`target` \(0, 1, 2\) has 3 indices, but the model's output \(shape \(3, 4\)\) "
        r"has only 1 dimension",
    ),
    (
        "target-tuple-too-shallow",
        TAGGER,
        torch.randn(3, 2, 7),
        (1,),
        ValueError,
        r"`target` \(1,\) leaves 7 values per example",
    ),
    (
        "target-int-on-1d-output",
        SumsTheBatch(),
        torch.randn(5, 5),
        0,
        IndexError,
        r"has only 0 dimension",
    ),
    (
        "output-not-a-tensor",
        ReturnsTuple(),
        X,
        0,
        TypeError,
        r"the model's output must be a tensor whose dimension 0 is the batch, got tuple",
    ),
    (
        "output-batch-mismatch",
        SumsTheBatch(),
        X,
        None,
        ValueError,
        r"the model's output has shape \(5,\), but dimension 0 must be the batch of 3 examples",
    ),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("model", "inputs", "target", "error", "pattern"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS],
)
def test_bad_input_raises_clear_error(method, model, inputs, target, error, pattern):
    hooks_before = [dict(m._forward_hooks) | dict(m._backward_hooks) for m in model.modules()]
    with pytest.raises(error, match=pattern) as info:
        getattr(attrkit, method)(model).attribute(inputs, target=target)
    assert type(info.value) in (TypeError, ValueError, IndexError)
    assert torch._C._len_torch_function_stack() == 0
    assert torch.is_grad_enabled()
    assert hooks_before == [
        dict(m._forward_hooks) | dict(m._backward_hooks) for m in model.modules()
    ]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", [None, 3, "resnet"], ids=["none", "int", "str"])
def test_model_must_be_callable(method, model):
    with pytest.raises(
        TypeError, match=r"`model` must be a torch\.nn\.Module or another callable, got"
    ):
        getattr(attrkit, method)(model)


def test_error_for_large_target_is_short():
    with pytest.raises(ValueError, match=r"`target` has 1000 entries") as info:
        attrkit.Deconvolution(MLP).attribute(X, target=list(range(1000)))
    assert len(str(info.value)) < 300


# ------------------------------------------------------------- method-specific options

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
        "ig-method",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, target=0, method="simpson"),
        ValueError,
        r"`method` must be one of riemann_left, .* got 'simpson'",
    ),
    (
        "ig-n-steps-zero",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, target=0, n_steps=0),
        ValueError,
        r"`n_steps` must be an int >= 1 for gausslegendre, got 0",
    ),
    (
        "ig-trapezoid-one-step",
        lambda: attrkit.IntegratedGradients(MLP).attribute(
            X, target=0, n_steps=1, method="riemann_trapezoid"
        ),
        ValueError,
        r"`n_steps` must be an int >= 2 for riemann_trapezoid",
    ),
    (
        "ig-n-steps-float",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, target=0, n_steps=2.5),
        ValueError,
        r"`n_steps` must be an int",
    ),
    (
        "ig-internal-batch-size",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, target=0, internal_batch_size=0),
        ValueError,
        r"`internal_batch_size` must be None or an int >= 1, got 0",
    ),
    (
        "ig-baseline-shape",
        lambda: attrkit.IntegratedGradients(MLP).attribute(
            X, baselines=torch.zeros(2, 5), target=0
        ),
        ValueError,
        r"`baselines` has shape \(2, 5\); it must be a number, or a tensor of the input's shape \(3, 5\) or with a batch of one \(1, 5\)",
    ),
    (
        "ig-baseline-type",
        lambda: attrkit.IntegratedGradients(MLP).attribute(X, baselines="zeros", target=0),
        TypeError,
        r"`baselines` must be a number or a tensor, got str",
    ),
    (
        "ig-baselines-count",
        lambda: attrkit.IntegratedGradients(TwoInputs()).attribute((X, X), baselines=(0.0,)),
        ValueError,
        r"`baselines` has 1 entries but `inputs` has 2 tensors",
    ),
    (
        "nt-type",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, nt_type="smooth", target=0),
        ValueError,
        r"`nt_type` must be one of smoothgrad, smoothgrad_sq, vargrad; got 'smooth'",
    ),
    (
        "nt-samples",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, nt_samples=0, target=0),
        ValueError,
        r"`nt_samples` must be an int >= 1, got 0",
    ),
    (
        "nt-batch-size",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(
            X, nt_samples_batch_size=-1, target=0
        ),
        ValueError,
        r"`nt_samples_batch_size` must be an int >= 1, got -1",
    ),
    (
        "nt-stdevs-negative",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, stdevs=-0.1, target=0),
        ValueError,
        r"`stdevs` must be >= 0, got -0.1",
    ),
    (
        "nt-stdevs-count",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(TwoInputs())).attribute((X, X), stdevs=(0.1,)),
        ValueError,
        r"`stdevs` has 1 entries but `inputs` has 2 tensors",
    ),
    (
        "nt-stdevs-type",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, stdevs="big", target=0),
        TypeError,
        r"`stdevs` must be a number or a tuple of numbers, got 'big'",
    ),
    (
        "nt-delta-unsupported",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(
            X, target=0, return_convergence_delta=True
        ),
        ValueError,
        r"`return_convergence_delta`: Saliency has no convergence delta",
    ),
    (
        "nt-draw-baselines-without-baselines",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(
            X, target=0, draw_baseline_from_distrib=True
        ),
        ValueError,
        r"`draw_baseline_from_distrib` needs `baselines`",
    ),
    (
        "nt-target-checked-first",
        lambda: attrkit.NoiseTunnel(attrkit.Saliency(MLP)).attribute(X, target=[0, 1]),
        ValueError,
        r"`target` has 2 entries but the batch has 3",
    ),
    (
        "nt-wraps-non-method",
        lambda: attrkit.NoiseTunnel(MLP),
        TypeError,
        r"`attribution_method` must be an attribution method such as attrkit\.Saliency\(model\), got FunctionalReluMLP",
    ),
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
    (
        "guided-grad-cam-mode",
        lambda: attrkit.GuidedGradCam(CNN, CNN.features[4]).attribute(
            IMAGES, target=0, interpolate_mode="cubic"
        ),
        ValueError,
        r"`interpolate_mode` must be one of nearest, .* got 'cubic'",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "pattern"), [pytest.param(*c[1:], id=c[0]) for c in OPTION_ERRORS]
)
def test_bad_option_raises_clear_error(call, error, pattern):
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

"""Every bad ``inputs``, ``target`` or model output raises TypeError, ValueError or
IndexError with a message that names the argument and what was expected, and leaves
nothing behind: the checks of attrkit/core (call.py, targets.py), through every
registered method that is constructed with the model alone and takes a target (the
perturbation family with the rows its checks share with the core). (Each
method's own options: tests/methods/test_<family>.py; a few of these rows through every
registered method, layer and neuron methods included: tests/methods/test_shared.py.)"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch import nn

import attrkit
from tests import models
from tests.tester import (
    computed_by_attrkit,
    info,
    method_params,
    needs_layer,
    quick_call,
    quick_callable,
    wraps_a_method,
)

X = torch.randn(3, 5)
MLP = models.FunctionalReluMLP("F.relu")  # output (N, 4)
TAGGER = models.SequenceTagger()  # output (N, 3, 7)


TwoInputs = models.TwoInputs


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


#: The registered methods built from the model alone that take a target and run the model
#: on the batch as given (the messages below describe its output; a method that runs it
#: on an expanded batch, such as IntegratedGradients' path points or the samples of a
#: method with a baseline distribution, describes that batch; DeepLift's inputs and
#: baselines are described by the inputs' half), and that a quick call can build
#: (``LimeBase`` needs the caller's interpretable model and transforms).
METHODS = method_params(
    lambda m: (
        m.takes_target
        and quick_callable(m)
        and not needs_layer(m)
        and not wraps_a_method(m)
        and "n_steps" not in m.attribute_arguments
        and "baselines" not in m.required_arguments
    )
)

#: Rows that only attrkit's own computation refuses. The perturbation family is Captum's
#: computation behind attrkit's checks of the arguments themselves: it takes integer
#: inputs (it does not differentiate them, e.g. token ids) and tensors whose dimension 0
#: differs (Captum's sparse features); it leaves the model's output and the target's
#: selection in it to Captum (a missing target or an output that is one value per batch
#: is a valid Captum call there; tests/methods/test_perturbation.py).
COMPUTED_BY_ATTRKIT_ONLY = {
    "inputs-int-dtype",
    "inputs-bool-dtype",
    "inputs-tuple-int-dtype",
    "inputs-batch-mismatch",
    "target-out-of-range",
    "target-negative-out-of-range",
    "target-tensor-out-of-range",
    "target-list-out-of-range",
    "target-list-of-tuples-out-of-range",
    "target-missing",
    "target-tuple-deeper-than-output",
    "target-tuple-too-shallow",
    "target-int-on-1d-output",
    "output-not-a-tensor",
    "output-batch-mismatch",
}

BAD_INPUT_ROWS = [
    pytest.param(method.values[0], *case[1:], id=f"{case[0]}-{method.id}")
    for case in BAD_INPUTS
    for method in METHODS
    if case[0] not in COMPUTED_BY_ATTRKIT_ONLY or computed_by_attrkit(info(method.values[0]))
]


def required_options(method: str, inputs: object) -> dict[str, object]:
    """The ``attribute`` arguments ``method`` requires besides the inputs and target,
    valid for ``inputs`` where they are tensors: Occlusion's window, one feature (one
    window per input tensor, for a tuple)."""
    if "sliding_window_shapes" not in info(method).required_arguments:
        return {}
    tensors = inputs if isinstance(inputs, tuple) else (inputs,)
    windows = tuple(
        (1,) * max(t.dim() - 1, 1) if isinstance(t, torch.Tensor) else (1,) for t in tensors
    )
    return {"sliding_window_shapes": windows if isinstance(inputs, tuple) else windows[0]}


@pytest.mark.parametrize(
    ("method", "model", "inputs", "target", "error", "pattern"), BAD_INPUT_ROWS
)
def test_bad_input_raises_clear_error(method, model, inputs, target, error, pattern):
    hooks_before = [dict(m._forward_hooks) | dict(m._backward_hooks) for m in model.modules()]
    call = quick_call(method)
    with pytest.raises(error, match=pattern) as raised:
        call.run(model, inputs, target=target, **required_options(method, inputs))
    # The built-in type, or attrkit's subclass of it that is an AssertionError too (where
    # Captum asserts): never another exception that merely passes for one.
    assert type(raised.value).__module__ in ("builtins", "attrkit.core.errors")
    assert isinstance(raised.value, (TypeError, ValueError, IndexError))
    assert torch._C._len_torch_function_stack() == 0
    assert torch.is_grad_enabled()
    assert hooks_before == [
        dict(m._forward_hooks) | dict(m._backward_hooks) for m in model.modules()
    ]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", [None, 3, "resnet"], ids=["none", "int", "str"])
def test_model_must_be_callable(method, model):
    """The message names the constructor's argument: ``model``, or ``forward_func`` where
    Captum's class calls it that."""
    cls = attrkit.method_info(method).cls
    argument = list(inspect.signature(cls.__init__).parameters)[1]
    with pytest.raises(
        TypeError, match=rf"`{argument}` must be a torch\.nn\.Module or another callable, got"
    ):
        quick_call(method).explainer(model)


def test_error_for_large_target_is_short():
    with pytest.raises(ValueError, match=r"`target` has 1000 entries") as info:
        attrkit.Deconvolution(MLP).attribute(X, target=list(range(1000)))
    assert len(str(info.value)) < 300

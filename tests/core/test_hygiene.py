"""No side effects and no residue: after ``attribute`` returns or raises, the model has the
same hooks, training flags, parameters and ``.grad``; the caller's tensors keep their
values, ``requires_grad`` and graph; the grad mode and torch-function mode stack are as
before."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attrkit
from tests import models
from tests.cases import METHODS, RULE_OF_CLASS
from tests.helpers import assert_same, quick_call, snapshot

#: The ReLU-override methods (and their layer variants), built for a model with a layer.
RELU_METHODS = tuple(RULE_OF_CLASS)
LAYER_OF = {models.SmallCNN: "features.4", models.RaisingNet: "fc"}


def explain(method: str, model: nn.Module, x: torch.Tensor, target: object) -> object:
    """Run ``method`` on ``model``; the neuron variants select neuron ``target`` of the layer
    (``None`` becomes a selector too short for the layer, the neuron form of a missing
    target)."""
    if method in METHODS:
        return getattr(attrkit, method)(model).attribute(x, target=target)
    layer = model.get_submodule(LAYER_OF[type(model)])
    explainer = getattr(attrkit, method)(model, layer)
    if method.startswith("Neuron"):
        if target is None:
            return explainer.attribute(x, neuron_selector=(0,))
        return explainer.attribute(x, neuron_selector=(target, 0, 0) if x.dim() == 4 else target)
    return explainer.attribute(x, target=target)


def _model_with_grads(train: bool) -> nn.Module:
    torch.manual_seed(0)
    model = models.SmallCNN().train(train)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    model.features[1].weight.grad = None  # one parameter without .grad
    return model


@pytest.mark.parametrize("method", RELU_METHODS)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("requires_grad", [False, True], ids=["plain-input", "grad-input"])
def test_success_leaves_no_trace(method, train, requires_grad):
    """Also in train mode, where dropout draws random numbers: the RNG state is restored.
    (BatchNorm running statistics do move in train mode, exactly as in a plain forward.)"""
    model = _model_with_grads(train)
    x = torch.randn(2, 3, 12, 12).requires_grad_(requires_grad)
    before = snapshot(model, (x,))
    explain(method, model, x, 1)
    after = snapshot(model, (x,))
    if train:
        del before["buffers"], after["buffers"]
    assert_same(before, after)


@pytest.mark.parametrize("method", RELU_METHODS)
@pytest.mark.parametrize(
    ("model_factory", "target", "error"),
    [
        pytest.param(models.RaisingNet, 0, RuntimeError, id="forward-raises"),
        pytest.param(models.SmallCNN, 99, IndexError, id="target-out-of-range"),
        pytest.param(models.SmallCNN, None, ValueError, id="target-missing"),
    ],
)
def test_failure_leaves_no_trace(method, model_factory, target, error):
    torch.manual_seed(0)
    model = model_factory().eval()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    x = torch.randn(2, *((5,) if model_factory is models.RaisingNet else (3, 12, 12)))
    before = snapshot(model, (x,))
    with pytest.raises(error):
        explain(method, model, x, target)
    assert_same(before, snapshot(model, (x,)))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("functional", [False, True], ids=["module", "functional"])
def test_inplace_relu_on_the_callers_input_does_not_modify_it(method, functional):
    model = models.InplaceReluOnInput(functional=functional)
    x = torch.randn(4, 5)
    assert (x < 0).any()
    original = x.clone()
    getattr(attrkit, method)(model).attribute(x, target=0)
    assert torch.equal(x, original)
    assert x._version == 0


@pytest.mark.parametrize("method", METHODS)
def test_non_leaf_input_keeps_its_graph(method):
    """Attributing a tensor that is part of the caller's graph neither consumes nor alters
    that graph: the caller's own backward afterwards gives the usual gradient."""
    model = models.SmallCNN().eval()
    leaf = torch.randn(2, 3, 12, 12, requires_grad=True)
    x = leaf * 2.0
    getattr(attrkit, method)(model).attribute(x, target=0)
    assert leaf.grad is None
    x.sum().backward()
    torch.testing.assert_close(leaf.grad, torch.full_like(leaf, 2.0))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_works_inside_no_grad_and_inference_mode(method, context):
    model = models.SmallCNN().eval()
    x = torch.randn(2, 3, 12, 12)
    expected = getattr(attrkit, method)(model).attribute(x, target=3)
    manager = torch.no_grad() if context == "no_grad" else torch.inference_mode()
    with manager:
        inner_x = x.clone()  # an inference tensor under inference_mode
        got = getattr(attrkit, method)(model).attribute(inner_x, target=3)
        assert not torch.is_grad_enabled()
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", attrkit.available_methods())
def test_normal_call_is_quiet(name, recwarn):
    model = models.TinyDenseNet().eval()
    init, options = quick_call(name, layer="transition.1", target=[0, 1], neuron_selector=(0, 0, 0))
    attrkit.attribute(model, torch.randn(2, 3, 6, 6), method=name, **init, **options)
    assert len(recwarn) == 0

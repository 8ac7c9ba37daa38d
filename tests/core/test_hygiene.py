"""The caller's tensors and grad mode, for every registered method (the model's hooks,
modes, parameters and ``.grad``, after success and failure: tests/methods/test_shared.py):
an in-place ReLU on the caller's input does not modify it, an input that is part of the
caller's graph keeps that graph, and a call inside ``torch.no_grad`` or
``torch.inference_mode`` gives the usual result."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests import models
from tests.tester import method_params, quick_call


@pytest.mark.parametrize("name", method_params())
@pytest.mark.parametrize("functional", [False, True], ids=["module", "functional"])
def test_inplace_relu_on_the_callers_input_does_not_modify_it(name, functional):
    model = models.InplaceReluOnInput(functional=functional)
    x = torch.randn(4, 5)
    assert (x < 0).any()
    original = x.clone()
    quick_call(name, layer="fc", target=0, neuron_selector=0).run(model, x)
    assert torch.equal(x, original)
    assert x._version == 0


def _small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.SmallCNN().eval()


@pytest.mark.parametrize("name", method_params())
def test_non_leaf_input_keeps_its_graph(name):
    """Attributing a tensor that is part of the caller's graph neither consumes nor alters
    that graph: the caller's own backward afterwards gives the usual gradient."""
    leaf = torch.randn(2, 3, 12, 12, requires_grad=True)
    x = leaf * 2.0
    quick_call(name, layer="features.4", target=0, neuron_selector=(0, 0, 0)).run(_small_cnn(), x)
    assert leaf.grad is None
    x.sum().backward()
    torch.testing.assert_close(leaf.grad, torch.full_like(leaf, 2.0))


def _inside(manager: Any, name: str) -> None:
    """The method's result inside ``manager`` equals the one outside."""
    model = _small_cnn()
    x = torch.randn(2, 3, 12, 12)
    call = quick_call(name, layer="features.4", target=3, neuron_selector=(3, 0, 0))
    torch.manual_seed(0)
    np.random.seed(0)  # (GradientShap draws from NumPy's generator too)
    expected = call.attributions(model, x)
    with manager:
        inner_x = x.clone()  # an inference tensor under inference_mode
        torch.manual_seed(0)
        np.random.seed(0)
        got = call.attributions(model, inner_x)
        assert not torch.is_grad_enabled()
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", method_params())
def test_works_inside_no_grad(name):
    _inside(torch.no_grad(), name)


@pytest.mark.parametrize("name", method_params())
def test_works_inside_inference_mode(name):
    _inside(torch.inference_mode(), name)

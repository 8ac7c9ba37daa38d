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
import torch.nn.functional as F
from torch import Tensor, nn

from tests import models
from tests.tester import method_params, quick_call, quick_callable

# LimeBase and DataLoaderAttribution are left out of every test here: a quick call cannot
# build them (the caller's interpretable model and transforms; a DataLoader, not inputs).

IMAGE_SHAPE = (3, 12, 12)


class InplaceReluOnImage(nn.Module):
    """An in-place ReLU applied straight to the caller's image, then a convolution (a
    spatial layer for the Grad-CAM methods) and a linear head."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.functional = functional
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu_(x) if self.functional else self.relu(x)
        return self.fc(self.conv(x).flatten(1))


@pytest.mark.parametrize("name", method_params(quick_callable))
@pytest.mark.parametrize("functional", [False, True], ids=["module", "functional"])
def test_inplace_relu_on_the_callers_input_does_not_modify_it(name, functional):
    model = InplaceReluOnImage(functional=functional)
    x = torch.randn(2, 3, 4, 4)
    assert (x < 0).any()
    original = x.clone()
    call = quick_call(
        name, layer="conv", target=0, neuron_selector=(0, 0, 0), image_shape=(3, 4, 4)
    )
    call.run(model, x)
    assert torch.equal(x, original)
    assert x._version == 0


def _small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.SmallCNN().eval()


@pytest.mark.parametrize("name", method_params(quick_callable))
def test_non_leaf_input_keeps_its_graph(name):
    """Attributing a tensor that is part of the caller's graph neither consumes nor alters
    that graph: the caller's own backward afterwards gives the usual gradient."""
    leaf = torch.randn(2, 3, 12, 12, requires_grad=True)
    x = leaf * 2.0
    call = quick_call(
        name, layer="features.4", target=0, neuron_selector=(0, 0, 0), image_shape=IMAGE_SHAPE
    )
    call.run(_small_cnn(), x)
    assert leaf.grad is None
    x.sum().backward()
    torch.testing.assert_close(leaf.grad, torch.full_like(leaf, 2.0))


def _inside(manager: Any, name: str) -> None:
    """The method's result inside ``manager`` equals the one outside."""
    model = _small_cnn()
    x = torch.randn(2, 3, 12, 12)
    call = quick_call(
        name, layer="features.4", target=3, neuron_selector=(3, 0, 0), image_shape=IMAGE_SHAPE
    )
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


@pytest.mark.parametrize("name", method_params(quick_callable))
def test_works_inside_no_grad(name):
    _inside(torch.no_grad(), name)


@pytest.mark.parametrize("name", method_params(quick_callable))
def test_works_inside_inference_mode(name):
    _inside(torch.inference_mode(), name)

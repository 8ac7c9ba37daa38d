"""Real torchvision architectures (random weights, nothing downloaded): attrkit equals the
definition, and on those with functional ReLUs Captum does not.

torchvision is an optional dependency of attrkit; the test extra installs it, and the
hand-written DenseNet- and Inception-style blocks in tests/models.py cover the same
structures without it."""

from __future__ import annotations

import pytest
import torch

import attrkit
from tests.cases import METHODS, RULE_OF
from tests.helpers import assert_all_close, captum_attribute, differs
from tests.reference import reference_attribution

tv_models = pytest.importorskip("torchvision.models")

ARCHITECTURES = {
    "resnet18": (lambda: tv_models.resnet18(num_classes=7), 64, False),
    "vgg11": (lambda: tv_models.vgg11(num_classes=7), 32, False),
    "densenet121": (lambda: tv_models.densenet121(num_classes=7), 32, True),
    "googlenet": (
        lambda: tv_models.googlenet(num_classes=7, aux_logits=False, init_weights=False),
        32,
        True,
    ),
    "inception_v3": (
        lambda: tv_models.inception_v3(num_classes=7, aux_logits=False, init_weights=False),
        75,
        True,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ARCHITECTURES))
@pytest.mark.parametrize("method", METHODS)
def test_torchvision_architecture(name, method):
    factory, size, has_functional_relu = ARCHITECTURES[name]
    torch.manual_seed(0)
    model = factory().eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    target = [3, 5]
    ours = getattr(attrkit, method)(model).attribute(x, target=target)
    expected = reference_attribution(model, (x,), target, (), RULE_OF[method])
    assert_all_close((ours,), expected)
    theirs = captum_attribute(method, model, x, target=target)
    assert differs(theirs, expected) == has_functional_relu

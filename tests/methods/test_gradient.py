"""Saliency and Input x Gradient (attrkit/methods/gradient.py), beyond the shared tester's
checks (tests/methods/test_shared.py: parity with Captum and the plain-gradient
definition on every model case): closed forms on linear models, and zeros for an input
that does not reach the output, where Captum raises."""

from __future__ import annotations

import warnings

import captum.attr
import pytest
import torch
from torch import nn

import attrkit


def _linear(out_features: int = 3) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(6, out_features)


@pytest.mark.parametrize("target", [0, 2])
def test_saliency_of_a_linear_model_is_its_weights(target):
    model = _linear()
    x = torch.randn(4, 6)
    signed = attrkit.Saliency(model).attribute(x, target=target, abs=False)
    torch.testing.assert_close(signed, model.weight[target].detach().expand(4, 6))
    torch.testing.assert_close(
        attrkit.Saliency(model).attribute(x, target=target),
        model.weight[target].detach().abs().expand(4, 6),
    )


def test_input_x_gradient_of_a_linear_model_is_input_times_weight():
    model = _linear()
    x = torch.randn(4, 6)
    torch.testing.assert_close(
        attrkit.InputXGradient(model).attribute(x, target=[0, 1, 2, 0]),
        x * model.weight.detach()[[0, 1, 2, 0]],
    )


class IgnoresSecondInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)

    def forward(self, x, unused):
        return torch.relu(self.fc(x))


@pytest.mark.parametrize("cls", ["Saliency", "InputXGradient", "IntegratedGradients"])
def test_input_that_does_not_reach_the_output_gets_zeros_where_captum_raises(cls):
    model = IgnoresSecondInput()
    x, unused = torch.randn(2, 3), torch.randn(2, 4)
    ours = getattr(attrkit, cls)(model).attribute((x, unused), target=0)
    assert torch.equal(ours[1], torch.zeros_like(unused))
    theirs = getattr(captum.attr, cls)(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns on every call
        with pytest.raises(RuntimeError, match="not have been used in the graph"):
            theirs.attribute((x.clone(), unused.clone()), target=0)

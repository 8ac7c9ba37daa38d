"""Captum's own hand-computed expectations, reproduced by attrkit.

The numbers come from Captum's test suite (pytorch/captum), for
``BasicModel_ConvNet_One_Conv`` with the input ``arange(16).view(1, 1, 4, 4)``, target 0:

- tests/attr/test_deconvolution.py: ``test_simple_input_conv_deconv`` and
  ``test_simple_multi_input_conv_deconv`` (second input ``ones``);
- tests/attr/test_guided_backprop.py: ``test_simple_input_conv_gb`` and
  ``test_simple_multi_input_conv_gb``.

They can be checked by hand: conv1 has all-ones 3x3 kernels with biases -50 and -75, so on
the 2x2 output map only the units whose 3x3 window sums past the bias are active; fc1 has
weights +1 on the first five features and -1 on the last three.
"""

from __future__ import annotations

import pytest
import torch
from captum.testing.helpers.basic_models import BasicModel_ConvNet_One_Conv

import attrkit

DECONV_ONE_INPUT = [[2, 3, 3, 1], [3, 5, 5, 2], [3, 5, 5, 2], [1, 2, 2, 1]]
GBP_ONE_INPUT = [[0, 1, 1, 1], [1, 3, 3, 2], [1, 3, 3, 2], [1, 2, 2, 1]]
# With x + ones as the model input, both conv1 channels are active everywhere.
DECONV_TWO_INPUTS = [[2, 3, 3, 1], [3, 5, 5, 2], [3, 5, 5, 2], [1, 2, 2, 1]]
GBP_TWO_INPUTS = [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]


def _input() -> torch.Tensor:
    return torch.arange(16, dtype=torch.float).view(1, 1, 4, 4)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        pytest.param(attrkit.Deconvolution, DECONV_ONE_INPUT, id="deconvolution"),
        pytest.param(attrkit.GuidedBackprop, GBP_ONE_INPUT, id="guided-backprop"),
    ],
)
def test_one_input(method, expected):
    attribution = method(BasicModel_ConvNet_One_Conv()).attribute(_input(), target=0)
    torch.testing.assert_close(
        attribution, torch.tensor(expected, dtype=torch.float).view(1, 1, 4, 4)
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        pytest.param(attrkit.Deconvolution, DECONV_TWO_INPUTS, id="deconvolution"),
        pytest.param(attrkit.GuidedBackprop, GBP_TWO_INPUTS, id="guided-backprop"),
    ],
)
def test_two_inputs(method, expected):
    attributions = method(BasicModel_ConvNet_One_Conv()).attribute(
        (_input(), torch.ones(1, 1, 4, 4)), target=0
    )
    expected_tensor = torch.tensor(expected, dtype=torch.float).view(1, 1, 4, 4)
    assert isinstance(attributions, tuple)
    for attribution in attributions:
        torch.testing.assert_close(attribution, expected_tensor)

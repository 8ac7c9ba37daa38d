"""Targets (attrkit/core/targets.py): every target form selects, from a model output of
every shape class, exactly what the plain definition picks (``output[i][target_i]``:
``select_reference`` in tests/reference.py); per-example targets take the one-kernel path
(``gather``, non-negative classes of a 2-d output) and the general one (negative indices,
deeper outputs) with the same result; out-of-range entries are named. (The forms through
every method and the other target paths: tests/methods/test_shared.py's docstring.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attrkit
from attrkit.core.targets import parse_target
from tests.cases import BATCH, target_forms
from tests.helpers import assert_all_close
from tests.reference import select_reference
from tests.tester import definition_kind, info, method_params, one_gradient, quick_call

#: Per-example output shapes of every class: one value, a vector, several dimensions.
OUTPUT_SHAPES = [(1,), (), (5,), (3, 7), (2, 2, 2)]


@pytest.mark.parametrize(
    ("shape", "target"),
    [
        pytest.param(shape, target, id=f"{'x'.join(map(str, shape)) or 'scalar'}-{form}")
        for shape in OUTPUT_SHAPES
        for form, target in target_forms(shape)
    ],
)
def test_every_form_selects_what_the_definition_picks(shape, target):
    output = torch.randn(BATCH, *shape, generator=torch.Generator().manual_seed(0))
    selected = parse_target(target, BATCH).select(output, BATCH)
    assert selected.shape == (BATCH,)
    torch.testing.assert_close(selected, select_reference(output, target), rtol=0, atol=0)


def _inputs() -> Tensor:
    return torch.randn(4, 5, generator=torch.Generator().manual_seed(3))


def _model(factory) -> nn.Module:
    torch.manual_seed(0)
    return factory().eval()


class Scores(nn.Module):
    """Per-example scores of shape ``(N, *shape)``."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape
        self.fc = nn.Linear(5, int(torch.tensor(shape).prod()))

    def forward(self, x: Tensor) -> Tensor:
        z = self.fc(x).reshape(x.shape[0], *self.shape)
        return F.relu(z) - 0.3 * z


@pytest.mark.parametrize("name", method_params(lambda m: definition_kind(m) == "gradient"))
@pytest.mark.parametrize(
    ("shape", "target"),
    [
        pytest.param((6,), [0, 5, 2, 3], id="list"),
        pytest.param((6,), torch.tensor([5, 0, 1, 1]), id="tensor"),
        pytest.param((6,), [-1, 2, -6, 0], id="list-negative"),
        pytest.param((6,), torch.tensor([0, -2, 3, -1]), id="tensor-negative"),
        pytest.param((3, 2), [(0, 1), (2, -1), (-3, 0), (1, 1)], id="tuples-negative"),
    ],
)
def test_per_example_targets(name, shape, target):
    """A class per example selects with one ``gather`` on a 2-d output when no index is
    negative, by advanced indexing otherwise; both give the definition's result (for
    every registered method made of one gradient)."""
    model, x = _model(lambda: Scores(*shape)), _inputs()
    signed = {"abs": False}  # (saliency's option: the signed gradient)
    expected = one_gradient(info(name), model, (x,), target, options=signed)
    ours = quick_call(name, target=target, options=signed).run(model, x)
    assert_all_close((ours,), expected)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param([0, 6, 1, 1], r"`target\[1\]` = 6: index 6 is out of range", id="high"),
        pytest.param([0, 1, -7, 1], r"`target\[2\]` = -7: index -7 is out of range", id="low"),
        pytest.param(
            torch.tensor([0, 1, 2, 60]), r"`target\[3\]` = 60: index 60 is out", id="tensor"
        ),
    ],
)
def test_per_example_target_out_of_range(target, message):
    model, x = _model(lambda: Scores(6)), _inputs()
    with pytest.raises(IndexError, match=message):
        attrkit.Deconvolution(model).attribute(x, target=target)

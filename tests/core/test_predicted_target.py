"""``predicted_target``: the one helper the CLI, the dataset runner and the demo use for
"the model's top class"."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from attrkit.core.targets import predicted_target


class _Scores(nn.Module):
    """Fixed class scores, shifted by an extra argument."""

    def __init__(self, scores: Tensor) -> None:
        super().__init__()
        self.scores = scores

    def forward(self, x: Tensor, shift: Tensor | None = None) -> Tensor:
        out = self.scores + 0 * x.sum(dim=1, keepdim=True)
        return out if shift is None else out + shift


def test_top_class_of_each_example():
    scores = torch.tensor([[0.1, 0.9, 0.0], [2.0, -1.0, 1.0]])
    assert predicted_target(_Scores(scores), torch.zeros(2, 4)).tolist() == [1, 0]


def test_extra_arguments_reach_the_model():
    scores = torch.tensor([[0.1, 0.9, 0.0], [2.0, -1.0, 1.0]])
    shift = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    assert predicted_target(_Scores(scores), torch.zeros(2, 4), shift).tolist() == [0, 2]


def test_runs_without_gradients():
    seen: list[bool] = []

    def model(x: Tensor) -> Tensor:
        seen.append(torch.is_grad_enabled())
        return x

    predicted_target(model, torch.randn(3, 2, requires_grad=True))
    assert seen == [False]
    assert torch.is_grad_enabled()


@pytest.mark.parametrize(
    ("output", "shown"),
    [
        pytest.param(torch.zeros(2, 3, 4), r"\(2, 3, 4\)", id="3-d"),
        pytest.param(torch.zeros(3, 5), r"\(3, 5\)", id="other-batch"),
        pytest.param((torch.zeros(2, 3),), "tuple", id="not-a-tensor"),
    ],
)
def test_output_that_is_not_class_scores_is_an_error(output, shown):
    with pytest.raises(ValueError, match=rf"^--target predicted needs .* \(2, C\); got {shown}$"):
        predicted_target(lambda x: output, torch.zeros(2, 4), argument="--target predicted")

"""Model factories for the command-line tests, imported by ``attrkit`` subprocesses as
``tests.cli_models:<factory>``."""

from __future__ import annotations

import torch
from torch import nn

from tests import models


def relu_modules() -> nn.Module:
    """Distinct nn.ReLU modules: attrkit, Captum and zennit agree. Input: N x 3 x 12 x 12."""
    torch.manual_seed(0)
    return models.SmallCNN()


def functional_relu() -> nn.Module:
    """torchvision's DenseNet in miniature, whose last ReLU is ``F.relu``: Captum and zennit
    differ. Input: N x 3 x 6 x 6."""
    torch.manual_seed(0)
    return models.TinyDenseNet()


def not_a_module() -> int:
    return 3


def raises() -> nn.Module:
    raise RuntimeError("cannot build the model")


def scalar_output() -> nn.Module:
    """One value per example, output shape (N,): no class to predict. Input: N x 5."""
    return nn.Sequential(nn.Linear(5, 1), nn.Flatten(0))


NOT_CALLABLE = 3

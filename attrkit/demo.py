"""The built-in demo: attrkit next to Captum on a small built-in CNN.

The same network is run twice: once with every ReLU an ``nn.ReLU`` module (where Captum
follows the definition, so both libraries must agree), once with the ReLUs written as
``F.relu`` calls (which Captum's module hooks never see, so Captum silently returns the
plain gradient through them while attrkit still applies the method's rule).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import captum.attr
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attrkit

__all__ = ["DemoCNN", "DemoRow", "run_demo"]


class DemoCNN(nn.Module):
    """A small CNN for 1x8x8 images with 10 classes.

    Args:
        functional_relu: Apply the ReLUs as ``F.relu`` calls instead of ``nn.ReLU``
            modules (the weights are the same either way).
    """

    def __init__(self, functional_relu: bool = False) -> None:
        super().__init__()
        self.functional_relu = functional_relu
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(32, 10)

    def _relu(self, module: nn.Module, x: Tensor) -> Tensor:
        output: Tensor = F.relu(x) if self.functional_relu else module(x)
        return output

    def forward(self, x: Tensor) -> Tensor:
        x = self._relu(self.relu1, self.conv1(x))
        x = F.max_pool2d(self._relu(self.relu2, self.conv2(x)), 2)
        x = self._relu(self.relu3, self.fc1(torch.flatten(x, 1)))
        logits: Tensor = self.fc2(x)
        return logits


@dataclass(frozen=True)
class DemoRow:
    """One line of the demo's agreement table."""

    variant: str
    method: str
    max_abs_difference: float
    relative_l2_error: float
    attrkit_seconds: float
    captum_seconds: float

    @property
    def agrees(self) -> bool:
        return self.relative_l2_error <= 1e-5


def _timed(fn: Callable[..., Tensor], *args: Any) -> tuple[Tensor, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def run_demo(seed: int = 0, batch_size: int = 4) -> list[DemoRow]:
    """Attribute ``batch_size`` random images with Deconvolution and GuidedBackprop through
    attrkit and Captum, on both variants of :class:`DemoCNN`; return the agreement rows."""
    torch.manual_seed(seed)
    weights = DemoCNN().state_dict()
    images = torch.rand(batch_size, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    rows = []
    for variant, functional in (("nn.ReLU modules", False), ("functional F.relu", True)):
        model = DemoCNN(functional_relu=functional)
        model.load_state_dict(weights)
        model.eval()
        with torch.no_grad():
            target = model(images).argmax(dim=1)
        for method in ("Deconvolution", "GuidedBackprop"):
            ours, ours_time = _timed(getattr(attrkit, method)(model).attribute, images, target)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Captum warns on every call
                theirs, theirs_time = _timed(
                    getattr(captum.attr, method)(model).attribute, images.clone(), target
                )
            difference = ours - theirs
            rows.append(
                DemoRow(
                    variant=variant,
                    method=method,
                    max_abs_difference=float(difference.abs().max()),
                    relative_l2_error=float(difference.norm() / ours.norm().clamp_min(1e-30)),
                    attrkit_seconds=ours_time,
                    captum_seconds=theirs_time,
                )
            )
    return rows

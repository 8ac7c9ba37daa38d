"""audit, on what attrkit reaches and the libraries do not: ReLUs inside torch's own
functions (nn.RNN, nn.LPPool2d), ReLU modules under torch.vmap, and the ReLU look-alikes.
Each verdict is checked against what the library actually does (its result equals the
plain gradient, or it raises), and attrkit's reach against the definition."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from zennit.attribution import Gradient
from zennit.composites import DeconvNet

import attrkit
from tests.helpers import captum_attribute
from tests.reference import reference_attribution

WIDTH = 6


class Lookalikes(nn.Module):
    """Every ReLU look-alike, once each, in this order."""

    EXPRESSIONS = (
        "clamp(x, min=0)",
        "torch.where(x > 0, x, 0)",
        "maximum(x, 0)",
        "x * (x > 0)",
        "x * (x > 0)",
        "threshold(x, 0, 0)",
        "hardtanh(x, 0, inf)",
    )

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(WIDTH, WIDTH)
        self.threshold, self.hardtanh = nn.Threshold(0, 0), nn.Hardtanh(0, float("inf"))

    def forward(self, x: Tensor) -> Tensor:
        h = self.linear(x)
        h = h.clamp(min=0) + torch.where(h > 0, h, 0) + torch.maximum(h, torch.zeros_like(h))
        h = h + h * (h > 0) + (h >= 0).float() * h
        return self.threshold(h) + self.hardtanh(h)


def test_lookalikes_are_listed_as_not_relus():
    report = attrkit.audit(Lookalikes(), torch.randn(2, WIDTH))
    assert report.relus == ()
    assert tuple(f.name for f in report.lookalikes) == Lookalikes.EXPRESSIONS
    assert [f.location for f in report.lookalikes][-2:] == ["threshold", "hardtanh"]
    assert report.activations == ()  # threshold(0, 0) and hardtanh(0, inf) are look-alikes
    assert "7 ReLU look-alikes" in report.summary()
    assert "not a ReLU: plain gradient in every library" in report.summary()
    assert "ReLU look-alikes (not a ReLU: plain gradient in every library):" in str(report)
    exported = json.loads(report.to_json())
    assert [item["name"] for item in exported["lookalikes"]] == list(Lookalikes.EXPRESSIONS)


def test_a_relu_is_not_mistaken_for_a_lookalike():
    class Mixed(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return F.relu(x) + x.clamp(min=-1) + x * (x > 1) + torch.maximum(x, x * 2)

    report = attrkit.audit(Mixed(), torch.randn(2, WIDTH, requires_grad=True))
    assert len(report.relus) == 1
    assert report.lookalikes == ()


class Recurrent(nn.Module):
    def __init__(self, bidirectional: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.rnn = nn.RNN(
            WIDTH,
            4,
            num_layers=2,
            nonlinearity="relu",
            bidirectional=bidirectional,
            batch_first=True,
            dropout=dropout,
        )
        self.head = nn.Linear(4 * (1 + bidirectional), 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class Pooled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pool = nn.Conv2d(1, 2, 3), nn.LPPool2d(2, 2)
        self.head = nn.Linear(2 * 3 * 3, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.conv(x)).flatten(1))


def _zennit_deconvolution(model: nn.Module, x: Tensor, target: int, classes: int = 3) -> Tensor:
    with Gradient(model=model, composite=DeconvNet()) as attributor:
        _, relevance = attributor(x, torch.eye(classes)[[target] * x.shape[0]])
    return relevance


@pytest.mark.parametrize(
    ("make", "shape", "location", "inside", "applications"),
    [
        # 5 time steps x 2 layers x 2 directions, all in one call of torch.rnn_relu
        (Recurrent, (3, 5, WIDTH), "rnn", "torch.rnn_relu", 20),
        (Pooled, (3, 1, 8, 8), "pool", "F.lp_pool2d", 1),
    ],
    ids=["rnn", "lppool2d"],
)
def test_relus_inside_torch_functions_are_missed_by_the_libraries_and_reached_by_attrkit(
    make: Callable[[], nn.Module], shape, location, inside, applications
):
    torch.manual_seed(0)
    model = make().double().eval()
    x = torch.randn(*shape, dtype=torch.float64)
    (finding,) = attrkit.audit(model, x).relus
    assert (finding.location, finding.inside, finding.applications) == (
        location,
        inside,
        applications,
    )
    for library in ("captum", "zennit"):
        verdict = finding.verdict(library)
        assert (verdict.status, verdict.issue) == ("missed", "inside_function")
        assert "attrkit reaches it" in verdict.reason
    plain = reference_attribution(model, (x,), 1, (), None)[0]
    torch.testing.assert_close(captum_attribute("Deconvolution", model, x, target=1)[0], plain)
    torch.testing.assert_close(_zennit_deconvolution(model, x, 1), plain)
    assert not torch.allclose(attrkit.Deconvolution(model).attribute(x, target=1), plain)


def test_rnn_that_attrkit_refuses_is_said_so():
    model = Recurrent(dropout=0.5).double().train()
    (finding,) = attrkit.audit(model, torch.randn(3, 5, WIDTH, dtype=torch.float64)).relus
    assert finding.inside == "torch.rnn_relu"
    assert "attrkit refuses the model there" in finding.captum.reason


def test_relu_module_under_vmap_crashes_captum_and_is_missed_by_zennit():
    torch.manual_seed(0)

    class Vmapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear, self.relu, self.head = (
                nn.Linear(WIDTH, WIDTH),
                nn.ReLU(),
                nn.Linear(WIDTH, 3),
            )

        def forward(self, x: Tensor) -> Tensor:
            return self.head(torch.vmap(self.relu)(self.linear(x)))

    model = Vmapped().double()
    x = torch.randn(3, WIDTH, dtype=torch.float64)
    (finding,) = attrkit.audit(model, x).relus
    assert finding.under_transform
    assert finding.on_gradient_path
    assert finding.captum.status == "crash"
    with pytest.raises(RuntimeError, match=r"doesn't require gradient"):
        captum_attribute("Deconvolution", model, x, target=1)
    assert (finding.zennit.status, finding.zennit.issue) == ("missed", "under_transform")
    plain = reference_attribution(model, (x,), 1, (), None)[0]
    torch.testing.assert_close(_zennit_deconvolution(model, x, 1), plain)
    assert not torch.allclose(attrkit.Deconvolution(model).attribute(x, target=1), plain)

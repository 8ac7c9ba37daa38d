"""``audit_deeplift``: every application of an op DeepLift rules, and whether Captum's
DeepLift reaches it -- each verdict on a model made for it, the verdicts against what
Captum actually does on random graphs, and ``compare``'s explanation of a difference."""

from __future__ import annotations

import json
import warnings
from typing import Any

import captum.attr
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from torch import Tensor, nn

import attrkit
from attrkit.validation import DeepLiftAuditReport, audit_deeplift
from tests.helpers import as_tuple
from tests.strategies import problems


class _Pair(nn.Module):
    """``fc``, then ``body``'s nonlinearities, then a head."""

    def __init__(self, body: Any, width: int = 6) -> None:
        super().__init__()
        self.fc, self.body, self.head = nn.Linear(4, width), body, nn.LazyLinear(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.fc(x)).flatten(1))


class _Functional(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x)


class _Created(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return nn.Tanh()(x)


class _Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.relu(x) - 0.5)


class _InputUsedElsewhere(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tanh = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        return self.tanh(x) + 0.5 * x


class _Pool(nn.Module):
    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x.unsqueeze(1)).squeeze(1)


VERDICTS = [
    pytest.param(nn.ReLU(), [("nn.ReLU", "ok", "")], id="relu-module"),
    pytest.param(_Functional(), [("torch.sigmoid", "missed", "functional")], id="functional"),
    pytest.param(_Created(), [("nn.Tanh", "missed", "created_in_forward")], id="created"),
    pytest.param(nn.GELU(), [("nn.GELU", "missed", "no_rule")], id="gelu-module"),
    pytest.param(
        _Reused(), [("nn.ReLU", "crash", "reused"), ("nn.ReLU", "crash", "reused")], id="reused"
    ),
    pytest.param(
        nn.Sequential(nn.Tanh(), nn.Sigmoid()),
        [("nn.Tanh", "ok", ""), ("nn.Sigmoid", "wrong", "after_hooked_module")],
        id="tanh-then-sigmoid",
    ),
    pytest.param(
        _InputUsedElsewhere(),
        [("nn.Tanh", "wrong", "input_used_elsewhere")],
        id="input-used-elsewhere",
    ),
    pytest.param(
        _Pool(nn.MaxPool1d(3, 1)),
        [("nn.MaxPool1d", "wrong", "overlapping_windows")],
        id="overlapping-max-pool",
    ),
    pytest.param(_Pool(nn.MaxPool1d(2)), [("nn.MaxPool1d", "ok", "")], id="max-pool"),
    pytest.param(
        _Pool(nn.AdaptiveMaxPool1d(2)),
        [("nn.AdaptiveMaxPool1d", "missed", "no_rule")],
        id="adaptive-max-pool",
    ),
    pytest.param(nn.Softmax(dim=1), [("nn.Softmax", "wrong", "batch_softmax")], id="softmax"),
]


@pytest.mark.parametrize(("body", "expected"), VERDICTS)
def test_each_verdict(body, expected):
    model = _Pair(body)
    model(torch.randn(1, 4))  # (sizes the head)
    report = audit_deeplift(model, torch.randn(3, 4))
    assert [(f.spelling, f.captum.status, f.captum.issue) for f in report.applications] == expected
    assert report.follows_definition() == all(status == "ok" for _, status, _ in expected)


def test_constants_are_not_listed_and_a_batch_of_one_softmax_is_right():
    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.gate, self.softmax = (
                nn.Linear(4, 3),
                nn.Parameter(torch.ones(3)),
                nn.Softmax(1),
            )

        def forward(self, x: Tensor, scale: Tensor) -> Tensor:
            weights = torch.sigmoid(self.gate.detach())  # a constant: not listed
            return self.softmax(self.fc(x) * weights * F.relu(scale))

    report = audit_deeplift(Gated(), torch.randn(1, 4), torch.randn(1, 3))
    assert [f.spelling for f in report.applications] == ["nn.Softmax"]
    assert report.follows_definition()
    assert report.summary() == "Captum's DeepLift reaches all 1 nonlinearity."


def test_the_report_renders_and_names_each_cause_once():
    model = _Pair(nn.Sequential(nn.Tanh(), nn.Sigmoid(), _Functional()))
    model(torch.randn(1, 4))
    report = audit_deeplift(model, torch.randn(2, 4))
    assert isinstance(report, DeepLiftAuditReport)
    assert report.summary() == (
        "Captum's DeepLift gets 1 nonlinearity right after another hooked module wrong in "
        "body.1, and misses 1 functional nonlinearity in body.2."
    )
    text = str(report)
    assert "attrkit.audit_deeplift of _Pair: 3 applications" in text
    assert "Captum wrong (rows 1): its input comes straight from another hooked module" in text
    assert report.to_markdown().startswith("## attrkit.audit_deeplift of `_Pair`")
    assert json.loads(report.to_json())["applications"][2]["captum"]["issue"] == "functional"


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"`model` must be a torch\.nn\.Module, got builtin"):
        audit_deeplift(torch.relu, torch.randn(2, 3))
    with pytest.raises(TypeError, match=r"`inputs` must be a torch\.Tensor"):
        audit_deeplift(nn.ReLU(), [1.0])


def _captum(
    model: nn.Module, inputs: tuple[Tensor, ...], baselines: tuple[Tensor, ...], target: Any
) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        given = inputs[0].clone() if len(inputs) == 1 else tuple(x.clone() for x in inputs)
        base = baselines[0] if len(baselines) == 1 else baselines
        return as_tuple(captum.attr.DeepLift(model).attribute(given, base, target=target))


@given(problems(dtype=torch.float64))
def test_verdicts_predict_captum(problem):
    """Where the audit finds every application reached, Captum's DeepLift equals attrkit's
    (which sums to delta); where it finds a reused hooked module, Captum raises."""
    model = problem.graph.build()
    inputs, baselines = problem.inputs(), problem.baselines()
    report = audit_deeplift(model, inputs[0] if len(inputs) == 1 else inputs)
    statuses = {f.captum.status for f in report.applications}
    if "crash" in statuses:
        with pytest.raises(RuntimeError, match="used more than once"):
            _captum(model, inputs, baselines, problem.target)
    elif report.follows_definition():
        ours = as_tuple(
            attrkit.DeepLift(model).attribute(
                inputs[0] if len(inputs) == 1 else inputs,
                baselines[0] if len(baselines) == 1 else baselines,
                target=problem.target,
            )
        )
        theirs = _captum(model, inputs, baselines, problem.target)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b.detach(), rtol=1e-7, atol=1e-10)


def test_compare_explains_a_deeplift_difference():
    class FunctionalMlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

        def forward(self, x: Tensor) -> Tensor:
            return self.b(F.relu(self.a(x)))

    torch.manual_seed(0)
    report = attrkit.compare(
        "deep_lift", FunctionalMlp(), torch.randn(5, 4), target=1, libraries=("attrkit", "captum")
    )
    pair = report.pair("attrkit", "captum")
    assert pair.verdict == "differ"
    assert pair.explanation == "Captum's DeepLift misses 1 functional nonlinearity in (root)."

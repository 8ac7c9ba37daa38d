"""Backward rules (attrkit/engine/rule.py, attrkit/engine/rules/): every registered rule
against its line in the reference's rule table (tests/reference.py ``RULE_BACKWARDS``,
written without attrkit's code), on its own and through the override on models that spell
ReLU every way (modules, functional, in place, on views, aten), without any method; the
shortcuts taken for speed (guided backpropagation's hook on the native ReLU node, and
its ``Function`` fallbacks) give the same result.

A new rule is tested here, and through every method that declares it
(tests/methods/test_shared.py), once its line is in the reference's table."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attrkit
from attrkit.engine.ops import RELU
from attrkit.engine.override import RuleOverride
from attrkit.engine.rule import RULES, Rule, RuleSet
from attrkit.engine.rules import relu as relu_rules
from tests.cases import DEFINITION_CASES, Case
from tests.helpers import assert_all_close
from tests.reference import (
    RULE_BACKWARDS,
    RULES_WITHOUT_BACKWARD_LINE,
    reference_attribution,
    select_reference,
)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_registered_rule_has_a_reference_line(name):
    assert name in RULE_BACKWARDS or name in RULES_WITHOUT_BACKWARD_LINE, (
        f"add rule {name!r}'s backward to RULE_BACKWARDS in tests/reference.py (one line), "
        "or its reason to RULES_WITHOUT_BACKWARD_LINE"
    )


#: The registered rules the reference has a line for.
LINED = [pytest.param(RULES[name], id=name) for name in sorted(RULES) if name in RULE_BACKWARDS]


@pytest.mark.parametrize("rule", LINED)
@pytest.mark.parametrize("inplace", [False, True], ids=["out-of-place", "in-place"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_rule_on_one_relu_is_its_line(rule, inplace, dtype):
    """The ReLU's own forward (in place when the call is); the line's backward."""
    assert rule.ops == (RELU,)
    generator = torch.Generator().manual_seed(0)
    leaf = torch.randn(4, 7, generator=generator, dtype=dtype, requires_grad=True)
    with torch.no_grad():
        leaf[0, :3] = 0.0  # the boundary, where the rules' masks differ
    grad_output = torch.randn(4, 7, generator=generator, dtype=dtype)
    x = leaf * 1.0
    output = rule.apply(RELU.read(F.relu, (x,), {"inplace": inplace}))
    assert (output is x) == inplace
    torch.testing.assert_close(output, torch.relu(leaf), rtol=0, atol=0)
    (grad,) = torch.autograd.grad(output, leaf, grad_output)
    torch.testing.assert_close(grad, RULE_BACKWARDS[rule.name](leaf.detach(), grad_output))


class InplaceReluOnViews(nn.Module):
    """In-place ReLUs on a view of a hidden tensor (autograd wraps the backward node in
    the base's ``CopySlices``), of two tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8), nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        h, k = self.fc1(x) - 0.1, self.fc1(-x)
        F.relu_(h[:, :3])
        k[:, 5:].relu_()
        return self.fc2(torch.relu(h) + 0.5 * h + k)


class MixedRelus(nn.Module):
    """Every ReLU spelling, in place and not."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 4)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu(self.fc1(x))
        k = F.relu(self.fc2(h)) + torch.relu(h - 0.2)
        return self.fc3(k.relu_() * h.relu())


def _inputs() -> Tensor:
    return torch.randn(4, 5, generator=torch.Generator().manual_seed(3))


def _model(factory: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return factory().eval()


MODELS = [
    pytest.param(lambda: _model(InplaceReluOnViews), id="inplace-on-views"),
    pytest.param(lambda: _model(MixedRelus), id="mixed-spellings"),
    *(
        pytest.param(case, id=case.id)
        for case in DEFINITION_CASES
        if len(case.input_shapes) == 1 and case.extra is None
    ),
]


def _rule_gradient(model: nn.Module, x: Tensor, target: Any, rule: Rule) -> Tensor:
    """The gradient of the target with ``rule`` at every application of its ops: the
    forward pass inside the override alone, without any method."""
    leaf = x.detach().clone().requires_grad_()
    with RuleOverride(RuleSet([rule])):
        output = model(leaf.clone())
    (grad,) = torch.autograd.grad(select_reference(output, target).sum(), leaf)
    return grad


@pytest.mark.parametrize("rule", LINED)
@pytest.mark.parametrize("model", MODELS)
def test_rule_through_the_override_is_the_definition(rule, model):
    """Every spelling of ReLU in the model, reused, in place, on views, created in
    forward, gets the rule: the same gradient as the reference, whose every ReLU
    spelling is a custom autograd Function with the rule's line as its backward."""
    if isinstance(model, Case):
        net, twin, (x,) = model.build(), model.build_reference(), model.inputs()
    else:
        net = twin = model()
        x = _inputs()
    expected = reference_attribution(twin, (x,), 2, (), rule.name)
    assert_all_close((_rule_gradient(net, x, 2, rule),), expected)


@pytest.mark.parametrize(
    ("factory", "relus"),
    [
        pytest.param(InplaceReluOnViews, 3, id="inplace-on-views"),
        pytest.param(MixedRelus, 5, id="mixed-spellings"),
    ],
)
def test_guided_backprop_without_the_native_node_uses_the_function(monkeypatch, factory, relus):
    """Where a ReLU's output does not come with the native ``ReluBackward0`` node (as
    under a tracer), the rule falls back to applying the ``Function`` to that output (and
    an in-place ReLU always runs the ``Function``)."""
    model, x = _model(factory), _inputs()
    expected = reference_attribution(model, (x,), 1, (), "guided_backprop")
    applied = []
    original = relu_rules.GuidedBackpropReLU.apply

    def counting_apply(*args):
        applied.append(args[1])
        return original(*args)

    monkeypatch.setattr(relu_rules, "_RELU_NODE", type(None))
    monkeypatch.setattr(relu_rules.GuidedBackpropReLU, "apply", counting_apply)
    ours = attrkit.GuidedBackprop(model).attribute(x, target=1)
    assert_all_close((ours,), expected)
    assert len(applied) == relus


def test_guided_backprop_hooks_the_native_node():
    """The fast path is the one taken in an ordinary forward pass: the output's node is
    the native ReLU node, with the rule as a pre-hook."""
    x = torch.randn(3, 4, requires_grad=True) * 1
    output = relu_rules.GUIDED_BACKPROP.relu(x, False)
    assert type(output.grad_fn).__name__ == "ReluBackward0"
    (grad,) = torch.autograd.grad(output, x, torch.tensor([-1.0, 2.0, 3.0, -4.0]).expand(3, 4))
    assert torch.equal(grad, torch.tensor([0.0, 2.0, 3.0, 0.0]) * (x > 0))

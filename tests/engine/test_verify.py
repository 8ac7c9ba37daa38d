"""The engine's guarantee, for any rule set: before a backward pass run inside the rule
override, every application of a ruled op on the gradient path carries its rule, or
the pass is refused (``UnsupportedModelError``, naming where) before it starts.

The rule sets here are written for the tests, on ops other than ReLU (sigmoid,
softmax), with a backward that is easy to write down independently: "pass" (the op is
the identity in the backward pass). Their expectations: the same function written so
that the op is called directly, under the same rule, and the identity's gradient.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import Function

import attrkit
from attrkit.engine import OPS, Op, OpCall, Rule, RuleOverride, RuleSet
from tests.helpers import assert_all_close
from tests.reference import reference_attribution

THIS_FILE = "test_verify.py"


class _PassThrough(Function):
    """The op's forward, the identity's backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, op: Any) -> Tensor:
        return op(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return grad_output, None


class PassRule(Rule):
    """Pass-through for one op (a rule of the kind LRP gives activations)."""

    name = "test_pass"
    backward = "grad_output"
    paper = ""

    def __init__(self, op: Op, plain: Any) -> None:
        self.ops = (op,)
        self._plain = plain

    def apply(self, call: OpCall) -> Any:
        rest = call.args[1:]
        return _PassThrough.apply(call.input, lambda x: self._plain(x, *rest, **call.kwargs))


SIGMOID_PASS = RuleSet([PassRule(OPS["sigmoid"], torch.sigmoid)])
SOFTMAX_PASS = RuleSet([PassRule(OPS["softmax"], torch.softmax)])


def gradient_inside(
    rules: RuleSet, forward: Any, x: Tensor, rerun: bool = True
) -> tuple[Tensor, ...]:
    """The gradient of ``forward(x).sum()`` computed inside the rule override."""
    leaf = x.detach().clone().requires_grad_()
    override = RuleOverride(rules, rerun=(lambda: forward(leaf.clone())) if rerun else None)
    with override:
        output = forward(leaf.clone())
        return torch.autograd.grad(output.sum(), leaf)


X = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
_POOL = ThreadPoolExecutor(max_workers=1)


def test_a_ruled_op_on_the_calling_thread_gets_its_rule():
    (got,) = gradient_inside(SIGMOID_PASS, lambda x: torch.sigmoid(x * 2) * 3, X)
    torch.testing.assert_close(got, torch.full_like(X, 6.0))  # the identity's gradient


def test_a_ruled_op_on_another_thread_is_refused_for_any_rule_set():
    def forward(x: Tensor) -> Tensor:
        return _POOL.submit(torch.sigmoid, x * 2).result() * 3

    pattern = r"a sigmoid \(`SigmoidBackward0`\) made at .*\(on another thread than the caller's\)"
    with pytest.raises(attrkit.UnsupportedModelError, match=pattern):
        gradient_inside(SIGMOID_PASS, forward, X)


def test_the_refusal_comes_before_the_backward_pass():
    ran = threading.Event()

    def forward(x: Tensor) -> Tensor:
        h = x * 2
        h.register_hook(lambda grad: ran.set())
        return _POOL.submit(torch.sigmoid, h).result()

    with pytest.raises(attrkit.UnsupportedModelError):
        gradient_inside(SIGMOID_PASS, forward, X)
    assert not ran.is_set()


def test_an_op_hidden_from_the_override_is_refused_naming_its_line():
    def forward(x: Tensor) -> Tensor:
        with torch._C.DisableTorchFunction():  # the override does not see this call
            return torch.sigmoid(x)

    with pytest.raises(attrkit.UnsupportedModelError, match=rf"made at \S*{THIS_FILE}:\d+"):
        gradient_inside(SIGMOID_PASS, forward, X)
    # Without a way to re-run the forward pass, the message names no place.
    with pytest.raises(
        attrkit.UnsupportedModelError, match=r"(?m)a sigmoid \(`SigmoidBackward0`\)$"
    ):
        gradient_inside(SIGMOID_PASS, forward, X, rerun=False)


def test_an_op_on_a_branch_that_does_not_reach_the_inputs_is_not_held_against_the_model():
    torch.manual_seed(0)

    class PrecomputedGate(nn.Module):
        """A gate computed from a parameter before the call (with its own graph)."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(6, 6).double()
            self.gate = F.relu(self.linear.weight.sum(0))  # a plain ReLU node, outside

        def forward(self, x: Tensor) -> Tensor:
            return F.relu(self.linear(x)) * self.gate

    model = PrecomputedGate()
    got = attrkit.Deconvolution(model).attribute(X, target=1)
    assert_all_close((got,), reference_attribution(model, (X,), 1, (), "deconvolution"))


def test_the_check_can_be_turned_off():
    def forward(x: Tensor) -> Tensor:
        with torch._C.DisableTorchFunction():
            return torch.sigmoid(x)

    leaf = X.detach().clone().requires_grad_()
    with RuleOverride(SIGMOID_PASS, verify=False):
        (got,) = torch.autograd.grad(forward(leaf).sum(), leaf)
    s = torch.sigmoid(X)
    torch.testing.assert_close(got, s * (1 - s))  # the plain gradient, as asked


def test_ops_inside_torch_python_functions_are_reached_for_any_rule_set():
    # F.softmin is a Python function of torch that calls Tensor.softmax inside.
    (got,) = gradient_inside(SOFTMAX_PASS, lambda x: F.softmin(x, dim=1) * 2, X)
    (expected,) = gradient_inside(SOFTMAX_PASS, lambda x: (-x).softmax(dim=1) * 2, X)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got, torch.full_like(X, -2.0))  # -1 (negation) x 2


def test_checkpointed_ops_get_the_rule_for_any_rule_set():
    def block(h: Tensor) -> Tensor:
        return torch.sigmoid(h) * h

    def forward(x: Tensor) -> Tensor:
        return torch.utils.checkpoint.checkpoint(block, x * 2, use_reentrant=False)

    (got,) = gradient_inside(SIGMOID_PASS, forward, X)
    (expected,) = gradient_inside(SIGMOID_PASS, lambda x: block(x * 2), X)
    torch.testing.assert_close(got, expected)

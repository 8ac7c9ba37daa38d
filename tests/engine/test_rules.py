"""The shortcuts taken for speed give the definition's result in the cases they do not
take: guided backpropagation's hook on the native ReLU node and its ``Function``
fallbacks, the one-kernel target selection and the general one, the model walk that
refuses TorchScript."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attrkit
import attrkit.engine.override
from attrkit.engine.reach import check_overridable
from attrkit.engine.rules import relu as relu_rules
from tests.cases import METHODS, RULE_OF
from tests.helpers import as_tuple, assert_all_close
from tests.reference import reference_attribution


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


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "factory",
    [
        pytest.param(InplaceReluOnViews, id="inplace-on-views"),
        pytest.param(MixedRelus, id="mixed-spellings"),
    ],
)
def test_matches_definition(method, factory):
    model, x = _model(factory), _inputs()
    expected = reference_attribution(model, (x,), 2, (), RULE_OF[method])
    ours = getattr(attrkit, method)(model).attribute(x, target=2)
    assert_all_close(as_tuple(ours), expected)


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


class Scores(nn.Module):
    """Per-example scores of shape ``(N, *shape)``."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape
        self.fc = nn.Linear(5, int(torch.tensor(shape).prod()))

    def forward(self, x: Tensor) -> Tensor:
        z = self.fc(x).reshape(x.shape[0], *self.shape)
        return F.relu(z) - 0.3 * z


@pytest.mark.parametrize("method", [*METHODS, "Saliency"])
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
def test_per_example_targets(method, shape, target):
    """A class per example selects with one ``gather`` on a 2-d output when no index is
    negative, by advanced indexing otherwise; both give the definition's result."""
    model, x = _model(lambda: Scores(*shape)), _inputs()
    rule = RULE_OF.get(method)
    expected = reference_attribution(model, (x,), target, (), rule)
    kwargs = {"abs": False} if method == "Saliency" else {}
    ours = getattr(attrkit, method)(model).attribute(x, target=target, **kwargs)
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


class Wrapper(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning")
def test_torchscript_deep_in_a_shared_submodule_is_refused_at_call_time(method):
    """The walk over submodules sees a module shared by two parents, however deep."""
    shared = Wrapper(nn.Sequential(nn.Linear(5, 5), nn.ReLU()))
    model = nn.Sequential(Wrapper(shared), Wrapper(shared), nn.Linear(5, 2))
    explainer = getattr(attrkit, method)(model)
    shared.inner[0] = torch.jit.script(nn.Linear(5, 5))
    with pytest.raises(attrkit.UnsupportedModelError, match=r"`model\.0\.inner\.inner\.0` is"):
        explainer.attribute(_inputs(), target=0)


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning")
def test_walk_ends_on_a_cyclic_module_graph():
    model = nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 2))
    model[0].add_module("back", model)  # a cycle: named_modules() copes, so must the walk
    check_overridable(model)
    model[0].add_module("scripted", torch.jit.script(nn.Linear(2, 2)))
    with pytest.raises(attrkit.UnsupportedModelError, match=r"`model\.0\.scripted` is"):
        check_overridable(model)

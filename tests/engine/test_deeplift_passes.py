"""DeepLift's two ways of running the baselines: split passes and the paired batch.

Where the model allows, DeepLift runs the baselines in a reference pass whose rule
applications record their values, then the inputs in a pass that alone is differentiated;
otherwise (batch norm in training mode, a forward pass that draws random numbers, a
checkpointed block, passes that do not apply the same ops, a recorded value modified in
place) one paired batch of inputs and baselines, as Captum does. The two must give the
same attributions wherever both run, and the fallback must be taken in each of those
cases (where it is, the results equal Captum's, which runs the paired batch).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attrkit
from attrkit.methods import deeplift
from tests import models
from tests.helpers import as_tuple, captum_attribute
from tests.strategies import table

GRAPH_TABLE = [pytest.param(graph, id=name) for name, graph in table()]

#: Every DeepLift variant with the arguments it needs (``x``: the inputs' first tensor).
VARIANTS = {
    "DeepLift": lambda model, x, b: attrkit.DeepLift(model).attribute(x, b, target=1),
    "DeepLiftShap": lambda model, x, b: attrkit.DeepLiftShap(model).attribute(
        x, torch.cat([b, 0.5 * b]), target=1
    ),
}


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each DeepLift pass of the test ran split (``True``) or paired."""
    seen: list[bool] = []
    original = deeplift._Pass.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        seen.append(self.split)

    monkeypatch.setattr(deeplift._Pass, "__init__", spy)
    return seen


def paired(monkeypatch: pytest.MonkeyPatch, compute: Any) -> Any:
    """``compute()`` with every DeepLift pass run as a paired batch."""
    with monkeypatch.context() as patch:
        patch.setattr(deeplift, "_splittable", lambda model: False)
        return compute()


def assert_same(got: Any, expected: Any) -> None:
    for a, b in zip(as_tuple(got), as_tuple(expected), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("graph", GRAPH_TABLE)
def test_split_passes_equal_the_paired_batch(graph, monkeypatch, passes):
    model = graph.build(torch.float64)
    x, b = graph.inputs(3, torch.float64, 1), graph.inputs(3, torch.float64, 2)
    split = attrkit.DeepLift(model).attribute(x, b, target=1)
    assert passes == [True]
    assert_same(
        split, paired(monkeypatch, lambda: attrkit.DeepLift(model).attribute(x, b, target=1))
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize(
    ("factory", "shape"),
    [
        (models.SmallCNN, (3, 12, 12)),
        (models.ResidualBlockNet, (2, 6, 6)),
        (models.TinyDenseNet, (3, 6, 6)),
        (models.TinyInception, (3, 6, 6)),
    ],
    ids=["small-cnn", "residual", "densenet-style", "inception-style"],
)
def test_split_passes_equal_the_paired_batch_on_the_model_zoo(factory, shape, variant, monkeypatch):
    torch.manual_seed(0)
    model = factory().double().eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((3, *shape), generator=generator, dtype=torch.float64)
    b = torch.randn((3, *shape), generator=generator, dtype=torch.float64)
    compute = VARIANTS[variant]
    assert_same(compute(model, x, b), paired(monkeypatch, lambda: compute(model, x, b)))


def test_layer_and_neuron_variants_equal_the_paired_batch(monkeypatch, passes):
    torch.manual_seed(0)
    model = models.SmallCNN().double().eval()
    layer = model.features[4]  # the second convolution
    x = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    b = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    calls = [
        lambda: attrkit.LayerDeepLift(model, layer).attribute(
            x, b, target=1, return_convergence_delta=True
        ),
        lambda: attrkit.LayerDeepLift(model, layer).attribute(
            x, b, target=1, attribute_to_layer_input=True
        ),
        lambda: attrkit.LayerDeepLiftShap(model, layer).attribute(x, torch.cat([b, b / 2]), 1),
        lambda: attrkit.NeuronDeepLift(model, layer).attribute(x, (1, 2, 2), b),
        lambda: attrkit.NeuronDeepLiftShap(model, layer).attribute(
            x, lambda t: t[:, 0].sum((1, 2)), torch.cat([b, b / 2])
        ),
    ]
    for compute in calls:
        assert_same(compute(), paired(monkeypatch, compute))
    assert passes == [True, False] * len(calls)


# -------------------------------------------------------------- where the batch is paired


class _Branching(nn.Module):
    """Control flow that depends on the values: the inputs and the baselines apply
    different nonlinearities."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        z = self.a(x)
        return self.b(torch.relu(z) if bool(x.sum() > 0) else torch.tanh(z))


class _ModifiesItsActivation(nn.Module):
    """A nonlinearity's output modified in place afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        y = F.leaky_relu(self.a(x), 0.1)  # (its backward keeps its input, not its output)
        return self.b(y.mul_(2.0))


def _dropout() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 2)).train()


def _batch_norm() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).train()


@pytest.mark.parametrize(
    "factory",
    [_Branching, _ModifiesItsActivation, _dropout, _batch_norm],
    ids=["value-dependent-branch", "activation-modified-in-place", "dropout", "batch-norm"],
)
def test_the_paired_batch_where_split_passes_would_differ(factory, monkeypatch, passes):
    torch.manual_seed(0)
    model = factory().double()
    x = torch.rand(3, 4, dtype=torch.float64) + 0.1
    b = -x  # (the branching model's condition differs between inputs and baselines)
    torch.manual_seed(1)
    ours = attrkit.DeepLift(model).attribute(x, b, target=1)
    assert passes == [False]
    torch.manual_seed(1)
    assert_same(
        ours, paired(monkeypatch, lambda: attrkit.DeepLift(model).attribute(x, b, target=1))
    )


def test_dropout_draws_what_it_draws_in_captum(passes):
    # A module-only model (Captum's rules reach it): the paired batch draws the same
    # dropout masks as Captum's, so the results are equal.
    torch.manual_seed(0)
    model = _dropout().double()
    x, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    torch.manual_seed(1)
    ours = attrkit.DeepLift(model).attribute(x, b, target=1)
    torch.manual_seed(1)
    assert_same(ours, captum_attribute("DeepLift", model, x, baselines=b, target=1))
    assert passes == [False]


def test_training_batch_norm_differs_from_captum_where_documented():
    # docs/captum_deviations.rst: through the batch statistics, the baselines' rows receive
    # a gradient; attrkit passes it back plainly, Captum multiplies it by its rules.
    torch.manual_seed(0)
    model = _batch_norm().double()
    x, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    ours = attrkit.DeepLift(model).attribute(x, b, target=1)
    (theirs,) = captum_attribute("DeepLift", model, x, baselines=b, target=1)
    assert not torch.allclose(ours, theirs, atol=1e-6)


def test_a_pass_that_draws_no_random_number_leaves_the_generator_alone(passes):
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 2)).eval()
    state = torch.get_rng_state()
    attrkit.DeepLift(model).attribute(torch.randn(2, 4, generator=torch.Generator()), target=0)
    assert passes == [True]
    assert torch.equal(torch.get_rng_state(), state)


class _DifferentiatesInside(nn.Module):
    """A forward pass that takes a gradient (an input-gradient feature): it needs
    autograd on, which the baselines' pass of split passes turns off."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        z = self.a(x)
        (slope,) = torch.autograd.grad(z.square().sum(), x, create_graph=True)
        return self.b(torch.relu(z)) + slope.sum(dim=1, keepdim=True)


def test_a_model_that_needs_autograd_runs_as_the_paired_batch(monkeypatch, passes):
    torch.manual_seed(0)
    model = _DifferentiatesInside().double()
    x, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    ours = attrkit.DeepLift(model).attribute(x, b, target=1)
    assert passes == [False]
    assert_same(
        ours, paired(monkeypatch, lambda: attrkit.DeepLift(model).attribute(x, b, target=1))
    )

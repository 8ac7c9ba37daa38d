"""DeepLift's rules against the definition, on every nonlinearity in every spelling.

Two independent checks, on random graphs (hypothesis, ``tests/strategies.py``) and on its
fixed table: summation to delta, ``|sum(attributions) - (F(x) - F(baseline))| <= 1e-8``
per example in float64 (``F`` evaluated by a plain forward pass, not by attrkit), and
equality with ``DeepLiftDefinitionModel`` (``tests/reference.py``), which writes the rules
out as custom autograd functions that receive their reference inputs from a separate pass
over the baselines. Then the rules' edges: the plain gradient where input and reference
coincide, in-place applications, constants, the per-example softmax, what cannot be
attributed, and ops a user registers.

Covering design: the random graphs (``EVERY_OP``) draw every nonlinearity of
``NONLINEARITIES`` in every spelling (module, reused module, module created in
``forward``, functional, ``torch.*``, ``Tensor.*``, ``aten``, in place), max-pooling as a
module, a function, overlapping or adaptive, skip connections over a nonlinearity,
branches joined by add / cat (and, for the definition check, by a product), BatchNorm,
average pooling, flattening, a second input, every target form; the fixed table
(``table()``) holds each (nonlinearity, spelling) pair once, each max-pool form, and the
model zoo of ``tests/models.py``.
"""

from __future__ import annotations

import gc
import math
import threading
import weakref
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from captum.testing.helpers import basic_models as captum_models
from hypothesis import event, given
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

import attrkit
from attrkit.engine.ops import Op
from attrkit.engine.reach import UnsupportedModelError
from attrkit.engine.rule import RULES
from attrkit.engine.rules.deeplift import (
    DEEPLIFT_MAX_POOL,
    DEEPLIFT_SOFTMAX,
    RESCALE,
    elementwise_ops,
    register_elementwise_op,
)
from tests import models
from tests.cases import target_forms
from tests.helpers import as_tuple
from tests.reference import DeepLiftDefinitionModel, select_reference
from tests.strategies import Problem, problems, table

TOLERANCE = 1e-8


def summation_gap(model: nn.Module, inputs, baselines, target, extra=()) -> Tensor:
    """Per example, ``sum(DeepLift attributions) - (F(x) - F(baseline))``, with ``F``
    from a plain forward pass."""
    attributions = as_tuple(
        attrkit.DeepLift(model).attribute(
            inputs[0] if len(inputs) == 1 else inputs,
            baselines[0] if len(baselines) == 1 else baselines,
            target=target,
            additional_forward_args=extra or None,
        )
    )
    with torch.no_grad():
        change = select_reference(model(*inputs, *extra), target) - select_reference(
            model(*baselines, *extra), target
        )
    total = sum(a.reshape(len(a), -1).sum(dim=1) for a in attributions)
    return total - change


def assert_definition(problem: Problem) -> None:
    """attrkit's DeepLift equals ``DefinitionModel``'s on the problem."""
    model = problem.graph.build(problem.dtype)
    definition = DeepLiftDefinitionModel(problem.graph).to(problem.dtype).eval()
    definition.load_state_dict(model.state_dict())
    inputs, baselines = problem.inputs(), problem.baselines()
    expected = definition.multipliers(inputs, baselines, problem.target)
    ours = as_tuple(
        attrkit.DeepLift(model).attribute(
            inputs[0] if len(inputs) == 1 else inputs,
            baselines[0] if len(baselines) == 1 else baselines,
            target=problem.target,
        )
    )
    for got, multiplier, x, b in zip(ours, expected, inputs, baselines, strict=True):
        torch.testing.assert_close(got, (x - b) * multiplier, rtol=1e-7, atol=1e-10)


# ---------------------------------------------------------------------- random graphs


@given(problems(dtype=torch.float64))
def test_summation_to_delta_on_random_graphs(problem):
    for feature in problem.graph.features():
        event(feature)
    model = problem.graph.build(torch.float64)
    gap = summation_gap(model, problem.inputs(), problem.baselines(), problem.target)
    assert gap.abs().max() <= TOLERANCE


@given(problems(dtype=torch.float64, gates=True))
def test_equals_the_definition_on_random_graphs(problem):
    for feature in problem.graph.features():
        event(feature)
    assert_definition(problem)


# ------------------------------------------------------------------------ fixed table


GRAPH_TABLE = [pytest.param(graph, id=name) for name, graph in table()]


@pytest.mark.parametrize("graph", GRAPH_TABLE)
def test_summation_to_delta_table(graph):
    model = graph.build(torch.float64)
    inputs, baselines = graph.inputs(3, torch.float64, 1), graph.inputs(3, torch.float64, 2)
    assert summation_gap(model, inputs, baselines, 1).abs().max() <= TOLERANCE


@pytest.mark.parametrize("graph", GRAPH_TABLE)
def test_equals_the_definition_table(graph):
    form, target = target_forms(graph.output_shape, 3)[4]
    assert_definition(Problem(graph, 3, torch.float64, form, target, 1))


def _overlapping_pool_1d() -> nn.Module:
    return nn.Sequential(nn.Conv1d(1, 2, 3), nn.MaxPool1d(3, 1), nn.Flatten(), nn.Linear(16, 2))


MODEL_TABLE = [
    pytest.param(models.SmallCNN, (3, 12, 12), id="small-cnn"),
    pytest.param(models.ResidualBlockNet, (2, 6, 6), id="residual-block-reused-inplace-relu"),
    pytest.param(models.TinyDenseNet, (3, 6, 6), id="densenet-style"),
    pytest.param(models.TinyInception, (3, 6, 6), id="inception-style"),
    pytest.param(models.ReusedReluParallel, (5,), id="reused-relu-parallel"),
    pytest.param(models.ReluInputUsedElsewhere, (5,), id="relu-input-used-elsewhere"),
    pytest.param(lambda: models.FunctionalReluMLP("aten.relu_"), (5,), id="aten-relu_"),
    pytest.param(models.NoReluNet, (5,), id="tanh-gelu"),
    pytest.param(
        lambda: captum_models.BasicModel_MaxPool_ReLU(inplace=True),
        (4, 3),
        id="captum-maxpool-relu",
    ),
    pytest.param(_overlapping_pool_1d, (1, 12), id="overlapping-max-pool-1d"),
]


@pytest.mark.parametrize(("factory", "shape"), MODEL_TABLE)
def test_summation_to_delta_model_table(factory, shape):
    torch.manual_seed(0)
    model = factory().double().eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((3, *shape), generator=generator, dtype=torch.float64)
    baseline = torch.randn((3, *shape), generator=generator, dtype=torch.float64)
    with torch.no_grad():
        target = 0 if model(x).dim() > 1 else None
    assert summation_gap(model, (x,), (baseline,), target).abs().max() <= TOLERANCE


class _Checkpointed(nn.Module):
    """``inner`` run as one block checkpointed by ``torch.utils.checkpoint`` (non-reentrant),
    followed by a softmax: the backward pass runs the block's forward again."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: Tensor) -> Tensor:
        return F.softmax(checkpoint(self.inner, *args, use_reentrant=False), dim=1)


@pytest.mark.parametrize("graph", GRAPH_TABLE)
def test_checkpointed_model_equals_the_model(graph):
    # The rules applied again while the block is recomputed (Function-based rules record
    # their copy of the op outside the block's saved tensors) give the attributions of
    # the model run without checkpointing.
    model = graph.build(torch.float64)
    inputs, baselines = graph.inputs(3, torch.float64, 1), graph.inputs(3, torch.float64, 2)
    results = [
        attrkit.DeepLift(network).attribute(inputs, baselines, target=1)
        for network in (_Checkpointed(model), lambda *args: F.softmax(model(*args), dim=1))
    ]
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


# -------------------------------------------------------------------------- the rules


def test_rules_are_registered_with_their_ops():
    assert RULES["rescale"] is RESCALE
    assert set(RESCALE.ops) == set(elementwise_ops())
    assert {op.name for op in DEEPLIFT_MAX_POOL.ops} == {"max_pool", "adaptive_max_pool"}
    assert [op.name for op in DEEPLIFT_SOFTMAX.ops] == ["softmax"]
    assert attrkit.method_info("deep_lift").rules == (RESCALE, DEEPLIFT_MAX_POOL, DEEPLIFT_SOFTMAX)


def test_rescale_is_the_secant_of_one_unit():
    """``F(x) = sigmoid(x)`` per feature: the multiplier is the secant slope."""
    x = torch.tensor([[0.3, -2.0, 5.0]], dtype=torch.float64)
    baseline = torch.tensor([[1.0, 1.5, -5.0]], dtype=torch.float64)
    multipliers = attrkit.DeepLift(lambda t: torch.sigmoid(t).sum(1), False).attribute(x, baseline)
    expected = (torch.sigmoid(x) - torch.sigmoid(baseline)) / (x - baseline)
    torch.testing.assert_close(multipliers, expected, rtol=1e-14, atol=0)


def test_the_gradient_passes_where_input_and_reference_coincide():
    """``relu(x - 0.5)`` where ``x`` equals the baseline: the derivative, ``x > 0.5``."""
    x = torch.tensor([[0.2, 0.9, 3.0]], dtype=torch.float64)
    baseline = torch.tensor([[0.2, 0.9, -1.0]], dtype=torch.float64)
    explainer = attrkit.DeepLift(lambda t: F.relu(t - 0.5).sum(1), multiply_by_inputs=False)
    multipliers = explainer.attribute(x, baseline)
    torch.testing.assert_close(
        multipliers, torch.tensor([[0.0, 1.0, 2.5 / 4.0]], dtype=torch.float64)
    )
    explainer.eps = 10.0  # every unit counts as unchanged: the plain gradient
    torch.testing.assert_close(
        explainer.attribute(x, baseline), torch.tensor([[0.0, 1.0, 1.0]], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "nonlinearity",
    [
        pytest.param(torch.relu, id="hook-on-the-native-node"),
        pytest.param(lambda t: F.relu_((t + 0)[:, :]), id="function-in-place-on-a-view"),
        pytest.param(lambda t: F.max_pool1d(F.relu(t).unsqueeze(1), 1).squeeze(1), id="max-pool"),
    ],
)
def test_an_infinite_gradient_where_input_and_reference_coincide(nonlinearity):
    """``sqrt`` after a ReLU: its derivative at ``relu(0) = 0`` is infinite. Where input
    and reference coincide (the first unit) the ReLU's plain gradient, 0, passes (not
    ``0 * inf``); elsewhere ``(x - x_ref) * sqrt'(relu(x))``, by hand."""
    x = torch.tensor([[0.0, 1.0, 4.0]], dtype=torch.float64)
    baseline = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    model = lambda t: torch.sqrt(nonlinearity(t)).sum(1)  # noqa: E731
    attributions = attrkit.DeepLift(model).attribute(x, baseline)
    torch.testing.assert_close(
        attributions, torch.tensor([[0.0, 0.5, 3 * 0.25]], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("x", "baseline", "expected"),
    [
        # the window's maxima: x at 1, the baseline at 0; y = 3, y_ref = 2
        ([1.0, 3.0], [2.0, 0.0], [0.0, 1.0]),
        # y = 1 < y_ref = 5: the whole difference -4 sits at the baseline's maximum
        ([1.0, 0.0], [0.0, 5.0], [0.0, -4.0]),
    ],
)
def test_max_pool_splits_the_window_difference_at_the_two_maxima(x, baseline, expected):
    """Worked by hand: ``max(y, y_ref) - y_ref`` at x's maximum, ``y - max(y, y_ref)``
    at the baseline's."""
    model = lambda t: F.max_pool1d(t, 2).sum(dim=(1, 2))  # noqa: E731
    inputs = torch.tensor([[x]], dtype=torch.float64)
    reference = torch.tensor([[baseline]], dtype=torch.float64)
    attributions = attrkit.DeepLift(model).attribute(inputs, reference)
    torch.testing.assert_close(attributions, torch.tensor([[expected]], dtype=torch.float64))


def test_overlapping_windows_add_their_shares():
    """One position is the maximum of two windows: it receives both shares."""
    x = torch.tensor([[[0.0, 4.0, 1.0]]], dtype=torch.float64)
    baseline = torch.zeros_like(x)
    model = lambda t: F.max_pool1d(t, 2, 1).sum(dim=(1, 2))  # noqa: E731
    attributions = attrkit.DeepLift(model).attribute(x, baseline)
    torch.testing.assert_close(attributions, torch.tensor([[[0.0, 8.0, 0.0]]], dtype=torch.float64))


def test_softmax_normalizes_each_example_alone():
    """One example's attributions do not depend on the other examples of its batch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    baseline = torch.randn(3, 4, dtype=torch.float64)
    explainer = attrkit.DeepLift(model)
    together = explainer.attribute(x, baseline, target=1)
    for i in range(3):
        alone = explainer.attribute(x[i : i + 1], baseline[i : i + 1], target=1)
        torch.testing.assert_close(alone, together[i : i + 1], rtol=1e-12, atol=1e-15)


def test_softmax_rule_subtracts_the_mean_over_the_softmax_dimension():
    """Hand-built from the rule: rescale each position, then center along ``dim``."""
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    baseline = torch.zeros_like(x)
    multipliers = attrkit.DeepLift(lambda t: F.softmax(t, dim=1)[:, 0], False).attribute(
        x, baseline
    )
    y, y_ref = F.softmax(x, dim=1), F.softmax(baseline, dim=1)
    rescaled = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64) * (y - y_ref) / (x - baseline)
    torch.testing.assert_close(multipliers, rescaled - rescaled.mean(dim=1, keepdim=True))


class _InPlaceIgnoringResult(nn.Module):
    """Applies ``F.relu_`` and carries on with the tensor it gave it, not the result."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 5), nn.Linear(5, 2)

    def forward(self, x: Tensor) -> Tensor:
        z = self.a(x)
        F.relu_(z)
        return self.b(z)


def test_in_place_application_updates_the_tensor_it_was_given():
    torch.manual_seed(0)
    model = _InPlaceIgnoringResult().double()
    x = torch.randn(3, 4, dtype=torch.float64)
    baseline = torch.randn(3, 4, dtype=torch.float64)
    assert summation_gap(model, (x,), (baseline,), 1).abs().max() <= TOLERANCE


class _ConstantNonlinearities(nn.Module):
    """Nonlinearities of a parameter (any number of rows) and of an additional argument
    that does not require grad: constants of the attribution."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 7), nn.Linear(7, 2)
        self.gate = nn.Parameter(torch.randn(7))

    def forward(self, x: Tensor, scale: Tensor) -> Tensor:
        return self.b(torch.relu(self.a(x)) * torch.sigmoid(self.gate) * F.softplus(scale))


def test_nonlinearities_of_constants_keep_their_plain_form():
    torch.manual_seed(0)
    model = _ConstantNonlinearities().double()
    x, baseline = torch.randn(3, 4, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64)
    scale = torch.randn(3, 7, dtype=torch.float64)
    gap = summation_gap(model, (x,), (baseline,), 0, (scale,))
    assert gap.abs().max() <= TOLERANCE


class _BatchSecond(nn.Module):
    """A sequence model that moves the batch to dimension 1 before a ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 5), nn.Linear(5, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(torch.relu(self.a(x).transpose(0, 1)).mean(0))


def test_a_nonlinearity_off_the_batch_dimension_is_refused():
    with pytest.raises(UnsupportedModelError, match=r"shape \(7, 2, 5\).*batches of 2 rows"):
        attrkit.DeepLift(_BatchSecond()).attribute(torch.randn(2, 7, 4), target=0)


def test_a_nonlinearity_under_vmap_is_refused():
    # Mapped over the batch, each unit's tensor has no batch; here its 6 features would
    # pass for the 6 rows of inputs and baselines.
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    with pytest.raises(UnsupportedModelError, match=r"ReLU.*under torch\.vmap"):
        attrkit.DeepLift(lambda t: torch.vmap(model)(t)).attribute(torch.randn(3, 4), target=0)


class _CellLoop(nn.Module):
    """An ``nn.RNNCell`` (ReLU) run over the time steps in Python."""

    def __init__(self, nonlinearity: str = "relu") -> None:
        super().__init__()
        self.cell, self.out = nn.RNNCell(4, 5, nonlinearity=nonlinearity), nn.Linear(5, 3)

    def forward(self, x: Tensor) -> Tensor:
        hidden = None
        for step in range(x.shape[1]):
            hidden = self.cell(x[:, step], hidden)
        return self.out(hidden)


class _Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.out = nn.RNN(4, 5, nonlinearity="relu", batch_first=True), nn.Linear(5, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.rnn(x)[0][:, -1])


class _AttributingModel(nn.Module):
    """A model whose forward pass makes an attrkit call of its own (a Saliency)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        saliency = attrkit.Saliency(self.net).attribute(x.detach(), target=0)
        return self.net(x) + 0.0 * saliency.sum()


@pytest.mark.parametrize(
    ("factory", "shape"),
    [
        pytest.param(_CellLoop, (6, 4), id="rnn-cell-loop"),
        pytest.param(lambda: _CellLoop("tanh"), (6, 4), id="rnn-cell-loop-tanh"),
        pytest.param(_AttributingModel, (4,), id="attrkit-call-inside-forward"),
    ],
)
def test_summation_to_delta_where_the_engine_reaches(factory, shape):
    test_summation_to_delta_model_table(factory, shape)


def test_a_recurrent_layer_is_refused():
    with pytest.raises(UnsupportedModelError, match=r"ReLU.*shape \(1, 3, 5\).*3 rows"):
        attrkit.DeepLift(_Recurrent()).attribute(torch.randn(3, 6, 4), target=0)


@pytest.mark.parametrize("fullgraph", [True, False])
def test_a_compiled_model_is_refused(fullgraph):
    # Dynamo cannot trace DeepLift's rules (they read values and the autograd graph):
    # whole-graph compilation fails, and the graphs it compiles around the breaks hold
    # native nodes that no rule made: either way attrkit's error, never a silent result.
    torch._dynamo.reset()
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.Sigmoid())
    compiled = torch.compile(model, fullgraph=fullgraph, backend="eager")
    with pytest.raises(UnsupportedModelError, match=r"torch\.compile|escaped the method's rules"):
        attrkit.DeepLift(compiled).attribute(torch.randn(3, 4), target=0)


def test_softmax_over_the_batch_is_refused():
    model = lambda t: F.softmax(t, dim=0)  # noqa: E731
    with pytest.raises(UnsupportedModelError, match="softmax over dimension 0"):
        attrkit.DeepLift(model).attribute(torch.randn(2, 3), target=0)


def _square_plus(x: Tensor) -> Tensor:
    """``x + x**2``, an elementwise op the rule override can see."""
    if torch.overrides.has_torch_function_unary(x):
        return torch.overrides.handle_torch_function(_square_plus, (x,), x)
    return x + x * x


SQUARE_PLUS = register_elementwise_op(Op("test_square_plus", "square-plus", {_square_plus: False}))


def test_a_registered_elementwise_op_gets_the_rescale_rule():
    """``sum(x + x**2)`` from baseline 0: exactly ``x + x**2`` per feature (its plain
    gradient, ``1 + 2x``, would give ``x + 2 x**2``)."""
    assert SQUARE_PLUS in RESCALE.ops
    x = torch.tensor([[0.5, -2.0, 3.0]], dtype=torch.float64)
    attributions = attrkit.DeepLift(lambda t: _square_plus(t).sum(1)).attribute(x)
    torch.testing.assert_close(attributions, x + x * x)


def test_threads_get_their_own_paired_batch():
    """Threads running DeepLift on one model with different batch sizes."""
    torch.manual_seed(0)
    model = models.TinyInception().double().eval()
    results: dict[int, float] = {}

    def run(batch: int) -> None:
        generator = torch.Generator().manual_seed(batch)
        x = torch.randn((batch, 3, 6, 6), generator=generator, dtype=torch.float64)
        for _ in range(5):
            gap = summation_gap(model, (x,), (torch.zeros_like(x),), 2)
            results[batch] = max(results.get(batch, 0.0), float(gap.abs().max()))

    threads = [threading.Thread(target=run, args=(batch,)) for batch in (1, 2, 3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == [1, 2, 3, 5]
    assert max(results.values()) <= TOLERANCE
    assert math.isfinite(max(results.values()))


class _RecordingInPlace(nn.Module):
    """In-place nonlinearities (through the rule's autograd function), keeping weak
    references to its forward pass's tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 5), nn.Linear(5, 2)
        self.seen: list[weakref.ref[Tensor]] = []

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu_(self.a(x))
        g = torch.sigmoid_(h * 2.0)
        out = self.b(F.max_pool1d(g.unsqueeze(1), 1).squeeze(1))
        self.seen.extend(weakref.ref(t) for t in (h, g, out))
        return out


def test_no_graph_outlives_the_call():
    """Freed by reference counting alone: an in-place application's output is the input
    it was given, and its autograd node must not keep the call's arguments."""
    model = _RecordingInPlace()
    gc.disable()
    try:
        attrkit.DeepLift(model).attribute(torch.randn(3, 4), target=1)
        assert model.seen
        assert [ref for ref in model.seen if ref() is not None] == []
    finally:
        gc.enable()


class _InPlaceOnViews(nn.Module):
    """In-place nonlinearities applied to views of a tensor (the rule's autograd function,
    where autograd records the base's ``CopySlices``)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        z = self.a(x)
        F.relu_(z[:, :3])
        torch.tanh_(z[:, 3:])
        return self.b(z)


def test_in_place_applications_to_views():
    torch.manual_seed(0)
    model = _InPlaceOnViews().double()
    x = torch.randn(3, 4, dtype=torch.float64)
    baseline = torch.randn(3, 4, dtype=torch.float64)
    assert summation_gap(model, (x,), (baseline,), 0).abs().max() <= TOLERANCE


class _StraightThrough(torch.autograd.Function):
    """Rounding whose backward hands the gradient on unchanged (a straight-through
    estimator)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


def _rounded(x: Tensor) -> Tensor:
    if torch.overrides.has_torch_function_unary(x):
        return torch.overrides.handle_torch_function(_rounded, (x,), x)
    return _StraightThrough.apply(x)


ROUNDED = register_elementwise_op(Op("test_rounded", "rounding", {_rounded: False}))


class _RoundedBranch(nn.Module):
    """``head(b + round(a))``: the sum hands one gradient tensor to both branches (and the
    rounding, recorded last, runs its backward first)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(3, 4), nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        other = self.b(x)
        return self.head(other + _rounded(3.0 * self.a(x)))


def test_a_rule_never_writes_into_the_gradient_it_receives():
    """The op's own backward returns the gradient it received (the sum's, shared with the
    other branch); the rule's result goes to a copy, and the other branch keeps its own."""
    torch.manual_seed(0)
    model = _RoundedBranch().double()
    x, baseline = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    assert summation_gap(model, (x,), (baseline,), 1).abs().max() <= TOLERANCE

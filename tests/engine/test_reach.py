"""Never silently wrong: every way a forward pass can run a ReLU either gets the method's
rule (the same result as the model written without that feature, and as the definition
in tests/reference.py) or is refused with ``UnsupportedModelError`` naming where.

One row per case of docs/reach.rst (the table of issue 13):

* exact: non-reentrant ``checkpoint``, ``checkpoint_sequential``, timm's and Hugging
  Face's checkpointing patterns (with in-place ReLUs, and at a batch size whose saved
  tensors do not line up), ``torch.vmap`` (module, functional, in place),
  ``torch.compile(fullgraph=True)``, nested attribution calls, ``nn.RNN`` /
  ``nn.RNNCell`` with ``nonlinearity="relu"`` (padded, packed, bidirectional),
  ``nn.LPPool1d/2d``;
* refused: reentrant checkpointing, ``@torch.jit.script`` functions called from
  ``forward``, ReLUs run on worker threads, ``torch.cond``, ``nn.RNN`` dropping units in
  training mode;
* not a ReLU (the plain gradient, in every library): the ReLU look-alikes.

Covering design: every exact row runs with both ReLU methods (Deconvolution and
GuidedBackprop) against the reference of its feature-free twin; the checkpoint rows also
run every registered rule-based method that is built from the model alone (today the
same two; a new family's methods join automatically) against the method on the twin, and
every registered ReLU rule through the engine alone; every refused row runs with both
ReLU methods, twice (cold and warm caches), and checks the message's location. The rows
whose mechanism differs on a GPU run there too (skipped without a CUDA device).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

import attrkit
from attrkit.engine import RULES, RuleOverride, RuleSet
from attrkit.engine.rules.relu import ReluRule
from tests.cases import METHODS, RULE_OF
from tests.helpers import assert_all_close, captum_attribute
from tests.reference import reference_attribution

THIS_FILE = "test_reach.py"
WIDTH = 8


def _body(inplace: bool = True) -> nn.Sequential:
    """Linear, ReLU, Linear, ReLU (in place), Linear: a block worth checkpointing."""
    return nn.Sequential(
        nn.Linear(WIDTH, WIDTH),
        nn.ReLU(),
        nn.Linear(WIDTH, WIDTH),
        nn.ReLU(inplace=inplace),
        nn.Linear(WIDTH, WIDTH),
    )


class Twin(nn.Module):
    """A model that runs ``body`` with a feature (``feature(self, x)``) or without it
    (``plain(self, x)``): the same function either way."""

    def __init__(
        self,
        feature: Callable[[Any, Tensor], Tensor],
        plain: Callable[[Any, Tensor], Tensor] | None = None,
        body: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.body = body if body is not None else _body()
        self.head = nn.Linear(WIDTH, 3)
        self.feature, self.plain = feature, plain or (lambda s, x: s.body(x))
        self.use_feature = True

    def forward(self, x: Tensor) -> Tensor:
        run = self.feature if self.use_feature else self.plain
        return self.head(run(self, x))

    def without_feature(self) -> Twin:
        twin = Twin(self.feature, self.plain, self.body)
        twin.head = self.head
        twin.use_feature = False
        return twin


# ------------------------------------------------------------- checkpointing patterns
class TimmStyle(nn.Module):
    """timm's pattern: ``set_grad_checkpointing()`` makes ``forward_features`` run the
    blocks through ``checkpoint_seq`` (chunks of blocks, non-reentrant)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(_body() for _ in range(3)))
        self.head = nn.Linear(WIDTH, 3)
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward(self, x: Tensor) -> Tensor:
        if self.grad_checkpointing:
            for chunk in (self.blocks[:2], self.blocks[2:]):
                x = checkpoint(lambda t, c=chunk: c(t), x, use_reentrant=False)
        else:
            x = self.blocks(x)
        return self.head(x)


class HuggingFaceStyle(nn.Module):
    """Hugging Face's pattern: ``gradient_checkpointing_enable()`` sets
    ``_gradient_checkpointing_func = partial(checkpoint, **kwargs)``, which each layer
    goes through while ``self.training`` (their default kwargs are reentrant)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_body() for _ in range(3))
        self.head = nn.Linear(WIDTH, 3)
        self.gradient_checkpointing = False

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Any = None) -> None:
        kwargs = gradient_checkpointing_kwargs or {"use_reentrant": True}
        self._gradient_checkpointing_func = functools.partial(checkpoint, **kwargs)
        self.gradient_checkpointing = True

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = self._gradient_checkpointing_func(layer.__call__, x)
            else:
                x = layer(x)
        return self.head(x)


def _timm(enable: bool) -> nn.Module:
    torch.manual_seed(0)
    model = TimmStyle()
    model.set_grad_checkpointing(enable)
    return model


def _hugging_face(use_reentrant: bool | None) -> nn.Module:
    """In training mode (its layers have no dropout); ``None``: checkpointing off."""
    torch.manual_seed(0)
    model = HuggingFaceStyle().train()
    if use_reentrant is not None:
        model.gradient_checkpointing_enable({"use_reentrant": use_reentrant})
    return model


# ------------------------------------------------------------------------ the rows
def _relu(x: Tensor) -> Tensor:
    return torch.relu(x)


@functools.cache
def _scripted_relu() -> Callable[[Tensor], Tensor]:
    with warnings.catch_warnings():  # torch 2.10+ deprecates TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(_relu)  # type: ignore[no-any-return]


def scripted_relu(x: Tensor) -> Tensor:
    """A ``@torch.jit.script`` function's call, as a model's forward makes it."""
    return _scripted_relu()(x)


_POOL = ThreadPoolExecutor(max_workers=2)


@dataclass(frozen=True)
class Row:
    """One row of the table: a model with a feature, and how attrkit must answer.

    Attributes:
        id: Test id.
        make: Builds (the model, its twin without the feature).
        refusal: ``""`` if the result must be exact; else a pattern the
            ``UnsupportedModelError`` message must match.
        batch: Examples per call.
    """

    id: str
    make: Callable[[], tuple[nn.Module, nn.Module]]
    refusal: str = ""
    batch: int = 8


def _twin(feature: Callable[[Any, Tensor], Tensor], inplace: bool = True) -> Callable[..., Any]:
    def make() -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(0)
        model = Twin(feature, body=_body(inplace)).double()
        return model, model.without_feature()

    return make


def _relu_between(apply: Callable[[Tensor], Tensor]) -> Callable[[Any, Tensor], Tensor]:
    """The body's first ReLU replaced by ``apply`` (its other layers as they are)."""
    return lambda s, x: s.body[2:](apply(s.body[0](x)))


EXACT = [
    Row("checkpoint", _twin(lambda s, x: checkpoint(s.body, x, use_reentrant=False))),
    Row(
        "checkpoint-batch-4",  # the saved tensors' shapes differ: torch's CheckpointError
        _twin(lambda s, x: checkpoint(s.body, x, use_reentrant=False)),
        batch=4,
    ),
    Row(
        "checkpoint-sequential",
        _twin(lambda s, x: checkpoint_sequential(s.body, 2, x, use_reentrant=False)),
    ),
    Row("timm-set-grad-checkpointing", lambda: (_timm(True).double(), _timm(False).double())),
    Row(
        "hugging-face-gradient-checkpointing",
        lambda: (_hugging_face(False).double(), _hugging_face(None).double()),
    ),
    Row("vmap-functional", _twin(_relu_between(torch.vmap(F.relu)))),
    Row("vmap-module", _twin(lambda s, x: torch.vmap(s.body)(x))),
    Row(
        "vmap-in-place",
        _twin(_relu_between(torch.vmap(lambda v: F.relu(v * 1, inplace=True)))),
    ),
]

REFUSED = [
    Row(
        "checkpoint-reentrant",
        _twin(lambda s, x: checkpoint(s.body, x, use_reentrant=True)),
        r"(?s)use_reentrant=True.*Pass `use_reentrant=False`",
    ),
    Row(
        "hugging-face-default-reentrant",
        lambda: (_hugging_face(True).double(), _hugging_face(None).double()),
        r"(?s)use_reentrant=True.*gradient_checkpointing_kwargs",
    ),
    Row(
        "scripted-function",
        _twin(_relu_between(scripted_relu)),
        rf"(?s){THIS_FILE}:\d+.*TorchScript",
    ),
    Row(
        "worker-thread",
        _twin(_relu_between(lambda h: _POOL.submit(F.relu, h).result())),
        r"a ReLU \(`ReluBackward0`\) made at .* \(on another thread than the caller's\)",
    ),
    Row(
        "cond",
        _twin(
            _relu_between(
                lambda h: torch.cond(h.sum() > -1e9, lambda t: F.relu(t), lambda t: t, (h,))
            )
        ),
        rf"(?s){THIS_FILE}:\d+.*higher-order operator \(`torch\.cond`",
    ),
]


def _inputs(batch: int) -> Tensor:
    return torch.randn(
        batch, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("row", EXACT, ids=[r.id for r in EXACT])
def test_exact_row_equals_the_definition_on_the_model_without_the_feature(row, method):
    model, twin = row.make()
    x = _inputs(row.batch)
    expected = reference_attribution(twin, (x,), 1, (), RULE_OF[method])
    plain = reference_attribution(twin, (x,), 1, (), None)
    got = getattr(attrkit, method)(model).attribute(x, target=1)
    assert_all_close((got,), expected)
    assert not torch.allclose(expected[0], plain[0])  # the rule makes a difference here


def _rule_methods() -> list[str]:
    """Registered methods with backward rules that are built from the model alone."""
    names = []
    for name in attrkit.available_methods():
        info = attrkit.method_info(name)
        if info.rules and not info.init_arguments:
            names.append(name)
    return names


CHECKPOINT_ROWS = [row for row in EXACT if "checkpoint" in row.id]


@pytest.mark.parametrize("method", _rule_methods())
@pytest.mark.parametrize("row", CHECKPOINT_ROWS, ids=[r.id for r in CHECKPOINT_ROWS])
def test_every_rule_based_method_is_exact_through_checkpointing(row, method):
    model, twin = row.make()
    x = _inputs(row.batch)
    expected = attrkit.attribute(twin, x, method=method, target=2)
    got = attrkit.attribute(model, x, method=method, target=2)
    assert_all_close((got,), (expected,))


#: The registered ReLU rules (LRP's rule, which covers ReLU too, applies only inside an LRP
#: call: the LRP method runs through the checkpoint rows above).
RELU_RULES = [rule for rule in RULES.values() if isinstance(rule, ReluRule)]


@pytest.mark.parametrize("rule", RELU_RULES, ids=[rule.name for rule in RELU_RULES])
@pytest.mark.parametrize("row", CHECKPOINT_ROWS, ids=[r.id for r in CHECKPOINT_ROWS])
def test_every_relu_rule_survives_checkpointing(row, rule):
    # Every registered ReLU rule (the guided-backpropagation hook on the native node,
    # the Functions, in place or not), through the engine alone: the gradient of the
    # checkpointed model equals the twin's under the same rule.
    model, twin = row.make()
    x = _inputs(row.batch)
    results = []
    for network in (model, twin):
        leaf = x.clone().requires_grad_()
        with RuleOverride(RuleSet([rule])):
            output = network(leaf.clone())[:, 1]
            results.append(torch.autograd.grad(output, leaf, torch.ones_like(output)))
    assert_all_close(results[0], results[1])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("row", REFUSED, ids=[r.id for r in REFUSED])
def test_refused_row_raises_naming_where_and_what_to_do(row, method):
    model, _ = row.make()
    explainer = getattr(attrkit, method)(model)
    for _ in range(2):  # also once the code is warm (TorchScript, dynamo caches)
        with pytest.raises(attrkit.UnsupportedModelError, match=row.refusal):
            explainer.attribute(_inputs(row.batch), target=1)
    assert torch._C._len_torch_function_stack() == 0


def test_scripted_function_stays_refused_once_torchscript_optimizes_it():
    # After a few runs the profiling executor hides the ReLU in a differentiable graph.
    model, _ = _twin(_relu_between(scripted_relu))()
    x = _inputs(8).requires_grad_()
    for _ in range(4):
        model(x).sum().backward()
    with pytest.raises(attrkit.UnsupportedModelError, match=r"TorchScript"):
        attrkit.Deconvolution(model).attribute(_inputs(8), target=1)


def test_issue_repro_checkpointed_mlp_is_exact_at_every_batch_size():
    torch.manual_seed(0)
    body = _body(inplace=False).double()

    class Ckpt(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = body

        def forward(self, x: Tensor) -> Tensor:
            return checkpoint(self.b, x, use_reentrant=False)

    x = _inputs(8)
    for batch in (8, 4):
        want = attrkit.Deconvolution(body).attribute(x[:batch], target=1)
        got = attrkit.Deconvolution(Ckpt()).attribute(x[:batch], target=1)
        assert_all_close((got,), (want,))
        assert_all_close((want,), reference_attribution(body, (x[:batch],), 1, (), "deconvolution"))


# ------------------------------------------------------------------ nested calls
@pytest.mark.parametrize("outer", METHODS)
@pytest.mark.parametrize("inner", ["Saliency", *METHODS])
def test_a_call_inside_another_calls_forward_gets_its_own_definition(outer, inner):
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 3)).double()
    inner_results: list[Tensor] = []

    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, x: Tensor) -> Tensor:
            explainer = getattr(attrkit, inner)(self.body)
            kwargs = {"abs": False} if inner == "Saliency" else {}
            inner_results.append(explainer.attribute(x.detach(), target=0, **kwargs))
            return self.body(x)

    x = _inputs(4)
    got = getattr(attrkit, outer)(Outer()).attribute(x, target=1)
    inner_rule = RULE_OF.get(inner)
    assert_all_close((inner_results[0],), reference_attribution(body, (x,), 0, (), inner_rule))
    assert_all_close((got,), reference_attribution(body, (x,), 1, (), RULE_OF[outer]))


# ----------------------------------------------------------------- torch.compile
@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("inplace", [False, True], ids=["relu", "in-place-relu"])
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_fullgraph_compiled_model_is_exact(method, inplace, backend):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = nn.Sequential(_body(inplace), nn.Linear(WIDTH, 3)).double()
    x = _inputs(4)
    expected = reference_attribution(model, (x,), 1, (), RULE_OF[method])
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    explainer = getattr(attrkit, method)(compiled)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        results = [explainer.attribute(x, target=1) for _ in range(2)]
    assert [str(w.message) for w in shown] == []
    for result in results:
        assert_all_close((result,), expected)


@pytest.mark.slow
def test_fullgraph_model_dynamo_cannot_trace_is_refused_with_attrkits_error():
    torch._dynamo.reset()

    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _body()

        def forward(self, x: Tensor) -> Tensor:
            h = self.body(x)
            return h * float(h.sum().item() > 0)  # data-dependent: a graph break

    compiled = torch.compile(Untraceable().double(), fullgraph=True, backend="eager")
    with pytest.raises(attrkit.UnsupportedModelError, match=r"compiled with torch\.compile"):
        attrkit.Deconvolution(compiled).attribute(_inputs(4), target=1)


# --------------------------------------------------------- ReLUs inside torch's functions
def _python_rnn(rnn: nn.RNN, x: Tensor, lengths: list[int] | None = None) -> Tensor:
    """``nn.RNN(nonlinearity="relu")`` written as a Python loop of ``F.relu`` calls (batch
    first): the final hidden state of the last layer, both directions concatenated; with
    ``lengths``, each sequence stops at its own length (as a packed sequence does)."""
    lengths = lengths or [x.shape[1]] * x.shape[0]
    finals = []
    for example, length in enumerate(lengths):
        layer_input = x[example, :length]
        last = []
        for layer in range(rnn.num_layers):
            outputs = []
            for suffix in ("", "_reverse")[: 1 + rnn.bidirectional]:
                weights = [
                    getattr(rnn, f"{n}_l{layer}{suffix}")
                    for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                ]
                h = torch.zeros(rnn.hidden_size, dtype=x.dtype)
                steps = range(length) if not suffix else reversed(range(length))
                sequence: list[Tensor] = [h] * length
                for t in steps:
                    h = F.relu(
                        F.linear(layer_input[t], weights[0], weights[2])
                        + F.linear(h, weights[1], weights[3])
                    )
                    sequence[t] = h
                outputs.append(torch.stack(sequence))
                last.append(h)
            layer_input = torch.cat(outputs, -1)
        finals.append(torch.cat(last[-(1 + rnn.bidirectional) :]))
    return torch.stack(finals)


class RnnClassifier(nn.Module):
    def __init__(self, bidirectional: bool, packed: bool, python: bool = False) -> None:
        super().__init__()
        self.rnn = nn.RNN(
            WIDTH,
            6,
            num_layers=2,
            nonlinearity="relu",
            batch_first=True,
            bidirectional=bidirectional,
        )
        self.head = nn.Linear(6 * (1 + bidirectional), 3)
        self.packed, self.python = packed, python
        self.lengths = [5, 3, 4, 2]

    def forward(self, x: Tensor) -> Tensor:
        lengths = self.lengths if self.packed else None
        if self.python:
            return self.head(_python_rnn(self.rnn, x, lengths))
        if self.packed:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, self.lengths, batch_first=True, enforce_sorted=False
            )
            _, h_n = self.rnn(packed)
        else:
            _, h_n = self.rnn(x)
        directions = h_n[-(1 + self.rnn.bidirectional) :]
        return self.head(torch.cat(list(directions), -1))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_rnn_with_relu_is_exact(method, bidirectional, packed):
    torch.manual_seed(0)
    model = RnnClassifier(bidirectional, packed).double().eval()
    python = RnnClassifier(bidirectional, packed, python=True).double()
    python.load_state_dict(model.state_dict())
    x = torch.randn(4, 5, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected = reference_attribution(python, (x,), 1, (), RULE_OF[method])
    assert not torch.allclose(expected[0], reference_attribution(python, (x,), 1, (), None)[0])
    got = getattr(attrkit, method)(model).attribute(x, target=1)
    assert_all_close((got,), expected)


@pytest.mark.parametrize("method", METHODS)
def test_rnn_cell_with_relu_is_exact(method):
    torch.manual_seed(0)
    cell = nn.RNNCell(WIDTH, WIDTH, nonlinearity="relu").double()

    class TwoSteps(nn.Module):
        def __init__(self, python: bool) -> None:
            super().__init__()
            self.cell, self.python = cell, python

        def step(self, x: Tensor, h: Tensor) -> Tensor:
            if not self.python:
                return self.cell(x, h)
            c = self.cell
            return F.relu(F.linear(x, c.weight_ih, c.bias_ih) + F.linear(h, c.weight_hh, c.bias_hh))

        def forward(self, x: Tensor) -> Tensor:
            return self.step(x, self.step(x, torch.zeros_like(x)))

    x = _inputs(4)
    expected = reference_attribution(TwoSteps(python=True), (x,), 1, (), RULE_OF[method])
    got = getattr(attrkit, method)(TwoSteps(python=False)).attribute(x, target=1)
    assert_all_close((got,), expected)


def test_rnn_dropping_units_in_training_mode_is_refused():
    rnn = nn.RNN(WIDTH, 6, num_layers=2, nonlinearity="relu", dropout=0.5).double().train()

    class Last(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = rnn

        def forward(self, x: Tensor) -> Tensor:
            return self.rnn(x)[0][-1]

    refusal = rf"(?s)`torch\.rnn_relu` \(an nn\.RNN layer at \S*{THIS_FILE}:\d+\).*model\.eval\(\)"
    with pytest.raises(attrkit.UnsupportedModelError, match=refusal):
        attrkit.GuidedBackprop(Last()).attribute(
            torch.randn(3, 4, WIDTH, dtype=torch.float64), target=1
        )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("pool", "features"),
    [
        pytest.param(lambda: nn.LPPool2d(2, 2), 27, id="lppool2d"),
        pytest.param(lambda: nn.LPPool2d(4, (2, 3), stride=1), 60, id="lppool2d-p4"),
        pytest.param(lambda: nn.Sequential(nn.Flatten(2), nn.LPPool1d(2, 4)), 27, id="lppool1d"),
    ],
)
def test_lp_pool_is_exact(method, pool, features):
    # F.lp_pool* apply F.relu inside; the reference's patched F.relu reaches it.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), pool(), nn.Flatten(), nn.Linear(features, 3))
    model = model.double()
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected = reference_attribution(model, (x,), 1, (), RULE_OF[method])
    assert not torch.allclose(expected[0], reference_attribution(model, (x,), 1, (), None)[0])
    got = getattr(attrkit, method)(model).attribute(x, target=1)
    assert_all_close((got,), expected)


# ----------------------------------------------------------------- ReLU look-alikes
LOOKALIKES = {
    "clamp-min-0": lambda h: h.clamp(min=0),
    "where": lambda h: torch.where(h > 0, h, 0),
    "maximum": lambda h: torch.maximum(h, torch.zeros_like(h)),
    "mask-product": lambda h: h * (h > 0),
    "threshold": lambda h: F.threshold(h, 0.0, 0.0),
    "hardtanh-0-inf": lambda h: F.hardtanh(h, 0.0, float("inf")),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("lookalike", list(LOOKALIKES), ids=list(LOOKALIKES))
def test_relu_lookalike_keeps_the_plain_gradient_in_every_library(method, lookalike):
    torch.manual_seed(0)
    apply = LOOKALIKES[lookalike]
    model = nn.Sequential(nn.Linear(WIDTH, WIDTH), _Lambda(apply), nn.Linear(WIDTH, 3)).double()
    x = _inputs(4)
    plain = reference_attribution(model, (x,), 1, (), None)
    with pytest.warns(attrkit.NoReluWarning, match="applied no ReLU"):
        got = getattr(attrkit, method)(model).attribute(x, target=1)
    assert_all_close((got,), plain)
    assert_all_close(captum_attribute(method, model, x, target=1), plain)


class _Lambda(nn.Module):
    def __init__(self, function: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: Tensor) -> Tensor:
        return self.function(x)


# ------------------------------------------------------------------------- on a GPU
# Where the mechanism differs on a GPU: the backward pass of a CUDA graph runs on the
# autograd engine's device thread (where a checkpointed block recomputes under the
# override the engine hands over), and nn.RNN runs cuDNN's fused kernel unless attrkit
# decomposes it.
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA_ROWS = [*CHECKPOINT_ROWS, *(row for row in EXACT if row.id.startswith("vmap"))]


@needs_cuda
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("row", CUDA_ROWS, ids=[r.id for r in CUDA_ROWS])
def test_exact_row_on_cuda(row, method):
    model, twin = row.make()
    model, twin = model.to("cuda"), twin.to("cuda")
    x = _inputs(row.batch).to("cuda")
    expected = reference_attribution(twin, (x,), 1, (), RULE_OF[method])
    got = getattr(attrkit, method)(model).attribute(x, target=1)
    assert_all_close((got,), expected)


@needs_cuda
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_rnn_with_relu_on_cuda_is_exact(method, packed):
    torch.manual_seed(0)
    model = RnnClassifier(bidirectional=True, packed=packed).double().to("cuda").eval()
    python = RnnClassifier(bidirectional=True, packed=packed, python=True).double().to("cuda")
    python.load_state_dict(model.state_dict())
    x = torch.randn(4, 5, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = x.to("cuda")
    expected = reference_attribution(python, (x,), 1, (), RULE_OF[method])
    got = getattr(attrkit, method)(model).attribute(x, target=1)
    assert_all_close((got,), expected)

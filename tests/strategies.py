"""Random small models as printable graphs, the hypothesis strategies that draw them, a
fixed table of them, and random bad argument values.

A :class:`Graph` is a plain data structure (frozen dataclasses with short reprs), so a
failing example shrinks to a model one can read; :class:`GraphModel` builds it into an
``nn.Module``. Graphs mix Linear/Conv layers, elementwise nonlinearities (every op of
``attrkit.engine.ops.ELEMENTWISE``: :data:`NONLINEARITIES`), each written as a distinct
``nn`` module, one module reused at several places, a module created in ``forward``, and
in each functional, ``torch.*``, ``Tensor.*``, ``aten`` and in-place spelling; skip
connections that use a nonlinearity's input again (``fn(z) + scale * z``), parallel
branches joined by add, cat or mul, max-pooling (a module, a function, overlapping
windows, adaptive), average pooling, eval-mode BatchNorm, flattening and a second input.

Which nonlinearities a graph draws, and in which spellings, is an :class:`Ops`:
:data:`RELU_OPS` for the ReLU rules (ReLU in every spelling, a few other activations in
their plain functional spelling, 2x2 max-pooling by ``F.max_pool2d``) and
:data:`EVERY_OP` for DeepLift (every nonlinearity in every spelling, every max-pool
form). ``parity=True`` keeps to what Captum gets right with those ops (see
:func:`graphs`). The strategy keeps every graph valid: an in-place op never modifies a
tensor that autograd saved for the backward pass, the model's input (unless asked), or a
tensor used again.

:func:`graphs` and :func:`problems` are the hypothesis strategies; :func:`table` is the
fixed table (each nonlinearity in each spelling once, each max-pool form, reused modules).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import Tensor, nn

from tests.cases import Case, target_forms
from tests.models import RELU_SPELLINGS

Shape = tuple[int, ...]
Apply = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Nonlinearity:
    """An elementwise nonlinearity and its spellings. Each spelling looks its function up
    when called, so that a reference that monkeypatches the functions reaches it.

    Attributes:
        module: Builds the ``nn`` module (``inplace`` for the modules that take it).
        functional: Out-of-place spellings by name (the first is the plain one).
        inplace: In-place spellings by name.
        captum: Whether Captum's DeepLift has a rule for its module.
        module_inplace: Whether its module takes ``inplace``.
        saves_output: Whether its backward may read its output (an in-place op on the
            output would break autograd); ``False`` only where the out-of-place op's
            backward reads its input alone.
    """

    module: Callable[[bool], nn.Module]
    functional: dict[str, Apply]
    inplace: dict[str, Apply]
    captum: bool = False
    module_inplace: bool = True
    saves_output: bool = True

    def spelling(self, name: str) -> Apply:
        return {**self.functional, **self.inplace}[name]


def _no_inplace(factory: Callable[[], nn.Module], **fields: Any) -> dict[str, Any]:
    return {"module": lambda inplace: factory(), "module_inplace": False, **fields}


_RELU_INPLACE = {name for name in RELU_SPELLINGS if name.endswith(("_", "_inplace"))}
NONLINEARITIES: dict[str, Nonlinearity] = {
    "relu": Nonlinearity(
        lambda inplace: nn.ReLU(inplace),
        {k: f for k, f in RELU_SPELLINGS.items() if k not in _RELU_INPLACE},
        {k: f for k, f in RELU_SPELLINGS.items() if k in _RELU_INPLACE},
        captum=True,
    ),
    "elu": Nonlinearity(
        lambda inplace: nn.ELU(0.7, inplace),
        {"F.elu": lambda x: F.elu(x, 0.7)},
        {"F.elu_inplace": lambda x: F.elu(x, 0.7, inplace=True)},
        captum=True,
        saves_output=False,
    ),
    "leaky_relu": Nonlinearity(
        lambda inplace: nn.LeakyReLU(0.1, inplace),
        {"F.leaky_relu": lambda x: F.leaky_relu(x, 0.1)},
        {"F.leaky_relu_inplace": lambda x: F.leaky_relu(x, 0.1, inplace=True)},
        captum=True,
        saves_output=False,
    ),
    "sigmoid": Nonlinearity(
        functional={
            "torch.sigmoid": lambda x: torch.sigmoid(x),
            "Tensor.sigmoid": lambda x: x.sigmoid(),
            "torch.special.expit": lambda x: torch.special.expit(x),
        },
        inplace={
            "torch.sigmoid_": lambda x: torch.sigmoid_(x),
            "Tensor.sigmoid_": lambda x: x.sigmoid_(),
        },
        **_no_inplace(nn.Sigmoid, captum=True),
    ),
    "tanh": Nonlinearity(
        functional={
            "torch.tanh": lambda x: torch.tanh(x),
            "Tensor.tanh": lambda x: x.tanh(),
            "F.tanh": lambda x: F.tanh(x),
        },
        inplace={"torch.tanh_": lambda x: torch.tanh_(x), "Tensor.tanh_": lambda x: x.tanh_()},
        **_no_inplace(nn.Tanh, captum=True),
    ),
    "softplus": Nonlinearity(
        functional={"F.softplus": lambda x: F.softplus(x, 1.5, 2.0)},
        inplace={},
        **_no_inplace(lambda: nn.Softplus(1.5, 2.0), captum=True),
    ),
    "gelu": Nonlinearity(
        functional={
            "F.gelu": lambda x: F.gelu(x),
            "F.gelu(tanh)": lambda x: F.gelu(x, approximate="tanh"),
        },
        inplace={},
        **_no_inplace(nn.GELU, saves_output=False),
    ),
    "silu": Nonlinearity(
        lambda inplace: nn.SiLU(inplace),
        {"F.silu": lambda x: F.silu(x)},
        {"F.silu_inplace": lambda x: F.silu(x, inplace=True)},
    ),
    "hardswish": Nonlinearity(
        lambda inplace: nn.Hardswish(inplace),
        {"F.hardswish": lambda x: F.hardswish(x)},
        {"F.hardswish_inplace": lambda x: F.hardswish(x, inplace=True)},
    ),
    "relu6": Nonlinearity(
        lambda inplace: nn.ReLU6(inplace),
        {"F.relu6": lambda x: F.relu6(x)},
        {"F.relu6_inplace": lambda x: F.relu6(x, inplace=True)},
        saves_output=False,
    ),
    "hardtanh": Nonlinearity(
        lambda inplace: nn.Hardtanh(-0.5, 0.8, inplace),
        {"F.hardtanh": lambda x: F.hardtanh(x, -0.5, 0.8)},
        {"F.hardtanh_": lambda x: F.hardtanh_(x, -0.5, 0.8)},
    ),
    "mish": Nonlinearity(
        lambda inplace: nn.Mish(inplace),
        {"F.mish": lambda x: F.mish(x)},
        {"F.mish_inplace": lambda x: F.mish(x, inplace=True)},
    ),
    "celu": Nonlinearity(
        lambda inplace: nn.CELU(0.8, inplace),
        {"F.celu": lambda x: F.celu(x, 0.8), "torch.celu": lambda x: torch.celu(x)},
        {"torch.celu_": lambda x: torch.celu_(x)},
    ),
    "selu": Nonlinearity(
        lambda inplace: nn.SELU(inplace),
        {"F.selu": lambda x: F.selu(x), "torch.selu": lambda x: torch.selu(x)},
        {"torch.selu_": lambda x: torch.selu_(x)},
    ),
    "hardsigmoid": Nonlinearity(
        lambda inplace: nn.Hardsigmoid(inplace),
        {"F.hardsigmoid": lambda x: F.hardsigmoid(x)},
        {"F.hardsigmoid_inplace": lambda x: F.hardsigmoid(x, inplace=True)},
    ),
    "logsigmoid": Nonlinearity(
        functional={"F.logsigmoid": lambda x: F.logsigmoid(x)},
        inplace={},
        **_no_inplace(nn.LogSigmoid),
    ),
    "threshold": Nonlinearity(
        lambda inplace: nn.Threshold(0.1, -0.4, inplace),
        {"F.threshold": lambda x: F.threshold(x, 0.1, -0.4)},
        {"F.threshold_": lambda x: F.threshold_(x, 0.1, -0.4)},
    ),
    "prelu": Nonlinearity(
        functional={"F.prelu": lambda x: F.prelu(x, torch.tensor([0.3], dtype=x.dtype))},
        inplace={},
        **_no_inplace(lambda: nn.PReLU(init=0.2)),
    ),
    "softshrink": Nonlinearity(
        functional={"F.softshrink": lambda x: F.softshrink(x, 0.3)},
        inplace={},
        **_no_inplace(lambda: nn.Softshrink(0.3)),
    ),
    "hardshrink": Nonlinearity(
        functional={
            "F.hardshrink": lambda x: F.hardshrink(x, 0.3),
            "Tensor.hardshrink": lambda x: x.hardshrink(0.3),
        },
        inplace={},
        **_no_inplace(lambda: nn.Hardshrink(0.3)),
    ),
    "softsign": Nonlinearity(
        functional={"F.softsign": lambda x: F.softsign(x)},
        inplace={},
        **_no_inplace(nn.Softsign),
    ),
    "tanhshrink": Nonlinearity(
        functional={"F.tanhshrink": lambda x: F.tanhshrink(x)},
        inplace={},
        **_no_inplace(nn.Tanhshrink),
    ),
}

#: The module spellings: a distinct module, the graph's one shared module of that
#: nonlinearity (reused), a module constructed inside ``forward``.
MODULE_SPELLINGS = ("module", "shared", "created")


def spellings(name: str, inplace_ok: bool = True) -> list[str]:
    """Every spelling of nonlinearity ``name`` (in-place ones where ``inplace_ok``)."""
    nonlinearity = NONLINEARITIES[name]
    found = [*MODULE_SPELLINGS, *nonlinearity.functional]
    return found + (list(nonlinearity.inplace) if inplace_ok else [])


def plain(name: str) -> str:
    """The plain functional spelling of nonlinearity ``name`` (its first)."""
    return next(iter(NONLINEARITIES[name].functional))


@dataclass(frozen=True)
class Ops:
    """The nonlinearities and max-pool forms that graphs draw.

    Attributes:
        spelled: Drawn in every spelling (half of the draws when ``plain`` is not empty).
        plain: Drawn in their plain functional spelling only (never hooked by Captum).
        max_pool_forms: Max-pooling as a module, a function, overlapping or adaptive;
            otherwise ``F.max_pool2d`` with 2x2 windows.
        parity_starts_with_layer: Under ``parity``, begin with a layer (Captum's DeepLift
            layer variants crash on a hooked module whose input requires no grad).
    """

    spelled: tuple[str, ...]
    plain: tuple[str, ...] = ()
    max_pool_forms: bool = False
    parity_starts_with_layer: bool = False


#: For the ReLU rules: ReLU in every spelling, other activations written plainly.
RELU_OPS = Ops(("relu",), ("elu", "gelu", "leaky_relu", "relu6", "sigmoid", "tanh"))
#: For DeepLift: every nonlinearity in every spelling, every max-pool form.
EVERY_OP = Ops(tuple(sorted(NONLINEARITIES)), (), True, True)


# ------------------------------------------------------------------------------ nodes


@dataclass(frozen=True)
class Dense:
    """``nn.Linear`` on features or ``nn.Conv2d`` (padding keeps the size) on images."""

    out: int
    kernel: int = 1


@dataclass(frozen=True)
class Act:
    """Nonlinearity ``name`` in ``spelling``; ``inplace`` for the module spellings."""

    name: str
    spelling: str
    inplace: bool = False

    def is_inplace(self, shared_inplace: bool) -> bool:
        if self.spelling in MODULE_SPELLINGS:
            takes_inplace = NONLINEARITIES[self.name].module_inplace
            return takes_inplace and (shared_inplace if self.spelling == "shared" else self.inplace)
        return self.spelling in NONLINEARITIES[self.name].inplace


@dataclass(frozen=True)
class MaxPool:
    """Max-pooling of images: ``kind`` is ``module`` / ``functional`` (kernel
    ``kernel``, stride ``stride``: overlapping windows when smaller) or ``adaptive``."""

    kind: str = "functional"
    kernel: int = 2
    stride: int = 2


@dataclass(frozen=True)
class AvgPool:
    """2x2 average pooling of images."""


@dataclass(frozen=True)
class Norm:
    """BatchNorm (eval mode, random statistics). Not LayerNorm: over a few nearly equal
    features it divides by a tiny deviation, and float32 rounding then differs by more
    than the tolerance between two batchings of the same rows (found by the long run)."""


@dataclass(frozen=True)
class Skip:
    """``fn(z) + scale * z``: the nonlinearity's input is used again."""

    fn: Act
    scale: float


@dataclass(frozen=True)
class Branch:
    """Two parallel paths (each a Dense then a nonlinearity) from the same tensor,
    joined by ``add``, ``cat`` (channels) or ``mul`` (a gate: no summation to delta)."""

    join: str
    left: tuple[Dense, Act]
    right: tuple[Dense, Act]


@dataclass(frozen=True)
class Flatten:
    """Images to features."""


Node = Dense | Act | MaxPool | AvgPool | Norm | Skip | Branch | Flatten


@dataclass(frozen=True)
class Graph:
    """A model: one input of ``input_shape`` per example (plus, when ``side`` > 0, a
    second input of ``side`` features added before the head), the ``body``, and a
    Linear head reshaped to ``output_shape`` per example."""

    input_shape: Shape
    body: tuple[Node, ...]
    output_shape: Shape
    side: int = 0
    shared_inplace: bool = False
    seed: int = 0

    # ------------------------------------------------------------------ structure
    def nodes(self) -> list[Node]:
        """Every node, branches' and skips' inner nodes included."""
        found: list[Node] = []
        for node in self.body:
            found.append(node)
            if isinstance(node, Branch):
                found.extend((*node.left, *node.right))
            if isinstance(node, Skip):
                found.append(node.fn)
        return found

    def features(self) -> set[str]:
        """What the graph exercises, for hypothesis' statistics."""
        found = {"image input" if len(self.input_shape) == 3 else "feature input"}
        for node in self.nodes():
            if isinstance(node, Act):
                found |= {f"nonlinearity {node.name}", f"spelling {node.spelling}"}
                if node.is_inplace(self.shared_inplace):
                    found.add("in-place nonlinearity")
            elif isinstance(node, MaxPool):
                overlap = node.stride < node.kernel and node.kind != "adaptive"
                found.add(f"max-pool {node.kind}{' overlapping' if overlap else ''}")
            elif isinstance(node, AvgPool):
                found.add("average pooling")
            elif isinstance(node, Branch):
                found.add(f"branches joined by {node.join}")
            elif isinstance(node, Skip):
                found.add(f"skip over {node.fn.name}")
        shared = [n.name for n in self.nodes() if isinstance(n, Act) and n.spelling == "shared"]
        if len(shared) > len(set(shared)):
            found.add("one module reused")
        if self.side:
            found.add("second input")
        return found

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        return (self.input_shape, (self.side,)) if self.side else (self.input_shape,)

    def reference_twin(self) -> Graph:
        """The same graph (same weights) with ``aten`` spellings written as ``torch``
        ones, which the reference's monkeypatching reaches."""

        def swap(node: Any) -> Any:
            if isinstance(node, Act) and node.spelling.startswith("aten"):
                return dataclasses.replace(node, spelling=node.spelling.replace("aten", "torch"))
            if isinstance(node, Skip):
                return dataclasses.replace(node, fn=swap(node.fn))
            if isinstance(node, Branch):
                return dataclasses.replace(
                    node, left=tuple(map(swap, node.left)), right=tuple(map(swap, node.right))
                )
            return node

        return dataclasses.replace(self, body=tuple(swap(n) for n in self.body))

    # ------------------------------------------------------------------ building
    def build(self, dtype: torch.dtype = torch.float64) -> GraphModel:
        return GraphModel(self).to(dtype).eval()

    def inputs(self, batch: int, dtype: torch.dtype, seed: int = 0) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        return tuple(
            torch.randn((batch, *shape), generator=generator, dtype=torch.float64).to(dtype)
            for shape in self.input_shapes
        )


def _pooled(node: MaxPool, shape: Shape) -> Shape:
    """The shape after max-pooling ``shape``."""
    if node.kind == "adaptive":
        return (shape[0], 2, 2)
    return (shape[0], *((size - node.kernel) // node.stride + 1 for size in shape[1:]))


class GraphModel(nn.Module):
    """The ``nn.Module`` of a :class:`Graph`; submodules live in ``self.mods`` under the
    node's position (``"3"``, ``"3_left_1"`` inside a branch, ``"3_fn"`` in a skip), the
    reused modules in ``self.shared`` under the nonlinearity's name."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.mods = nn.ModuleDict()
        self.shared = nn.ModuleDict()
        shape = graph.input_shape
        for position, node in enumerate(graph.body):
            shape = self._make(str(position), node, shape)
        width = math.prod(shape)
        if graph.side:
            self.side = nn.Linear(graph.side, width)
        self.head = nn.Linear(width, math.prod(graph.output_shape))
        self._initialize(graph.seed)

    def _make(self, key: str, node: Node, shape: Shape) -> Shape:
        image = len(shape) == 3
        if isinstance(node, Dense):
            if image:
                conv = nn.Conv2d(shape[0], node.out, node.kernel, padding=node.kernel // 2)
                self.mods[key] = conv
                return (node.out, *shape[1:])
            self.mods[key] = nn.Linear(shape[0], node.out)
            return (node.out,)
        if isinstance(node, Act):
            nonlinearity = NONLINEARITIES[node.name]
            if node.spelling == "module":
                self.mods[key] = nonlinearity.module(node.inplace)
            elif node.spelling == "shared" and node.name not in self.shared:
                self.shared[node.name] = nonlinearity.module(self.graph.shared_inplace)
            return shape
        if isinstance(node, Norm):
            self.mods[key] = nn.BatchNorm2d(shape[0]) if image else nn.BatchNorm1d(shape[0])
            return shape
        if isinstance(node, MaxPool):
            if node.kind == "module":
                self.mods[key] = nn.MaxPool2d(node.kernel, node.stride)
            if node.kind == "adaptive":
                self.mods[key] = nn.AdaptiveMaxPool2d(2)
            return _pooled(node, shape)
        if isinstance(node, AvgPool):
            return (shape[0], shape[1] // 2, shape[2] // 2)
        if isinstance(node, Flatten):
            return (math.prod(shape),)
        if isinstance(node, Skip):
            return self._make(f"{key}_fn", node.fn, shape)
        out = shape
        for side, path in (("left", node.left), ("right", node.right)):
            out = shape
            for index, inner in enumerate(path):
                out = self._make(f"{key}_{side}_{index}", inner, out)
        return (2 * out[0], *out[1:]) if node.join == "cat" else out

    def _initialize(self, seed: int) -> None:
        """Weights from ``seed`` alone (the global random generator is left alone)."""
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                fan_in = math.prod(parameter.shape[1:]) if parameter.dim() > 1 else 4
                values = torch.rand(parameter.shape, generator=generator, dtype=torch.float64)
                parameter.copy_((2 * values - 1) * 1.5 / math.sqrt(fan_in))
                if name.endswith("weight") and parameter.dim() == 1 and "prelu" not in name:
                    parameter.add_(1.0)  # norms: scale near 1
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    stats = torch.rand((2, module.num_features), generator=generator)
                    module.running_mean.copy_(stats[0] - 0.5)
                    module.running_var.copy_(stats[1] + 0.5)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, *rest: Tensor) -> Tensor:
        for position, node in enumerate(self.graph.body):
            x = self._run(str(position), node, x)
        x = x.reshape(x.shape[0], -1)
        if self.graph.side:
            x = x + self.side(rest[0])
        out = self.head(x)
        return out.reshape(out.shape[0], *self.graph.output_shape)

    def _run(self, key: str, node: Node, x: Tensor) -> Tensor:
        if isinstance(node, (Dense, Norm)):
            return self.mods[key](x)
        if isinstance(node, Act):
            return self.act(key, node, x)
        if isinstance(node, MaxPool):
            return self.max_pool(key, node, x)
        if isinstance(node, AvgPool):
            return F.avg_pool2d(x, 2)
        if isinstance(node, Flatten):
            return x.flatten(1)
        if isinstance(node, Skip):
            return self._run(f"{key}_fn", node.fn, x) + node.scale * x
        outputs = []
        for side, path in (("left", node.left), ("right", node.right)):
            y = x
            for index, inner in enumerate(path):
                y = self._run(f"{key}_{side}_{index}", inner, y)
            outputs.append(y)
        left, right = outputs
        if node.join == "add":
            return left + right
        if node.join == "mul":
            return left * right
        return torch.cat([left, right], dim=1)

    def act(self, key: str, node: Act, x: Tensor) -> Tensor:
        """Nonlinearity ``node`` (at ``key``) applied to ``x`` in the node's spelling."""
        nonlinearity = NONLINEARITIES[node.name]
        if node.spelling == "module":
            return self.mods[key](x)
        if node.spelling == "shared":
            return self.shared[node.name](x)
        if node.spelling == "created":
            return nonlinearity.module(node.inplace).to(x.dtype)(x)
        return nonlinearity.spelling(node.spelling)(x)

    def max_pool(self, key: str, node: MaxPool, x: Tensor) -> Tensor:
        """Max-pooling ``node`` (at ``key``) of ``x`` as the node spells it."""
        if node.kind == "functional":
            return F.max_pool2d(x, node.kernel, node.stride)
        return self.mods[key](x)

    # ------------------------------------------------------------------ layers
    def layer_names(self, spatial_only: bool = False) -> list[str]:
        """The Linear/Conv layers (each runs once per forward pass), as submodule paths."""
        kinds = (nn.Conv2d,) if spatial_only else (nn.Conv2d, nn.Linear)
        return [f"mods.{key}" for key, m in self.mods.items() if isinstance(m, kinds)]

    def cut_layer_names(self) -> list[str]:
        """The layers every path from the first input to the output runs through: the
        Linear/Conv layers of the body, outside branches."""
        return [f"mods.{i}" for i, node in enumerate(self.graph.body) if isinstance(node, Dense)]

    def layer_shape(self, name: str, inputs: tuple[Tensor, ...], to_input: bool) -> Shape:
        """Per-example shape of the layer's output (or input)."""
        return tuple(self.layer_tensor(name, inputs, to_input).shape[1:])

    def layer_input_depends_on_parameters(self, name: str, inputs: tuple[Tensor, ...]) -> bool:
        """Whether the layer's input requires grad when the model's inputs do not."""
        return self.layer_tensor(name, inputs, True, grad=True).requires_grad

    def layer_tensor(
        self, name: str, inputs: tuple[Tensor, ...], to_input: bool, grad: bool = False
    ) -> Tensor:
        """The layer's output (or input) on ``inputs``, from a plain forward pass (with
        autograd recording where ``grad``)."""
        found: list[Tensor] = []
        layer = self.get_submodule(name)
        if to_input:
            handle = layer.register_forward_pre_hook(lambda m, a: found.append(a[0].clone()))
        else:
            handle = layer.register_forward_hook(lambda m, a, o: found.append(o.clone()))
        try:
            with torch.set_grad_enabled(grad):
                self(*(x.detach() for x in inputs))
        finally:
            handle.remove()
        return found[0]


# ------------------------------------------------------------------------- strategies


@dataclass
class _State:
    """What the generator knows about the current tensor."""

    shape: Shape
    inplace_ok: bool = True  # an in-place op may overwrite it
    after_hooked: bool = False  # it leaves a module Captum hooks (under parity)


@st.composite
def acts(
    draw: st.DrawFn,
    ops: Ops,
    parity: bool,
    inplace_ok: bool,
    shared_inplace: bool,
    spelled: bool | None = None,
) -> Act:
    """A nonlinearity valid on the current tensor: one of ``ops.spelled`` (in any
    spelling; under ``parity`` a distinct module Captum hooks) or one of ``ops.plain`` (in
    its plain spelling); ``spelled`` forces the choice."""
    if spelled is None:
        spelled = not ops.plain or (bool(ops.spelled) and draw(st.booleans()))
    if not spelled:
        name = draw(st.sampled_from(ops.plain))
        return Act(name, plain(name))
    if parity:
        name = draw(st.sampled_from([n for n in ops.spelled if NONLINEARITIES[n].captum]))
        takes_inplace = NONLINEARITIES[name].module_inplace
        return Act(name, "module", inplace_ok and takes_inplace and draw(st.booleans()))
    name = draw(st.sampled_from(ops.spelled))
    choices = spellings(name, inplace_ok)
    if shared_inplace and not inplace_ok:
        choices.remove("shared")
    spelling = draw(st.sampled_from(choices))
    takes_inplace = spelling in ("module", "created") and NONLINEARITIES[name].module_inplace
    return Act(name, spelling, takes_inplace and inplace_ok and draw(st.booleans()))


def _after(node: Act, shared_inplace: bool, state: _State) -> _State:
    """The state of a nonlinearity's output."""
    saved = NONLINEARITIES[node.name].saves_output or node.is_inplace(shared_inplace)
    return _State(state.shape, inplace_ok=not saved, after_hooked=node.spelling == "module")


def _draw_max_pool(draw: st.DrawFn, ops: Ops, shape: Shape, parity: bool) -> MaxPool:
    if not ops.max_pool_forms:
        return MaxPool("functional", 2, 2)
    if parity:  # Captum's rule: MaxPool2d modules, windows that do not overlap
        return MaxPool("module", 2, 2)
    kind = draw(st.sampled_from(["module", "functional", "adaptive"]))
    kernel = draw(st.integers(2, min(3, *shape[1:])))
    return MaxPool(kind, kernel, draw(st.integers(1, kernel)))


@st.composite
def graphs(
    draw: st.DrawFn,
    ops: Ops = EVERY_OP,
    parity: bool = False,
    inplace_on_input: bool = False,
    gates: bool = False,
    side_input: bool = True,
    layer: str = "",
    max_nodes: int = 6,
) -> Graph:
    """A random valid graph of ``ops``.

    Args:
        ops: The nonlinearities and max-pool forms drawn.
        parity: Only what Captum gets right: each nonlinearity of ``ops.spelled`` a
            distinct single-use module of Captum's set (for DeepLift; ``nn.ReLU`` for the
            ReLU rules), never straight after another hooked module, its input used
            nowhere else; max-pooling as ``nn.MaxPool2d`` 2x2 where ``ops`` draws modules;
            never in place on the input.
        inplace_on_input: An in-place ReLU may modify the model's input tensor (where
            Captum crashes).
        gates: Branches may be joined by a product.
        side_input: A second input may be added.
        layer: ``"any"``: the graph has a Linear or Conv layer; ``"spatial"``: a Conv layer.
        max_nodes: The most nodes of the body (one more may be added).
    """
    image = layer == "spatial" or draw(st.booleans())
    if image:
        input_shape: Shape = (
            draw(st.integers(1, 3)),
            draw(st.integers(1, 6)),
            draw(st.integers(1, 6)),
        )
    else:
        input_shape = (draw(st.integers(1, 6)),)
    shared_inplace = not parity and draw(st.booleans())
    state = _State(input_shape, inplace_ok=inplace_on_input and not parity)

    def act(inplace_ok: bool, spelled: bool | None = None) -> Act:
        return draw(acts(ops, parity, inplace_ok, shared_inplace, spelled))

    body: list[Node] = []
    for step in range(draw(st.integers(1, max_nodes))):
        image = len(state.shape) == 3
        kinds = ["dense", "branch", "norm"]
        # Under parity, a nonlinearity straight after a hooked module is one Captum does
        # not hook, and no skip runs over a nonlinearity Captum hooks.
        hooked_only = parity and state.after_hooked
        if not hooked_only or ops.plain:
            kinds.append("act")
        if not parity or ops.plain:
            kinds.append("skip")
        if image:
            kinds += ["flatten", "avgpool"] if min(state.shape[1:]) >= 2 else ["flatten"]
            if min(state.shape[1:]) >= 2 and not (hooked_only and ops.max_pool_forms):
                kinds.append("maxpool")
        if parity and ops.parity_starts_with_layer and step == 0:
            kinds = ["dense"]
        kind = draw(st.sampled_from(kinds))
        width = draw(st.integers(1, 5))
        if kind == "dense":
            body.append(Dense(width, draw(st.sampled_from([1, 3])) if image else 1))
            state = _State((width, *state.shape[1:]))
        elif kind == "act":
            node = act(state.inplace_ok, spelled=False if hooked_only else None)
            body.append(node)
            state = _after(node, shared_inplace, state)
        elif kind == "skip":
            fn = act(False, spelled=False if parity else None)
            body.append(Skip(fn, draw(st.sampled_from([-0.7, 0.5, 1.0]))))
            state = _State(state.shape)
        elif kind == "branch":
            join = draw(st.sampled_from(["add", "cat", "mul"] if gates else ["add", "cat"]))
            left, right = (Dense(width), act(True)), (Dense(width), act(True))
            body.append(Branch(join, left, right))
            channels = 2 * width if join == "cat" else width
            state = _State((channels, *state.shape[1:]))
        elif kind == "norm":
            body.append(Norm())
            state = _State(state.shape)
        elif kind == "avgpool":
            body.append(AvgPool())
            state = _State((state.shape[0], state.shape[1] // 2, state.shape[2] // 2))
        elif kind == "maxpool":
            pool = _draw_max_pool(draw, ops, state.shape, parity)
            body.append(pool)
            state = _State(_pooled(pool, state.shape), after_hooked=pool.kind == "module")
        else:
            body.append(Flatten())
            state = dataclasses.replace(state, shape=(math.prod(state.shape),))
    drawn = Graph(input_shape, tuple(body), ()).nodes()
    if not any(isinstance(n, Act) and n.name in ops.spelled for n in drawn):
        if parity and state.after_hooked:
            width = draw(st.integers(1, 5))
            body.append(Dense(width))
            state = _State((width, *state.shape[1:]))
        body.append(act(state.inplace_ok, spelled=True))
    before_flatten = body[: next((i for i, n in enumerate(body) if isinstance(n, Flatten)), None)]
    needed = {"any": body, "spatial": before_flatten}.get(layer)
    if needed is not None and not any(isinstance(n, (Dense, Branch)) for n in needed):
        body.insert(0, Dense(draw(st.integers(1, 5)), 3 if image else 1))  # reads the input
    output_shape = draw(st.sampled_from([(), (1,), (2,), (4,), (2, 3)]))
    side = draw(st.sampled_from([0, 0, 3])) if side_input else 0
    seed = draw(st.integers(0, 2**16))
    return Graph(input_shape, tuple(body), output_shape, side, shared_inplace, seed)


@dataclass(frozen=True)
class Problem:
    """A graph, a batch of inputs (and baselines) and a valid target (``target_form``
    names its form)."""

    graph: Graph
    batch: int
    dtype: torch.dtype
    target_form: str
    target: Any
    input_seed: int

    def inputs(self) -> tuple[Tensor, ...]:
        return self.graph.inputs(self.batch, self.dtype, self.input_seed)

    def baselines(self) -> tuple[Tensor, ...]:
        return self.graph.inputs(self.batch, self.dtype, self.input_seed + 1)

    #: What a user passes: a tensor for one input, a tuple for several.
    given = staticmethod(Case.attribute_inputs)


@st.composite
def problems(
    draw: st.DrawFn,
    ops: Ops = EVERY_OP,
    parity: bool = False,
    inplace_on_input: bool = False,
    gates: bool = False,
    side_input: bool = True,
    layer: str = "",
    dtype: torch.dtype | None = None,
) -> Problem:
    """A graph (see :func:`graphs` for the options), a batch of 1 to 4 examples, the
    dtype (float32 or float64 unless given) and a valid target."""
    graph = draw(graphs(ops, parity, inplace_on_input, gates, side_input, layer))
    batch = draw(st.integers(1, 4))
    chosen = dtype or draw(st.sampled_from([torch.float32, torch.float64]))
    form, target = draw(st.sampled_from(target_forms(graph.output_shape, batch)))
    return Problem(graph, batch, chosen, form, target, draw(st.integers(0, 2**16)))


# ------------------------------------------------------------------------ fixed table


def _act_graph(name: str, spelling: str, image: bool = False) -> Graph:
    """The nonlinearity applied twice (once with its input used again), on features or
    on images, with a BatchNorm and a second input."""
    takes_inplace = spelling in ("module", "created") and NONLINEARITIES[name].module_inplace
    act = Act(name, spelling, inplace=takes_inplace)
    out_of_place = Act(name, spelling if spelling in NONLINEARITIES[name].functional else "module")
    shape: Shape = (2, 4, 4) if image else (5,)
    body = (Dense(4, 3 if image else 1), act, Norm(), Dense(3), Skip(out_of_place, -0.7))
    return Graph(shape, body, (3,), side=2, shared_inplace=False, seed=7)


def _pool_graph(pool: MaxPool) -> Graph:
    body = (Dense(3, 3), Act("relu", "module"), pool, Dense(2), Act("tanh", "torch.tanh"))
    return Graph((2, 6, 6), (*body, Flatten()), (2,), seed=3)


def table(ops: Ops = EVERY_OP) -> list[tuple[str, Graph]]:
    """Fixed graphs, by name: each nonlinearity of ``ops.spelled`` in each spelling (on
    features) and as a module on images, each max-pool form of ``ops``, and modules
    reused (in place, on branches)."""
    pools = [MaxPool("functional", 2, 2)]
    if ops.max_pool_forms:
        pools = [
            MaxPool("module", 2, 2),
            MaxPool("functional", 2, 2),
            MaxPool("module", 3, 1),
            MaxPool("functional", 3, 2),
            MaxPool("adaptive"),
        ]
    reused = Graph(
        (4,),
        (
            Dense(4),
            Act("relu", "shared"),
            Dense(4),
            Act("relu", "shared"),
            Branch("cat", (Dense(3), Act("relu", "shared")), (Dense(3), Act("tanh", "shared"))),
            Act("sigmoid", "shared"),
        ),
        (2,),
        shared_inplace=True,
        seed=5,
    )
    return [
        *(
            (f"{name}-{spelling}", _act_graph(name, spelling))
            for name in ops.spelled
            for spelling in spellings(name)
        ),
        *((f"{name}-module-images", _act_graph(name, "module", True)) for name in ops.spelled),
        *((f"max-pool-{p.kind}-{p.kernel}-{p.stride}", _pool_graph(p)) for p in pools),
        ("modules-reused-in-place-and-on-branches", reused),
    ]


# ------------------------------------------------------------------- bad argument values

JUNK = (
    None,
    True,
    0,
    -1,
    3,
    2**70,
    1.5,
    math.nan,
    math.inf,
    "text",
    b"bytes",
    [],
    [1, 2],
    (),
    (1,),
    {},
    {"a": 1},
    object(),
    np.float32(1.0),
    np.int64(1),
    np.zeros((2, 3)),
)
DTYPES = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
    torch.complex64,
)
VALUES = ("normal", "nan", "inf", "-inf", "huge", "zero", "mixed")
LAYOUTS = ("contiguous", "transposed", "strided", "channels_last", "expanded", "sparse")


def _fill(shape: Shape, dtype: torch.dtype, values: str, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=generator, dtype=torch.float64)
    special = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "huge": 1e30, "zero": 0.0}
    if values in special:
        base = torch.full(shape, special[values], dtype=torch.float64)
    elif values == "mixed" and base.numel():
        flat = base.view(-1)
        flat[::3] = math.nan
        flat[1::3] = math.inf
    if dtype.is_complex:
        return base.to(dtype)
    if not dtype.is_floating_point:
        return torch.nan_to_num(base, 0.0, 5.0, -5.0).clamp(-5, 5).to(dtype)
    return base.to(dtype)


def relayout(tensor: Tensor, layout: str) -> Tensor:
    """The same values in another memory layout (or a sparse tensor)."""
    if layout == "transposed" and tensor.dim() >= 2:
        return tensor.transpose(0, -1).contiguous().transpose(0, -1)
    if layout == "strided" and tensor.dim() >= 1:
        doubled = torch.repeat_interleave(tensor, 2, dim=-1)
        return doubled[..., ::2]
    if layout == "channels_last" and tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    if layout == "expanded" and tensor.dim() >= 1 and tensor.shape[0] > 0:
        if bool((tensor == tensor[:1]).all()):
            return tensor[:1].expand_as(tensor)
        return tensor
    if layout == "sparse":
        return tensor.to_sparse()
    return tensor


@dataclass(frozen=True)
class TensorSpec:
    """A printable recipe for a tensor."""

    shape: Shape
    dtype: torch.dtype = torch.float32
    values: str = "normal"
    layout: str = "contiguous"
    device: str = "cpu"
    requires_grad: bool = False
    seed: int = 0

    def make(self) -> Tensor:
        if self.device == "meta":
            return torch.empty(self.shape, dtype=self.dtype, device="meta")
        tensor = relayout(_fill(self.shape, self.dtype, self.values, self.seed), self.layout)
        if self.requires_grad and tensor.is_floating_point() and tensor.layout == torch.strided:
            tensor = tensor.detach().requires_grad_()
        return tensor


@st.composite
def tensor_specs(
    draw: st.DrawFn,
    shapes: st.SearchStrategy[Shape] | None = None,
    dtypes: st.SearchStrategy[torch.dtype] | None = None,
) -> TensorSpec:
    shape = draw(
        shapes if shapes is not None else st.lists(st.integers(0, 4), max_size=5).map(tuple)
    )
    dtype = draw(dtypes if dtypes is not None else st.sampled_from(DTYPES))
    return TensorSpec(
        shape=shape,
        dtype=dtype,
        values=draw(st.sampled_from(VALUES)),
        layout=draw(st.sampled_from(LAYOUTS)),
        device=draw(st.sampled_from(["cpu", "cpu", "cpu", "meta"])),
        requires_grad=draw(st.booleans()),
        seed=draw(st.integers(0, 100)),
    )


def junk() -> st.SearchStrategy[Any]:
    """Values of the wrong kind for almost any argument."""
    return st.sampled_from(JUNK)


def some_tensors(**kwargs: Any) -> st.SearchStrategy[Any]:
    return tensor_specs(**kwargs).map(TensorSpec.make)


def near_shapes(shape: Shape) -> st.SearchStrategy[Shape]:
    """``shape`` with the batch size changed (0 included), or one size changed, or a
    dimension added or dropped."""
    batch = st.integers(0, 3).map(lambda n: (n, *shape[1:]))
    changed = st.tuples(st.integers(0, len(shape) - 1), st.integers(0, 6)).map(
        lambda pair: tuple(pair[1] if i == pair[0] else s for i, s in enumerate(shape))
    )
    return st.one_of(batch, changed, st.just(shape[:-1]), st.just((*shape, 2)))

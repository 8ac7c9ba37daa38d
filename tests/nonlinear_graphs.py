"""Random models of linear operations and elementwise nonlinearities in every spelling,
as printable graphs, and the hypothesis strategies that draw them (for DeepLift).

The linear operations: Linear / Conv2d, addition (skip connections, joined branches),
concatenation, flattening, average pooling and eval-mode BatchNorm. The nonlinearities:
every op of :data:`attrkit.engine.ops.ELEMENTWISE`, each written as a distinct ``nn``
module, as one module reused at several places, as a module created inside ``forward``,
and in each functional, ``torch.*``, ``Tensor.*`` and in-place spelling; max-pooling as
a module or a function, overlapping or not, or adaptive. A nonlinearity's input may be
used again (``fn(z) + scale * z``). With ``parity=True`` a graph holds only what Captum's
DeepLift gets right: distinct modules of Captum's set, each applied once, never straight
after another hooked module, their inputs used nowhere else, after a first layer.

The strategy keeps every graph valid: an in-place op never modifies the model's input,
the output of a nonlinearity or pooling, or a tensor that is used again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import Tensor, nn

from tests.cases import target_forms
from tests.reference import select_reference

Shape = tuple[int, ...]
Apply = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Nonlinearity:
    """An elementwise nonlinearity and its spellings.

    Attributes:
        module: Builds the ``nn`` module (``inplace`` for the modules that take it).
        functional: Out-of-place spellings by name.
        inplace: In-place spellings by name.
        captum: Whether Captum's DeepLift has a rule for its module.
    """

    module: Callable[[bool], nn.Module]
    functional: dict[str, Apply]
    inplace: dict[str, Apply]
    captum: bool = False


def _no_inplace(factory: Callable[[], nn.Module]) -> Callable[[bool], nn.Module]:
    return lambda inplace: factory()


aten = torch.ops.aten
NONLINEARITIES: dict[str, Nonlinearity] = {
    "relu": Nonlinearity(
        lambda inplace: nn.ReLU(inplace),
        {
            "F.relu": F.relu,
            "torch.relu": torch.relu,
            "Tensor.relu": Tensor.relu,
            "aten.relu": aten.relu.default,
        },
        {
            "F.relu_": F.relu_,
            "F.relu(inplace)": lambda x: F.relu(x, inplace=True),
            "torch.relu_": torch.relu_,
            "Tensor.relu_": Tensor.relu_,
            "aten.relu_": aten.relu_.default,
        },
        captum=True,
    ),
    "elu": Nonlinearity(
        lambda inplace: nn.ELU(0.7, inplace),
        {"F.elu": lambda x: F.elu(x, 0.7)},
        {"F.elu(inplace)": lambda x: F.elu(x, 0.7, inplace=True)},
        captum=True,
    ),
    "leaky_relu": Nonlinearity(
        lambda inplace: nn.LeakyReLU(0.1, inplace),
        {"F.leaky_relu": lambda x: F.leaky_relu(x, 0.1)},
        {"F.leaky_relu(inplace)": lambda x: F.leaky_relu(x, 0.1, inplace=True)},
        captum=True,
    ),
    "sigmoid": Nonlinearity(
        _no_inplace(nn.Sigmoid),
        {
            "torch.sigmoid": torch.sigmoid,
            "Tensor.sigmoid": Tensor.sigmoid,
            "torch.special.expit": torch.special.expit,
        },
        {"torch.sigmoid_": torch.sigmoid_, "Tensor.sigmoid_": Tensor.sigmoid_},
        captum=True,
    ),
    "tanh": Nonlinearity(
        _no_inplace(nn.Tanh),
        {"torch.tanh": torch.tanh, "Tensor.tanh": Tensor.tanh, "F.tanh": F.tanh},
        {"torch.tanh_": torch.tanh_, "Tensor.tanh_": Tensor.tanh_},
        captum=True,
    ),
    "softplus": Nonlinearity(
        lambda inplace: nn.Softplus(1.5, 2.0),
        {"F.softplus": lambda x: F.softplus(x, 1.5, 2.0)},
        {},
        captum=True,
    ),
    "gelu": Nonlinearity(
        _no_inplace(nn.GELU),
        {"F.gelu": F.gelu, "F.gelu(tanh)": lambda x: F.gelu(x, approximate="tanh")},
        {},
    ),
    "silu": Nonlinearity(
        lambda inplace: nn.SiLU(inplace),
        {"F.silu": F.silu},
        {"F.silu(inplace)": lambda x: F.silu(x, inplace=True)},
    ),
    "hardswish": Nonlinearity(
        lambda inplace: nn.Hardswish(inplace),
        {"F.hardswish": F.hardswish},
        {"F.hardswish(inplace)": lambda x: F.hardswish(x, inplace=True)},
    ),
    "relu6": Nonlinearity(
        lambda inplace: nn.ReLU6(inplace),
        {"F.relu6": F.relu6},
        {"F.relu6(inplace)": lambda x: F.relu6(x, inplace=True)},
    ),
    "hardtanh": Nonlinearity(
        lambda inplace: nn.Hardtanh(-0.5, 0.8, inplace),
        {"F.hardtanh": lambda x: F.hardtanh(x, -0.5, 0.8)},
        {"F.hardtanh_": lambda x: F.hardtanh_(x, -0.5, 0.8)},
    ),
    "mish": Nonlinearity(
        lambda inplace: nn.Mish(inplace),
        {"F.mish": F.mish},
        {"F.mish(inplace)": lambda x: F.mish(x, inplace=True)},
    ),
    "celu": Nonlinearity(
        lambda inplace: nn.CELU(0.8, inplace),
        {"F.celu": lambda x: F.celu(x, 0.8), "torch.celu": torch.celu},
        {"torch.celu_": torch.celu_},
    ),
    "selu": Nonlinearity(
        lambda inplace: nn.SELU(inplace),
        {"F.selu": F.selu, "torch.selu": torch.selu},
        {"torch.selu_": torch.selu_},
    ),
    "hardsigmoid": Nonlinearity(
        lambda inplace: nn.Hardsigmoid(inplace),
        {"F.hardsigmoid": F.hardsigmoid},
        {"F.hardsigmoid(inplace)": lambda x: F.hardsigmoid(x, inplace=True)},
    ),
    "logsigmoid": Nonlinearity(_no_inplace(nn.LogSigmoid), {"F.logsigmoid": F.logsigmoid}, {}),
    "threshold": Nonlinearity(
        lambda inplace: nn.Threshold(0.1, -0.4, inplace),
        {"F.threshold": lambda x: F.threshold(x, 0.1, -0.4)},
        {"F.threshold_": lambda x: F.threshold_(x, 0.1, -0.4)},
    ),
    "prelu": Nonlinearity(
        _no_inplace(lambda: nn.PReLU(init=0.2)),
        {"F.prelu": lambda x: F.prelu(x, torch.tensor([0.3], dtype=x.dtype))},
        {},
    ),
    "softshrink": Nonlinearity(
        _no_inplace(lambda: nn.Softshrink(0.3)),
        {"F.softshrink": lambda x: F.softshrink(x, 0.3)},
        {},
    ),
    "hardshrink": Nonlinearity(
        _no_inplace(lambda: nn.Hardshrink(0.3)),
        {"F.hardshrink": lambda x: F.hardshrink(x, 0.3), "Tensor.hardshrink": Tensor.hardshrink},
        {},
    ),
    "softsign": Nonlinearity(_no_inplace(nn.Softsign), {"F.softsign": F.softsign}, {}),
    "tanhshrink": Nonlinearity(_no_inplace(nn.Tanhshrink), {"F.tanhshrink": F.tanhshrink}, {}),
}
CAPTUM_SET = sorted(name for name, n in NONLINEARITIES.items() if n.captum)

#: The module spellings: a distinct module, the graph's one shared module of that
#: nonlinearity (reused), a module constructed inside ``forward``.
MODULE_SPELLINGS = ("module", "shared", "created")


def spellings(name: str, inplace_ok: bool = True) -> list[str]:
    """Every spelling of nonlinearity ``name`` (in-place ones where ``inplace_ok``)."""
    nonlinearity = NONLINEARITIES[name]
    found = [*MODULE_SPELLINGS, *nonlinearity.functional]
    return found + (list(nonlinearity.inplace) if inplace_ok else [])


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


@dataclass(frozen=True)
class MaxPool:
    """Max-pooling of images: ``kind`` is ``module`` / ``functional`` (kernel
    ``kernel``, stride ``stride``: overlapping windows when smaller) or ``adaptive``."""

    kind: str
    kernel: int = 2
    stride: int = 2


@dataclass(frozen=True)
class AvgPool:
    """2x2 average pooling of images."""


@dataclass(frozen=True)
class Norm:
    """BatchNorm in eval mode with random statistics."""


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
    """Images to features (a reshape)."""


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
        found = set()
        for node in self.nodes():
            if isinstance(node, Act):
                found |= {f"nonlinearity {node.name}", f"spelling {node.spelling}"}
            elif isinstance(node, MaxPool):
                overlap = node.stride < node.kernel and node.kind != "adaptive"
                found.add(f"max-pool {node.kind}{' overlapping' if overlap else ''}")
            elif isinstance(node, (Branch, Skip)):
                found.add(type(node).__name__.lower())
        return found

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        return (self.input_shape, (self.side,)) if self.side else (self.input_shape,)

    def build(self, dtype: torch.dtype = torch.float64) -> GraphModel:
        return GraphModel(self).to(dtype).eval()

    def inputs(self, batch: int, dtype: torch.dtype, seed: int = 0) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        return tuple(
            torch.randn((batch, *shape), generator=generator, dtype=torch.float64).to(dtype)
            for shape in self.input_shapes
        )


class GraphModel(nn.Module):
    """The ``nn.Module`` of a :class:`Graph`; submodules live in ``self.mods`` under the
    node's position (``"3"``, ``"3_left_1"`` inside a branch, ``"3_fn"`` in a skip)."""

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
                self.mods[key] = nn.Conv2d(
                    shape[0], node.out, node.kernel, padding=node.kernel // 2
                )
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
        assert isinstance(node, Branch)
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
            return x.reshape(x.shape[0], -1)
        if isinstance(node, Skip):
            return self._run(f"{key}_fn", node.fn, x) + node.scale * x
        assert isinstance(node, Branch)
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
        return {**nonlinearity.functional, **nonlinearity.inplace}[node.spelling](x)

    def max_pool(self, key: str, node: MaxPool, x: Tensor) -> Tensor:
        """Max-pooling ``node`` (at ``key``) of ``x`` as the node spells it."""
        if node.kind == "functional":
            return F.max_pool2d(x, node.kernel, node.stride)
        return self.mods[key](x)

    def layer_names(self) -> list[str]:
        """The Linear/Conv layers (each runs once per forward pass), as submodule paths."""
        return [
            f"mods.{key}"
            for key, module in self.mods.items()
            if isinstance(module, (nn.Linear, nn.Conv2d))
        ]

    def cut_layer_names(self) -> list[str]:
        """The layers every path from the first input to the output runs through: the
        Linear/Conv layers of the body, outside branches."""
        return [f"mods.{i}" for i, node in enumerate(self.graph.body) if isinstance(node, Dense)]

    def layer_tensor(self, name: str, inputs: tuple[Tensor, ...], to_input: bool) -> Tensor:
        """The layer's output (or input) on ``inputs``, from a plain forward pass."""
        found: list[Tensor] = []
        layer = self.get_submodule(name)
        if to_input:
            handle = layer.register_forward_pre_hook(lambda m, a: found.append(a[0].clone()))
        else:
            handle = layer.register_forward_hook(lambda m, a, o: found.append(o.clone()))
        try:
            with torch.no_grad():
                self(*inputs)
        finally:
            handle.remove()
        return found[0]


# ------------------------------------------------------------------------- strategies


@dataclass
class _State:
    """What the generator knows about the current tensor."""

    shape: Shape
    inplace_ok: bool = False  # an in-place op may overwrite it
    after_hooked: bool = True  # it leaves a module Captum hooks (or is the input)


@st.composite
def acts(draw: st.DrawFn, parity: bool, inplace_ok: bool, shared_inplace: bool) -> Act:
    """A nonlinearity valid on the current tensor."""
    if parity:
        name = draw(st.sampled_from(CAPTUM_SET))
        takes_inplace = name in ("relu", "elu", "leaky_relu")
        return Act(name, "module", inplace_ok and takes_inplace and draw(st.booleans()))
    name = draw(st.sampled_from(sorted(NONLINEARITIES)))
    choices = spellings(name, inplace_ok)
    if shared_inplace and not inplace_ok:
        choices.remove("shared")
    spelling = draw(st.sampled_from(choices))
    inplace = spelling in ("module", "created") and inplace_ok and draw(st.booleans())
    return Act(name, spelling, inplace)


@st.composite
def graphs(
    draw: st.DrawFn,
    parity: bool = False,
    gates: bool = False,
    side_input: bool = True,
    max_nodes: int = 6,
) -> Graph:
    """A random valid graph. ``parity=True``: only what Captum's DeepLift gets right (see
    the module docstring); ``gates``: branches may be joined by a product;
    ``side_input=False``: never a second input."""
    image = draw(st.booleans())
    if image:
        input_shape: Shape = (
            draw(st.integers(1, 3)),
            draw(st.integers(2, 6)),
            draw(st.integers(2, 6)),
        )
    else:
        input_shape = (draw(st.integers(1, 6)),)
    shared_inplace = not parity and draw(st.booleans())
    state = _State(input_shape)
    body: list[Node] = []
    for step in range(draw(st.integers(1, max_nodes))):
        image = len(state.shape) == 3
        kinds = ["dense", "branch", "norm"]
        if not (parity and state.after_hooked):
            kinds += ["act", "skip"] if not parity else ["act"]
        if image:
            kinds += ["flatten", "avgpool"] if min(state.shape[1:]) >= 2 else ["flatten"]
            if min(state.shape[1:]) >= 2 and not (parity and state.after_hooked):
                kinds.append("maxpool")
        if parity and step == 0:
            # Captum's layer variants crash on a hooked module whose input requires no
            # grad (before any parameter): begin with a layer.
            kinds = ["dense"]
        kind = draw(st.sampled_from(kinds))
        width = draw(st.integers(1, 5))
        if kind == "dense":
            body.append(Dense(width, draw(st.sampled_from([1, 3])) if image else 1))
            state = _State((width, *state.shape[1:]), inplace_ok=True, after_hooked=False)
        elif kind == "act":
            body.append(draw(acts(parity, state.inplace_ok, shared_inplace)))
            state = _State(state.shape, after_hooked=True)
        elif kind == "skip":
            fn = draw(acts(parity, False, shared_inplace))
            body.append(Skip(fn, draw(st.sampled_from([-0.7, 0.5, 1.0]))))
            state = _State(state.shape, inplace_ok=True, after_hooked=False)
        elif kind == "branch":
            joins = ["add", "cat", "mul"] if gates else ["add", "cat"]
            join = draw(st.sampled_from(joins))
            left = (Dense(width), draw(acts(parity, True, shared_inplace)))
            right = (Dense(width), draw(acts(parity, True, shared_inplace)))
            body.append(Branch(join, left, right))
            channels = 2 * width if join == "cat" else width
            state = _State((channels, *state.shape[1:]), inplace_ok=True, after_hooked=False)
        elif kind == "norm":
            body.append(Norm())
            state = _State(state.shape, inplace_ok=True, after_hooked=False)
        elif kind == "avgpool":
            body.append(AvgPool())
            shape = (state.shape[0], state.shape[1] // 2, state.shape[2] // 2)
            state = _State(shape, inplace_ok=True, after_hooked=False)
        elif kind == "maxpool":
            node = _draw_max_pool(draw, state.shape, parity)
            body.append(node)
            state = _State(_pooled(node, state.shape), after_hooked=True)
        else:
            body.append(Flatten())
            state = _State((math.prod(state.shape),), after_hooked=state.after_hooked)
    output_shape = draw(st.sampled_from([(), (1,), (2,), (4,), (2, 3)]))
    side = draw(st.sampled_from([0, 0, 3])) if side_input else 0
    seed = draw(st.integers(0, 2**16))
    return Graph(input_shape, tuple(body), output_shape, side, shared_inplace, seed)


def _pooled(node: MaxPool, shape: Shape) -> Shape:
    """The shape after max-pooling ``shape``."""
    if node.kind == "adaptive":
        return (shape[0], 2, 2)
    return (shape[0], *((size - node.kernel) // node.stride + 1 for size in shape[1:]))


def _draw_max_pool(draw: st.DrawFn, shape: Shape, parity: bool) -> MaxPool:
    if parity:  # Captum's rule: MaxPool2d modules, windows that do not overlap
        return MaxPool("module", 2, 2)
    kind = draw(st.sampled_from(["module", "functional", "adaptive"]))
    kernel = draw(st.integers(2, min(3, *shape[1:])))
    return MaxPool(kind, kernel, draw(st.integers(1, kernel)))


@dataclass(frozen=True)
class Problem:
    """A graph, a batch of inputs and baselines, and a valid target."""

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


@st.composite
def problems(
    draw: st.DrawFn,
    parity: bool = False,
    gates: bool = False,
    dtype: torch.dtype | None = None,
    side_input: bool = True,
) -> Problem:
    """A graph (see :func:`graphs`), a batch of 1 to 4 examples and a valid target."""
    graph = draw(graphs(parity, gates, side_input))
    batch = draw(st.integers(1, 4))
    chosen = dtype or draw(st.sampled_from([torch.float32, torch.float64]))
    form, target = draw(st.sampled_from(target_forms(graph.output_shape, batch)))
    return Problem(graph, batch, chosen, form, target, draw(st.integers(0, 2**16)))


# ---------------------------------------------------------------- the definition


def pool_with_indices(node: MaxPool, x: Tensor) -> tuple[Tensor, Tensor]:
    """Max-pooling ``node`` of ``x``, and for each output the flat position of its
    maximum within its channel."""
    if node.kind == "adaptive":
        return F.adaptive_max_pool2d(x, 2, return_indices=True)
    return F.max_pool2d(x, node.kernel, node.stride, return_indices=True)


class _Rescale(torch.autograd.Function):
    """``fn`` with DeepLift's rescale rule: ``(fn(x) - fn(x_ref)) / (x - x_ref)``, the
    derivative where ``|x - x_ref| < eps``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, reference: Tensor, fn: Apply, eps: float) -> Tensor:
        with torch.enable_grad():
            leaf = x.detach().clone().requires_grad_()
            (derivative,) = torch.autograd.grad(fn(leaf.clone()).sum(), leaf)
        y, y_ref = fn(x.clone()), fn(reference.clone())
        delta = x - reference
        ctx.multiplier = torch.where(delta.abs() < eps, derivative, (y - y_ref) / delta)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        return grad * ctx.multiplier, None, None, None


class _MaxPoolRule(torch.autograd.Function):
    """Max-pooling with DeepLift's rule, written out per window: the window's output
    difference is split into ``max(y, y_ref) - y_ref`` at the input's maximum and
    ``y - max(y, y_ref)`` at the reference's; each position receives the sum of its
    shares (over every window it belongs to) divided by its own ``x - x_ref``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, reference: Tensor, node: MaxPool, eps: float) -> Tensor:
        y, at_x = pool_with_indices(node, x)
        y_ref, at_ref = pool_with_indices(node, reference)
        peak = torch.maximum(y, y_ref)
        ctx.save_for_backward(x - reference, at_x, at_ref, peak - y_ref, y - peak)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        delta, at_x, at_ref, share_x, share_ref = ctx.saved_tensors

        def unpool(values: Tensor, where: Tensor) -> Tensor:
            flat = torch.zeros_like(delta).flatten(2)
            return flat.scatter_add_(2, where.flatten(2), values.flatten(2)).view_as(delta)

        spread = unpool(grad * share_x, at_x) + unpool(grad * share_ref, at_ref)
        plain = unpool(grad, at_x)
        return torch.where(delta.abs() < ctx.eps, plain, spread / delta), None, None, None


class DefinitionModel(GraphModel):
    """The model of a graph with DeepLift's rules written out, independently of attrkit:
    a first pass over the baselines records the input of every nonlinearity and
    max-pool application, in order; in the second pass each application is a custom
    autograd function that knows its reference input."""

    def __init__(self, graph: Graph, eps: float = 1e-10) -> None:
        super().__init__(graph)
        self.eps = eps
        self.references: list[Tensor] = []
        self.recording = True

    def act(self, key: str, node: Act, x: Tensor) -> Tensor:
        if self.recording:
            self.references.append(x.detach().clone())
            return super().act(key, node, x)
        reference = self.references.pop(0)
        return _Rescale.apply(
            x, reference, lambda t: super(DefinitionModel, self).act(key, node, t), self.eps
        )

    def max_pool(self, key: str, node: MaxPool, x: Tensor) -> Tensor:
        if self.recording:
            self.references.append(x.detach().clone())
            return super().max_pool(key, node, x)
        return _MaxPoolRule.apply(x, self.references.pop(0), node, self.eps)

    def multipliers(
        self, inputs: tuple[Tensor, ...], baselines: tuple[Tensor, ...], target: Any
    ) -> tuple[Tensor, ...]:
        """The DeepLift multipliers of ``inputs`` against ``baselines``, by definition."""
        self.recording, self.references = True, []
        with torch.no_grad():
            self(*baselines)
        self.recording = False
        leaves = tuple(x.detach().clone().requires_grad_() for x in inputs)
        output = self(*leaves)
        grads = torch.autograd.grad(
            select_reference(output, target).sum(), leaves, allow_unused=True
        )
        return tuple(
            torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads, strict=True)
        )

"""Random small models as printable graphs, and hypothesis strategies that draw them.

A :class:`Graph` is a plain data structure (frozen dataclasses with short reprs), so a
failing example shrinks to a model one can read; :class:`GraphModel` builds it into an
``nn.Module``. Graphs mix Linear/Conv layers, ReLUs in every spelling (distinct
``nn.ReLU`` modules, one module reused, modules created in ``forward``, every functional
spelling of ``tests/models.py``, in-place forms), skip connections that reuse a ReLU's
input, parallel branches joined by add/cat/mul, other activations, pooling and
normalization. The strategy keeps every graph valid: an in-place ReLU never modifies a
tensor that autograd saved for the backward pass (a ReLU's or tanh's output).
"""

from __future__ import annotations

import dataclasses
import math
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

#: ReLU spellings besides the functional ones: a distinct ``nn.ReLU`` module, the one
#: module the graph reuses, and a module constructed inside ``forward``.
MODULE_SPELLINGS = ("module", "shared", "created")
INPLACE_SPELLINGS = frozenset(s for s in RELU_SPELLINGS if s.endswith(("_", "_inplace")))
#: Each looked up when called, so that a reference that monkeypatches the functions (the
#: LRP reference) reaches them.
ACTIVATIONS = {
    "tanh": lambda x: torch.tanh(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "gelu": lambda x: F.gelu(x),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "relu6": lambda x: F.relu6(x),
    "elu": lambda x: F.elu(x),
}
#: Activations whose backward reads their output: an in-place op on it would break autograd.
SAVES_OUTPUT = frozenset({"tanh", "sigmoid"})


@dataclass(frozen=True)
class Dense:
    """``nn.Linear`` on features or ``nn.Conv2d`` (padding keeps the size) on images."""

    out: int
    kernel: int = 1


@dataclass(frozen=True)
class Relu:
    """A ReLU in one spelling (see ``MODULE_SPELLINGS`` and ``RELU_SPELLINGS``);
    ``inplace`` applies to the module spellings, the functional ones carry their own."""

    spelling: str
    inplace: bool = False

    def is_inplace(self, shared_inplace: bool) -> bool:
        if self.spelling == "shared":
            return shared_inplace
        if self.spelling in MODULE_SPELLINGS:
            return self.inplace
        return self.spelling in INPLACE_SPELLINGS


@dataclass(frozen=True)
class Act:
    """A non-ReLU activation (``ACTIVATIONS``)."""

    name: str


@dataclass(frozen=True)
class Pool:
    """2x2 max or average pooling (images only)."""

    kind: str


@dataclass(frozen=True)
class Norm:
    """BatchNorm (eval mode, random statistics). Not LayerNorm: over a few nearly equal
    features it divides by a tiny deviation, and float32 rounding then differs by more
    than the tolerance between two batchings of the same rows (found by the long run)."""


@dataclass(frozen=True)
class Skip:
    """``fn(z) + scale * z``: the activation's input is used again."""

    fn: Relu | Act
    scale: float


@dataclass(frozen=True)
class Branch:
    """Two parallel paths from the same tensor (each a Dense then an activation),
    joined by ``add``, ``mul`` or ``cat`` (along the channel/feature dimension)."""

    join: str
    left: tuple[Dense, Relu | Act]
    right: tuple[Dense, Relu | Act]


@dataclass(frozen=True)
class Flatten:
    """Images to features."""


Node = Dense | Relu | Act | Pool | Norm | Skip | Branch | Flatten


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
        """Every node, branches' inner nodes included."""
        found: list[Node] = []
        for node in self.body:
            found.append(node)
            if isinstance(node, Branch):
                found.extend((*node.left, *node.right))
            if isinstance(node, Skip):
                found.append(node.fn)
        return found

    @property
    def relus(self) -> list[Relu]:
        return [node for node in self.nodes() if isinstance(node, Relu)]

    def features(self) -> set[str]:
        """What the graph exercises, for hypothesis' statistics."""
        found = {"image input" if len(self.input_shape) == 3 else "feature input"}
        for node in self.nodes():
            if isinstance(node, Relu):
                found.add(f"relu {node.spelling}")
                if node.is_inplace(self.shared_inplace):
                    found.add("in-place relu")
            elif isinstance(node, Act):
                found.add(f"activation {node.name}")
            elif isinstance(node, Pool):
                found.add(f"{node.kind} pooling")
            elif isinstance(node, Branch):
                found.add(f"branches joined by {node.join}")
            elif isinstance(node, Skip):
                found.add(f"skip over {'a relu' if isinstance(node.fn, Relu) else 'an activation'}")
        if sum(r.spelling == "shared" for r in self.relus) > 1:
            found.add("one relu module reused")
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
            if isinstance(node, Relu) and node.spelling.startswith("aten"):
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
    def build(self, dtype: torch.dtype = torch.float32) -> GraphModel:
        return GraphModel(self).to(dtype).eval()

    def inputs(self, batch: int, dtype: torch.dtype, seed: int = 0) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        return tuple(
            torch.randn((batch, *shape), generator=generator, dtype=torch.float64).to(dtype)
            for shape in self.input_shapes
        )


class GraphModel(nn.Module):
    """The ``nn.Module`` of a :class:`Graph`; submodules live in ``self.mods`` under the
    node's position (``"3"``, and ``"3_left_0"`` inside a branch)."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.mods = nn.ModuleDict()
        self.shared_relu = nn.ReLU(inplace=graph.shared_inplace)
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
        if isinstance(node, Relu) and node.spelling == "module":
            self.mods[key] = nn.ReLU(inplace=node.inplace)
        elif isinstance(node, Norm):
            self.mods[key] = nn.BatchNorm2d(shape[0]) if image else nn.BatchNorm1d(shape[0])
        elif isinstance(node, Pool):
            return (shape[0], shape[1] // 2, shape[2] // 2)
        elif isinstance(node, Flatten):
            return (math.prod(shape),)
        elif isinstance(node, Skip):
            self._make(f"{key}_fn", node.fn, shape)
        elif isinstance(node, Branch):
            out = shape
            for side, path in (("left", node.left), ("right", node.right)):
                out = shape
                for index, inner in enumerate(path):
                    out = self._make(f"{key}_{side}_{index}", inner, out)
            if node.join == "cat":
                return (2 * out[0], *out[1:])
            return out
        return shape

    def _initialize(self, seed: int) -> None:
        """Weights from ``seed`` alone (the global random generator is left alone)."""
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                fan_in = math.prod(parameter.shape[1:]) if parameter.dim() > 1 else 4
                values = torch.rand(parameter.shape, generator=generator, dtype=torch.float64)
                parameter.copy_((2 * values - 1) / math.sqrt(fan_in))
                if name.endswith("weight") and parameter.dim() == 1:  # norms: scale near 1
                    parameter.add_(1.0)
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    stats = torch.rand((2, module.num_features), generator=generator)
                    module.running_mean.copy_(stats[0] - 0.5)
                    module.running_var.copy_(stats[1] + 0.5)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, *rest: Tensor) -> Tensor:
        side = rest[0] if self.graph.side else None
        for position, node in enumerate(self.graph.body):
            x = self._run(str(position), node, x)
        x = x.reshape(x.shape[0], -1)
        if side is not None:
            x = x + self.side(side)
        out = self.head(x)
        return out.reshape(out.shape[0], *self.graph.output_shape)

    def _run(self, key: str, node: Node, x: Tensor) -> Tensor:
        if isinstance(node, (Dense, Norm)):
            return self.mods[key](x)
        if isinstance(node, Relu):
            if node.spelling == "module":
                return self.mods[key](x)
            if node.spelling == "shared":
                return self.shared_relu(x)
            if node.spelling == "created":
                return nn.ReLU(inplace=node.inplace)(x)
            return RELU_SPELLINGS[node.spelling](x)
        if isinstance(node, Act):
            return ACTIVATIONS[node.name](x)
        if isinstance(node, Pool):
            return F.max_pool2d(x, 2) if node.kind == "max" else F.avg_pool2d(x, 2)
        if isinstance(node, Flatten):
            return x.flatten(1)
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

    # ------------------------------------------------------------------ layers
    def layer_names(self, spatial_only: bool = False) -> list[str]:
        """The Linear/Conv layers (each runs once per forward pass), as submodule paths."""
        kinds = (nn.Conv2d,) if spatial_only else (nn.Conv2d, nn.Linear)
        return [f"mods.{key}" for key, m in self.mods.items() if isinstance(m, kinds)]

    def layer_shape(self, name: str, inputs: tuple[Tensor, ...], to_input: bool) -> Shape:
        """Per-example shape of the layer's output (or input)."""
        return tuple(self._layer_tensor(name, inputs, to_input).shape[1:])

    def layer_input_depends_on_parameters(self, name: str, inputs: tuple[Tensor, ...]) -> bool:
        """Whether the layer's input requires grad when the model's inputs do not."""
        return self._layer_tensor(name, inputs, True, grad=True).requires_grad

    def _layer_tensor(
        self, name: str, inputs: tuple[Tensor, ...], to_input: bool, grad: bool = False
    ) -> Tensor:
        found: list[Tensor] = []
        layer = self.get_submodule(name)
        if to_input:
            handle = layer.register_forward_pre_hook(lambda m, a: found.append(a[0]))
        else:
            handle = layer.register_forward_hook(lambda m, a, o: found.append(o))
        try:
            with torch.set_grad_enabled(grad):
                self(*(x.detach() for x in inputs))
        finally:
            handle.remove()
        return found[0]


# ---------------------------------------------------------------------- strategies


@dataclass
class _State:
    """What the generator knows about the current tensor."""

    shape: Shape
    saved: bool = False  # autograd saved it for backward: no in-place op on it
    is_input: bool = False  # it is the model's input tensor, and must stay untouched
    relu_output: bool = False  # it is a ReLU's output (or a view of one)


@st.composite
def relus(
    draw: st.DrawFn, state: _State, parity: bool, shared_inplace: bool, inplace_ok: bool = True
) -> Relu:
    """A ReLU valid on the current tensor: in place only where that is safe (and, for
    Captum's sake, never on the input when ``state.is_input`` is set)."""
    inplace_ok = inplace_ok and not state.saved and not state.is_input
    if parity:
        return Relu("module", inplace=inplace_ok and draw(st.booleans()))
    spellings = [*MODULE_SPELLINGS, *RELU_SPELLINGS]
    if not inplace_ok:
        spellings = [s for s in spellings if s not in INPLACE_SPELLINGS]
        if shared_inplace:
            spellings.remove("shared")
    spelling = draw(st.sampled_from(spellings))
    inplace = spelling in ("module", "created") and inplace_ok and draw(st.booleans())
    return Relu(spelling, inplace)


@st.composite
def _activation(draw: st.DrawFn, state: _State, parity: bool, shared_inplace: bool) -> Relu | Act:
    if draw(st.booleans()):
        return draw(relus(state, parity, shared_inplace))
    return Act(draw(st.sampled_from(sorted(ACTIVATIONS))))


def _after(node: Relu | Act, state: _State) -> _State:
    saved = isinstance(node, Relu) or node.name in SAVES_OUTPUT
    return _State(state.shape, saved=saved, relu_output=isinstance(node, Relu))


@st.composite
def graphs(
    draw: st.DrawFn,
    parity: bool = False,
    inplace_on_input: bool = True,
    side_input: bool = True,
    layer: str = "",
    max_nodes: int = 6,
) -> Graph:
    """A random valid graph. ``parity=True`` draws only distinct, single-use ``nn.ReLU``
    modules (where Captum follows the definition); ``inplace_on_input=False`` never
    applies an in-place ReLU to the input tensor itself (where Captum crashes);
    ``side_input=False`` never adds the second input; ``layer="any"`` makes sure the
    graph has a Linear or Conv layer, ``layer="spatial"`` a Conv layer."""
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
    state = _State(input_shape, is_input=not inplace_on_input or parity)
    body: list[Node] = []
    for _ in range(draw(st.integers(1, max_nodes))):
        image = len(state.shape) == 3
        kinds = ["dense", "relu", "act", "skip", "branch", "norm"]
        if parity and state.relu_output:
            # Captum's Deconvolution deviates on ReLU modules back to back
            # (test_fuzz_models.py::test_captum_deconvolution_of_relu_modules_back_to_back).
            kinds.remove("relu")
        if image:
            kinds.append("flatten")
            if min(state.shape[1:]) >= 2:
                kinds.append("pool")
        kind = draw(st.sampled_from(kinds))
        width = draw(st.integers(1, 5))
        if kind == "dense":
            kernel = draw(st.sampled_from([1, 3])) if image else 1
            body.append(Dense(width, kernel))
            state = _State((width, *state.shape[1:]), is_input=False)
        elif kind == "relu":
            node = draw(relus(state, parity, shared_inplace))
            body.append(node)
            state = _after(node, state)
        elif kind == "act":
            node = Act(draw(st.sampled_from(sorted(ACTIVATIONS))))
            body.append(node)
            state = _after(node, state)
        elif kind == "skip":
            fn: Relu | Act
            if parity or draw(st.booleans()):
                fn = Act(draw(st.sampled_from(sorted(ACTIVATIONS))))
            else:
                fn = draw(relus(state, parity, shared_inplace, inplace_ok=False))
            scale = draw(st.sampled_from([-0.7, 0.5, 1.0]))
            body.append(Skip(fn, scale))
            state = _State(state.shape, is_input=False)
        elif kind == "branch":
            join = draw(st.sampled_from(["add", "mul", "cat"]))
            fresh = _State((width, *state.shape[1:]), is_input=False)
            left = (Dense(width), draw(_activation(fresh, parity, shared_inplace)))
            right = (Dense(width), draw(_activation(fresh, parity, shared_inplace)))
            body.append(Branch(join, left, right))
            channels = 2 * width if join == "cat" else width
            state = _State((channels, *state.shape[1:]), is_input=False)
        elif kind == "norm":
            body.append(Norm())
            state = _State(state.shape, is_input=False)
        elif kind == "pool":
            body.append(Pool(draw(st.sampled_from(["max", "avg"]))))
            state = _State((state.shape[0], state.shape[1] // 2, state.shape[2] // 2), False, False)
        else:
            body.append(Flatten())
            state = dataclasses.replace(state, shape=(math.prod(state.shape),))
    if not any(isinstance(n, Relu) for n in Graph(input_shape, tuple(body), ()).nodes()):
        body.append(draw(relus(state, parity, shared_inplace)))
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
    """A graph, a batch of inputs and a valid target (``target_form`` names its form)."""

    graph: Graph
    batch: int
    dtype: torch.dtype
    target_form: str
    target: Any
    input_seed: int

    def inputs(self) -> tuple[Tensor, ...]:
        return self.graph.inputs(self.batch, self.dtype, self.input_seed)

    #: What a user passes: a tensor for one input, a tuple for several.
    given = staticmethod(Case.attribute_inputs)


@st.composite
def problems(
    draw: st.DrawFn,
    parity: bool = False,
    inplace_on_input: bool = True,
    side_input: bool = True,
    layer: str = "",
) -> Problem:
    """A graph (see :func:`graphs` for the options), a batch and a valid target."""
    graph = draw(graphs(parity, inplace_on_input, side_input, layer))
    batch = draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    form, target = draw(st.sampled_from(target_forms(graph.output_shape, batch)))
    return Problem(graph, batch, dtype, form, target, draw(st.integers(0, 2**16)))


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

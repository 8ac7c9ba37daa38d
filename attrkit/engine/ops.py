"""The ops the rule engine can give a rule, and every spelling of each.

An :class:`Op` is one operation (``relu``) with every callable that applies it, as a
torch-function mode sees the call: ``F.relu``, ``torch.relu_``, ``Tensor.relu``,
``torch.ops.aten.relu.default``, ... (``nn.ReLU`` modules call ``F.relu``). For each spelling
it knows how to read the call: the input is the first argument (or ``input=``), and the call
runs in place always, never, or as its ``inplace`` argument says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ADAPTIVE_AVG_POOL",
    "ADAPTIVE_MAX_POOL",
    "ADD",
    "AVERAGES",
    "AVG_POOL",
    "BATCH_NORM",
    "CONVOLUTION",
    "DIV",
    "DROPOUT",
    "ELEMENTWISE",
    "LAYERS",
    "LINEAR",
    "LINEAR_LAYERS",
    "MAX_POOL",
    "MEAN",
    "MUL",
    "OPS",
    "RELU",
    "SOFTMAX",
    "TRANSPOSED_CONVOLUTION",
    "BinaryOp",
    "InPlace",
    "LayerOp",
    "Op",
    "OpCall",
    "register_op",
]

#: How a spelling runs: ``True`` always in place, ``False`` never, an ``int`` as its
#: ``inplace`` argument says (that argument's position; or passed by keyword).
InPlace = bool | int


class OpCall(NamedTuple):
    """One application of a ruled op, as the override intercepted it."""

    op: Op
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    input: Tensor
    inplace: bool

    def plain(self) -> Any:
        """The op itself, with its ordinary backward."""
        return self.func(*self.args, **self.kwargs)


@dataclass(frozen=True, eq=False)
class Op:
    """An operation the engine can rule.

    Attributes:
        name: Its name (``"relu"``).
        title: Its name in prose (``"ReLU"``).
        spellings: Every callable that applies it -> how it runs in place (:data:`InPlace`).
        native_nodes: The names of the autograd nodes its plain backward makes
            (``ReluBackward0``): a node of these on the gradient path that no rule made is
            an application the override did not reach.
    """

    name: str
    title: str
    spellings: Mapping[Callable[..., Any], InPlace]
    native_nodes: frozenset[str] = field(default_factory=frozenset)

    def read(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> OpCall:
        """The call of spelling ``func`` with ``args`` and ``kwargs``, read."""
        x = args[0] if args else kwargs["input"]
        spec = self.spellings[func]
        if spec is True or spec is False:
            inplace = spec
        elif len(args) > spec:
            inplace = bool(args[spec])
        else:
            inplace = bool(kwargs and kwargs.get("inplace"))
        return OpCall(self, func, args, kwargs or {}, x, inplace)

    def __repr__(self) -> str:
        return f"Op({self.name!r})"


_aten = torch.ops.aten
_nn: Any = torch._C._nn


def _aten_spellings(name: str) -> dict[Callable[..., Any], InPlace]:
    """``torch.ops.aten.<name>`` and ``<name>_`` (where it exists), packet and default."""
    spellings: dict[Callable[..., Any], InPlace] = {}
    for op_name, inplace in ((name, False), (name + "_", True)):
        if hasattr(_aten, op_name):
            packet = getattr(_aten, op_name)
            spellings[packet] = inplace
            spellings[packet.default] = inplace
    return spellings


def _elementwise(
    name: str,
    title: str,
    spellings: dict[Callable[..., Any], InPlace],
    *nodes: str,
    aten: str | None = None,
) -> Op:
    return Op(name, title, {**spellings, **_aten_spellings(aten or name)}, frozenset(nodes))


# ------------------------------------------------------------------ elementwise nonlinearities
RELU = _elementwise(
    "relu",
    "ReLU",
    {
        F.relu: 1,
        F.relu_: True,
        torch.relu: False,
        torch.relu_: True,
        Tensor.relu: False,
        Tensor.relu_: True,
    },
    "ReluBackward0",
)
ELU = _elementwise(
    "elu", "ELU", {F.elu: 2, _nn.elu: False, _nn.elu_: True}, "EluBackward0", "EluBackward1"
)
LEAKY_RELU = _elementwise(
    "leaky_relu",
    "leaky ReLU",
    {F.leaky_relu: 2, _nn.leaky_relu: False, _nn.leaky_relu_: True},
    "LeakyReluBackward0",
    "LeakyReluBackward1",
)
SIGMOID = _elementwise(
    "sigmoid",
    "sigmoid",
    {
        torch.sigmoid: False,
        torch.sigmoid_: True,
        Tensor.sigmoid: False,
        Tensor.sigmoid_: True,
        torch.special.expit: False,
    },
    "SigmoidBackward0",
)
TANH = _elementwise(
    "tanh",
    "tanh",
    {torch.tanh: False, torch.tanh_: True, Tensor.tanh: False, Tensor.tanh_: True},
    "TanhBackward0",
)
SOFTPLUS = _elementwise("softplus", "softplus", {F.softplus: False}, "SoftplusBackward0")
GELU = _elementwise("gelu", "GELU", {F.gelu: False}, "GeluBackward0")
SILU = _elementwise("silu", "SiLU", {F.silu: 1, _nn.silu: False, _nn.silu_: True}, "SiluBackward0")
HARDSWISH = _elementwise(
    "hardswish",
    "hardswish",
    {F.hardswish: 1, _nn.hardswish: False, _nn.hardswish_: True},
    "HardswishBackward0",
)
#: ``nn.ReLU6`` is a ``Hardtanh(0, 6)``: it reaches the override as ``F.hardtanh``.
HARDTANH = _elementwise(
    "hardtanh",
    "hardtanh",
    {F.hardtanh: 3, _nn.hardtanh: False, _nn.hardtanh_: True},
    "HardtanhBackward0",
)
RELU6 = _elementwise(
    "relu6", "ReLU6", {F.relu6: 1, _nn.relu6: False, _nn.relu6_: True}, "HardtanhBackward0"
)
MISH = _elementwise("mish", "mish", {F.mish: 1, _nn.mish: False, _nn.mish_: True}, "MishBackward0")
CELU = _elementwise(
    "celu",
    "CELU",
    {F.celu: 2, torch.celu: False, torch.celu_: True},
    "CeluBackward0",
    "CeluBackward1",
)
SELU = _elementwise(
    "selu",
    "SELU",
    {F.selu: 1, torch.selu: False, torch.selu_: True},
    "EluBackward0",
    "EluBackward1",
)
HARDSIGMOID = _elementwise(
    "hardsigmoid",
    "hardsigmoid",
    {F.hardsigmoid: 1, _nn.hardsigmoid: False, _nn.hardsigmoid_: True},
    "HardsigmoidBackward0",
)
LOGSIGMOID = _elementwise(
    "logsigmoid", "log-sigmoid", {F.logsigmoid: False}, "LogSigmoidBackward0", aten="log_sigmoid"
)
THRESHOLD = _elementwise(
    "threshold",
    "threshold",
    {F.threshold: 3, torch.threshold: False, torch.threshold_: True},
    "ThresholdBackward0",
    "ThresholdBackward1",
)
PRELU = _elementwise("prelu", "PReLU", {F.prelu: False}, "PreluKernelBackward0")
SOFTSHRINK = _elementwise("softshrink", "softshrink", {F.softshrink: False}, "SoftshrinkBackward0")
HARDSHRINK = _elementwise(
    "hardshrink",
    "hardshrink",
    {F.hardshrink: False, Tensor.hardshrink: False},
    "HardshrinkBackward0",
)
#: Composites of other ops: no node of their own, so their native nodes are not listed.
SOFTSIGN = _elementwise("softsign", "softsign", {F.softsign: False})
TANHSHRINK = _elementwise("tanhshrink", "tanhshrink", {F.tanhshrink: False})

#: Every elementwise nonlinearity above (the ops DeepLift's rescale rule applies to).
ELEMENTWISE: tuple[Op, ...] = (
    RELU,
    ELU,
    LEAKY_RELU,
    SIGMOID,
    TANH,
    SOFTPLUS,
    GELU,
    SILU,
    HARDSWISH,
    HARDTANH,
    RELU6,
    MISH,
    CELU,
    SELU,
    HARDSIGMOID,
    LOGSIGMOID,
    THRESHOLD,
    PRELU,
    SOFTSHRINK,
    HARDSHRINK,
    SOFTSIGN,
    TANHSHRINK,
)

# ------------------------------------------------------------------------------- pooling
MAX_POOL = Op(
    "max_pool",
    "max-pool",
    {
        F.max_pool1d: False,
        F.max_pool2d: False,
        F.max_pool3d: False,
        F.max_pool1d_with_indices: False,
        F.max_pool2d_with_indices: False,
        F.max_pool3d_with_indices: False,
        torch.max_pool1d: False,
        torch.max_pool2d: False,
        torch.max_pool3d: False,
        torch.max_pool1d_with_indices: False,
        _nn.max_pool2d_with_indices: False,
        _nn.max_pool3d_with_indices: False,
        **_aten_spellings("max_pool2d_with_indices"),
        **_aten_spellings("max_pool3d_with_indices"),
    },
    frozenset({"MaxPool2DWithIndicesBackward0", "MaxPool3DWithIndicesBackward0"}),
)
ADAPTIVE_MAX_POOL = Op(
    "adaptive_max_pool",
    "adaptive max-pool",
    {
        F.adaptive_max_pool1d: False,
        F.adaptive_max_pool2d: False,
        F.adaptive_max_pool3d: False,
        F.adaptive_max_pool1d_with_indices: False,
        F.adaptive_max_pool2d_with_indices: False,
        F.adaptive_max_pool3d_with_indices: False,
    },
    frozenset({"AdaptiveMaxPool2DBackward0", "AdaptiveMaxPool3DBackward0"}),
)

# ------------------------------------------------------------------------------- softmax
SOFTMAX = Op(
    "softmax",
    "softmax",
    {F.softmax: False, torch.softmax: False, Tensor.softmax: False, **_aten_spellings("_softmax")},
    frozenset({"SoftmaxBackward0"}),
)

#: Every op by name.
OPS: dict[str, Op] = {}


def register_op(op: Op) -> Op:
    """Add ``op`` to :data:`OPS` and return it; a name or a spelling that another op holds
    raises ``ValueError``. A user's own elementwise activation (a function with
    ``__torch_function__`` support, such as a ``torch.library`` op or a function that
    calls ``torch.overrides.handle_torch_function``) becomes rulable this way."""
    if op.name in OPS:
        raise ValueError(f"an op named {op.name!r} is already registered")
    for other in OPS.values():
        shared = set(op.spellings) & set(other.spellings)
        if shared:
            raise ValueError(f"op {op.name!r} shares spellings with {other.name!r}: {shared}")
    OPS[op.name] = op
    return op


for _op in (*ELEMENTWISE, MAX_POOL, ADAPTIVE_MAX_POOL, SOFTMAX):
    register_op(_op)


# ------------------------------------------------- layers with weights, pooling, batch-norm
# The ops layer-wise relevance propagation gives a relevance rule. Their rules recompute the
# op with a changed input or changed parameters (the gamma rule's ``w + gamma * w+``), so
# each spelling also records its positional argument names (:class:`LayerOp`).


@dataclass(frozen=True, eq=False)
class LayerOp(Op):
    """An op whose arguments a rule can replace by name (``input``, ``weight``, ``bias``).

    Attributes:
        arguments: For each spelling, its positional argument names in order.
        channel_dim: The dimension of ``weight`` that indexes the output channels (0 for
            linear layers and convolutions; ``None`` where that is not one dimension).
    """

    arguments: Mapping[Callable[..., Any], tuple[str, ...]] = field(default_factory=dict)
    channel_dim: int | None = None

    def argument(self, call: OpCall, name: str) -> Any:
        """The argument ``name`` of ``call`` (``None`` where it was left out)."""
        names = self.arguments[call.func]
        position = names.index(name)
        if position < len(call.args):
            return call.args[position]
        return call.kwargs.get(name)

    def rebuild(self, call: OpCall, **values: Any) -> Any:
        """Run ``call`` again with the arguments named in ``values`` replaced."""
        names = self.arguments[call.func]
        args, kwargs = list(call.args), dict(call.kwargs)
        for name, value in values.items():
            position = names.index(name)
            if position < len(args):
                args[position] = value
            else:
                kwargs[name] = value
        return call.func(*args, **kwargs)


def _layer_op(
    name: str,
    title: str,
    arguments: dict[Callable[..., Any], tuple[str, ...]],
    aten: dict[str, tuple[str, ...]],
    nodes: tuple[str, ...],
    channel_dim: int | None = None,
) -> LayerOp:
    """A :class:`LayerOp` from its Python spellings and its ``torch.ops.aten`` names (each
    packet and its overloads), none of which runs in place."""
    spellings = dict(arguments)
    for aten_name, names in aten.items():
        packet = getattr(_aten, aten_name)
        spellings[packet] = names
        for overload in packet.overloads():
            if overload != "out":
                spellings[getattr(packet, overload)] = names
    return LayerOp(
        name,
        title,
        dict.fromkeys(spellings, False),
        frozenset(nodes),
        arguments=spellings,
        channel_dim=channel_dim,
    )


_LINEAR_ARGS = ("input", "weight", "bias")
_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_T_ARGS = (
    "input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"
)  # fmt: skip
_AVG_1D_ARGS = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
_AVG_ARGS = (*_AVG_1D_ARGS, "divisor_override")
_ADAPTIVE_ARGS = ("input", "output_size")
_F_BATCH_NORM_ARGS = (
    "input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"
)  # fmt: skip
_BATCH_NORM_ARGS = (
    "input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps",
    "cudnn_enabled",
)  # fmt: skip

#: ``nn.Linear`` modules call ``F.linear`` (which is ``torch._C._nn.linear``).
LINEAR = _layer_op(
    "linear",
    "linear layer",
    {F.linear: _LINEAR_ARGS},
    {"linear": _LINEAR_ARGS},
    ("AddmmBackward0", "MmBackward0", "LinearBackward0"),
    channel_dim=0,
)
#: ``nn.Conv1d`` / ``Conv2d`` / ``Conv3d`` call ``F.conv1d`` ... (``torch.conv1d`` ...).
CONVOLUTION = _layer_op(
    "convolution",
    "convolution",
    {F.conv1d: _CONV_ARGS, F.conv2d: _CONV_ARGS, F.conv3d: _CONV_ARGS},
    {"conv1d": _CONV_ARGS, "conv2d": _CONV_ARGS, "conv3d": _CONV_ARGS},
    ("ConvolutionBackward0",),
    channel_dim=0,
)
TRANSPOSED_CONVOLUTION = _layer_op(
    "transposed_convolution",
    "transposed convolution",
    {
        F.conv_transpose1d: _CONV_T_ARGS,
        F.conv_transpose2d: _CONV_T_ARGS,
        F.conv_transpose3d: _CONV_T_ARGS,
    },
    {
        "conv_transpose1d": _CONV_T_ARGS,
        "conv_transpose2d": _CONV_T_ARGS,
        "conv_transpose3d": _CONV_T_ARGS,
    },
    ("ConvolutionBackward0",),
)
#: ``nn.AvgPool1d`` calls ``torch.avg_pool1d``; ``AvgPool2d``/``3d`` ``torch._C._nn``'s.
AVG_POOL = _layer_op(
    "avg_pool",
    "average pooling",
    {F.avg_pool1d: _AVG_1D_ARGS, F.avg_pool2d: _AVG_ARGS, F.avg_pool3d: _AVG_ARGS},
    {"avg_pool1d": _AVG_1D_ARGS, "avg_pool2d": _AVG_ARGS, "avg_pool3d": _AVG_ARGS},
    ("AvgPool2DBackward0", "AvgPool3DBackward0"),
)
#: ``nn.AdaptiveAvgPool2d`` calls the Python ``F.adaptive_avg_pool2d`` (which then calls
#: ``torch._C._nn.adaptive_avg_pool2d``, unseen inside the override).
ADAPTIVE_AVG_POOL = _layer_op(
    "adaptive_avg_pool",
    "adaptive average pooling",
    {
        F.adaptive_avg_pool1d: _ADAPTIVE_ARGS,
        F.adaptive_avg_pool2d: _ADAPTIVE_ARGS,
        F.adaptive_avg_pool3d: _ADAPTIVE_ARGS,
        _nn.adaptive_avg_pool2d: _ADAPTIVE_ARGS,
        _nn.adaptive_avg_pool3d: _ADAPTIVE_ARGS,
    },
    {
        "adaptive_avg_pool1d": _ADAPTIVE_ARGS,
        "adaptive_avg_pool2d": _ADAPTIVE_ARGS,
        "adaptive_avg_pool3d": _ADAPTIVE_ARGS,
        "_adaptive_avg_pool2d": _ADAPTIVE_ARGS,
        "_adaptive_avg_pool3d": _ADAPTIVE_ARGS,
    },
    ("AdaptiveAvgPool2DBackward0", "AdaptiveAvgPool3DBackward0"),
)
#: A mean over dimensions (``x.mean((2, 3))``: global average pooling written out).
_MEAN_ARGS = ("input", "dim", "keepdim")
MEAN = _layer_op(
    "mean",
    "mean",
    {torch.mean: _MEAN_ARGS, Tensor.mean: _MEAN_ARGS},
    {"mean": _MEAN_ARGS},
    ("MeanBackward0", "MeanBackward1"),
)
#: ``nn.BatchNorm1d``/``2d``/``3d`` call the Python ``F.batch_norm``; ``torch.batch_norm``
#: takes its arguments in another order.
BATCH_NORM = _layer_op(
    "batch_norm",
    "batch normalization",
    {F.batch_norm: _F_BATCH_NORM_ARGS, torch.batch_norm: _BATCH_NORM_ARGS},
    {"batch_norm": _BATCH_NORM_ARGS},
    ("NativeBatchNormBackward0", "CudnnBatchNormBackward0", "MiopenBatchNormBackward0"),
)


@dataclass(frozen=True, eq=False)
class BinaryOp(Op):
    """An op of two operands (``a + b``, ``a * b``): the call's ``input`` is the first
    operand that requires grad (``scale * x`` is ruled as ``x * scale`` is)."""

    def read(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> OpCall:
        call = super().read(func, args, kwargs)
        other = args[1] if len(args) > 1 else (kwargs or {}).get("other")
        if not call.input.requires_grad and isinstance(other, Tensor) and other.requires_grad:
            return call._replace(input=other)
        return call


#: The sum of two tensors (``a + b``, ``torch.add``, ``a += b``): a rule applies where
#: both carry relevance (a residual connection, Captum's ``Addition_Module``).
ADD = BinaryOp(
    "add",
    "sum of two tensors",
    {
        torch.add: False,
        Tensor.add: False,
        Tensor.add_: True,
        _aten.add.Tensor: False,
        _aten.add_.Tensor: True,
    },
    frozenset({"AddBackward0"}),
)
#: A product (``a * b``, ``torch.mul``, ``a *= b``) and a quotient (``a / b``, ...).
MUL = BinaryOp(
    "mul",
    "product",
    {
        torch.mul: False,
        torch.multiply: False,
        Tensor.mul: False,
        Tensor.multiply: False,
        Tensor.mul_: True,
        _aten.mul.Tensor: False,
        _aten.mul_.Tensor: True,
    },
    frozenset({"MulBackward0"}),
)
DIV = BinaryOp(
    "div",
    "quotient",
    {
        torch.div: False,
        torch.divide: False,
        torch.true_divide: False,
        Tensor.div: False,
        Tensor.divide: False,
        Tensor.true_divide: False,
        Tensor.div_: True,
        _aten.div.Tensor: False,
        _aten.div_.Tensor: True,
    },
    frozenset({"DivBackward0"}),
)

#: Dropout (an identity in eval mode, a random mask in training mode), in every form.
DROPOUT = Op(
    "dropout",
    "dropout",
    {
        **dict.fromkeys(
            (
                F.dropout,
                F.dropout1d,
                F.dropout2d,
                F.dropout3d,
                F.alpha_dropout,
                F.feature_alpha_dropout,
            ),
            3,
        ),
        **dict.fromkeys(
            (
                torch.dropout,
                torch.feature_dropout,
                torch.alpha_dropout,
                torch.feature_alpha_dropout,
            ),
            False,
        ),
        **dict.fromkeys(
            (
                torch.dropout_,
                torch.feature_dropout_,
                torch.alpha_dropout_,
                torch.feature_alpha_dropout_,
            ),
            True,
        ),
    },
    frozenset({"NativeDropoutBackward0"}),
)

#: The linear layers: what "the first layer" of an LRP composite means.
LINEAR_LAYERS: tuple[LayerOp, ...] = (LINEAR, CONVOLUTION, TRANSPOSED_CONVOLUTION)
#: Every op with an LRP relevance rule of its own (max-pool aside, whose rule depends on
#: the convention).
LAYERS: tuple[LayerOp, ...] = (*LINEAR_LAYERS, AVG_POOL, ADAPTIVE_AVG_POOL, MEAN, BATCH_NORM)
#: The averages: pooling in every form.
AVERAGES: tuple[LayerOp, ...] = (AVG_POOL, ADAPTIVE_AVG_POOL, MEAN)

for _op in (*LAYERS, ADD, MUL, DIV, DROPOUT):
    register_op(_op)

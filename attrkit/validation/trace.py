"""Watch one forward pass: every ReLU and other activation it applies, which module applies
it and from which line, and how the tensors it reads are used by the rest of the pass.

:class:`ForwardTrace` is a :class:`~torch.overrides.TorchFunctionMode` (it sees every torch
operation of the calling thread) combined with global module forward hooks that keep the
stack of running modules. The hooks exist only while the ``with`` block runs, are removed
in ``finally``, and ignore every thread but the one that entered the block.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as module_hooks
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves
from torch.utils.hooks import RemovableHandle

from attrkit.engine.ops import RELU
from attrkit.engine.reach import UnsupportedModelError
from attrkit.engine.routes import GRADIENT, lookup_route
from attrkit.validation.lookalikes import LookalikeWatch

__all__ = ["ACTIVATION_MODULES", "ActivationEvent", "ForwardTrace", "ReluEvent", "spelling"]

#: Activation modules that are not ReLU: no ReLU-override method changes their gradient.
ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU6,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softsign,
    nn.Sigmoid,
    nn.LogSigmoid,
    nn.Tanh,
    nn.Threshold,
)

#: Their functional spellings, as a torch-function mode sees them.
_ACTIVATION_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset(
    {
        F.relu6,
        F.hardtanh,
        F.hardtanh_,
        F.leaky_relu,
        F.leaky_relu_,
        F.prelu,
        F.rrelu,
        F.rrelu_,
        F.elu,
        F.elu_,
        F.selu,
        F.celu,
        F.gelu,
        F.silu,
        F.mish,
        F.hardswish,
        F.hardsigmoid,
        F.softplus,
        F.softsign,
        F.logsigmoid,
        F.threshold,
        torch.sigmoid,
        torch.sigmoid_,
        torch.tanh,
        torch.tanh_,
        Tensor.sigmoid,
        Tensor.sigmoid_,
        Tensor.tanh,
        Tensor.tanh_,
    }
)

_SKIPPED_DIRECTORIES = (
    os.path.dirname(torch.__file__) + os.sep,
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,  # attrkit's
)
_THIS_FILE = os.path.abspath(__file__)


def spelling(func: Callable[..., Any]) -> str:
    """How the user wrote ``func``: ``F.relu``, ``torch.relu_``, ``Tensor.relu``,
    ``aten.relu.default``.

    Example:
        >>> import torch
        >>> spelling(torch.nn.functional.relu), spelling(torch.Tensor.relu_)
        ('F.relu', 'Tensor.relu_')
    """
    if isinstance(func, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
        return str(func)
    name = getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch.nn.functional") or module == "torch._C._nn":
        return f"F.{name.lstrip('_')}"
    if module == "torch":
        return f"torch.{name}"
    if getattr(func, "__objclass__", None) in (Tensor, torch._C.TensorBase):
        return f"Tensor.{name}"
    qualname = getattr(func, "__qualname__", name)
    return f"torch.{name}" if qualname.startswith("_VariableFunctions") else name


@dataclass
class _TensorRecord:
    """What the trace knows about one tensor object (identified by ``id`` and checked
    with a weak reference, so that a recycled ``id`` starts a new record)."""

    ref: weakref.ref[Tensor]
    written_at: int = -1  # step of the op that last produced or modified it
    # version -> the autograd nodes of each operation that read the tensor at that version
    consumers: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)


@dataclass
class ReluEvent:
    """One ReLU application seen during the forward pass."""

    step: int
    spelling: str
    module: nn.Module | None  # the nn.ReLU module that applied it; None for a functional call
    enclosing: nn.Module | None  # the innermost other module running at that moment
    file: str
    line: int
    inplace: bool
    input_requires_grad: bool
    input_is_model_input: bool
    input_written_at: int
    input_record: _TensorRecord
    input_version: int
    output_nodes: tuple[Any, ...] = ()
    output_record: _TensorRecord | None = None
    output_version: int = -1
    # the torch function that applies it inside (``torch.rnn_relu``, ``F.lp_pool2d``),
    # how many ReLUs that call applied, and whether attrkit's override reaches them
    inside: str = ""
    inner_applications: int = 1
    reachable: bool = True
    transformed: bool = False  # applied under a functorch transform (torch.vmap)

    def on_gradient_path(self, live: set[Any]) -> bool:
        """Whether a gradient reaches the ReLU from the model's output (``live``: the
        autograd nodes the output depends on, see :meth:`ForwardTrace.live_nodes`)."""
        return any(node in live for node in self.output_nodes)

    def other_uses(self, live: set[Any]) -> int:
        """How many other operations read the ReLU's input (the same tensor at the same
        version) and pass a gradient from the model's output back to it."""
        if not self.input_requires_grad:
            return 0
        readers = self.input_record.consumers.get(self.input_version, [])
        return sum(
            any(node in live for node in nodes) and nodes != self.output_nodes for nodes in readers
        )


@dataclass
class ActivationEvent:
    """One application of an activation that is not ReLU."""

    step: int
    name: str
    module: nn.Module | None
    enclosing: nn.Module | None
    file: str
    line: int


def _call_site() -> tuple[str, int]:
    """File and line of the innermost frame outside torch and this module."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename != _THIS_FILE and not filename.startswith(_SKIPPED_DIRECTORIES):
            return filename, frame.f_lineno
        frame = frame.f_back
    return "<unknown>", 0


_functorch: Any = torch._C._functorch


def _unwrapped(x: Tensor) -> Tensor:
    """``x`` without its functorch wrappers (``torch.vmap``'s batched tensors)."""
    while _functorch.is_functorch_wrapped_tensor(x):
        x = _functorch.get_unwrapped(x)
    return x


class ForwardTrace(TorchFunctionMode):
    """Record the ReLUs and other activations of the forward passes run inside ``with``.

    The ReLUs inside torch's composites (``F.lp_pool2d``, ``nn.RNN``) are recorded as one
    event per call of the composite, which runs as the rule override runs it (see
    :mod:`attrkit.engine.routes`); the ReLU look-alikes (``clamp(min=0)``, ...) are
    recorded apart (:mod:`~attrkit.validation.lookalikes`).

    Args:
        model_inputs: The tensors the model receives as inputs (an in-place ReLU on one
            of them is reported).

    Attributes:
        relus: The ReLU applications, in order.
        activations: The other activations, in order.
        lookalikes: The ReLU look-alikes, in order (as activation events whose name is
            the expression).
    """

    def __init__(self, model_inputs: tuple[Tensor, ...] = ()) -> None:
        super().__init__()
        self.relus: list[ReluEvent] = []
        self.activations: list[ActivationEvent] = []
        self.lookalikes: list[ActivationEvent] = []
        self._watch = LookalikeWatch()
        self._inside: list[tuple[str, bool, list[ReluEvent]]] = []
        self._input_ids = {id(x) for x in model_inputs}
        self._records: dict[int, _TensorRecord] = {}
        self._stack: list[nn.Module] = []
        self._step = 0
        self._thread = threading.get_ident()
        self._handles: list[RemovableHandle] = []

    # ------------------------------------------------------------------ module stack
    def _push(self, module: nn.Module, args: Any) -> None:
        if threading.get_ident() == self._thread:
            self._stack.append(module)

    def _pop(self, module: nn.Module, args: Any, output: Any) -> None:
        if threading.get_ident() == self._thread and self._stack and self._stack[-1] is module:
            self._stack.pop()

    def __enter__(self) -> ForwardTrace:
        self._thread = threading.get_ident()
        try:
            self._handles = [
                module_hooks.register_module_forward_pre_hook(self._push),
                module_hooks.register_module_forward_hook(self._pop, always_call=True),
            ]
            super().__enter__()  # type: ignore[no-untyped-call]
        except BaseException:
            self._remove_hooks()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            super().__exit__(*exc_info)  # type: ignore[no-untyped-call]
        finally:
            self._remove_hooks()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ---------------------------------------------------------------- tensor records
    def _record(self, tensor: Tensor) -> _TensorRecord:
        record = self._records.get(id(tensor))
        if record is None or record.ref() is not tensor:
            record = _TensorRecord(weakref.ref(tensor))
            self._records[id(tensor)] = record
        return record

    def _module_context(
        self, kind: type[nn.Module] | tuple[type[nn.Module], ...]
    ) -> tuple[nn.Module | None, nn.Module | None]:
        """(the running module if it is a ``kind``, the innermost other running module)."""
        top = self._stack[-1] if self._stack else None
        if top is not None and isinstance(top, kind):
            return top, self._stack[-2] if len(self._stack) > 1 else None
        return None, top

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        step = self._step
        self._step += 1
        read = [(t, t._version) for t in tree_leaves((args, kwargs)) if isinstance(t, Tensor)]
        relu = RELU.read(func, args, kwargs) if func in RELU.spellings else None
        if relu is not None and self._inside and self._inside[-1][2]:
            self._inside[-1][2][0].inner_applications += 1  # one event per composite call
            relu = None
        elif relu is not None:
            x, inplace = relu.input, relu.inplace
            module, enclosing = self._module_context(nn.ReLU)
            record = self._record(x)
            file, line = _call_site()
            inside, reachable, events = self._inside[-1] if self._inside else ("", True, [])
            self.relus.append(
                ReluEvent(
                    step=step,
                    spelling="nn.ReLU" if module is not None else spelling(func),
                    module=module,
                    enclosing=enclosing,
                    file=file,
                    line=line,
                    inplace=bool(inplace),
                    input_requires_grad=_unwrapped(x).requires_grad,
                    input_is_model_input=id(x) in self._input_ids,
                    input_written_at=record.written_at,
                    input_record=record,
                    input_version=x._version,
                    inside=inside,
                    reachable=reachable,
                    transformed=bool(_functorch.is_functorch_wrapped_tensor(x)),
                )
            )
            if self._inside:
                events.append(self.relus[-1])
        elif func in _ACTIVATION_FUNCTIONS and self._watch.expression(func, args, kwargs) is None:
            module, enclosing = self._module_context(ACTIVATION_MODULES)
            file, line = _call_site()
            name = f"nn.{type(module).__name__}" if module is not None else spelling(func)
            self.activations.append(ActivationEvent(step, name, module, enclosing, file, line))
        output = self._run(func, args, kwargs)
        lookalike = self._watch.observe(func, args, kwargs, output) if relu is None else None
        if lookalike is not None:
            _, enclosing = self._module_context(())
            file, line = _call_site()
            self.lookalikes.append(ActivationEvent(step, lookalike, None, enclosing, file, line))
        produced = [t for t in tree_leaves(output) if isinstance(t, Tensor)]
        # An op that hands back one of its inputs unchanged (eval-mode dropout, a flatten
        # that has nothing to do) adds no path for a gradient: it is not another use.
        passed_through = any(t is r and t._version == v for t in produced for r, v in read)
        nodes = () if passed_through else gradient_nodes(_unwrapped(t) for t in produced)
        if nodes:
            for tensor, version in read:
                self._record(tensor).consumers.setdefault(version, []).append(nodes)
        if relu is not None:
            self.relus[-1].output_nodes = nodes
            if isinstance(output, Tensor):
                self.relus[-1].output_record = self._record(output)
                self.relus[-1].output_version = output._version
        for tensor in produced:
            self._record(tensor).written_at = step
        return output

    def _run(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``func(*args, **kwargs)``; a composite that applies ReLUs inside runs as the
        rule override runs it, watched (its ReLUs recorded as one event)."""
        route = lookup_route(func, (RELU,))
        if route is None or route is GRADIENT:
            return func(*args, **kwargs)
        name = spelling(func)
        TorchFunctionMode.__enter__(self)  # type: ignore[no-untyped-call]
        self._inside.append((name, True, []))
        try:
            return route(*args, **kwargs)
        except UnsupportedModelError:
            pass  # attrkit refuses it (its ReLUs run in a fused kernel): run it, say so
        finally:
            TorchFunctionMode.__exit__(self, None, None, None)  # type: ignore[no-untyped-call]
            self._inside.pop()
        file, line = _call_site()
        _, enclosing = self._module_context(())
        output = func(*args, **kwargs)
        x = args[0]
        record = self._record(x)
        self.relus.append(
            ReluEvent(
                step=self._step,
                spelling=name,
                module=None,
                enclosing=enclosing,
                file=file,
                line=line,
                inplace=False,
                input_requires_grad=x.requires_grad,
                input_is_model_input=id(x) in self._input_ids,
                input_written_at=record.written_at,
                input_record=record,
                input_version=x._version,
                inside=name,
                reachable=False,
                output_nodes=gradient_nodes(
                    t for t in tree_leaves(output) if isinstance(t, Tensor)
                ),
            )
        )
        return output

    @staticmethod
    def live_nodes(output: Any) -> set[Any]:
        """The autograd nodes that the tensors in ``output`` depend on."""
        stack = list(gradient_nodes(t for t in tree_leaves(output) if isinstance(t, Tensor)))
        live: set[Any] = set()
        while stack:
            node = stack.pop()
            if node in live:
                continue
            live.add(node)
            stack.extend(next_node for next_node, _ in node.next_functions if next_node is not None)
        return live


def gradient_nodes(tensors: Iterable[Tensor]) -> tuple[Any, ...]:
    """The autograd nodes (``grad_fn``) of the tensors that have one."""
    return tuple(t.grad_fn for t in tensors if t.grad_fn is not None)

"""The abstract base of every attrkit method: argument normalization in one place."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, TypeVar, cast

import torch
from captum.attr import GradientAttribution as _CaptumGradientAttribution
from torch import Tensor, nn

from attrkit.core.call import AttributionCall, Result, gradients, prepare_call
from attrkit.core.scope import CallToken

__all__ = [
    "GradientAttribution",
    "MultiplyByInputsOption",
    "NoFuture",
    "captum_entry_point",
    "check_callable",
]

F = TypeVar("F", bound=Callable[..., Any])


def check_callable(value: object, name: str) -> None:
    """Raise a ``TypeError`` naming ``name`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(
            f"`{name}` must be a torch.nn.Module or another callable, got {type(value).__name__}"
        )


def captum_entry_point(method: F) -> F:
    """Wrap a public ``attribute`` so that ``attribute.__wrapped__(self, ...)`` exists.

    Captum's ``NoiseTunnel`` calls ``method.attribute.__wrapped__(method, ...)``, the way
    it skips Captum's own usage-logging decorator; :func:`inspect.signature` follows
    ``__wrapped__`` and so still shows the real parameters.
    """

    @functools.wraps(method)
    def attribute(self: Any, *args: Any, **kwargs: Any) -> Any:
        return method(self, *args, **kwargs)

    return cast(F, attribute)


def may_draw_random_numbers(forward_func: object) -> bool:
    """Whether a forward pass of ``forward_func`` may draw random numbers the caller would
    not expect an attribution to draw: a module with any submodule in training mode
    (dropout), or a function attrkit cannot look into. A module entirely in eval mode
    draws none (unless its own code asks for them, as a plain forward would).

    A plain walk over the ``_modules`` dictionaries (it runs on every call); a module graph
    with a cycle stops it after 100,000 modules with the answer "maybe".
    """
    if not isinstance(forward_func, nn.Module):
        return True
    stack: list[nn.Module | None] = [forward_func]
    for _ in range(100_000):
        if not stack:
            return False
        module = stack.pop()
        if module is not None:
            if module.training:
                return True
            stack += module._modules.values()
    return True


class _CallScope:
    """What every call runs inside: a :class:`~attrkit.core.scope.CallToken` that makes it
    the thread's current call (so that an enclosing call's rule override leaves it alone),
    autograd enabled (also under ``torch.no_grad`` or
    inference mode), and, when ``restore_random_state``, the random number generators of
    the CPU and of every CUDA device restored on exit, so that a forward pass in train
    mode (dropout) leaves the caller's random stream as it was.

    The generators are process-wide: restoring them would also rewind the draws another
    thread made meanwhile, which is why a call whose forward pass draws nothing (see
    :func:`may_draw_random_numbers`) leaves them alone. CUDA generators are saved only
    once CUDA is initialized (before that, nothing can have drawn from them), so a
    CPU-only call touches no CUDA state.
    """

    __slots__ = ("_cpu_state", "_cuda_states", "_modes", "_restore", "_token")

    def __init__(self, restore_random_state: bool = True) -> None:
        self._restore = restore_random_state
        self._token = CallToken()

    def __enter__(self) -> None:
        self._cpu_state: Tensor | None = None
        self._cuda_states: list[tuple[torch.Generator, Tensor]] = []
        if self._restore:
            self._cpu_state = torch.default_generator.get_state()
            if torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
                self._cuda_states = [(g, g.get_state()) for g in torch.cuda.default_generators]
        self._modes: list[AbstractContextManager[Any]] = []
        if torch.is_inference_mode_enabled():
            self._modes.append(torch.inference_mode(False))
        if not torch.is_grad_enabled():
            self._modes.append(torch.enable_grad())
        for mode in self._modes:
            mode.__enter__()
        self._token.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(None, None, None)
        if self._cpu_state is not None:
            torch.default_generator.set_state(self._cpu_state)
        for generator, state in self._cuda_states:
            generator.set_state(state)
        self._token.__exit__()


class MultiplyByInputsOption:
    """Captum's ``multiply_by_inputs`` constructor option, which the
    ``multiplies_by_inputs`` property reports: global attributions (multiplied by ``inputs
    - baselines``) or local ones. The constructor sets ``self._multiply_by_inputs``."""

    _multiply_by_inputs: bool

    @property
    def multiplies_by_inputs(self) -> bool:
        return self._multiply_by_inputs


class NoFuture:
    """``attribute_future``, which attrkit's methods do not implement: they compute
    synchronously, as Captum's gradient methods (whose ``attribute_future`` raises the
    same error)."""

    def attribute_future(self, *args: Any, **kwargs: Any) -> Any:
        """Not implemented; call ``attribute``.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError(
            f"attribute_future is not implemented for {type(self).__name__}; call attribute"
        )


class GradientAttribution(NoFuture, _CaptumGradientAttribution, ABC):  # type: ignore[misc]
    """Abstract base of attrkit's gradient methods.

    It owns everything that is not the method itself: turning ``inputs``, ``target`` and
    ``additional_forward_args`` into one canonical :class:`~attrkit.core.call.AttributionCall`
    (validated, with clear errors that name the argument), running the model, selecting
    the target, and packing the result as the inputs came (tensor in, tensor out; tuple
    in, tuple out). A method implements :meth:`_compute`, and may override
    :meth:`_compute_context` (the context of its whole computation: forward passes and
    gradients) or :meth:`_forward_context` (of each forward pass).

    Instances are :class:`captum.attr.GradientAttribution` instances, so they work inside
    Captum's ``NoiseTunnel`` and ``captum.metrics``.

    Args:
        forward_func (Callable): The model, or any function of the inputs (followed by
            the additional forward arguments) that returns a tensor whose dimension 0 is
            the batch.
    """

    #: Whether the method differentiates with respect to the inputs (which must then be
    #: floating-point tensors); a layer method may take integer inputs (token ids).
    differentiates_inputs: ClassVar[bool] = True

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        check_callable(forward_func, "forward_func")
        # Captum's initialisation, whatever else of Captum's the subclass derives from
        # (attrkit.DeepLift is a captum.attr.DeepLift too, and its __init__ differs).
        _CaptumGradientAttribution.__init__(self, forward_func)

    def _attribute(
        self,
        inputs: object,
        target: object,
        additional_forward_args: object,
        **options: Any,
    ) -> Any:
        """Normalize the arguments, run :meth:`_compute`, pack its result."""
        call = prepare_call(inputs, target, additional_forward_args, self.differentiates_inputs)
        options = self._prepare(call, options)
        with _CallScope(may_draw_random_numbers(self.forward_func)):
            attributions = self._run(call, **options)
        return call.pack(attributions)

    def _prepare(self, call: AttributionCall, options: dict[str, Any]) -> dict[str, Any]:
        """The options :meth:`_compute` receives, made before the call's scope: a method's
        own random draws belong here, so that they advance the caller's generators as a
        Captum method's do (the scope may restore them). Here: ``options`` as they are."""
        return options

    def _run(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...] | Result:
        """:meth:`_compute` inside :meth:`_compute_context`: how a call is computed (a
        method made of other methods runs each part this way)."""
        with self._compute_context(call):
            return self._compute(call, **options)

    def _compute_context(self, call: AttributionCall) -> AbstractContextManager[Any]:
        """The context that the computation of ``call`` runs in, its forward passes and
        its gradients (here: none; rule-based methods run it inside their rule
        override)."""
        return nullcontext()

    @abstractmethod
    def _compute(self, call: AttributionCall, **options: Any) -> tuple[Tensor, ...] | Result:
        """Return one attribution tensor per input tensor of ``call`` (or a
        :class:`~attrkit.core.call.Result` with a delta or another structure)."""

    def _forward_context(self) -> AbstractContextManager[Any]:
        """The context in which the model's forward pass runs (here: none)."""
        return nullcontext()

    def _forward(self, call: AttributionCall) -> Any:
        """Run the model on ``call`` inside :meth:`_forward_context`."""
        model_inputs = call.model_inputs()
        with self._forward_context():
            return self.forward_func(*model_inputs, *call.additional_forward_args)

    def _gradients(self, call: AttributionCall) -> tuple[Tensor, ...]:
        """Gradients of the targeted outputs with respect to ``call.inputs``."""
        selected = call.target.select(self._forward(call), call.batch_size)
        return gradients(selected, call.inputs)

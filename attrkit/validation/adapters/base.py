"""What every library adapter shares: the request each receives (:class:`MethodRequest`),
the answer to "can you run it?" (:class:`Support`) and the interface (:class:`Adapter`)."""

from __future__ import annotations

import importlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from torch import Tensor

from attrkit.core.registry import MethodInfo, common_kwargs, method_info
from attrkit.core.targets import Target

__all__ = ["Adapter", "MethodRequest", "Support", "as_tuple"]


@dataclass(frozen=True)
class Support:
    """Whether an adapter can run a request; truthy when it can.

    Attributes:
        ok: Whether the library can compute the method with these arguments.
        reason: Why not (when ``ok`` is false).
        stochastic: Non-empty when the library draws random numbers differently from
            attrkit, so that it can agree only statistically; says why.
        deviation: A known difference between the library's definition and attrkit's for
            this request (reported to explain a disagreement).
    """

    ok: bool
    reason: str = ""
    stochastic: str = ""
    deviation: str = ""

    def __bool__(self) -> bool:
        return self.ok

    @classmethod
    def no(cls, reason: str) -> Support:
        return cls(False, reason)


@dataclass(frozen=True)
class MethodRequest:
    """One method call, as every library receives it.

    Attributes:
        info: The attrkit method.
        model: The model.
        inputs: The input tensors (never modified: adapters get copies from
            :meth:`fresh_inputs`).
        is_tuple: Whether the caller passed a tuple.
        parsed_target: The target, parsed for the batch.
        target: The target, as the caller gave it.
        additional_forward_args: As the caller gave them.
        init_kwargs: Constructor arguments (``layer`` already a module).
        attribute_kwargs: ``attribute`` arguments beyond the common three.
    """

    info: MethodInfo
    model: Callable[..., Any]
    inputs: tuple[Tensor, ...]
    is_tuple: bool
    parsed_target: Target
    target: Any = None
    additional_forward_args: Any = None
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    attribute_kwargs: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def base_info(self) -> MethodInfo | None:
        """The wrapped method of ``noise_tunnel`` (``None`` for other methods)."""
        base = self.init_kwargs.get("base_method")
        if base is None:
            factory = self.info.factory or self.info.cls
            parameter = inspect.signature(factory).parameters.get("base_method")
            base = None if parameter is None else parameter.default
        return method_info(base) if isinstance(base, str) else None

    def option(self, name: str) -> Any:
        """The value of ``attribute`` argument ``name``: the caller's, else attrkit's
        default (for ``noise_tunnel``, also the wrapped method's)."""
        if name in self.attribute_kwargs:
            return self.attribute_kwargs[name]
        for info in (self.info, self.base_info):
            if info is not None:
                parameter = inspect.signature(info.cls.attribute).parameters.get(name)  # type: ignore[attr-defined]
                if parameter is not None and parameter.default is not parameter.empty:
                    return parameter.default
        return None

    def fresh_inputs(self) -> Tensor | tuple[Tensor, ...]:
        """Copies of the inputs, in the caller's structure (tensor or tuple)."""
        copies = tuple(x.detach().clone() for x in self.inputs)
        return copies if self.is_tuple else copies[0]

    def common_kwargs(self) -> dict[str, Any]:
        """``target`` and ``additional_forward_args`` for the method's ``attribute``, where
        it takes them (Captum's namesakes take the same)."""
        return common_kwargs(self.info, self.target, self.additional_forward_args)


def as_tuple(value: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """A tensor as a one-element tuple; a tuple as it is."""
    return value if isinstance(value, tuple) else (value,)


class Adapter(ABC):
    """Runs attrkit's methods through one library.

    Subclasses set :attr:`name` and :attr:`module` and implement :meth:`supports` and
    :meth:`attribute`.
    """

    #: The name used in ``compare(libraries=...)`` and in reports.
    name: ClassVar[str]
    #: The module that must be importable for the library to be available.
    module: ClassVar[str]
    #: How to install it, for the "unavailable" message.
    install_hint: ClassVar[str] = ""

    def unavailable(self) -> str:
        """Why the library cannot be used at all (not installed), or ``""``."""
        try:
            importlib.import_module(self.module)
        except ImportError as error:
            hint = f" ({self.install_hint})" if self.install_hint else ""
            return f"{self.module} is not installed{hint}: {error}"
        return ""

    @abstractmethod
    def supports(self, request: MethodRequest) -> Support:
        """Whether this library can compute ``request``."""

    @abstractmethod
    def attribute(self, request: MethodRequest) -> tuple[Tensor, ...]:
        """The attributions, one tensor per attributed tensor."""

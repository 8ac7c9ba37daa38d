"""What :func:`attrkit.evaluate` evaluates: the model and its inputs (:class:`Subject`), and
the attribution methods run on it, each built through the registry (:class:`Explainer`),
with a random-attribution reference (:class:`RandomReference`) that gives every score a
chance level to be read against."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrkit.core.call import format_additional_forward_args
from attrkit.core.random import seeded
from attrkit.core.registry import MethodInfo, create, method_info, takes_argument
from attrkit.core.targets import Target

__all__ = [
    "RANDOM",
    "Explainer",
    "MethodExplainer",
    "RandomReference",
    "Subject",
    "flat_features",
    "input_shaped",
]

#: The name of the random-attribution reference row.
RANDOM = "random"


@dataclass(frozen=True)
class Subject:
    """The model, inputs and target every method and metric of one evaluation share.

    Attributes:
        model: The model (a ``torch.nn.Module`` or another callable).
        inputs: The inputs, as a tuple of tensors.
        is_tuple: Whether the caller passed a tuple.
        target: The target as the caller gave it (passed on to the methods).
        parsed_target: The target, checked against the batch.
        additional_forward_args: Passed to the model after the inputs.
        seed: The seed every random draw starts from.
    """

    model: Any
    inputs: tuple[Tensor, ...]
    is_tuple: bool
    target: Any
    parsed_target: Target
    additional_forward_args: Any
    seed: int

    @property
    def batch_size(self) -> int:
        return int(self.inputs[0].shape[0])

    def as_given(self, inputs: tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
        """``inputs`` in the form the caller gave (a tensor or a tuple)."""
        return inputs if self.is_tuple else inputs[0]

    def output(self, inputs: tuple[Tensor, ...], model: Any = None) -> Tensor:
        """The output of ``model`` (default: the subject's) on ``inputs``, without grad."""
        extra = format_additional_forward_args(self.additional_forward_args)
        with torch.no_grad():
            output: Tensor = (self.model if model is None else model)(*inputs, *extra)
        return output

    def score(self, inputs: tuple[Tensor, ...], probability: bool) -> Tensor:
        """The targeted output of every example, shape ``(N,)``; with ``probability``,
        of the softmax over the classes (dimension 1) of an ``N x classes`` output."""
        output = self.output(inputs)
        if probability:
            if not isinstance(output, Tensor) or output.dim() != 2:
                shape = tuple(output.shape) if isinstance(output, Tensor) else type(output)
                raise ValueError(
                    f"`score` 'probability' needs a model that returns N x classes scores, "
                    f"got {shape}; use score='logit'"
                )
            output = F.softmax(output, dim=1)
        return self.parsed_target.select(output, self.batch_size)


def flat_features(tensors: tuple[Tensor, ...]) -> Tensor:
    """Every example's values of all tensors in one row: ``N x features``."""
    return torch.cat([t.reshape(t.shape[0], -1) for t in tensors], dim=1)


def input_shaped(
    attributions: tuple[Tensor, ...], inputs: tuple[Tensor, ...]
) -> tuple[Tensor, ...] | str:
    """Attributions with the inputs' shapes, or why they cannot have them.

    Attributions of a layer (Grad-CAM) whose dimensions after the first two are spatial,
    with one channel or as many as the input, are resampled to the input's size (bilinear,
    as ``LayerAttribution.interpolate``) and repeated over its channels.
    """
    if len(attributions) != len(inputs):
        return f"the method returns {len(attributions)} tensors for {len(inputs)} inputs"
    shaped = []
    for a, x in zip(attributions, inputs, strict=True):
        if a.shape == x.shape:
            shaped.append(a)
            continue
        spatial = x.dim() - 2
        if not (
            1 <= spatial <= 3
            and a.dim() == x.dim()
            and a.shape[0] == x.shape[0]
            and a.shape[1] in (1, x.shape[1])
        ):
            return (
                f"its attributions have shape {tuple(a.shape)}, which cannot be resampled to "
                f"the input's {tuple(x.shape)}"
            )
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial]
        resized = F.interpolate(a, size=x.shape[2:], mode=mode, align_corners=False)
        shaped.append(resized.expand_as(x))
    return tuple(shaped)


@dataclass(frozen=True)
class Explainer(ABC):
    """One row of the evaluation: something that attributes the subject's inputs on any
    model with the subject's architecture (the original or a randomized copy).

    Attributes:
        name: The registered name (``"random"`` for the reference).
        display_name: The human-readable name.
        layer_output: Whether attributions have a layer's shape rather than the inputs'
            (Grad-CAM).
        info: The registry's record, ``None`` for the random reference.
    """

    name: str
    display_name: str
    layer_output: bool = False
    info: MethodInfo | None = None

    @abstractmethod
    def attribute(self, subject: Subject, model: Any, draw: int = 0) -> tuple[Tensor, ...]:
        """The attributions of the subject's inputs on ``model``; ``draw`` numbers the
        calls of one evaluation (the random reference draws new values for each)."""


@dataclass(frozen=True)
class _ModuleRef:
    """A constructor argument that was a submodule (or a list of them) of the subject's
    model, kept as paths so that a copy of the model gets its own submodules."""

    paths: tuple[str, ...]
    single: bool

    def on(self, model: nn.Module) -> nn.Module | list[nn.Module]:
        modules = [model.get_submodule(path) for path in self.paths]
        return modules[0] if self.single else modules


def _module_paths(model: Any, init_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``init_kwargs`` with every submodule of ``model`` (or list of them) replaced by a
    :class:`_ModuleRef`; a module that is not a submodule raises ``ValueError``."""
    if not isinstance(model, nn.Module):
        return dict(init_kwargs)
    paths = {id(module): path for path, module in model.named_modules()}
    converted: dict[str, Any] = {}
    for key, value in init_kwargs.items():
        single = isinstance(value, nn.Module)
        modules = [value] if single else value
        if not (isinstance(modules, (list, tuple)) and modules) or not all(
            isinstance(m, nn.Module) for m in modules
        ):
            converted[key] = value
            continue
        missing = [m for m in modules if id(m) not in paths]
        if missing:
            raise ValueError(f"`{key}` {type(missing[0]).__name__} is not a submodule of the model")
        converted[key] = _ModuleRef(tuple(paths[id(m)] for m in modules), single)
    return converted


@dataclass(frozen=True)
class MethodExplainer(Explainer):
    """A registered method with its constructor and ``attribute`` arguments.

    Attributes:
        init_kwargs: Constructor arguments; submodules of the subject's model are found in
            each model the method is built for (the randomized copies included).
        attribute_kwargs: ``attribute`` arguments besides the inputs, the target and the
            extra forward arguments, which come from the subject where the method takes
            them.
    """

    init_kwargs: dict[str, Any] = field(default_factory=dict)
    attribute_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        name: str,
        subject: Subject,
        options: Mapping[str, Any],
    ) -> MethodExplainer:
        """The method registered as ``name`` with the ``options`` it takes (split by name
        between its constructor and ``attribute``)."""
        info = method_info(name)
        init_kwargs = {k: v for k, v in options.items() if k in info.init_arguments}
        attribute_kwargs = {k: v for k, v in options.items() if k not in info.init_arguments}
        return cls(
            name=info.name,
            display_name=info.display_name,
            layer_output=info.layer_output,
            info=info,
            init_kwargs=_module_paths(subject.model, init_kwargs),
            attribute_kwargs=attribute_kwargs,
        )

    def method(self, model: Any) -> Any:
        """The method object built for ``model``."""
        init_kwargs = {
            k: v.on(model) if isinstance(v, _ModuleRef) else v for k, v in self.init_kwargs.items()
        }
        return create(self.name, model, **init_kwargs)

    def attribute(self, subject: Subject, model: Any, draw: int = 0) -> tuple[Tensor, ...]:
        """Every call starts from the subject's seed, so a method that draws noise
        (SmoothGrad) draws the same noise on the original and on a randomized model."""
        assert self.info is not None
        kwargs = dict(self.attribute_kwargs)
        for key, value in (
            ("target", subject.target),
            ("additional_forward_args", subject.additional_forward_args),
        ):
            if key in self.info.common_arguments or (
                value is not None and takes_argument(self.info, key)
            ):
                kwargs[key] = value
        method = self.method(model)
        with seeded(subject.seed, (x.device for x in subject.inputs)):
            result = method.attribute(subject.as_given(subject.inputs), **kwargs)
        tensors = result if isinstance(result, tuple) else (result,)
        return tuple(t.detach() for t in tensors)


@dataclass(frozen=True)
class RandomReference(Explainer):
    """Standard normal attributions of the inputs' shapes, independent of the model: the
    chance level of every metric. Draw ``k`` of an evaluation seeded ``s`` comes from a
    generator seeded ``s + k``."""

    name: str = RANDOM
    display_name: str = "random (reference)"

    def attribute(self, subject: Subject, model: Any, draw: int = 0) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(subject.seed + draw)
        return tuple(
            torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            for x in subject.inputs
        )

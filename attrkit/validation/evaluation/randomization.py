"""The model parameter randomization test (Adebayo et al., "Sanity Checks for Saliency
Maps", NeurIPS 2018): does the attribution change when the model's learned weights are
replaced by random ones? A method that explains the model must; a method whose maps stay
the same is explaining the input, not the model.

Every parameterized layer (a module with its own parameters and a ``reset_parameters``)
is re-initialized by its ``reset_parameters``, from torch's generator seeded ``seed + 1``
for each layer, as Quantus's ``MPRT(seed=seed)`` does; this happens on a deep copy, never
on the caller's model. *Cascading* randomization goes from the top layer (the last one
registered) down, keeping the layers above randomized; *independent* randomization
randomizes one layer at a time in the trained model.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn

from attrkit.core.random import seeded
from attrkit.validation.evaluation.explainers import Explainer, Subject
from attrkit.validation.evaluation.similarity import map_similarity

__all__ = [
    "ORDERS",
    "ModelRandomization",
    "RandomizationScores",
    "SimilarityStep",
    "randomizable_layers",
    "randomized_models",
]

#: The randomization orders: cascading from the top layer down, and one layer at a time.
ORDERS = ("cascade", "independent")


def randomizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers the test randomizes, in registration order (bottom to top for a model
    that registers its layers in forward order): every module with parameters of its own
    and a ``reset_parameters`` method.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> [name for name, _ in randomizable_layers(model)]
        ['0', '2']
    """
    return [
        (name, module)
        for name, module in model.named_modules()
        if callable(getattr(module, "reset_parameters", None))
        and next(module.parameters(recurse=False), None) is not None
    ]


def _devices(model: nn.Module) -> set[Any]:
    return {parameter.device for parameter in model.parameters()}


def randomized_models(model: nn.Module, order: str, seed: int) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(layer, copy)`` for every randomizable layer from the top down: a deep copy
    of ``model`` whose ``layer`` (and, with ``order="cascade"``, every layer above it) is
    re-initialized. Each layer is re-initialized from torch's generators seeded
    ``seed + 1`` (restored afterwards). The same copy is yielded each time, changed in
    place: use it before asking for the next.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> [name for name, _ in randomized_models(model, "cascade", seed=0)]
        ['2', '0']
    """
    if order not in ORDERS:
        raise ValueError(f"`order` must be one of {', '.join(ORDERS)}, got {order!r}")
    randomized = copy.deepcopy(model)
    layers = randomizable_layers(randomized)[::-1]
    previous: tuple[nn.Module, dict[str, Tensor]] | None = None
    for name, module in layers:
        if order == "independent" and previous is not None:
            previous[0].load_state_dict(previous[1])
        previous = (module, copy.deepcopy(module.state_dict()))
        with seeded(seed + 1, _devices(module)):
            module.reset_parameters()  # type: ignore[operator]
        yield name, randomized


@dataclass(frozen=True)
class SimilarityStep:
    """The mean similarity (over the examples) of the attributions on the trained model
    and on a model randomized at ``layer`` (and above it, when cascading); ``None`` where
    a measure is undefined for every example."""

    layer: str
    spearman_abs: float | None
    spearman: float | None
    ssim: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "spearman_abs": self.spearman_abs,
            "spearman": self.spearman,
            "ssim": self.ssim,
        }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


@dataclass(frozen=True)
class RandomizationScores:
    """What :class:`ModelRandomization` measured for one method.

    Attributes:
        cascade: One step per layer, from the top down; step ``k`` has the top ``k + 1``
            layers randomized.
        independent: One step per layer, from the top down, each with only that layer
            randomized.
        maps: The first example's attribution on the trained model (``"original"``) and
            after each cascading step (by layer), for the figure (not exported).
    """

    cascade: tuple[SimilarityStep, ...] = ()
    independent: tuple[SimilarityStep, ...] = ()
    maps: dict[str, tuple[Tensor, ...]] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"cascade": [step.to_dict() for step in self.cascade]}
        if self.independent:
            values["independent"] = [step.to_dict() for step in self.independent]
        return values


@dataclass(frozen=True)
class ModelRandomization:
    """The model parameter randomization test (see the module docstring).

    Attributes:
        orders: ``"cascade"`` (from the top layer down) and/or ``"independent"``.
    """

    name: ClassVar[str] = "model_randomization"
    orders: tuple[str, ...] = ORDERS

    def __post_init__(self) -> None:
        if isinstance(self.orders, str) or not set(self.orders) <= set(ORDERS) or not self.orders:
            raise ValueError(
                f"`orders` must be a tuple of {', '.join(map(repr, ORDERS))}, got {self.orders!r}"
            )

    def options(self) -> dict[str, Any]:
        return {"orders": list(self.orders)}

    def not_applicable(self, subject: Subject, explainer: Explainer) -> str:
        if not isinstance(subject.model, nn.Module):
            return "the model is not a torch.nn.Module, so it has no layers to randomize"
        if not randomizable_layers(subject.model):
            return "the model has no layer with parameters and a reset_parameters method"
        return ""

    def steps(self, subject: Subject) -> int:
        """How many attribution calls the test makes (for the progress bar)."""
        if not isinstance(subject.model, nn.Module):
            return 0
        return len(randomizable_layers(subject.model)) * len(self.orders)

    def compute(
        self,
        subject: Subject,
        explainer: Explainer,
        attributions: tuple[Tensor, ...],
        progress: Any = None,
    ) -> RandomizationScores:
        """Attribute on every randomized copy of the subject's model and compare with
        ``attributions`` (those on the trained model)."""
        maps = {"original": tuple(a[:1].cpu() for a in attributions)}
        found: dict[str, tuple[SimilarityStep, ...]] = {}
        draw = 0
        for order in ORDERS:
            if order not in self.orders:
                continue
            steps = []
            for layer, model in randomized_models(subject.model, order, subject.seed):
                draw += 1
                randomized = explainer.attribute(subject, model, draw)
                similarity = map_similarity(attributions, randomized)
                steps.append(
                    SimilarityStep(
                        layer,
                        _mean(similarity.spearman_abs),
                        _mean(similarity.spearman),
                        _mean(similarity.ssim),
                    )
                )
                if order == "cascade":
                    maps[layer] = tuple(a[:1].cpu() for a in randomized)
                if progress is not None:
                    progress.update(1)
            found[order] = tuple(steps)
        return RandomizationScores(
            cascade=found.get("cascade", ()), independent=found.get("independent", ()), maps=maps
        )

"""The LRP rows of the benchmark: attrkit's LRP against Captum's ``LRP`` (on the models
Captum's LRP runs on: networks of the modules it has rules for) and against zennit's
composites (attrkit with ``composite=...`` against zennit's ``Gradient`` attributor with the
same composite and ``one_hot * output`` as the output gradient, the initial relevance)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

import attrkit

__all__ = ["COMPOSITES", "captum_runs", "lrp_cnn", "zennit_variants"]

#: The composites the zennit rows time (``epsilon_gamma_box``'s bounds: ``BOX``).
COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box")
BOX = {"low": -3.0, "high": 3.0}


class _LrpCNN(nn.Module):
    """Conv/BN/ReLU/max-pool stages and an MLP head, flattened in ``forward`` (Captum's
    LRP raises on an ``nn.Flatten`` module; zennit's batch-norm canonizer needs the
    ``nn.Sequential``)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Sequential(nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


def lrp_cnn() -> nn.Module:
    return _LrpCNN()


def captum_runs(name: str, model: nn.Module) -> bool:
    """Whether Captum's namesake of method ``name`` runs on ``model`` (Captum's LRP raises
    on a leaf module it has no rule for)."""
    if attrkit.method_info(name).family != "lrp":
        return True
    from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES, SUPPORTED_NON_LINEAR_LAYERS

    known = (*SUPPORTED_LAYERS_WITH_RULES, *SUPPORTED_NON_LINEAR_LAYERS)
    leaves = (m for m in model.modules() if not list(m.children()))
    return all(type(m) in known for m in leaves)


def _zennit_call(model: nn.Module, x: Tensor, target: Any, name: str) -> Callable[[], Any]:
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import COMPOSITES as ZENNIT_COMPOSITES

    params = BOX if name == "epsilon_gamma_box" else {}
    rows = torch.arange(x.shape[0], device=x.device)

    def relevance(output: Tensor) -> Tensor:
        one_hot = torch.zeros_like(output)
        one_hot[rows, target] = 1
        return one_hot * output

    def call() -> Any:
        composite = ZENNIT_COMPOSITES[name](canonizers=[SequentialMergeBatchNorm()], **params)
        with Gradient(model, composite) as attributor:
            return attributor(x, relevance)[1]

    return call


def zennit_variants(model: nn.Module, x: Tensor, target: Any) -> dict[str, Callable[[], Any]]:
    """``attrkit:lrp[<composite>]`` and ``zennit:lrp[<composite>]`` for each composite of
    :data:`COMPOSITES` (none when zennit is not installed)."""
    try:
        import zennit  # noqa: F401
    except ImportError:
        return {}
    variants: dict[str, Callable[[], Any]] = {}
    for name in COMPOSITES:
        params = BOX if name == "epsilon_gamma_box" else {}
        ours = attrkit.create("lrp", model, composite=name, **params)
        variants[f"attrkit:lrp[{name}]"] = lambda ours=ours: ours.attribute(x, target=target)
        variants[f"zennit:lrp[{name}]"] = _zennit_call(model, x, target, name)
    return variants

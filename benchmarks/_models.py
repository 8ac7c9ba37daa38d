"""The models the benchmark runs, by name.

ResNet-18, VGG-11 and DenseNet-121 come from torchvision when it is importable (with
``weights=None``: nothing is downloaded); otherwise from the equivalent definitions below,
which have the same layers, the same ReLU spellings (torchvision's ResNet reuses one
in-place ``nn.ReLU`` per block; its DenseNet applies ``F.relu`` after the features) and the
same parameter counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SPECS", "ModelSpec", "build"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build one benchmark model and its inputs.

    Attributes:
        name: The name on the command line and in the tables.
        make: Builds the model (in eval mode is applied by the caller).
        input_shape: The shape of one example; ``None`` for images of ``--image-size``.
        int_target: Attribute to one class index shared by the batch (the cheapest target
            form, for measuring the fixed per-call overhead); otherwise to one label per
            example (a tensor, the usual case).
        large: One of the ResNet-18/VGG-11/DenseNet-121 sizes of the performance contract.
        cheap: Also run the methods outside the performance contract (Saliency, Input x
            Gradient, Integrated Gradients).
        description: One line for the report.
        layer: The submodule (a ``get_submodule`` name) that the layer and neuron methods
            attribute to; ``None`` where the model is not in the section "Layer, neuron and
            perturbation methods".
        neuron: The index of the neuron, in one example of ``layer``'s output, that the
            neuron methods attribute.
    """

    name: str
    make: Callable[[], nn.Module]
    input_shape: tuple[int, ...] | None
    int_target: bool = False
    large: bool = False
    cheap: bool = True
    description: str = ""
    layer: str | None = None
    neuron: tuple[int, ...] | None = None


def _torchvision(name: str) -> Callable[[], nn.Module] | None:
    try:
        import torchvision.models
    except ImportError:
        return None
    factory: Callable[..., nn.Module] = getattr(torchvision.models, name)
    return lambda: factory(weights=None)


# ------------------------------------------------------------------------- small models


def tiny_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)
    )


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(512, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def mlp(depth: int, width: int = 64) -> nn.Module:
    """``depth`` hidden Linear+ReLU layers of ``width`` units, then a 10-way Linear."""
    layers: list[nn.Module] = []
    features = 10
    for _ in range(depth):
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    return nn.Sequential(*layers, nn.Linear(features, 10))


def cnn(depth: int, channels: int = 16) -> nn.Module:
    """``depth`` 3x3 Conv+ReLU layers of ``channels`` channels, then pooling and a Linear."""
    layers: list[nn.Module] = []
    features = 3
    for _ in range(depth):
        layers += [nn.Conv2d(features, channels, 3, padding=1), nn.ReLU()]
        features = channels
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(features, 10))


# ----------------------------------------------- torchvision-equivalent large models


class _BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample: nn.Module | None = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's ``resnet18``: BasicBlocks [2, 2, 2, 2], one in-place ReLU per block
    applied twice."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, inputs = [], 64
        for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(
                nn.Sequential(
                    _BasicBlock(inputs, outputs, stride), _BasicBlock(outputs, outputs, 1)
                )
            )
            inputs = outputs
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def vgg11(classes: int = 1000) -> nn.Module:
    """torchvision's ``vgg11`` (configuration A, no batch norm, in-place ReLUs)."""
    layers: list[nn.Module] = []
    inputs = 3
    for value in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if value == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            assert isinstance(value, int)
            layers += [nn.Conv2d(inputs, value, 3, padding=1), nn.ReLU(inplace=True)]
            inputs = value
    return nn.Sequential(
        nn.Sequential(*layers),
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(),
        nn.Linear(4096, classes),
    )


class _DenseLayer(nn.Module):
    def __init__(self, inputs: int, growth: int = 32, bottleneck: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(inputs)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(inputs, bottleneck * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bottleneck * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bottleneck * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        return self.conv2(self.relu2(self.norm2(x)))


class _DenseBlock(nn.ModuleList):
    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self:
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet121(nn.Module):
    """torchvision's ``densenet121``: blocks [6, 12, 24, 16], growth 32, a functional
    ``F.relu`` after the features."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        ]
        features = 64
        for position, count in enumerate((6, 12, 24, 16)):
            layers.append(_DenseBlock(_DenseLayer(features + i * 32) for i in range(count)))
            features += count * 32
            if position < 3:
                layers += [
                    nn.BatchNorm2d(features),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(features, features // 2, 1, bias=False),
                    nn.AvgPool2d(2, 2),
                ]
                features //= 2
        layers.append(nn.BatchNorm2d(features))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(features, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.features(x), inplace=True)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _lrp_cnn() -> nn.Module:
    from benchmarks.lrp import lrp_cnn

    return lrp_cnn()


# ------------------------------------------------------------------------------ table


def _specs(use_torchvision: bool) -> dict[str, ModelSpec]:
    def large(name: str, fallback: Callable[[], nn.Module], description: str) -> ModelSpec:
        make = (_torchvision(name) if use_torchvision else None) or fallback
        source = "torchvision" if make is not fallback else "built-in equivalent"
        return ModelSpec(
            name,
            make,
            None,
            large=True,
            cheap=False,
            description=f"{description} ({source}, weights=None)",
        )

    specs = [
        ModelSpec(
            "tiny-mlp",
            tiny_mlp,
            (10,),
            int_target=True,
            description="Linear 10-16-16-4, 2 ReLUs: the fixed per-call overhead",
            layer="3",  # the second hidden layer's ReLU, 16 units
            neuron=(5,),
        ),
        ModelSpec(
            "small-cnn",
            small_cnn,
            (3, 32, 32),
            description="4 conv/linear ReLUs, 32x32",
            layer="6",  # the last convolution's ReLU, 32 x 16 x 16
            neuron=(3, 4, 4),
        ),
        ModelSpec(
            "lrp-cnn",
            _lrp_cnn,
            (3, 32, 32),
            description="conv/BN/ReLU/max-pool and an MLP head, no nn.Flatten (Captum's LRP "
            "runs on it), 32x32",
        ),
        large("resnet18", ResNet18, "ResNet-18"),
        large("vgg11", vgg11, "VGG-11"),
        large("densenet121", DenseNet121, "DenseNet-121"),
    ]
    for depth in (2, 8, 32):
        specs.append(
            ModelSpec(
                f"mlp-depth{depth}",
                lambda depth=depth: mlp(depth),
                (10,),
                int_target=True,
                description=f"{depth} Linear(64)+ReLU layers",
            )
        )
    for depth in (2, 8, 16):
        specs.append(
            ModelSpec(
                f"cnn-depth{depth}",
                lambda depth=depth: cnn(depth),
                (3, 32, 32),
                description=f"{depth} Conv(16, 3x3)+ReLU layers, 32x32",
            )
        )
    return {spec.name: spec for spec in specs}


SPECS = _specs(use_torchvision=True)


def build(name: str, use_torchvision: bool = True) -> tuple[ModelSpec, nn.Module]:
    """The spec named ``name`` and a fresh model, seeded, in eval mode."""
    spec = _specs(use_torchvision)[name]
    torch.manual_seed(0)
    return spec, spec.make().eval()

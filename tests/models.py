"""Small models written for the tests: the architectures users run attribution on, and the
ReLU usages where hook-based implementations go wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# --------------------------------------------------------------------------- parity zone
# Every ReLU is a distinct nn.ReLU module applied once (Captum follows the definition).


class SmallCNN(nn.Module):
    """Conv/BN/ReLU/pool stages and an MLP head, as in a typical image classifier."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ResidualBlockNet(nn.Module):
    """A torchvision-style BasicBlock: one in-place nn.ReLU reused in sequence, before
    and after the skip connection's addition."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        identity = self.stem(x)
        out = self.relu(self.bn1(self.conv1(identity)))
        out = self.bn2(self.conv2(out))
        out = self.relu(out + identity)
        return self.fc(out.mean(dim=(2, 3)))


class MixedArgsNet(nn.Module):
    """Two attributed inputs plus tensor and non-tensor additional arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 6))
        self.meta = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
        self.relu = nn.ReLU()
        self.out = nn.Linear(6, 4)

    def forward(self, image: Tensor, meta: Tensor, mask: Tensor, scale: float, mode: str) -> Tensor:
        assert mode in ("sum", "prod")
        a, b = self.image(image), self.meta(meta) * mask
        joined = a + b if mode == "sum" else a * b
        return self.out(self.relu(joined)) * scale


class SequenceTagger(nn.Module):
    """Per-position class scores: output shape (N, classes, length)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(2, 5, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(5, 3, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.proj = nn.Conv1d(3, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.relu2(self.conv2(self.relu1(self.conv1(x)))))


class CaptumDeepLiftSet(nn.Module):
    """Every nonlinearity Captum's DeepLift has a rule for (ELU, LeakyReLU, MaxPool2d,
    Tanh, Sigmoid, Softplus, ReLU), each a distinct module applied once, never straight
    after another of them, its input used nowhere else: where Captum's DeepLift is right."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.elu = nn.ELU(0.8)
        self.conv2 = nn.Conv2d(4, 4, 1)
        self.pool = nn.MaxPool2d(2)
        self.norm = nn.BatchNorm2d(4)
        self.leaky = nn.LeakyReLU(0.1, inplace=True)
        self.conv3 = nn.Conv2d(4, 3, 1)
        self.fc1, self.tanh = nn.Linear(27, 8), nn.Tanh()
        self.fc2, self.sigmoid = nn.Linear(8, 8), nn.Sigmoid()
        self.fc3, self.softplus = nn.Linear(8, 6), nn.Softplus(2.0)
        self.fc4, self.relu = nn.Linear(6, 6), nn.ReLU()
        self.out = nn.Linear(6, 4)

    def forward(self, x: Tensor) -> Tensor:
        h = self.pool(self.conv2(self.elu(self.conv1(x))))
        h = self.conv3(self.leaky(self.norm(h))).flatten(1)
        h = self.sigmoid(self.fc2(self.tanh(self.fc1(h))))
        return self.out(self.relu(self.fc4(self.softplus(self.fc3(h)))))


# -------------------------------------------------------------------- definition zone
# ReLU usages that module hooks cannot handle; the reference gives the definition.

RELU_SPELLINGS: dict[str, Callable[[Tensor], Tensor]] = {
    "F.relu": lambda x: F.relu(x),
    "F.relu_inplace": lambda x: F.relu(x, inplace=True),
    "F.relu_": lambda x: F.relu_(x),
    "torch.relu": lambda x: torch.relu(x),
    "torch.relu_": lambda x: torch.relu_(x),
    "Tensor.relu": lambda x: x.relu(),
    "Tensor.relu_": lambda x: x.relu_(),
    "aten.relu": lambda x: torch.ops.aten.relu.default(x),
    "aten.relu_": lambda x: torch.ops.aten.relu_.default(x),
}


class FunctionalReluMLP(nn.Module):
    """An MLP whose two ReLUs are written in one functional spelling."""

    def __init__(self, spelling: str) -> None:
        super().__init__()
        self.relu = RELU_SPELLINGS[spelling]
        self.fc1, self.fc2, self.fc3 = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))


class ReusedReluSequential(nn.Module):
    """One nn.ReLU instance applied three times in sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = (
            nn.Linear(5, 8),
            nn.Linear(8, 8),
            nn.Linear(8, 8),
            nn.Linear(8, 4),
        )
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc4(self.relu(self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))))


class ReusedReluParallel(nn.Module):
    """One nn.ReLU instance applied to two parallel branches, joined by concatenation
    (both branch inputs are computed before either ReLU runs, as in multi-branch blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = nn.Linear(5, 8), nn.Linear(5, 8)
        self.relu = nn.ReLU()
        self.out = nn.Linear(16, 4)

    def forward(self, x: Tensor) -> Tensor:
        left, right = self.left(x), self.right(x)
        return self.out(torch.cat([self.relu(left), self.relu(right)], dim=1))


class ReluModulesBackToBack(nn.Module):
    """Two distinct nn.ReLU modules, each applied once, the first one's output going
    straight into the second (through a module that hands its input back unchanged)."""

    def __init__(self, between: nn.Module, inplace: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8), nn.Linear(8, 4)
        self.relu1, self.between, self.relu2 = nn.ReLU(inplace), between, nn.ReLU(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.relu2(self.between(self.relu1(self.fc1(x)))))


class ReluCreatedInForward(nn.Module):
    """A fresh nn.ReLU module constructed inside forward (invisible to model.apply)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8), nn.Linear(8, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(nn.ReLU()(self.fc1(x)))


class ReluInputUsedElsewhere(nn.Module):
    """``relu(z) + z``: the ReLU's input also feeds another path."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8), nn.Linear(8, 4)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        z = self.fc1(x)
        return self.fc2(self.relu(z) - 0.7 * z)


class ReluOnNonGradArgument(nn.Module):
    """A ReLU applied to an additional argument that does not require grad."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8), nn.Linear(8, 4)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor, gate: Tensor) -> Tensor:
        return self.fc2(self.relu(self.fc1(x)) * self.relu(gate))


class InplaceReluOnInput(nn.Module):
    """An in-place ReLU applied straight to the caller's input tensor."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.functional = functional
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(5, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu_(x) if self.functional else self.relu(x)
        return self.fc(x)


class TinyDenseNet(nn.Module):
    """torchvision's DenseNet structure in miniature: dense layers with in-place nn.ReLU
    modules, a transition, and the final functional ``F.relu(features, inplace=True)``."""

    class _DenseLayer(nn.Module):
        def __init__(self, channels: int, growth: int) -> None:
            super().__init__()
            self.norm1 = nn.BatchNorm2d(channels)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = nn.Conv2d(channels, 2 * growth, 1, bias=False)
            self.norm2 = nn.BatchNorm2d(2 * growth)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

        def forward(self, features: list[Tensor]) -> Tensor:
            x = torch.cat(features, 1)
            x = self.conv1(self.relu1(self.norm1(x)))
            return self.conv2(self.relu2(self.norm2(x)))

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.layers = nn.ModuleList([self._DenseLayer(4 + 3 * i, 3) for i in range(2)])
        self.norm = nn.BatchNorm2d(10)
        self.transition = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(10, 6, 1, bias=False), nn.AvgPool2d(2)
        )
        self.final_norm = nn.BatchNorm2d(6)
        self.classifier = nn.Linear(6, 5)

    def forward(self, x: Tensor) -> Tensor:
        features = [self.stem(x)]
        for layer in self.layers:
            features.append(layer(features))
        x = self.transition(self.norm(torch.cat(features, 1)))
        x = F.relu(self.final_norm(x), inplace=True)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class TinyInception(nn.Module):
    """torchvision's Inception/GoogLeNet structure in miniature: BasicConv2d units that
    call ``F.relu(x, inplace=True)``, four parallel branches joined by concatenation."""

    class _BasicConv2d(nn.Module):
        def __init__(self, cin: int, cout: int, **kwargs: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x: Tensor) -> Tensor:
            return F.relu(self.bn(self.conv(x)), inplace=True)

    def __init__(self) -> None:
        super().__init__()
        conv = self._BasicConv2d
        self.stem = conv(3, 6, kernel_size=3, padding=1)
        self.branch1 = conv(6, 4, kernel_size=1)
        self.branch3 = nn.Sequential(
            conv(6, 3, kernel_size=1), conv(3, 4, kernel_size=3, padding=1)
        )
        self.branch5 = nn.Sequential(
            conv(6, 2, kernel_size=1),
            conv(2, 3, kernel_size=3, padding=1),
            conv(3, 3, kernel_size=3, padding=1),
        )
        self.pool_proj = conv(6, 3, kernel_size=1)
        self.fc = nn.Linear(14, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)
        branches = [self.branch1(x), self.branch3(x), self.branch5(x), self.pool_proj(pooled)]
        x = torch.cat(branches, 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class NoReluNet(nn.Module):
    """Tanh and GELU only: ReLU-override methods equal the plain gradient here."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 4)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TwoInputs(nn.Module):
    """Two inputs summed into one value per example, through a ReLU."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.relu(a.sum(1, keepdim=True) + b.sum(1, keepdim=True))


class RaisingNet(nn.Module):
    """Runs a ReLU, then raises inside forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 4)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        self.relu(self.fc(x))
        raise RuntimeError("forward failed on purpose")


# ------------------------------------------------------------------- bad-input fuzzing

#: The batch size and per-example image shape ``FuzzNet``'s tests call it with.
BATCH = 2
IMAGE = (2, 5, 5)


class FuzzNet(nn.Module):
    """Conv, ReLU, adaptive pooling (any image size works) and a linear head; an
    optional additional argument scales the output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(12, 4)

    def forward(self, x: Tensor, scale: Any = None) -> Tensor:
        out = self.fc(F.adaptive_avg_pool2d(self.relu(self.conv(x)), 2).flatten(1))
        return out if scale is None else out * scale


# ---------------------------------------------------------------------------------- LRP
# Layer-wise relevance propagation: Captum's LRP runs on networks of modules it has a rule
# for; these models also come as twins with the same parameters written with functional
# calls, where the relevance must be the same.

#: How ``LrpCNN`` writes its layers.
LRP_SPELLINGS = ("module", "functional", "mixed")


class LrpCNN(nn.Module):
    """Every layer type Captum's LRP has a default rule for (conv, batch-norm, max-pool,
    average and adaptive average pooling, linear; ReLU, tanh, dropout), each a distinct
    module applied once (``spelling="module"``); ``"functional"`` computes the same
    function with the same parameters through ``F.conv2d``, ``torch.conv2d``,
    ``F.batch_norm``, ``torch.relu``, ``F.max_pool2d``, ``torch.flatten``,
    ``torch.ops.aten.linear``, ...; ``"mixed"`` alternates the two."""

    def __init__(self, spelling: str = "module", bias: bool = True, classes: int = 4) -> None:
        super().__init__()
        self.spelling = spelling
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1, bias=bias)
        self.bn = nn.BatchNorm2d(6)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, bias=bias)
        self.relu2 = nn.ReLU(inplace=True)
        self.pool2 = nn.AvgPool2d(2)
        self.conv3 = nn.Conv2d(8, 8, 1, bias=bias)
        self.tanh = nn.Tanh()
        self.pool3 = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(8, 10, bias=bias)
        self.drop = nn.Dropout()
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(10, classes, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        functional = {"module": [False] * 14, "functional": [True] * 14}.get(
            self.spelling, [i % 2 == 1 for i in range(14)]
        )
        steps = [
            (self.conv1, lambda x: F.conv2d(x, self.conv1.weight, self.conv1.bias, padding=1)),
            (self.bn, self._functional_batch_norm),
            (self.relu1, torch.relu),
            (self.pool1, lambda x: F.max_pool2d(x, 2, return_indices=True)[0]),
            (self.conv2, lambda x: torch.conv2d(x, self.conv2.weight, self.conv2.bias)),
            (self.relu2, lambda x: F.relu(x, inplace=True)),
            (self.pool2, lambda x: F.avg_pool2d(x, 2)),
            (self.conv3, lambda x: torch.ops.aten.conv2d(x, self.conv3.weight, self.conv3.bias)),
            (self.tanh, lambda x: x.tanh()),
            (self.pool3, lambda x: F.adaptive_avg_pool2d(x, 1)),
            (lambda x: x.view(x.shape[0], -1), lambda x: torch.flatten(x, 1)),
            (self.fc1, lambda x: F.linear(x, self.fc1.weight, self.fc1.bias)),
            (self.drop, lambda x: F.dropout(x, 0.5, training=False)),
            (self.relu3, lambda x: x.relu()),
        ]
        for (module, function), use_function in zip(steps, functional, strict=True):
            x = function(x) if use_function else module(x)
        if self.spelling == "module":
            return self.fc2(x)
        return torch.ops.aten.linear(x, self.fc2.weight, self.fc2.bias)

    def _functional_batch_norm(self, x: Tensor) -> Tensor:
        bn = self.bn
        return F.batch_norm(
            x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
        )


class LrpMLP(nn.Module):
    """Linear layers with an in-place ReLU, a tanh and an eval-mode dropout, as modules."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(6, 8, bias=bias),
            nn.ReLU(inplace=True),
            nn.Linear(8, 8, bias=bias),
            nn.Tanh(),
            nn.Dropout(0.3),
            nn.Linear(8, 3, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ReusedLinear(nn.Module):
    """One ``nn.Linear`` applied twice (``reuse=True``, which Captum's LRP refuses), or
    a distinct second module (``reuse=False``: give it the first one's parameters)."""

    def __init__(self, reuse: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(5, 6)
        self.square = nn.Linear(6, 6)
        self.again = self.square if reuse else nn.Linear(6, 6)
        self.fc2 = nn.Linear(6, 3)
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu2(self.square(self.relu1(self.fc1(x))))
        return self.fc2(self.relu3(self.again(x)))

"""Cross-library validation of a DenseNet: Captum and zennit differ, and the audit says why."""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

import attrkit


class DenseLayer(nn.Module):
    """A DenseNet-BC layer (BN, ReLU, 1x1 conv, BN, ReLU, 3x3 conv), its ReLUs written as
    ``F.relu`` as in many DenseNet implementations, or as ``nn.ReLU`` modules."""

    def __init__(self, channels, growth, functional):
        super().__init__()
        self.functional = functional
        self.norm1, self.relu1 = nn.BatchNorm2d(channels), nn.ReLU()
        self.conv1 = nn.Conv2d(channels, 4 * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(4 * growth), nn.ReLU()
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def relu(self, module, x):
        return F.relu(x) if self.functional else module(x)

    def forward(self, x):
        out = self.conv1(self.relu(self.relu1, self.norm1(x)))
        out = self.conv2(self.relu(self.relu2, self.norm2(out)))
        return torch.cat([x, out], 1)


class DenseNet(nn.Module):
    """torchvision's DenseNet layout in miniature: ``features`` holds dense blocks and a
    transition (with an ``nn.ReLU`` module); ``forward`` ends with ``F.relu``, as
    torchvision's does."""

    def __init__(self, functional=True, growth=4, classes=10):
        super().__init__()

        def block(channels, layers=3):
            return nn.Sequential(
                *(DenseLayer(channels + i * growth, growth, functional) for i in range(layers))
            )

        self.functional = functional
        self.features = nn.Sequential(
            OrderedDict(
                conv0=nn.Conv2d(3, 8, 3, padding=1, bias=False),
                denseblock1=block(8),
                transition1=nn.Sequential(
                    nn.BatchNorm2d(20), nn.ReLU(), nn.Conv2d(20, 10, 1, bias=False), nn.AvgPool2d(2)
                ),
                denseblock2=block(10),
                norm5=nn.BatchNorm2d(22),
            )
        )
        self.relu = nn.ReLU()
        self.classifier = nn.Linear(22, classes)

    def forward(self, x):
        features = self.features(x)
        out = F.relu(features) if self.functional else self.relu(features)
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


torch.manual_seed(0)
model = DenseNet().eval()
images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
target = [3, 7]

# Which ReLUs do Captum's and zennit's module hooks reach?
audit = attrkit.audit(model, images)
print(audit.summary())
print()

# The same method through the three libraries.
report = attrkit.compare("guided_backprop", model, images, target=target)
print(report)
print()

# The same weights with every ReLU an nn.ReLU module: now all three agree.
modules = DenseNet(functional=False).eval()
modules.load_state_dict(model.state_dict())
fixed = attrkit.compare("guided_backprop", modules, images, target=target)
print("with nn.ReLU modules:", ", ".join(f"{p.name} {p.verdict}" for p in fixed.pairs))

assert report.pair("attrkit", "captum").verdict == "differ"
assert report.pair("captum", "zennit").verdict == "agree"
assert audit.library_summary("captum") in report.pair("attrkit", "captum").explanation
assert fixed.agree

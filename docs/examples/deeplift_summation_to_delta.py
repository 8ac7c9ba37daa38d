"""DeepLift's summation to delta, model by model: attrkit and Captum."""

import warnings

import captum.attr
import torch
import torch.nn.functional as F
from torch import nn

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call
torch.manual_seed(0)


class Mlp(nn.Module):
    def __init__(self, activation, second=None):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.first, self.second = activation, second or activation

    def forward(self, x):
        return self.c(self.second(self.b(self.first(self.a(x)))))


class InputUsedElsewhere(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.relu, self.b = nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)

    def forward(self, x):
        z = self.a(x)
        return self.b(self.relu(z) + z)


def convnet(*middle):
    return nn.Sequential(nn.Conv1d(1, 2, 3), *middle, nn.Flatten(), nn.LazyLinear(3))


models = {
    "nn.ReLU modules": Mlp(nn.ReLU(), nn.ReLU()),
    "F.relu": Mlp(F.relu),
    "torch.sigmoid": Mlp(torch.sigmoid),
    "nn.GELU, nn.SiLU": Mlp(nn.GELU(), nn.SiLU()),
    "nn.ReLU6, nn.Hardswish": Mlp(nn.ReLU6(), nn.Hardswish()),
    "one nn.ReLU used twice": Mlp(nn.ReLU()),
    "Tanh -> Sigmoid": nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Sigmoid(), nn.Linear(8, 3)),
    "ReLU -> MaxPool1d(2)": convnet(nn.ReLU(), nn.MaxPool1d(2)),
    "MaxPool1d(3, 1) (overlapping)": convnet(nn.MaxPool1d(3, 1)),
    "relu(z) + z": InputUsedElsewhere(),
}


def gap(model, method, x, baseline):
    """max over examples of |sum(attributions) - (F(x) - F(baseline))|."""
    attributions = method(model).attribute(x.clone(), baseline, target=0).detach()
    with torch.no_grad():
        change = model(x)[:, 0] - model(baseline)[:, 0]
    return float((attributions.flatten(1).sum(1) - change).abs().max())


print(f"{'model code':32s}{'attrkit':>10s}{'Captum 0.9.0':>22s}")
for name, model in models.items():
    model = model.double().eval()
    shape = (4, 1, 12) if "Pool" in name else (4, 5)
    x, baseline = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    model(x)  # (sizes the lazy layer)
    ours = gap(model, attrkit.DeepLift, x, baseline)
    try:
        theirs = f"{gap(model, captum.attr.DeepLift, x, baseline):22.1e}"
    except RuntimeError as error:  # Captum refuses a module used more than once
        theirs = f"{'raises ' + type(error).__name__:>22s}"
    print(f"{name:32s}{ours:10.0e}{theirs}")
    assert ours < 1e-12

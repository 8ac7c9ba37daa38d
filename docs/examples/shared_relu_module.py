"""One nn.ReLU module applied to two parallel branches."""

import warnings

import captum.attr
import torch

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = torch.nn.ReLU()  # one module ...

    def forward(self, x):
        left, right = 2 * x, 3 * x
        return self.relu(left) - 2 * self.relu(right)  # ... used on two branches


x = torch.tensor([[1.0]])
# Deconvolution: the left ReLU passes back max(1, 0) = 1 (times 2 on the way to x), the
# right one max(-2, 0) = 0.
definition = torch.tensor([[2.0]])
ours = attrkit.Deconvolution(Net()).attribute(x, target=0)
theirs = captum.attr.Deconvolution(Net()).attribute(x.clone(), target=0)
print("definition:", definition.tolist())
print("attrkit:   ", ours.tolist())
print("captum:    ", theirs.tolist())
assert torch.equal(ours, definition)

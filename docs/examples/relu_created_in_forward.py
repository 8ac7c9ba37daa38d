"""An nn.ReLU module constructed inside forward."""

import warnings

import captum.attr
import torch

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call


class Net(torch.nn.Module):
    def forward(self, x):
        hidden = torch.nn.ReLU()(x)  # a fresh module on every call
        return hidden[:, :1] - hidden[:, 1:]


x = torch.tensor([[1.0, 2.0]])
# Deconvolution at the ReLU: max((1, -1), 0) = (1, 0).
definition = torch.tensor([[1.0, 0.0]])
ours = attrkit.Deconvolution(Net()).attribute(x, target=0)
theirs = captum.attr.Deconvolution(Net()).attribute(x.clone(), target=0)
print("definition:", definition.tolist())
print("attrkit:   ", ours.tolist())
print("captum:    ", theirs.tolist(), "(the plain gradient)")
assert torch.equal(ours, definition)

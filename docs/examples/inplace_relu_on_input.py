"""An in-place F.relu_ applied directly to the model's input."""

import warnings

import captum.attr
import torch
import torch.nn.functional as F

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call


class Net(torch.nn.Module):
    def forward(self, x):
        F.relu_(x)  # in place, on the tensor the caller passed in
        return x[:, :1] - x[:, 1:]


x = torch.tensor([[1.0, 2.0]])
# Guided backprop at the ReLU: max((1, -1), 0) * [x > 0] = (1, 0).
definition = torch.tensor([[1.0, 0.0]])
ours = attrkit.GuidedBackprop(Net()).attribute(x, target=0)
print("definition:", definition.tolist())
print("attrkit:   ", ours.tolist(), "- and x is untouched:", x.tolist())
try:
    captum.attr.GuidedBackprop(Net()).attribute(x.clone(), target=0)
except RuntimeError as error:
    print("captum:     RuntimeError:", str(error).splitlines()[0])
assert torch.equal(ours, definition)

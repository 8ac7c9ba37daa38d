"""A ReLU written as F.relu: Captum's hooks never see it."""

import warnings

import captum.attr
import torch
import torch.nn.functional as F

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call


class Net(torch.nn.Module):
    def forward(self, x):
        hidden = F.relu(x)  # functional, as in torchvision's DenseNet and Inception
        return hidden[:, :1] - hidden[:, 1:]


x = torch.tensor([[1.0, 2.0]])
# Guided backprop at the ReLU: the gradient (1, -1), negative part removed -> (1, 0).
definition = torch.tensor([[1.0, 0.0]])
ours = attrkit.GuidedBackprop(Net()).attribute(x, target=0)
theirs = captum.attr.GuidedBackprop(Net()).attribute(x.clone(), target=0)
print("definition:", definition.tolist())
print("attrkit:   ", ours.tolist())
print("captum:    ", theirs.tolist(), "(the plain gradient)")
assert torch.equal(ours, definition)

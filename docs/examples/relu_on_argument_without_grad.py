"""A ReLU applied to an additional forward argument (which does not require grad)."""

import warnings

import captum.attr
import torch

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = torch.nn.ReLU()

    def forward(self, x, gate):
        return (x * self.relu(gate)).sum(1, keepdim=True)


x, gate = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])
# The gate is a constant: d output / d x = relu(gate) = (3, 0).
definition = torch.tensor([[3.0, 0.0]])
ours = attrkit.GuidedBackprop(Net()).attribute(x, target=0, additional_forward_args=gate)
print("definition:", definition.tolist())
print("attrkit:   ", ours.tolist())
try:
    captum.attr.GuidedBackprop(Net()).attribute(x.clone(), target=0, additional_forward_args=gate)
except RuntimeError as error:
    print("captum:     RuntimeError:", str(error).splitlines()[0])
assert torch.equal(ours, definition)

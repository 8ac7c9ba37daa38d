"""A ReLU whose input also feeds another path (a residual-style difference)."""

import warnings

import captum.attr
import torch

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = torch.nn.ReLU()

    def forward(self, z):
        return (self.relu(z) - 0.7 * z).sum(1, keepdim=True)  # z reaches the output twice


z = torch.tensor([[1.0, -2.0]])
# Guided backprop: through the ReLU max(1, 0) * [z > 0], plus -0.7 from the direct path.
definition = torch.tensor([[1.0 - 0.7, 0.0 - 0.7]])
ours = attrkit.GuidedBackprop(Net()).attribute(z, target=0)
theirs = captum.attr.GuidedBackprop(Net()).attribute(z.clone(), target=0)
print("definition:", [[round(v, 4) for v in definition[0].tolist()]])
print("attrkit:   ", [[round(v, 4) for v in ours[0].tolist()]])
print("captum:    ", [[round(v, 4) for v in theirs[0].tolist()]])
torch.testing.assert_close(ours, definition)

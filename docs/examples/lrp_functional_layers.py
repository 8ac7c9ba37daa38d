"""LRP of the same network written with modules and with functional calls."""

import warnings

import captum.attr
import torch
import torch.nn.functional as F

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call

W1 = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
W2 = torch.tensor([[1.0, 1.0]])
modules = torch.nn.Sequential(
    torch.nn.Linear(2, 2, bias=False), torch.nn.ReLU(), torch.nn.Linear(2, 1, bias=False)
)
with torch.no_grad():
    modules[0].weight.copy_(W1)
    modules[2].weight.copy_(W2)


class Functional(torch.nn.Module):
    def forward(self, x):  # the same function, written with functional calls
        return F.linear(F.relu(F.linear(x, W1)), W2)


x = torch.tensor([[1.0, 2.0]])
# h = W1 x = (3, -1), a = relu(h) = (3, 0), y = W2 a = 3: the relevance 3 of the output
# goes to a_0 (the only non-zero term), and from h_0 = 1 * 1 + 2 * 1 to the inputs in
# proportion to their terms, (1, 2). It sums to y.
definition = torch.tensor([[1.0, 2.0]])
for name, model in (("modules", modules), ("functional", Functional())):
    ours = attrkit.LRP(model).attribute(x, target=0)
    theirs = captum.attr.LRP(model).attribute(x.clone(), target=0).detach()
    print(f"{name:10}  attrkit: {ours.tolist()}  captum: {theirs.tolist()}")
    assert torch.allclose(ours, definition)
print("definition:", definition.tolist(), "(Captum's functional result: gradient x output)")

"""Integrated Gradients with the trapezoid rule on a linear model, where it is exact."""

import warnings

import captum.attr
import torch

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call

model = torch.nn.Linear(3, 1, bias=False)
with torch.no_grad():
    model.weight.copy_(torch.tensor([[1.0, -2.0, 3.0]]))
x = torch.tensor([[1.0, 1.0, 1.0]])
# On a linear model the integrand is constant: IG = (x - 0) * w, for any number of steps.
definition = x * model.weight.detach()
ours = attrkit.IntegratedGradients(model).attribute(x, n_steps=10, method="riemann_trapezoid")
theirs = captum.attr.IntegratedGradients(model).attribute(
    x.clone(), n_steps=10, method="riemann_trapezoid"
)
print("definition:", definition.tolist())
print("attrkit:   ", ours.tolist())
print("captum:    ", [[round(v, 4) for v in theirs[0].tolist()]], "(9/10 of it)")
assert torch.allclose(ours, definition)

"""Neuron conductance of several neurons: the sum of their conductances."""

import warnings

import captum.attr
import torch

import attrkit

warnings.filterwarnings("ignore", module="captum")  # Captum warns on every call

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
x = torch.randn(1, 3)
layer, both = model[1], (slice(0, 2),)  # neurons 0 and 1 of the Tanh layer
explainer = attrkit.NeuronConductance(model, layer)
# The conductance of a set of neurons is the flow through all of them: the sum of theirs.
definition = sum(explainer.attribute(x, neuron_selector=j, n_steps=20) for j in (0, 1))
ours = explainer.attribute(x, neuron_selector=both, n_steps=20)
theirs = captum.attr.NeuronConductance(model, layer).attribute(x, neuron_selector=both, n_steps=20)
print("sum of the two:", [round(v, 5) for v in definition[0].tolist()])
print("attrkit:       ", [round(v, 5) for v in ours[0].tolist()])
print("captum:        ", [round(v, 5) for v in theirs[0].tolist()], "(sum of gradients x sum)")
assert torch.allclose(ours, definition, atol=1e-6)

"""GradientShap draws what Captum draws: seed NumPy and torch, get Captum's result."""

import warnings

import captum.attr
import numpy as np
import torch

import attrkit

warnings.filterwarnings("ignore", module="captum")
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU(), torch.nn.Linear(6, 2))
x, background = torch.randn(3, 4), torch.randn(10, 4)

results = {}
for name, library in (("attrkit", attrkit), ("captum", captum.attr)):
    np.random.seed(1)  # the baseline rows and the interpolation points
    torch.manual_seed(1)  # the noise
    explainer = library.GradientShap(model)
    results[name] = explainer.attribute(x.clone(), background, n_samples=8, stdevs=0.1, target=1)
print("attrkit:", results["attrkit"][0].tolist())
print("captum: ", results["captum"][0].detach().tolist())
assert torch.equal(results["attrkit"], results["captum"])

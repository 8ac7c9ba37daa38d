"""Leak checks: 10,000 consecutive calls of every registered method on a tiny model leave
no growth in hooks (module and global hook dicts), attrkit's module-level containers, the
torch-function mode stack, attrkit objects alive, or process memory beyond a small bound;
and no call keeps the autograd graph, the caller's tensors or its results alive."""

from __future__ import annotations

import gc
import os
import resource
import sys
import weakref
from collections import Counter
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import attrkit
from tests.helpers import GLOBAL_HOOKS, HOOK_DICTS
from tests.tester import QUICK_OPTIONS, method_params, methods, quick_call, quick_callable

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

CALLS = 10_000
WARM_UP = 500
#: Resident memory may grow this much over the 10,000 calls (allocator noise, caches).
RSS_BOUND = 16 * 2**20


class Recording(nn.Module):
    """A tiny conv net that keeps weak references to the tensors of its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(18, 2)
        self.seen: list[weakref.ref[Tensor]] = []

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x)
        r = self.relu(h)
        out = self.fc(r.flatten(1))
        self.seen.extend(weakref.ref(t) for t in (h, r, out))
        return out


def arguments(name: str, model: Recording) -> tuple[dict[str, Any], dict[str, Any]]:
    """Constructor and ``attribute`` arguments of a quick valid call of ``name`` (with the
    convergence delta, where the method has one); a perturbation method perturbs the 2 x 2
    grid of the 3 x 3 input (4 features: exact Shapley values are exponential in them)."""
    call = quick_call(
        name,
        layer=model.conv,
        target=1,
        neuron_selector=(1, 1, 1),
        options={**QUICK_OPTIONS, "n_steps": 2, "return_convergence_delta": True},
        image_shape=(1, 3, 3),
    )
    return call.init, call.kwargs


# ------------------------------------------------------------------- what must not grow


def hook_counts(model: nn.Module) -> list[int]:
    return [len(getattr(m, attr, {})) for m in model.modules() for attr in HOOK_DICTS] + [
        len(getattr(nn.modules.module, attr)) for attr in GLOBAL_HOOKS
    ]


def attrkit_containers() -> dict[str, int]:
    """Sizes of the lists, dicts and sets at module level in attrkit (registries, caches,
    handle lists)."""
    return {
        f"{module_name}.{name}": len(value)
        for module_name, module in list(sys.modules.items())
        if module_name.startswith("attrkit") and module is not None
        for name, value in vars(module).items()
        if isinstance(value, (list, dict, set)) and not name.startswith("__")
    }


def attrkit_objects() -> Counter[str]:
    """How many objects of attrkit's own classes are alive."""
    gc.collect()
    counts: Counter[str] = Counter()
    for o in gc.get_objects():
        module = getattr(type(o), "__module__", None)
        if isinstance(module, str) and module.startswith("attrkit"):
            counts[type(o).__qualname__] += 1
    return counts


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak, in KiB on Linux and bytes on macOS
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def state(model: nn.Module) -> dict[str, Any]:
    return {
        "hooks": hook_counts(model),
        "containers": attrkit_containers(),
        "function_modes": torch._C._len_torch_function_stack(),
        "objects": attrkit_objects(),
        "grad_enabled": torch.is_grad_enabled(),
    }


def test_ten_thousand_calls_leave_nothing_behind():
    model = Recording().eval()
    x = torch.randn(1, 1, 3, 3)
    names = methods(quick_callable)  # (not LimeBase, DataLoaderAttribution: see below)
    table = {name: arguments(name, model) for name in names}

    def call(i: int) -> None:
        name = names[i % len(names)]
        init, kwargs = table[name]
        attrkit.create(name, model, **init).attribute(x, **kwargs)
        model.seen.clear()

    for i in range(WARM_UP):
        call(i)
    before, rss_before = state(model), resident_bytes()
    for i in range(CALLS):
        call(i)
    after, rss_after = state(model), resident_bytes()
    assert after == before
    assert rss_after - rss_before < RSS_BOUND, (
        f"RSS grew by {(rss_after - rss_before) / 2**20:.1f} MiB"
    )


# --------------------------------------------------------------------- the graph is freed


# LimeBase and DataLoaderAttribution are left out here and above: a quick call cannot build
# them (the caller's interpretable model and transforms; a DataLoader, not inputs).
@pytest.mark.parametrize("name", method_params(quick_callable))
def test_no_graph_or_tensor_outlives_the_call(name):
    """The forward pass's tensors (and so the graph that saved them) are freed when the
    call returns, by reference counting alone (no cycle waits for the garbage collector);
    the results carry no graph; neither the caller's input nor the results are kept by
    the explainer."""
    model = Recording().eval()
    init, kwargs = arguments(name, model)
    explainer = attrkit.create(name, model, **init)
    x = torch.randn(2, 1, 3, 3)
    gc.disable()
    try:
        result = explainer.attribute(x, **kwargs)
        alive = [ref for ref in model.seen if ref() is not None]
        assert model.seen
        assert alive == [], f"{len(alive)} of the forward pass's tensors are still alive"
    finally:
        gc.enable()
    results = list(result) if isinstance(result, tuple) else [result]
    for tensor in results:
        assert not tensor.requires_grad
        assert tensor.grad_fn is None
    assert x.grad is None
    assert x.grad_fn is None
    refs = [weakref.ref(t) for t in (x, *results)]
    del x, result, results, tensor
    assert [ref for ref in refs if ref() is not None] == []
    assert explainer.attribute(torch.randn(2, 1, 3, 3), **kwargs) is not None  # still usable

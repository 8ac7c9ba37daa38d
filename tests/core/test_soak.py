"""Concurrency soak: several threads make many calls of every registered method on one
shared model while another thread runs plain forward and backward passes of the same
model; every result equals the sequential one, the plain passes see the plain gradient,
and the parameters' ``.grad`` hold exactly what the plain passes accumulated.

The ``long`` hypothesis profile (``ATTRKIT_FUZZ_PROFILE=long`` or
``--hypothesis-profile=long``) makes it longer (docs/reliability.rst).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import torch
from hypothesis import settings

import attrkit
from tests import models
from tests.helpers import as_tuple
from tests.tester import (
    QUICK_OPTIONS,
    draws_more_than_noise,
    methods,
    quick_call,
    quick_callable,
)

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

#: (threads, calls per thread) by hypothesis profile (tests/conftest.py).
SCALE = {"ci": (4, 12), "dev": (6, 60), "long": (8, 400)}
THREADS, CALLS = SCALE.get(settings.get_current_profile_name(), SCALE["ci"])
TARGET = [0, 2, 4]


def calls(model: torch.nn.Module) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """One call of every registered method: (constructor, ``attribute``) arguments.
    NoiseTunnel runs without noise: threads share torch's global generator, so noisy
    results depend on the interleaving by design; for the same reason the other methods
    that draw random numbers (GradientShap's baselines and points, the sampling
    perturbation methods) are left out, and so are LimeBase and DataLoaderAttribution,
    which a quick call cannot build. A perturbation method perturbs a 2 x 2 grid (the
    layer and neuron ones, Captum's computation with hooks on the layer, run them on a
    private copy of the model: attrkit/methods/perturbation.py)."""
    options = {**QUICK_OPTIONS, "n_steps": 4, "return_convergence_delta": True, "stdevs": 0.0}
    table = {}
    for name in methods(lambda m: quick_callable(m) and not draws_more_than_noise(m)):
        call = quick_call(
            name,
            layer=model.branch5[2].conv,
            target=TARGET,
            neuron_selector=(1, 2, 2),
            options=options,
            image_shape=(3, 6, 6),
        )
        table[name] = (call.init, call.kwargs)
    return table


def run(model: torch.nn.Module, name: str, init: dict, kwargs: dict, x: torch.Tensor) -> Any:
    result = attrkit.create(name, model, **init).attribute(x, **kwargs)
    if kwargs.get("return_convergence_delta"):
        attributions, delta = result
        return (*as_tuple(attributions), delta)
    return as_tuple(result)


def test_threads_of_mixed_methods_and_plain_backward_passes_on_one_model():
    torch.manual_seed(0)
    model = models.TinyInception().eval()  # functional in-place ReLUs, parallel branches
    x = torch.randn(3, 3, 6, 6)
    table = calls(model)
    expected = {name: run(model, name, *table[name], x) for name in table}

    # What the plain thread must see: the plain gradient, and .grad growing by one
    # backward pass each time.
    leaf = x.clone().requires_grad_()
    plain = torch.autograd.grad(model(leaf)[[0, 1, 2], TARGET].sum(), leaf)[0]
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()
    one_pass = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    names = sorted(table)
    start = threading.Barrier(THREADS + 2)  # the workers, the plain thread, this one
    failures: list[str] = []

    def attribute_repeatedly(worker: int) -> None:
        start.wait()
        for call in range(CALLS):
            name = names[(worker + call) % len(names)]
            got = run(model, name, *table[name], x)
            for a, b in zip(got, expected[name], strict=True):
                if not torch.allclose(a, b, rtol=1e-5, atol=1e-7):
                    failures.append(f"worker {worker} call {call}: {name}")

    def plain_passes() -> None:
        start.wait()
        for call in range(CALLS):
            leaf = x.clone().requires_grad_()
            out = model(leaf)
            grad = torch.autograd.grad(out[[0, 1, 2], TARGET].sum(), leaf)[0]
            if not torch.allclose(grad, plain, rtol=1e-5, atol=1e-7):
                failures.append(f"plain gradient, call {call}")
            model(x).sum().backward()  # accumulates into the parameters' .grad

    threads = [threading.Thread(target=attribute_repeatedly, args=(i,)) for i in range(THREADS)]
    threads.append(threading.Thread(target=plain_passes))
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    for name, parameter in model.named_parameters():
        accumulated = one_pass[name].clone()
        for _ in range(CALLS - 1):  # the same additions, in the same order, as autograd's
            accumulated += one_pass[name]
        torch.testing.assert_close(parameter.grad, accumulated, rtol=0, atol=0)
    assert torch._C._len_torch_function_stack() == 0
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks

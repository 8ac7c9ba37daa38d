"""Concurrent calls on one shared model, with different methods, from several threads,
all give the sequential result; a thread running plain backward passes at the same time
keeps getting the plain gradient (the override never leaks across threads)."""

from __future__ import annotations

import threading

import torch

import attrkit
from tests import models
from tests.cases import METHODS
from tests.reference import reference_attribution

THREADS = 6
CALLS = 15


def test_concurrent_mixed_methods_and_plain_backward_on_one_model():
    torch.manual_seed(0)
    model = models.TinyInception().eval()  # functional, in-place ReLUs in parallel branches
    x = torch.randn(3, 3, 6, 6)
    expected = {m: getattr(attrkit, m)(model).attribute(x, target=[0, 2, 4]) for m in METHODS}
    plain = reference_attribution(model, (x,), [0, 2, 4], (), rule=None)[0]
    assert not torch.allclose(expected["Deconvolution"], expected["GuidedBackprop"])

    start = threading.Barrier(THREADS + 1)
    failures: list[str] = []

    def attribute_repeatedly(worker: int) -> None:
        start.wait()
        for call in range(CALLS):
            method = METHODS[(worker + call) % 2]
            got = getattr(attrkit, method)(model).attribute(x, target=[0, 2, 4])
            if not torch.allclose(got, expected[method], rtol=1e-5, atol=1e-7):
                failures.append(f"worker {worker} call {call} ({method})")

    def plain_backward_repeatedly() -> None:
        start.wait()
        for call in range(CALLS):
            leaf = x.clone().requires_grad_()
            out = model(leaf)
            grad = torch.autograd.grad(out[[0, 1, 2], [0, 2, 4]].sum(), leaf)[0]
            if not torch.allclose(grad, plain, rtol=1e-5, atol=1e-7):
                failures.append(f"plain backward call {call}")

    threads = [threading.Thread(target=attribute_repeatedly, args=(i,)) for i in range(THREADS - 1)]
    threads.append(threading.Thread(target=plain_backward_repeatedly))
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []


def test_one_explainer_object_shared_by_threads():
    model = models.ReusedReluParallel().eval()
    explainer = attrkit.Deconvolution(model)
    inputs = [torch.randn(4, 5, generator=torch.Generator().manual_seed(i)) for i in range(THREADS)]
    expected = [explainer.attribute(x, target=1) for x in inputs]
    results: list[torch.Tensor | None] = [None] * THREADS

    def work(i: int) -> None:
        for _ in range(CALLS):
            results[i] = explainer.attribute(inputs[i], target=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for got, want in zip(results, expected, strict=True):
        torch.testing.assert_close(got, want)


LAYER_METHODS = {
    "NeuronDeconvolution": {"neuron_selector": (1, 0, 0)},
    "NeuronGuidedBackprop": {"neuron_selector": (2, 1, 1)},
    "GuidedGradCam": {"target": [0, 2, 4]},
    "LayerGradCam": {"target": [1, 1, 1]},
}


def test_layer_methods_concurrently_with_plain_forwards():
    """Layer methods hook the layer for the duration of a call; the hook ignores other
    threads, so concurrent calls and plain forward passes do not see each other."""
    torch.manual_seed(0)
    model = models.TinyInception().eval()
    layer = model.branch5[2].conv
    x = torch.randn(3, 3, 6, 6)
    expected = {
        m: getattr(attrkit, m)(model, layer).attribute(x, **kw) for m, kw in LAYER_METHODS.items()
    }
    with torch.no_grad():
        plain_output = model(x)
    start = threading.Barrier(len(LAYER_METHODS) + 1)
    failures: list[str] = []

    def attribute_repeatedly(method: str) -> None:
        start.wait()
        for call in range(CALLS):
            got = getattr(attrkit, method)(model, layer).attribute(x, **LAYER_METHODS[method])
            if not torch.allclose(got, expected[method], rtol=1e-5, atol=1e-7):
                failures.append(f"{method} call {call}")

    def forward_repeatedly() -> None:
        start.wait()
        for call in range(CALLS):
            with torch.no_grad():
                if not torch.allclose(model(x), plain_output, rtol=1e-5, atol=1e-7):
                    failures.append(f"plain forward call {call}")

    threads = [threading.Thread(target=attribute_repeatedly, args=(m,)) for m in LAYER_METHODS]
    threads.append(threading.Thread(target=forward_repeatedly))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert not layer._forward_hooks
    assert not layer._forward_pre_hooks

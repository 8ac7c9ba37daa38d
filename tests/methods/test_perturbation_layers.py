"""The layer and neuron perturbation methods (Captum's computation, which registers forward
hooks on the layer) on a model other threads use at the same time: they run on a private
structural copy of the model (attrkit/core/replica.py, tests/core/test_replica.py), so
that another thread's forward passes and attributions never run their hooks and the model
keeps exactly the hooks it has, while hooks the caller registered still run, as they do
in Captum's class on the model itself.

Each test runs the three methods (:data:`CALLS`); the overlap of two threads is forced,
not hoped for: the attributing thread stops inside its call, in a forward hook of the
model, while the other thread runs its forward passes and another method.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

import captum.attr
import pytest
import torch
from torch import nn

import attrkit
from tests import models

#: One input example is 3 x 8 x 8; the neuron feature ablation groups its pixels in 4.
MASK = (torch.arange(64).reshape(1, 1, 8, 8) // 16).long()

#: (method, ``attribute`` arguments): a neuron of the layer's 8 x 2 x 2 output, a target.
CALLS = [
    pytest.param("layer_feature_ablation", {"target": 1}, id="layer_feature_ablation"),
    pytest.param("layer_feature_permutation", {"target": 1}, id="layer_feature_permutation"),
    pytest.param(
        "neuron_feature_ablation",
        {"neuron_selector": (3, 1, 0), "feature_mask": MASK},
        id="neuron_feature_ablation",
    ),
]


def model_and_layer() -> tuple[nn.Module, nn.Module]:
    """A small CNN (BatchNorm buffers, an in-place ReLU) in eval mode and its second
    convolution, whose output is 8 x 2 x 2."""
    torch.manual_seed(0)
    model = models.SmallCNN().eval()
    return model, model.features[4]


def inputs(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def attribute(name: str, model: nn.Module, layer: nn.Module, x: torch.Tensor, kwargs: dict) -> Any:
    """attrkit's result, with the random draws (the permutation) seeded."""
    torch.manual_seed(0)
    return attrkit.create(name, model, layer).attribute(x, **kwargs)


def hooks(model: nn.Module) -> dict[str, tuple[Any, ...]]:
    """Every hook of every module of ``model`` (by qualified name)."""
    kinds = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks_with_kwargs",
        "_backward_hooks",
        "_backward_pre_hooks",
    )
    return {
        name: tuple(tuple(getattr(module, kind).items()) for kind in kinds)
        for name, module in model.named_modules(remove_duplicate=False)
    }


def the_other_threads_work(model: nn.Module, layer: nn.Module) -> Callable[[], list[Any]]:
    """What the other thread does: a plain forward pass, another method (a layer
    Grad-CAM of the same layer) and a plain forward pass again, on a batch of 2."""
    y = inputs(2, seed=7)

    def work() -> list[Any]:
        with torch.no_grad():
            first = model(y)
        cam = attrkit.LayerGradCam(model, layer).attribute(y, target=2)
        with torch.no_grad():
            return [first, cam, model(y)]

    return work


def differing(names: Any, got: Any, expected: Any) -> list[str]:
    """The names of the results in ``got`` that differ from ``expected``."""
    return [
        name
        for name, a, b in zip(names, got, expected, strict=True)
        if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    ]


@pytest.mark.parametrize(("name", "kwargs"), CALLS)
def test_other_threads_forward_passes_and_methods_meanwhile_are_plain(name, kwargs):
    """One thread calls the method repeatedly; in each call, at its first, second, ...
    forward pass (when Captum's hooks are registered), it waits inside a forward hook of
    the model while the other thread runs plain forward passes and a layer Grad-CAM of
    the same layer, and looks at the model's hooks. Every result equals its sequential
    value, and the model has only the caller's hook throughout."""
    model, layer = model_and_layer()
    x = inputs(3, seed=6)
    work = the_other_threads_work(model, layer)
    expected = attribute(name, model, layer, x, kwargs)
    expected_work = work()

    rounds = 4
    meet = threading.Barrier(2, timeout=60)
    forwards = [0]  # forward passes of the attributing thread in the current call
    state: dict[str, Any] = {}

    def rendezvous(module: nn.Module, args: Any, output: Any) -> None:
        if threading.current_thread() is not state["attributing"]:
            return
        forwards[0] += 1
        if forwards[0] == state["round"] + 1:
            meet.wait()  # the other thread works now, while this call is inside Captum's
            meet.wait()
            state["met"] = True

    model.register_forward_hook(rendezvous)
    before = hooks(model)
    failures: list[str] = []

    def attribute_repeatedly() -> None:
        for round_ in range(rounds):
            state.update(round=round_, met=False)
            forwards[0] = 0
            try:
                got = attribute(name, model, layer, x, kwargs)
                if not torch.allclose(got, expected, rtol=1e-5, atol=1e-6):
                    failures.append(f"round {round_}: the attribution differs")
            except Exception as error:  # (reported below)
                failures.append(f"round {round_}: the attribution raised {error!r}")
                if not state["met"]:  # the other thread waits for this one
                    meet.abort()
                    return

    def forward_meanwhile() -> None:
        for round_ in range(rounds):
            try:
                meet.wait()
                try:
                    if hooks(model) != before:
                        failures.append(f"round {round_}: the model's hooks changed")
                    names = ("forward", "Grad-CAM", "forward")
                    for what in differing(names, work(), expected_work):
                        failures.append(f"round {round_}: the other thread's {what} differs")
                except Exception as error:
                    failures.append(f"round {round_}: the other thread raised {error!r}")
                meet.wait()
            except threading.BrokenBarrierError:
                failures.append(f"round {round_}: the threads did not meet")
                return

    threads = [
        threading.Thread(target=attribute_repeatedly),
        threading.Thread(target=forward_meanwhile),
    ]
    state["attributing"] = threads[0]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert hooks(model) == before


def test_two_layer_methods_on_one_model_and_one_explainer_at_once():
    """Two threads share one model and one method object (a layer feature ablation);
    each of the first thread's calls stops inside while the second runs a whole call of
    the shared method and a neuron feature ablation of another layer."""
    model, layer = model_and_layer()
    other = model.features[0]
    x, y = inputs(3, seed=6), inputs(2, seed=7)
    ablation = attrkit.LayerFeatureAblation(model, layer)
    neuron = attrkit.NeuronFeatureAblation(model, other)
    neuron_kwargs = {"neuron_selector": (1, 3, 3), "feature_mask": MASK}
    expected = ablation.attribute(x, target=1)
    expected_other = (ablation.attribute(y, target=0), neuron.attribute(y, **neuron_kwargs))

    meet = threading.Barrier(2, timeout=60)
    entered = threading.Event()
    failures: list[str] = []

    def rendezvous(module: nn.Module, args: Any, output: Any) -> None:
        if threading.current_thread() is first and not entered.is_set():
            entered.set()
            meet.wait()
            meet.wait()

    model.register_forward_hook(rendezvous)

    def run_first() -> None:
        for call in range(3):
            entered.clear()
            try:
                got = ablation.attribute(x, target=1)
                if not torch.allclose(got, expected, rtol=1e-5, atol=1e-6):
                    failures.append(f"call {call}: the first thread's attribution differs")
            except Exception as error:  # (reported below)
                failures.append(f"call {call}: the first thread raised {error!r}")
                if not entered.is_set():
                    meet.abort()
                    return

    def run_second() -> None:
        for call in range(3):
            try:
                meet.wait()
                try:
                    got = (ablation.attribute(y, target=0), neuron.attribute(y, **neuron_kwargs))
                    for what in differing(("layer", "neuron"), got, expected_other):
                        failures.append(f"call {call}: the second thread's {what} differs")
                except Exception as error:
                    failures.append(f"call {call}: the second thread raised {error!r}")
                meet.wait()
            except threading.BrokenBarrierError:
                failures.append(f"call {call}: the threads did not meet")
                return

    first = threading.Thread(target=run_first)
    second = threading.Thread(target=run_second)
    for thread in (first, second):
        thread.start()
    for thread in (first, second):
        thread.join(timeout=300)
    assert not first.is_alive()
    assert not second.is_alive()
    assert failures == []


def _captum(name: str, model: nn.Module, layer: nn.Module, x: torch.Tensor, kwargs: dict) -> Any:
    """Captum's class on the model itself (its LayerFeaturePermutation cannot take a
    target, tests/methods/test_perturbation.py: it runs on the targeted output)."""
    kwargs = dict(kwargs)
    forward: Callable[..., Any] = model
    if name == "layer_feature_permutation":
        target = kwargs.pop("target")
        forward = lambda inputs: model(inputs)[:, target]  # noqa: E731
    captum_class = getattr(captum.attr, attrkit.method_info(name).captum_name)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return captum_class(forward, layer).attribute(x, **kwargs)


@pytest.mark.parametrize(("name", "kwargs"), CALLS)
def test_equals_captum_and_runs_the_callers_hooks_as_captum_does(name, kwargs):
    """With hooks of the caller on the model and on the layer (one doubles the layer's
    output), attrkit's result equals Captum's class on the model itself, the hooks run as
    many times as there, and afterwards the model has exactly the caller's hooks."""
    model, layer = model_and_layer()
    x = inputs(3, seed=6)
    runs = {"layer": 0, "pre": 0}

    def double(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        runs["layer"] += 1
        return output * 2

    def count(module: nn.Module, args: Any) -> None:
        runs["pre"] += 1

    layer.register_forward_hook(double)
    model.register_forward_pre_hook(count)
    before = hooks(model)
    theirs = _captum(name, model, layer, x, kwargs)
    their_runs = dict(runs)
    runs.update(layer=0, pre=0)
    ours = attribute(name, model, layer, x, kwargs)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert runs == their_runs
    assert runs["layer"] > 1
    assert hooks(model) == before


@pytest.mark.parametrize(("name", "kwargs"), CALLS)
def test_a_function_of_the_model_runs_as_in_captum(name, kwargs):
    """A function that calls the model (no copy to make) and a model that reaches its
    layer through a closure (the copy's layer never runs): Captum's computation on the
    model itself, as Captum's class."""
    model, layer = model_and_layer()
    x = inputs(3, seed=6)
    before = hooks(model)
    expected = attribute(name, model, layer, x, kwargs)
    function = lambda inputs: model(inputs)  # noqa: E731
    torch.testing.assert_close(attribute(name, function, layer, x, kwargs), expected)  # type: ignore[arg-type]

    class Closure(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.run = lambda inputs: model(inputs)  # the caller's model, not the copy's

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return self.run(inputs)

    closure = Closure()
    torch.testing.assert_close(attribute(name, closure, layer, x, kwargs), expected)
    assert hooks(model) == before

"""attrkit inside a user's training step (train mode, dropout active, parameters holding
``.grad``, an optimizer about to step): the call changes neither the gradients, nor the
modules' modes, nor the random generators, and the optimizer step afterwards gives the
same parameters as without the call. The documented exceptions are tested as documented:
NoiseTunnel draws its noise from torch's global generator (as Captum's does), and
BatchNorm's running statistics move in train mode exactly as in plain forward passes of
what the method feeds the model."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import captum.attr
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import attrkit
from tests import models
from tests.tester import (
    QUICK_OPTIONS,
    computed_by_attrkit,
    draws_noise,
    info,
    method_params,
    quick_call,
    quick_callable,
)

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def arguments(name: str, model: nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
    call = quick_call(
        name,
        layer=model.features[4],
        target=[0, 1, 2, 3],
        neuron_selector=(1, 1, 1),
        options={**QUICK_OPTIONS, "nt_samples": 3, "stdevs": 0.2},
        image_shape=(3, 12, 12),
    )
    return call.init, call.kwargs


def rng_states(device: str) -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if device == "cuda":
        states.append(torch.cuda.get_rng_state())
    return states


def set_rng_states(states: list[torch.Tensor]) -> None:
    torch.set_rng_state(states[0])
    if len(states) > 1:
        torch.cuda.set_rng_state(states[1])


def train(name: str | None, device: str, steps: int = 2) -> tuple[nn.Module, list[str]]:
    """``steps`` SGD steps of SmallCNN in train mode; with ``name``, that method attributes
    the batch between each backward pass and the optimizer step. Returns the model and
    what the call changed.

    The perturbation family is Captum's computation: its forward passes draw dropout's
    random numbers (and the method's own samples) from the global generators, as Captum's
    do, and leave them drawn; for those methods the generators are put back after the call
    (not counted as a change), so that the optimizer steps see the same dropout masks."""
    torch.manual_seed(0)
    model = models.SmallCNN().to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 3, 12, 12, device=device)
    labels = torch.tensor([0, 1, 2, 3], device=device)
    changed: list[str] = []
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        if name is not None:
            grads = {n: (p.grad, p.grad.clone()) for n, p in model.named_parameters()}
            modes = [m.training for m in model.modules()]
            rng = rng_states(device)
            init, kwargs = arguments(name, model)
            attrkit.create(name, model, **init).attribute(x, **kwargs)
            for n, p in model.named_parameters():
                if p.grad is not grads[n][0] or not torch.equal(p.grad, grads[n][1]):
                    changed.append(f".grad of {n}")
            if [m.training for m in model.modules()] != modes:
                changed.append("a module's training flag")
            if any(not torch.equal(a, b) for a, b in zip(rng, rng_states(device), strict=True)):
                if computed_by_attrkit(info(name)):
                    changed.append("the random generator")
                else:
                    set_rng_states(rng)
        optimizer.step()
    return model, changed


@pytest.mark.parametrize("device", DEVICES)
# (LimeBase and DataLoaderAttribution, which a quick call cannot build, are left out.)
@pytest.mark.parametrize("name", method_params(lambda m: quick_callable(m) and not draws_noise(m)))
def test_attribution_inside_a_training_step_changes_nothing(name, device):
    with_call, changed = train(name, device)
    assert changed == []
    without_call, _ = train(None, device)
    for (n, a), b in zip(with_call.named_parameters(), without_call.parameters(), strict=True):
        assert torch.equal(a, b), n


@pytest.mark.parametrize("device", DEVICES)
def test_noise_tunnel_inside_a_training_step_only_draws_its_noise(device):
    """NoiseTunnel changes no gradient and no mode; the global generator advances by
    exactly its noise (the wrapped method's dropout draws are undone, as in every call)."""
    _, changed = train("noise_tunnel", device, steps=1)
    assert changed == ["the random generator"]
    torch.manual_seed(0)
    model = models.SmallCNN().to(device).train()
    x = torch.randn(4, 3, 12, 12, device=device)
    init, kwargs = arguments("noise_tunnel", model)
    start = rng_states(device)
    attrkit.create("noise_tunnel", model, **init).attribute(x, **kwargs)
    after_call = rng_states(device)
    for generator_state, device_name in zip(start, ("cpu", "cuda"), strict=False):
        (torch.cuda if device_name == "cuda" else torch).set_rng_state(generator_state)
    torch.randn((4 * kwargs["nt_samples"], *x.shape[1:]), dtype=x.dtype, device=device)
    for a, b in zip(after_call, rng_states(device), strict=True):
        assert torch.equal(a, b)


def test_noise_tunnel_draws_the_same_noise_as_captum():
    """Same seed, same noise: attrkit's NoiseTunnel and Captum's give the same result and
    leave the generator in the same state (eval mode, where Captum's wrapped method
    draws nothing)."""
    torch.manual_seed(0)
    model = models.SmallCNN().eval()
    x = torch.randn(4, 3, 12, 12)
    options = {"nt_samples": 4, "stdevs": 0.3, "target": 1}
    torch.manual_seed(1)
    ours = attrkit.NoiseTunnel(attrkit.Saliency(model)).attribute(x, **options)
    our_state = torch.get_rng_state()
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = captum.attr.NoiseTunnel(captum.attr.Saliency(model)).attribute(
            x.clone(), **options
        )
    assert torch.equal(torch.get_rng_state(), our_state)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("name", method_params(quick_callable))
def test_batch_norm_statistics_move_as_in_plain_forward_passes(name):
    """In train mode every forward pass updates BatchNorm's running statistics, as a plain
    forward pass of the same batch would: replaying what the method fed the model
    through a copy gives the same statistics, bit for bit."""
    torch.manual_seed(0)
    model = models.SmallCNN().train()
    twin = copy.deepcopy(model)
    x = torch.randn(4, 3, 12, 12)
    fed: list[torch.Tensor] = []
    handle = model.register_forward_pre_hook(lambda m, args: fed.append(args[0].detach().clone()))
    try:
        init, kwargs = arguments(name, model)
        attrkit.create(name, model, **init).attribute(x, **kwargs)
    finally:
        handle.remove()
    assert fed
    with torch.no_grad():
        for batch in fed:
            twin(batch)
    for (n, a), b in zip(model.named_buffers(), twin.buffers(), strict=True):
        assert torch.equal(a, b), n
    moved = model.features[1].running_mean
    assert not torch.equal(moved, models.SmallCNN().features[1].running_mean)

"""On a CUDA device, attrkit gives the same results as on the CPU's terms: Captum's result
where Captum follows the definition, the definition-based reference everywhere, for
targets given on either device; and it leaves the device as it found it (random number
generators, allocated memory, hooks). Skipped where no CUDA device exists."""

from __future__ import annotations

import gc
import threading
from typing import Any

import captum.attr
import pytest
import torch
from torch import nn

import attrkit
from attrkit.core.replica import model_replica
from tests import models
from tests.cases import (
    ALL_CASES,
    DEFINITION_CASES,
    LAYERS,
    METHOD_SPECS,
    METHODS,
    RULE_OF,
    Case,
    MethodSpec,
    captum_agrees_with,
    first_target,
    selections,
)
from tests.helpers import as_tuple, assert_all_close
from tests.reference import reference_attribution
from tests.tester import method_params, needs_layer, quick_call, wraps_a_method

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _full_float32():
    """cuDNN convolutions in full float32 (not TF32), so that GPU and CPU results agree
    to float32 rounding."""
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = allowed


def on_cuda(value: Any) -> Any:
    """``value`` with every tensor in it (also inside tuples) moved to the GPU."""
    if isinstance(value, torch.Tensor):
        return value.to(CUDA)
    if isinstance(value, tuple):
        return tuple(on_cuda(v) for v in value)
    return value


def _run(library: Any, spec: MethodSpec, case: Case, selection: Any) -> Any:
    model = case.build().to(CUDA)
    inputs = case.attribute_inputs(on_cuda(case.inputs()))
    kwargs = {
        "additional_forward_args": on_cuda(case.extra_args()),
        **on_cuda_kwargs(spec.kwargs(torch.float32, case)),
    }
    if spec.cls == "NoiseTunnel":
        kwargs["stdevs"] = 0.0  # the libraries draw their noise differently on a GPU
    return spec.attribute(library, model, LAYERS.get(case.id), inputs, selection, **kwargs)


PARITY = [
    pytest.param(spec, case, selections(spec, case)[0][1], id=f"{spec.id}-{case.id}")
    for spec in METHOD_SPECS
    for case in ALL_CASES
    if captum_agrees_with(case, spec) and spec.runs_on(case) and selections(spec, case)
]


def on_cuda_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments with their tensors (feature masks, ...) on the GPU."""
    return {key: on_cuda(value) for key, value in kwargs.items()}


@pytest.mark.parametrize(("spec", "case", "selection"), PARITY)
def test_matches_captum_on_cuda(spec, case, selection):
    ours = _run(attrkit, spec, case, selection)
    theirs = _run(captum.attr, spec, case, selection)
    if spec.attribute_kwargs.get("return_convergence_delta"):
        (ours, our_delta), (theirs, their_delta) = ours, theirs
        assert our_delta.device.type == "cuda"
        torch.testing.assert_close(our_delta, their_delta, rtol=1e-5, atol=1e-4)
    for a, b in zip(as_tuple(ours), as_tuple(theirs), strict=True):
        assert a.device.type == "cuda"
        if b.numel():
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # kernel order


DEFINITION = [
    pytest.param(case, method, id=f"{case.id}-{method}")
    for case in DEFINITION_CASES
    for method in METHODS
]


@pytest.mark.parametrize(("case", "method"), DEFINITION)
def test_matches_definition_on_cuda(case, method):
    """The ReLU usages where Captum deviates: functional, reused, created in forward, on
    the input in place..."""
    inputs, extra = on_cuda(case.inputs()), on_cuda(case.extra_args())
    target = first_target(case)
    expected = reference_attribution(
        case.build_reference().to(CUDA),
        inputs,
        target,
        on_cuda(case.extra_tuple()),
        RULE_OF[method],
    )
    ours = getattr(attrkit, method)(case.build().to(CUDA)).attribute(
        case.attribute_inputs(inputs), target=target, additional_forward_args=extra
    )
    assert_all_close(as_tuple(ours), expected)


#: The registered methods built from the model alone that take a target.
PLAIN_CALLS = method_params(
    lambda m: m.takes_target and not needs_layer(m) and not wraps_a_method(m)
)


@pytest.mark.parametrize("method", PLAIN_CALLS)
@pytest.mark.parametrize(
    "make_target",
    [
        pytest.param(lambda labels: labels, id="cpu-tensor"),
        pytest.param(lambda labels: labels.to(CUDA), id="cuda-tensor"),
        pytest.param(lambda labels: labels.tolist(), id="list"),
        pytest.param(lambda labels: labels - 5, id="cpu-tensor-negative"),
        pytest.param(lambda labels: torch.tensor(3, device=CUDA), id="cuda-0d"),
    ],
)
def test_targets_on_either_device(method, make_target):
    """Per-example targets given as CPU tensors, CUDA tensors or lists select the same
    values of a CUDA model's output (and the result equals the CPU model's)."""
    torch.manual_seed(0)
    model = models.SmallCNN().eval()
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([3, 0, 4, 1])
    target = make_target(labels)
    expected_target = target.cpu() if isinstance(target, torch.Tensor) else target
    call = quick_call(method)
    expected = call.run(model, x, target=expected_target)
    ours = call.run(model.to(CUDA), x.to(CUDA), target=target)
    assert ours.device.type == "cuda"
    torch.testing.assert_close(ours.cpu(), expected, rtol=1e-4, atol=1e-5)


class DropoutOnTheGpu(nn.Module):
    """Dropout in train mode; the input may arrive on the CPU and be moved in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x.to(CUDA)))
        return self.fc2(nn.functional.dropout(h, 0.5, training=self.training))


@pytest.mark.parametrize("method", PLAIN_CALLS)
@pytest.mark.parametrize("input_device", ["cpu", "cuda"])
def test_random_streams_are_left_as_they_were(method, input_device):
    """Dropout draws from the GPU's generator: its state (and the CPU's) is restored,
    also when the inputs are on the CPU and only the model is on the GPU."""
    model = DropoutOnTheGpu().to(CUDA).train()
    x = torch.randn(5, 6, device=input_device)
    cpu_state, cuda_state = torch.get_rng_state(), torch.cuda.get_rng_state()
    quick_call(method).run(model, x, target=1)
    assert torch.equal(torch.get_rng_state(), cpu_state)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_state)


@pytest.mark.parametrize("method", PLAIN_CALLS)
def test_no_residue_on_the_device(method):
    """After the call and its result are gone, the GPU holds what it held before: no
    graph, saved tensor or clone outlives the call; no hook or mode is left behind."""
    torch.manual_seed(0)
    model = models.SmallCNN().to(CUDA).eval()
    x = torch.randn(8, 3, 12, 12, device=CUDA)
    call = quick_call(method)
    explainer = call.explainer(model)
    explainer.attribute(x, **{**call.kwargs, "target": 2})  # warm-up: cuDNN workspaces, lazy state
    gc.collect()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    hooks = [(m._forward_hooks.copy(), m._backward_hooks.copy()) for m in model.modules()]
    result = explainer.attribute(x, **{**call.kwargs, "target": 2})
    assert result.device.type == "cuda"
    del result
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before
    assert hooks == [(m._forward_hooks, m._backward_hooks) for m in model.modules()]
    assert torch._C._len_torch_function_stack() == 0


def test_two_threads_on_one_gpu_model():
    """Deconvolution in one thread, guided backpropagation in another, on one model
    whose one nn.ReLU serves two branches (the backward passes run on the device's
    autograd thread, the forward passes in the callers')."""
    torch.manual_seed(0)
    model = models.ReusedReluParallel().to(CUDA).eval()
    x = torch.randn(6, 5, device=CUDA)
    expected = {m: reference_attribution(model, (x,), 1, (), RULE_OF[m])[0] for m in METHODS}
    start = threading.Barrier(len(METHODS))
    results: dict[str, list[torch.Tensor]] = {}

    def attribute_repeatedly(method: str) -> None:
        explainer = getattr(attrkit, method)(model)
        start.wait()
        results[method] = [explainer.attribute(x, target=1) for _ in range(20)]

    threads = [threading.Thread(target=attribute_repeatedly, args=(m,)) for m in METHODS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    for method in METHODS:
        for output in results[method]:
            torch.testing.assert_close(output, expected[method])


def test_layer_perturbation_uses_the_models_own_gpu_tensors():
    """The layer and neuron perturbation methods run Captum's hooks on a structural copy
    of the model (attrkit/core/replica.py): on the GPU too, its tensors are the model's
    own (no copy, no transfer, no memory), and the result is Captum's on the model."""
    torch.manual_seed(0)
    model = models.SmallCNN().eval().to(CUDA)
    layer = model.features[4]
    x = torch.randn(3, 3, 8, 8, device=CUDA)
    before = torch.cuda.memory_allocated()
    replica = model_replica(model, [layer])
    assert replica is not None
    assert torch.cuda.memory_allocated() == before
    tensors = ([*module.parameters(), *module.buffers()] for module in (replica.model, model))
    for ours, theirs in zip(*tensors, strict=True):
        assert ours.device == theirs.device
        assert ours.data_ptr() == theirs.data_ptr()
    ours = attrkit.LayerFeatureAblation(model, layer).attribute(x, target=1)
    theirs = captum.attr.LayerFeatureAblation(model, layer).attribute(x, target=1)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)

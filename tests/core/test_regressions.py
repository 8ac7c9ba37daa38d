"""Regression tests for what the reliability work found in the core (bad-input fuzzing in
test_fuzz_inputs.py, and the probes written while building it): each is named after what
it caught and runs on the smallest call that shows it. docs/reliability.rst lists them;
those of one method family are in tests/methods/test_<family>.py, those of layers and
neuron selectors in tests/core/test_layers.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attrkit
from tests import models
from tests.models import BATCH, IMAGE, FuzzNet
from tests.tester import method_params, quick_call, quick_callable

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

MODEL = FuzzNet().eval()
X = torch.randn(BATCH, *IMAGE, generator=torch.Generator().manual_seed(0))


#: Every method a quick call can build (not LimeBase or DataLoaderAttribution, whose
#: constructor arguments are the caller's); the perturbation family shares the core's check.
@pytest.mark.parametrize("name", method_params(quick_callable))
def test_regression_meta_device_inputs_raise_value_error(name):
    """Was: a RuntimeError from autograd ("Tensor on device cpu is not on the expected
    device meta"); in the perturbation family, Captum's NotImplementedError or
    RuntimeError ("Tensor.item() cannot be called on meta tensors")."""
    call = quick_call(name, layer="conv", target=1, neuron_selector=(0, 0, 0), image_shape=IMAGE)
    with pytest.raises(ValueError, match=r"`inputs` is on the meta device and holds no values"):
        call.run(MODEL, X.to("meta"))


def test_regression_sparse_inputs_raise_type_error():
    """Was: a RuntimeError from IntegratedGradients ("add(sparse, dense) is not
    supported")."""
    with pytest.raises(TypeError, match=r"`inputs` is a torch.sparse_coo tensor; pass a dense"):
        attrkit.IntegratedGradients(MODEL).attribute(X.to_sparse(), target=1)


@pytest.mark.parametrize(
    ("target", "pattern"),
    [
        pytest.param([0, 2**70], r"`target\[1\]` = 1180591620717411303424", id="list"),
        pytest.param(
            [(0,), (-(2**64),)], r"`target\[1\]` = \(-18446744073709551616,\)", id="tuples"
        ),
    ],
)
def test_regression_target_list_index_beyond_int64_raises_index_error(target, pattern):
    """Was: ValueError("Overflow when unpacking long long"), naming no argument."""
    with pytest.raises(IndexError, match=pattern + r": index out of range"):
        attrkit.Saliency(MODEL).attribute(X, target=target)


def test_regression_sparse_target_raises_type_error():
    """Was: RuntimeError("reshape is not implemented for sparse tensors")."""
    with pytest.raises(TypeError, match=r"`target` must be a dense tensor, got a torch.sparse_coo"):
        attrkit.Saliency(MODEL).attribute(X, target=torch.tensor([1, 2]).to_sparse())


@pytest.mark.parametrize("name", ["saliency", "layer_grad_cam"])
def test_regression_sparse_model_output_raises_type_error(name):
    """An additional argument that turns the model's output sparse. Was:
    NotImplementedError ("Could not run 'aten::fill_.Scalar' ... 'SparseCPU' backend")."""
    layer = {"layer": MODEL.conv} if name == "layer_grad_cam" else {}
    scale = torch.ones(BATCH, 1).to_sparse()
    with pytest.raises(TypeError, match=r"the attributed output is a torch.sparse_coo tensor"):
        attrkit.create(name, MODEL, **layer).attribute(X, target=1, additional_forward_args=scale)


class _MetaOutput(nn.Module):
    def forward(self, x):
        return x.sum(1, keepdim=True).to("meta")


def test_regression_meta_model_output_raises_type_error():
    """Was: RuntimeError ("Tensor on device cpu is not on the expected device meta")."""
    with pytest.raises(TypeError, match=r"the attributed output is .* on the meta device"):
        attrkit.Saliency(_MetaOutput()).attribute(torch.randn(2, 3))


class _SparseScale(FuzzNet):
    """Takes a sparse per-example scale (as a graph network takes a sparse matrix)."""

    def forward(self, x, scale):
        return super().forward(x) * scale.to_dense()


@pytest.mark.parametrize("name", ["integrated_gradients", "noise_tunnel"])
def test_regression_sparse_additional_argument_is_expanded(name):
    """The per-example rows of a sparse additional argument are picked for the expanded
    batch (IntegratedGradients' path points, NoiseTunnel's noisy copies), as for a dense
    one. Was: NotImplementedError ("Could not run 'aten::index.Tensor' ... 'SparseCPU'
    backend")."""
    model = _SparseScale().eval()
    scale = torch.tensor([[2.0], [3.0]])
    explainer = attrkit.create(name, model)
    options = {"n_steps": 2} if name == "integrated_gradients" else {"stdevs": 0.0}
    sparse = explainer.attribute(X, target=1, additional_forward_args=scale.to_sparse(), **options)
    dense = explainer.attribute(X, target=1, additional_forward_args=scale, **options)
    torch.testing.assert_close(sparse, dense)
    unscaled = explainer.attribute(X, target=1, additional_forward_args=torch.ones(2, 1), **options)
    torch.testing.assert_close(dense, unscaled * scale.view(2, 1, 1, 1))


def test_regression_target_list_of_empty_tuples_raises_value_error():
    """Found by the long run. Was: IndexError("list index out of range"), naming no
    argument."""
    with pytest.raises(ValueError, match=r"`target` is required: the model.s output has 4 values"):
        attrkit.Saliency(MODEL).attribute(X, target=[(), ()])


def test_regression_eval_mode_call_does_not_rewind_another_threads_random_draws():
    """Restoring the process-wide random generator after a call rewound the draws another
    thread made meanwhile; a model in eval mode draws nothing, so its calls leave the
    generator alone (in train mode the state is still restored: test_training_step.py)."""
    import threading
    import time

    model = models.SmallCNN().eval()
    x = torch.randn(2, 3, 12, 12)
    explainer = attrkit.GuidedBackprop(model)
    torch.manual_seed(123)
    expected = [int(torch.randint(0, 2**62, (1,))) for _ in range(300)]
    torch.manual_seed(123)
    drawn: list[int] = []
    running = threading.Event()

    def draw() -> None:
        running.set()
        for _ in range(300):
            drawn.append(int(torch.randint(0, 2**62, (1,))))
            time.sleep(0.0005)  # let attribution calls start and end in between

    thread = threading.Thread(target=draw)
    thread.start()
    running.wait()
    while thread.is_alive():
        explainer.attribute(x, target=1)
    thread.join()
    assert drawn == expected

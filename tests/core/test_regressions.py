"""Regression tests for what the reliability work found (bad-input fuzzing in
test_fuzz_inputs.py, and the probes written while building it): each is named after what
it caught and runs on the smallest call that shows it. docs/reliability.rst lists them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import attrkit
from tests import models
from tests.helpers import quick_call
from tests.models import BATCH, IMAGE, FuzzNet

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

MODEL = FuzzNet().eval()
X = torch.randn(BATCH, *IMAGE, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", attrkit.available_methods())
def test_regression_meta_device_inputs_raise_value_error(name):
    """Was: a RuntimeError from autograd ("Tensor on device cpu is not on the expected
    device meta")."""
    init, kwargs = quick_call(name, layer=MODEL.conv, target=1, neuron_selector=(0, 0, 0))
    with pytest.raises(ValueError, match=r"`inputs` is on the meta device and holds no values"):
        attrkit.create(name, MODEL, **init).attribute(X.to("meta"), **kwargs)


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


@pytest.mark.parametrize("mode", ["linear", "trilinear"])
def test_regression_interpolate_mode_for_other_dimensions_raises_value_error(mode):
    """Was: NotImplementedError("Got 4D input, but linear mode needs 3D input")."""
    with pytest.raises(ValueError, match=rf"`interpolate_mode` '{mode}' upsamples maps with"):
        attrkit.GuidedGradCam(MODEL, MODEL.conv).attribute(X, target=1, interpolate_mode=mode)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        pytest.param(
            lambda: attrkit.GuidedGradCam(MODEL, MODEL.conv).attribute(
                X, target=1, interpolate_mode=np.zeros(2)
            ),
            r"`interpolate_mode` must be one of",
            id="interpolate_mode",
        ),
        pytest.param(
            lambda: attrkit.NoiseTunnel(attrkit.Saliency(MODEL)).attribute(
                X, target=1, nt_type=np.zeros(2)
            ),
            r"`nt_type` must be one of",
            id="nt_type",
        ),
        pytest.param(
            lambda: attrkit.IntegratedGradients(MODEL).attribute(X, target=1, method=np.zeros(2)),
            r"`method` must be one of",
            id="method",
        ),
    ],
)
def test_regression_option_given_an_array_raises_value_error(call, pattern):
    """Was: NumPy's ValueError("The truth value of an array ... is ambiguous")."""
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize(
    ("base_method", "error", "pattern"),
    [
        pytest.param(
            None, TypeError, r"`base_method` must be a method name \(str\), got NoneType", id="none"
        ),
        pytest.param(
            "nope",
            attrkit.UnknownMethodError,
            r"`base_method`: no attribution method named 'nope'",
            id="unknown",
        ),
    ],
)
def test_regression_noise_tunnel_base_method_is_named_in_errors(base_method, error, pattern):
    """Was: "`method` must be a method name" (an argument the caller never passed)."""
    with pytest.raises(error, match=pattern):
        attrkit.create("noise_tunnel", MODEL, base_method=base_method)


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


@pytest.mark.parametrize(
    ("grad_kwargs", "pattern"),
    [
        pytest.param([1], r"`grad_kwargs` must be None or a dict, got list", id="list"),
        pytest.param(
            {"foo": 1},
            r"`grad_kwargs` has 'foo'; it may hold retain_graph, create_graph",
            id="unknown-key",
        ),
        pytest.param({"inputs": 1}, r"`grad_kwargs` has 'inputs'", id="attrkit's-own-key"),
    ],
)
def test_regression_grad_kwargs_are_checked(grad_kwargs, pattern):
    """Was: torch's TypeError ("grad() got an unexpected keyword argument 'foo'", "argument
    after ** must be a mapping"), naming no argument of attrkit's."""
    with pytest.raises(TypeError, match=pattern):
        attrkit.LayerGradCam(MODEL, MODEL.conv).attribute(X, target=1, grad_kwargs=grad_kwargs)


def test_regression_grad_kwargs_retain_graph_still_works():
    explainer = attrkit.LayerGradCam(MODEL, MODEL.conv)
    torch.testing.assert_close(
        explainer.attribute(X, target=1, grad_kwargs={"retain_graph": True}),
        explainer.attribute(X, target=1),
    )


@pytest.mark.parametrize(
    ("selector", "error", "pattern"),
    [
        pytest.param(
            (slice(None, None, -1),),
            ValueError,
            r"`neuron_selector\[0\]` .*: the slice step must be positive",
            id="negative-step",
        ),
        pytest.param(
            (slice(None, None, 0),),
            ValueError,
            r"`neuron_selector\[0\]` .*: the slice step must be positive",
            id="zero-step",
        ),
        pytest.param(
            (slice("a"),),
            TypeError,
            r"`neuron_selector\[0\]` .*: slice bounds must be ints or None",
            id="str-bound",
        ),
        pytest.param(
            (slice(0, 2), 1.5),
            TypeError,
            r"`neuron_selector\[1\]` must be an int, got float",
            id="float",
        ),
        pytest.param(
            (slice(0, 2), True),
            TypeError,
            r"`neuron_selector\[1\]` must be an int, got a bool",
            id="bool",
        ),
        pytest.param(
            (slice(0, 2), None),
            TypeError,
            r"`neuron_selector\[1\]` must be an int, got NoneType",
            id="none",
        ),
        pytest.param(
            (slice(0, 2), 7, 0),
            IndexError,
            r"`neuron_selector\[1\]` = 7 is out of range for dimension 2",
            id="out-of-range",
        ),
        pytest.param(
            (slice(None), 2**70),
            IndexError,
            r"`neuron_selector\[1\]` = 1180591620717411303424 is out of range",
            id="beyond-int64",
        ),
    ],
)
def test_regression_neuron_selector_slices_are_checked(selector, error, pattern):
    """Was: torch's own errors ("step must be greater than zero", "only integers, slices
    ... are valid indices", "index 7 is out of bounds", "Overflow when unpacking long")
    naming no argument, and a bool or None entry silently indexed a new axis."""
    with pytest.raises(error, match=pattern):
        attrkit.NeuronDeconvolution(MODEL, MODEL.conv).attribute(X, neuron_selector=selector)


def test_regression_neuron_selector_slice_on_an_empty_batch():
    """Was: RuntimeError ("cannot reshape tensor of 0 elements into shape [0, -1]")."""
    explainer = attrkit.NeuronGuidedBackprop(MODEL, MODEL.conv)
    result = explainer.attribute(X[:0], neuron_selector=(slice(0, 2), 0, 0))
    assert result.shape == (0, *IMAGE)


def test_regression_slice_selector_sums_the_neurons_it_picks():
    """The rewritten slice path still sums exactly the picked neurons: the attribution of
    (0:2, 1, 1:3) is the sum of the attributions of the four single neurons."""
    explainer = attrkit.NeuronDeconvolution(MODEL, MODEL.conv)
    summed = explainer.attribute(X, neuron_selector=(slice(0, 2), 1, slice(1, 3)))
    singles = sum(
        explainer.attribute(X, neuron_selector=(c, 1, w)) for c in range(2) for w in range(1, 3)
    )
    torch.testing.assert_close(summed, singles)


@pytest.mark.parametrize("stdevs", [math.nan, math.inf, (0.1, math.nan)])
def test_regression_noise_tunnel_non_finite_stdevs_raise_value_error(stdevs):
    """Was: accepted; the noise, and so the result, was NaN or infinite garbage."""
    model = nn.Sequential(nn.Linear(3, 2))
    inputs = torch.randn(2, 3) if not isinstance(stdevs, tuple) else (torch.randn(2, 3),) * 2
    if isinstance(stdevs, tuple):
        model = _TwoInputs()
    with pytest.raises(
        ValueError, match=r"`stdevs` must be finite, got nan|`stdevs` must be finite, got inf"
    ):
        attrkit.NoiseTunnel(attrkit.Saliency(model)).attribute(inputs, target=0, stdevs=stdevs)


class _TwoInputs(nn.Module):
    def forward(self, a, b):
        return a + b


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


def test_regression_empty_batch_with_convergence_delta():
    """Was: RuntimeError ("cannot reshape tensor of 0 elements into shape [0, -1]")."""
    attributions, delta = attrkit.IntegratedGradients(MODEL).attribute(
        X[:0], target=1, n_steps=3, return_convergence_delta=True
    )
    assert attributions.shape == (0, *IMAGE)
    assert delta.shape == (0,)


@pytest.mark.parametrize(
    "baseline",
    [
        pytest.param(torch.zeros(1, *IMAGE, dtype=torch.complex64), id="complex"),
        pytest.param(torch.zeros(1, *IMAGE).to_sparse(), id="sparse"),
        pytest.param(torch.zeros(1, *IMAGE, device="meta"), id="meta"),
    ],
)
def test_regression_baselines_without_real_values_raise_type_error(baseline):
    """Was: a UserWarning ("Casting complex values to real discards the imaginary part"),
    NotImplementedError ("Cannot copy out of meta tensor") or RuntimeError (sparse)."""
    with pytest.raises(TypeError, match=r"`baselines` must be a dense real tensor with values"):
        attrkit.IntegratedGradients(MODEL).attribute(X, baselines=baseline, target=1, n_steps=2)


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

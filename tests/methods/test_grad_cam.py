"""Grad-CAM and Guided Grad-CAM (attrkit/methods/grad_cam.py), beyond the shared tester
(tests/methods/test_shared.py: parity with Captum everywhere, and Guided Grad-CAM's
definition): Grad-CAM's definition on every model case, option errors and regressions.
(Where Captum's Grad-CAM of a layer input deviates: tests/methods/test_fuzz_models.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attrkit
from tests import models
from tests.cases import ALL_CASES, LAYERS, MethodSpec
from tests.models import BATCH, IMAGE, FuzzNet
from tests.reference import reference_grad_cam
from tests.tester import covering, dtype_id

GRAD_CAM = MethodSpec(
    "layer-grad-cam-relu", "LayerGradCam", {"relu_attributions": True}, layer=True
)


@pytest.mark.parametrize(
    ("case", "target", "dtype"),
    [
        pytest.param(case, value, dtype, id=f"{case.id}-{form}-{dtype_id(dtype)}")
        for _, case, dtype, form, value in covering(
            (GRAD_CAM, case) for case in ALL_CASES if case.id in LAYERS
        )
    ],
)
def test_grad_cam_matches_definition(case, target, dtype):
    """Channel weights are the spatial means of the plain gradient at the layer; the map
    is the ReLU of the weighted sum of the activations (``reference_grad_cam``)."""
    model = case.build(dtype)
    ours = attrkit.LayerGradCam(model, model.get_submodule(LAYERS[case.id])).attribute(
        case.attribute_inputs(case.inputs(dtype)),
        target=target,
        additional_forward_args=case.extra_args(dtype),
        **GRAD_CAM.attribute_kwargs,
    )
    twin = case.build_reference(dtype)
    expected = reference_grad_cam(
        twin,
        case.inputs(dtype),
        twin.get_submodule(LAYERS[case.id]),
        target,
        case.extra_tuple(dtype),
    )
    torch.testing.assert_close(ours, expected)


def test_unknown_interpolate_mode_is_a_clear_error():
    model = models.SmallCNN().eval()
    with pytest.raises(
        ValueError, match=r"`interpolate_mode` must be one of nearest, .* got 'cubic'"
    ):
        attrkit.GuidedGradCam(model, model.features[4]).attribute(
            torch.randn(2, 3, 12, 12), target=0, interpolate_mode="cubic"
        )
    assert torch._C._len_torch_function_stack() == 0


# ------------------------------------------------------------------------ regressions
# (found by the reliability work: docs/reliability.rst lists them)

MODEL = FuzzNet().eval()
X = torch.randn(BATCH, *IMAGE, generator=torch.Generator().manual_seed(0))


def test_regression_interpolate_mode_given_an_array_raises_value_error():
    """Was: NumPy's ValueError("The truth value of an array ... is ambiguous")."""
    with pytest.raises(ValueError, match=r"`interpolate_mode` must be one of"):
        attrkit.GuidedGradCam(MODEL, MODEL.conv).attribute(
            X, target=1, interpolate_mode=np.zeros(2)
        )


@pytest.mark.parametrize("mode", ["linear", "trilinear"])
def test_regression_interpolate_mode_for_other_dimensions_raises_value_error(mode):
    """Was: NotImplementedError("Got 4D input, but linear mode needs 3D input")."""
    with pytest.raises(ValueError, match=rf"`interpolate_mode` '{mode}' upsamples maps with"):
        attrkit.GuidedGradCam(MODEL, MODEL.conv).attribute(X, target=1, interpolate_mode=mode)


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

"""Grad-CAM and Guided Grad-CAM: Captum's ``grad_kwargs`` and the input that the map cannot
be resized to."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attrkit
from attrkit.methods.grad_cam import GradCamResizeWarning


class TwoInputs(nn.Module):
    """An image and a vector of side information."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.side = nn.Linear(3, 2)
        self.unused = nn.Linear(2, 2)

    def forward(self, image: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(image)).mean(dim=(2, 3)) + self.side(side)


MODEL = TwoInputs().eval()
IMAGE, SIDE = torch.randn(2, 1, 4, 4), torch.randn(2, 3)


def test_grad_kwargs_materialize_grads_is_passed_through():
    """Captum passes grad_kwargs to torch.autograd.grad; attrkit refused
    materialize_grads (one of the Captum tests attrkit failed)."""
    cam = attrkit.LayerGradCam(MODEL, MODEL.conv)
    plain = cam.attribute((IMAGE, SIDE), target=1)
    materialized = cam.attribute((IMAGE, SIDE), target=1, grad_kwargs={"materialize_grads": True})
    torch.testing.assert_close(plain, materialized)


def test_a_layer_the_target_does_not_reach_gets_zeros_or_torchs_error():
    cam = attrkit.LayerGradCam(MODEL, MODEL.side)
    with pytest.raises(ValueError, match=r"`layer` \(Linear\) did not run"):
        attrkit.LayerGradCam(MODEL, MODEL.unused).attribute((IMAGE, SIDE), target=0)
    assert cam.attribute((IMAGE, SIDE), target=0).shape == (2, 1)


def test_guided_grad_cam_warns_for_an_input_it_cannot_resize_to():
    """Was: an empty tensor for the vector input, silently."""
    explainer = attrkit.GuidedGradCam(MODEL, MODEL.conv)
    with pytest.warns(
        GradCamResizeWarning,
        match=r"`inputs\[1\]` \(shape \(2, 3\)\) has 0 spatial dimension\(s\), the Grad-CAM map",
    ):
        image, side = explainer.attribute((IMAGE, SIDE), target=0)
    assert image.shape == IMAGE.shape
    assert side.numel() == 0


def test_guided_grad_cam_refuses_an_unknown_interpolate_mode():
    """Documented deviation: Captum warns and returns empty tensors."""
    explainer = attrkit.GuidedGradCam(MODEL, MODEL.conv)
    with pytest.raises(ValueError, match=r"`interpolate_mode` must be one of"):
        explainer.attribute((IMAGE, SIDE), target=0, interpolate_mode="made_up_nonlinear")


def test_guided_grad_cam_refuses_a_layer_that_fits_no_input():
    """Was: empty tensors for every input, silently."""
    explainer = attrkit.GuidedGradCam(MODEL, MODEL.side)
    with pytest.raises(
        ValueError, match=r"`layer` \(Linear\): its Grad-CAM map \(shape \(2, 1\)\)"
    ):
        explainer.attribute((IMAGE, SIDE), target=0)

"""The built-in demo model: a small CNN trained on scikit-learn's 8x8 digits.

The weights, a metadata record (training setup and held-out accuracy) and the held-out test
split ship inside the package (``attrkit/demo/data``), so nothing is downloaded and scikit-learn
is not needed at run time. ``scripts/train_demo_model.py`` recreates all three files.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DIGIT_SCALE",
    "DigitsCNN",
    "HeldoutDigits",
    "data_file",
    "digits_to_tensors",
    "load_demo_metadata",
    "load_demo_model",
    "load_heldout_digits",
]

#: scikit-learn's digits are integers 0..16; the model sees ``pixels / DIGIT_SCALE``.
DIGIT_SCALE = 16.0

WEIGHTS_FILE = "digits_cnn.pt"
METADATA_FILE = "digits_cnn.json"
HELDOUT_FILE = "digits_heldout.npz"


class DigitsCNN(nn.Module):
    """Two convolutions and two linear layers for ``N x 1 x 8 x 8`` digits, 10 classes.

    The convolutions' ReLUs are ``nn.ReLU`` modules; the hidden linear layer's ReLU is a
    functional ``F.relu`` call, as in torchvision's DenseNet, GoogLeNet and Inception.
    Captum's Deconvolution and GuidedBackprop hook only the modules, so on this model they
    return the plain gradient through ``fc1``'s ReLU; attrkit applies the method's rule to
    both kinds.

    Example:
        >>> model = DigitsCNN()
        >>> model(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.conv1(x))
        x = self.pool(self.relu2(self.conv2(x)))
        x = F.relu(self.fc1(torch.flatten(x, 1)))  # functional: no module for Captum to hook
        logits: Tensor = self.fc2(x)
        return logits


@dataclass(frozen=True)
class HeldoutDigits:
    """The held-out test split the demo model never saw in training.

    Attributes:
        images: ``N x 1 x 8 x 8`` float tensor in [0, 1] (the model's input).
        labels: ``N`` integer tensor of true classes.
        indices: Position of each digit in :func:`sklearn.datasets.load_digits`.
    """

    images: Tensor
    labels: Tensor
    indices: Tensor


def digits_to_tensors(pixels: npt.NDArray[Any], labels: npt.NDArray[Any]) -> tuple[Tensor, Tensor]:
    """Digits as the model sees them: ``N x 8 x 8`` pixels 0..16 as an ``N x 1 x 8 x 8``
    float tensor of ``pixels / DIGIT_SCALE``, and the labels as an int64 tensor.

    Example:
        >>> images, labels = digits_to_tensors(np.full((2, 8, 8), 16, np.uint8), np.arange(2))
        >>> images.shape, float(images.max()), labels.dtype
        (torch.Size([2, 1, 8, 8]), 1.0, torch.int64)
    """
    images = torch.from_numpy(pixels.astype(np.float32) / DIGIT_SCALE).unsqueeze(1)
    return images, torch.from_numpy(labels.astype(np.int64))


def data_file(name: str) -> bytes:
    """The bytes of a file shipped in ``attrkit/demo/data``."""
    return (resources.files("attrkit.demo") / "data" / name).read_bytes()


def load_demo_model() -> DigitsCNN:
    """The trained :class:`DigitsCNN`, in eval mode.

    Example:
        >>> model = load_demo_model()
        >>> model.training
        False
    """
    model = DigitsCNN()
    state = torch.load(io.BytesIO(data_file(WEIGHTS_FILE)), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def load_demo_metadata() -> dict[str, Any]:
    """How the demo model was trained and its accuracy on the held-out split."""
    metadata: dict[str, Any] = json.loads(data_file(METADATA_FILE))
    return metadata


def load_heldout_digits() -> HeldoutDigits:
    """The held-out digits shipped with the package.

    Example:
        >>> digits = load_heldout_digits()
        >>> digits.images.shape[1:], float(digits.images.max()) <= 1.0
        (torch.Size([1, 8, 8]), True)
    """
    with np.load(io.BytesIO(data_file(HELDOUT_FILE)), allow_pickle=False) as archive:
        images, labels = digits_to_tensors(archive["images"], archive["labels"])
        indices = archive["indices"].astype(np.int64)
    return HeldoutDigits(images=images, labels=labels, indices=torch.from_numpy(indices))

"""The built-in digits model and data: stated accuracy, provenance, size, and shipping."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib import resources

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from attrkit.demo import DigitsCNN, load_demo_metadata, load_demo_model, load_heldout_digits
from tests.helpers import ROOT

PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q")
DATA_FILES = ("digits_cnn.pt", "digits_cnn.json", "digits_heldout.npz")


def test_shipped_model_reaches_the_stated_accuracy():
    metadata = load_demo_metadata()
    digits = load_heldout_digits()
    with torch.no_grad():
        predicted = load_demo_model()(digits.images).argmax(dim=1)
    accuracy = float((predicted == digits.labels).float().mean())
    assert len(digits.labels) == metadata["n_test"]
    # One digit may flip between torch builds; the stated figure must hold to that.
    assert accuracy == pytest.approx(metadata["test_accuracy"], abs=1 / metadata["n_test"])
    assert accuracy >= 0.95


def test_heldout_digits_are_sklearns_test_split():
    metadata = load_demo_metadata()
    digits = load_heldout_digits()
    source = load_digits()
    split = metadata["split"]
    train_idx, test_idx = train_test_split(
        np.arange(len(source.target)),
        test_size=split["test_size"],
        random_state=split["random_state"],
        stratify=source.target if split["stratify"] else None,
    )
    np.testing.assert_array_equal(digits.indices.numpy(), test_idx)
    assert not set(test_idx) & set(train_idx)
    np.testing.assert_array_equal(digits.labels.numpy(), source.target[test_idx])
    np.testing.assert_allclose(digits.images[:, 0].numpy(), source.images[test_idx] / 16.0)


def test_model_has_relu_modules_and_a_functional_relu():
    model = DigitsCNN()
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2
    calls = []
    original = torch.nn.functional.relu

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    torch.nn.functional.relu = spy
    try:
        model(torch.zeros(1, 1, 8, 8))
    finally:
        torch.nn.functional.relu = original
    # nn.ReLU modules also call F.relu: two modules plus one functional call.
    assert len(calls) == 3


def test_package_data_is_under_one_megabyte():
    data = resources.files("attrkit.demo") / "data"
    sizes = {name: len((data / name).read_bytes()) for name in DATA_FILES}
    assert sum(sizes.values()) < 1_000_000, sizes


@pytest.mark.slow
def test_wheel_ships_the_package_data(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "_build", "*.egg-info"))
    result = subprocess.run(
        [*PIP_WHEEL, "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("attrkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"attrkit/demo/data/{name}" for name in DATA_FILES} <= names


def test_readme_states_the_shipped_accuracy():
    metadata = load_demo_metadata()
    stated = f"{metadata['test_accuracy']:.1%} accuracy on the {metadata['n_test']} held-out"
    assert stated in (ROOT / "README.md").read_text()

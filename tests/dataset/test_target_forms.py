"""The dataset runner's target forms that tests/dataset/test_dataset.py does not run (it
runs ``"label"`` with one class per example, ``"predicted"`` and a fixed class): a fixed
tuple and labels with one index per output dimension, on a model whose output has
several dimensions per example, and ``None`` on a model with one output value per
example. Each equals ``attribute`` on every batch with the target the form stands for,
and the stored targets are those targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import attrkit
from tests.cases import PARITY_CASES

TAGGER = next(c for c in PARITY_CASES if c.id == "sequence-tagger-3d-output")  # (N, 3, 7)
ONE_VALUE = next(c for c in PARITY_CASES if c.id == "captum-linear-relu-linear")  # (N, 1)
SIZE, BATCH = 10, 4


def _expected(case, images, targets) -> np.ndarray:
    """``attribute`` on every batch of ``images``, with its rows of ``targets`` (a list:
    one target per example) or ``targets`` itself (the same for every example)."""
    explainer = attrkit.GuidedBackprop(case.build())
    parts = []
    for start in range(0, SIZE, BATCH):
        target = targets[start : start + BATCH] if isinstance(targets, list) else targets
        parts.append(explainer.attribute(images[start : start + BATCH], target=target))
    return torch.cat(parts).numpy()


def _run(tmp_path, case, data, target):
    return attrkit.attribute_dataset(
        "guided_backprop",
        data,
        model=case.build(),
        target=target,
        out=tmp_path / "out",
        batch_size=BATCH,
        progress=False,
    )


@pytest.mark.parametrize("form", ["fixed-tuple", "label-tuples"])
def test_targets_with_several_indices(tmp_path, form):
    (images,) = TAGGER.inputs(batch=SIZE)
    rows = torch.stack([torch.arange(SIZE) % 3, (2 * torch.arange(SIZE)) % 7], dim=1)
    if form == "fixed-tuple":
        target, targets, stored = (2, 5), (2, 5), torch.tensor([[2, 5]] * SIZE)
    else:
        target, targets, stored = "label", [tuple(r) for r in rows.tolist()], rows
    result = _run(tmp_path, TAGGER, TensorDataset(images, rows), target)
    np.testing.assert_allclose(result[:], _expected(TAGGER, images, targets), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(result.targets, stored.numpy())


def test_no_target_for_one_output_value(tmp_path):
    (images,) = ONE_VALUE.inputs(batch=SIZE)
    result = _run(tmp_path, ONE_VALUE, TensorDataset(images), None)
    np.testing.assert_allclose(result[:], _expected(ONE_VALUE, images, None), rtol=1e-6, atol=1e-7)
    assert result.targets is None

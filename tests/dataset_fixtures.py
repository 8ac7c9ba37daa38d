"""Models, datasets and a runner for the dataset-attribution tests, importable by the
subprocesses the tests start (the CLI, torchrun, a run that is killed).

``python -m tests.dataset_fixtures CONFIG.json`` runs ``attrkit.attribute_dataset`` once per
entry of the JSON list: ``{"out": DIR, "method": NAME, "source": "dataset" | "loader" |
"iterable", "target": ..., "batch_size": B, "batches_per_shard": K, "options": {...}}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from tests.models import SmallCNN

NUM_SAMPLES = 38
CLASSES = 5
#: Set to N to make the dataset hang (for a minute) when item N is read: a run that stops
#: mid-way, for the kill-and-resume test.
STALL_VARIABLE = "ATTRKIT_TEST_STALL_AT"


def model() -> SmallCNN:
    """The small CNN with fixed weights, in eval mode."""
    torch.manual_seed(0)
    return SmallCNN(classes=CLASSES).eval()


class SyntheticImages(Dataset[tuple[Tensor, Tensor]]):
    """``NUM_SAMPLES`` random 3x8x8 images with labels, the same in every process."""

    def __init__(self, size: int = NUM_SAMPLES) -> None:
        generator = torch.Generator().manual_seed(1)
        self.images = torch.randn(size, 3, 8, 8, generator=generator)
        self.labels = torch.randint(0, CLASSES, (size,), generator=generator)
        stall = os.environ.get(STALL_VARIABLE)
        self.stall_at = int(stall) if stall else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if index == self.stall_at:
            time.sleep(60)
        return self.images[index], self.labels[index]


def dataset() -> SyntheticImages:
    return SyntheticImages()


def batches(batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """The dataset as a generator of ``(images, labels)`` batches."""
    data = SyntheticImages()
    for start in range(0, len(data), batch_size):
        yield data.images[start : start + batch_size], data.labels[start : start + batch_size]


def source(kind: str, batch_size: int) -> tuple[Any, dict[str, Any]]:
    """The data in one of three forms, and the batch options ``attribute_dataset`` takes."""
    if kind == "dataset":
        return dataset(), {"batch_size": batch_size}
    if kind == "loader":
        return DataLoader(dataset(), batch_size=batch_size), {}
    return batches(batch_size), {}


def run(config: dict[str, Any]) -> None:
    import attrkit

    data, options = source(config.get("source", "dataset"), config.get("batch_size", 4))
    target = config.get("target", "label")
    attrkit.attribute_dataset(
        config.get("method", "guided_backprop"),
        data,
        model=model(),
        target=tuple(target) if isinstance(target, list) else target,
        out=config["out"],
        batches_per_shard=config.get("batches_per_shard", 1),
        resume=config.get("resume", False),
        progress=False,
        **options,
        **config.get("options", {}),
    )


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        for entry in json.load(file):
            run(entry)

"""Running a block with torch's random generators seeded, and restored afterwards."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

__all__ = ["seeded"]


@contextmanager
def seeded(seed: int, devices: Iterable[torch.device] = ()) -> Iterator[None]:
    """Run the block with the CPU generator, and the generators of the CUDA ``devices``
    (a device without an index is the current one), seeded with ``seed``; all of them are
    restored afterwards, and no other generator is touched."""
    indices = sorted(
        {
            device.index if device.index is not None else torch.cuda.current_device()
            for device in devices
            if device.type == "cuda"
        }
    )
    with torch.random.fork_rng(devices=indices):
        torch.default_generator.manual_seed(seed)
        for index in indices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield

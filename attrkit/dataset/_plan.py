"""Where the batches come from and which rank attributes which of them.

Batches are numbered in the data's order and grouped into shards of
``batches_per_shard`` consecutive batches; shard ``s`` belongs to rank
``s % world_size``. The numbering does not depend on the number of processes, so one
process and N processes write the same files.

Two kinds of sources:

* **indexed** (a map-style ``Dataset``, or a ``DataLoader`` over one with a batch
  sampler): the sample indices of every batch are known before any data is loaded.
  Each rank builds a ``DataLoader`` (with the user's collate function, workers and
  pinning) that loads only its own, not yet completed batches.
* **iterable** (an ``IterableDataset``, a ``DataLoader`` over one, or any iterable of
  batches): every rank iterates the whole data and skips the batches of other ranks'
  shards and of completed shards; the data must yield the same batches in the same order
  on every rank and in every run. Sample indices are positions in that order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from torch.utils.data.distributed import DistributedSampler

__all__ = ["DEFAULT_BATCH_SIZE", "Source", "make_source"]

DEFAULT_BATCH_SIZE = 32
_RANDOM_SAMPLERS = (RandomSampler, SubsetRandomSampler, WeightedRandomSampler)


def _name(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


class Source:
    """The data of a run: indexed (``loader`` and ``dataset`` set) or iterable."""

    def __init__(
        self,
        data: Any,
        *,
        dataset: Any = None,
        template: DataLoader[Any] | None = None,
        batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.data = data
        self.dataset = dataset
        self._template = template
        self._batch_size = batch_size
        self._num_workers = num_workers
        self._pin_memory = pin_memory

    def plan(self) -> list[list[int]] | None:
        """The sample indices of every batch (indexed sources), or ``None``."""
        if self._template is not None:
            return [[int(i) for i in batch] for batch in self._template.batch_sampler]  # type: ignore[union-attr]
        if self.dataset is not None:
            size = len(self.dataset)
            step = self._batch_size or DEFAULT_BATCH_SIZE
            return [list(range(start, min(start + step, size))) for start in range(0, size, step)]
        return None

    def describe(self, plan: list[list[int]] | None) -> dict[str, Any]:
        """What identifies the data in the manifest."""
        if plan is None:
            return {"kind": "iterable"}
        order = hashlib.sha256(np.asarray([i for b in plan for i in b], np.int64).tobytes())
        sizes = hashlib.sha256(np.asarray([len(b) for b in plan], np.int64).tobytes())
        return {
            "kind": "indexed",
            "num_samples": sum(len(b) for b in plan),
            "num_batches": len(plan),
            "order_sha256": order.hexdigest()[:32],
            "batch_sizes_sha256": sizes.hexdigest()[:32],
        }

    def load(self, batches: list[list[int]]) -> Iterable[Any]:
        """A loader for the given index batches (indexed sources)."""
        if not batches:
            return ()
        template = self._template
        if template is None:
            return DataLoader(
                self.dataset,
                batch_sampler=batches,
                num_workers=self._num_workers,
                pin_memory=self._pin_memory,
            )
        options: dict[str, Any] = {
            "batch_sampler": batches,
            "num_workers": template.num_workers,
            "collate_fn": template.collate_fn,
            "pin_memory": template.pin_memory,
            "timeout": template.timeout,
            "worker_init_fn": template.worker_init_fn,
            "multiprocessing_context": template.multiprocessing_context,
            "generator": template.generator,
            "persistent_workers": template.persistent_workers,
            "in_order": getattr(template, "in_order", True),
        }
        if template.pin_memory_device:
            options["pin_memory_device"] = template.pin_memory_device
        if template.num_workers > 0:
            options["prefetch_factor"] = template.prefetch_factor
        return DataLoader(self.dataset, **options)

    def iterate(self) -> Iterator[Any]:
        """Every batch, in order (iterable sources)."""
        return iter(self.data)


def make_source(
    data: object, batch_size: int | None, num_workers: int | None, pin_memory: bool
) -> Source:
    """Classify ``data`` (see the module docstring).

    Raises:
        TypeError: if ``data`` is not a Dataset, DataLoader or iterable of batches, or
            ``batch_size`` / ``num_workers`` come with a DataLoader.
        ValueError: if the DataLoader shuffles or is already sharded.
    """
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}")
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0
    ):
        raise ValueError(f"`num_workers` must be a non-negative int, got {num_workers!r}")
    if isinstance(data, DataLoader):
        for name, value in (("batch_size", batch_size), ("num_workers", num_workers)):
            if value is not None:
                raise TypeError(
                    f"`{name}` applies when `data` is a Dataset; this DataLoader has its own"
                )
        return _loader_source(data)
    workers = num_workers or 0
    if isinstance(data, IterableDataset):
        loader = DataLoader(data, batch_size=batch_size or DEFAULT_BATCH_SIZE, num_workers=workers)
        return Source(loader)
    if isinstance(data, Dataset):
        try:
            len(data)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"`data` is a map-style Dataset ({_name(data)}) without __len__; give it "
                "__len__, or pass a DataLoader or an iterable of batches"
            ) from None
        return Source(
            data,
            dataset=data,
            batch_size=batch_size,
            num_workers=workers,
            pin_memory=pin_memory,
        )
    if isinstance(data, (Tensor, np.ndarray, str, bytes, dict)) or not isinstance(data, Iterable):
        hint = (
            " (wrap a tensor of examples in torch.utils.data.TensorDataset)"
            if isinstance(data, (Tensor, np.ndarray))
            else ""
        )
        raise TypeError(
            "`data` must be a torch Dataset, a DataLoader, or an iterable of batches; got "
            f"{type(data).__name__}{hint}"
        )
    if batch_size is not None or num_workers is not None:
        raise TypeError(
            "`batch_size` and `num_workers` apply when `data` is a Dataset; an iterable of "
            "batches is used as it is"
        )
    return Source(data)


def _loader_source(loader: DataLoader[Any]) -> Source:
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        raise ValueError(
            "`data` uses a DistributedSampler; attribute_dataset splits the data between "
            "processes itself: pass the DataLoader without it (or the Dataset)"
        )
    if isinstance(sampler, _RANDOM_SAMPLERS):
        raise ValueError(
            f"`data` samples in random order ({type(sampler).__name__}); attributions are "
            "stored in the loader's order, which must be the same in every process and in a "
            "resumed run: use shuffle=False"
        )
    if isinstance(loader.dataset, IterableDataset) or loader.batch_sampler is None:
        return Source(loader)
    return Source(loader, dataset=loader.dataset, template=loader)

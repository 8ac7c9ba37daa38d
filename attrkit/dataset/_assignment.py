"""Which batches each rank attributes: batches are grouped into shards of
``batches_per_shard`` consecutive batches, shard ``s`` belongs to rank ``s % world_size``,
and a rank's pending batches are those of its shards that are not on disk yet."""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrkit.dataset._batches import Batch, BatchFn, parse_batch
from attrkit.dataset._plan import Source
from attrkit.dataset._resume import IterableCheck, check_shard
from attrkit.dataset._store import read_record

__all__ = ["Assignment", "Stream", "indexed_stream", "iterable_stream"]

#: A rank's pending batches ``(number, sample indices, batch)``; it returns the number of
#: batches of the whole run.
Stream = Generator[tuple[int, list[int], Batch], None, int]


@dataclass(frozen=True)
class Assignment:
    """The shards of one rank.

    Example:
        >>> second = Assignment(rank=1, world_size=2, batches_per_shard=3)
        >>> [s for s in range(second.num_shards(10)) if second.owns(s)]
        [1, 3]
        >>> list(second.batches(3, num_batches=10)), second.shard_of(4)
        ([9], 1)
    """

    rank: int
    world_size: int
    batches_per_shard: int

    def owns(self, shard: int) -> bool:
        return shard % self.world_size == self.rank

    def shard_of(self, batch: int) -> int:
        return batch // self.batches_per_shard

    def num_shards(self, num_batches: int) -> int:
        return math.ceil(num_batches / self.batches_per_shard)

    def batches(self, shard: int, num_batches: int) -> range:
        """The batch numbers of ``shard`` in a run of ``num_batches`` batches."""
        per_shard = self.batches_per_shard
        return range(shard * per_shard, min((shard + 1) * per_shard, num_batches))


def indexed_stream(
    assignment: Assignment,
    plan: list[list[int]],
    source: Source,
    root: Path,
    batch_fn: BatchFn | None,
) -> tuple[Stream, int, int]:
    """The rank's pending batches of an indexed source (only those are loaded), with the
    rank's sample count and the part of it already done."""
    numbers: list[int] = []
    total = done = 0
    for shard in range(assignment.num_shards(len(plan))):
        if not assignment.owns(shard):
            continue
        batches = assignment.batches(shard, len(plan))
        samples = [i for b in batches for i in plan[b]]
        total += len(samples)
        record = read_record(root, shard)
        if record is None:
            numbers += batches
        else:
            check_shard(root, shard, record, samples, batches[0])
            done += len(samples)
    loader = source.load([plan[b] for b in numbers])

    def stream() -> Stream:
        for number, raw in zip(numbers, loader, strict=True):
            batch = parse_batch(raw, number, batch_fn)
            if batch.size != len(plan[number]):
                raise ValueError(
                    f"batch {number} of `data` has {batch.size} examples, but its sampler "
                    f"gave {len(plan[number])} indices; the collate function must keep one "
                    "row per index"
                )
            yield number, plan[number], batch
        return len(plan)

    return stream(), total, done


def iterable_stream(
    assignment: Assignment, source: Source, root: Path, batch_fn: BatchFn | None
) -> Stream:
    """The rank's pending batches of an iterable source: every batch is iterated, the
    other ranks' and the completed ones are skipped (the completed ones checked)."""
    check = IterableCheck(root)
    records: dict[int, dict[str, Any] | None] = {}  # this rank's shards so far
    offset = 0
    number = -1
    for number, raw in enumerate(source.iterate()):
        shard = assignment.shard_of(number)
        owned = assignment.owns(shard)
        if owned and shard not in records:
            check.check_skipped()
            records[shard] = read_record(root, shard)
        record = records.get(shard)  # only this rank's shards have one
        if record is not None:
            check.check_start(shard, record, offset)
        batch = parse_batch(raw, number, batch_fn)
        if record is not None:
            check.skip(shard, record, batch.size)
        elif owned:
            yield number, list(range(offset, offset + batch.size)), batch
        offset += batch.size
    check.check_skipped()
    return number + 1

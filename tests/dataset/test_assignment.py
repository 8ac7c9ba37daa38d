"""Which batches each rank attributes, and the checks on completed shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from attrkit.dataset._assignment import Assignment
from attrkit.dataset._resume import IterableCheck, check_shard, differences


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("per_shard", [1, 2, 4])
@pytest.mark.parametrize("num_batches", [1, 5, 8])
def test_every_batch_belongs_to_exactly_one_rank(world_size, per_shard, num_batches):
    owners: dict[int, list[int]] = {}
    for rank in range(world_size):
        assignment = Assignment(rank, world_size, per_shard)
        for shard in range(assignment.num_shards(num_batches)):
            if assignment.owns(shard):
                batches = list(assignment.batches(shard, num_batches))
                assert batches == list(range(batches[0], batches[0] + len(batches)))
                assert all(assignment.shard_of(b) == shard for b in batches)
                for batch in batches:
                    owners.setdefault(batch, []).append(rank)
    assert owners == {b: [(b // per_shard) % world_size] for b in range(num_batches)}


def test_shards_hand_computed():
    """7 batches, 2 per shard, 2 ranks: shards [0,1] [2,3] [4,5] [6]; rank 1 owns 1 and 3."""
    rank1 = Assignment(rank=1, world_size=2, batches_per_shard=2)
    assert rank1.num_shards(7) == 4
    owned = [list(rank1.batches(s, 7)) for s in range(4) if rank1.owns(s)]
    assert owned == [[2, 3], [6]]


def test_completed_indexed_shard_must_hold_the_same_samples(tmp_path: Path):
    record = {"indices": [4, 5, 6], "first_batch": 2}
    check_shard(tmp_path, 1, record, [4, 5, 6], 2)
    with pytest.raises(ValueError, match="shard 1 on disk holds other samples"):
        check_shard(tmp_path, 1, record, [4, 5, 7], 2)
    with pytest.raises(ValueError, match="shard 1 on disk holds other samples"):
        check_shard(tmp_path, 1, record, [4, 5, 6], 3)


def test_iterable_shard_is_checked_as_its_batches_go_by(tmp_path: Path):
    record = {"indices": [10, 11, 12, 13], "rows": 4}
    check = IterableCheck(tmp_path)
    check.check_start(2, record, 10)
    check.skip(2, record, 3)
    check.check_start(2, record, 13)  # not the shard's first batch: not checked again
    check.skip(2, record, 1)
    check.check_skipped()  # 4 rows, as recorded

    check.check_start(2, record, 10)
    check.skip(2, record, 3)
    with pytest.raises(ValueError, match="`data` gives shard 2 other examples"):
        check.check_skipped()
    with pytest.raises(ValueError, match="`data` gives shard 5 other examples"):
        IterableCheck(tmp_path).check_start(5, record, 9)


def test_differences_name_each_changed_leaf():
    old = {"method": {"name": "saliency", "abs": True}, "seed": 0}
    new = {"method": {"name": "saliency", "abs": False}, "seed": 0, "extra": 1}
    assert differences(old, new, "in manifest.json") == [
        "extra: null in manifest.json, 1 now",
        "method.abs: true in manifest.json, false now",
    ]

"""The ranks of one dataset run and the few small messages they exchange.

Attribution needs no communication between processes: each rank attributes its own
shards. The ranks only agree on the plan, check that they run the same thing, and wait
for each other before rank 0 writes the manifest. Those messages are small Python
objects, sent over a gloo group whatever the accelerator (an existing NCCL group is left
to the user's own collectives).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch.distributed as dist

__all__ = ["TIMEOUT", "Coordinator", "open_coordinator"]

T = TypeVar("T")

#: How long a rank waits for the others (long: ranks may finish their shards far apart).
TIMEOUT = datetime.timedelta(hours=24)

_LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class Coordinator:
    """One process's view of the run: its rank, the world size, and collectives over a
    gloo group (trivial when there is one process)."""

    def __init__(self, rank: int, world_size: int, group: Any = None) -> None:
        self.rank = rank
        self.world_size = world_size
        self._group = group

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value``, on every rank."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return box[0]

    def all_gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.world_size == 1:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value, group=self._group)
        return values

    def on_rank0(self, function: Callable[[], T]) -> T:
        """Run ``function`` on rank 0 and give its result to every rank; if it raises, every
        rank raises (rank 0 its own exception, the others one with the same message)."""
        if self.world_size == 1:
            return function()
        outcome: Any = None
        error: Exception | None = None
        if self.rank == 0:
            try:
                outcome = ("ok", function())
            except Exception as caught:
                error = caught
                outcome = ("error", type(caught), str(caught))
        outcome = self.broadcast(outcome)
        if error is not None:
            raise error
        if outcome[0] == "error":
            raise _rebuild(outcome[1], outcome[2], 0)
        return outcome[1]  # type: ignore[no-any-return]

    def raise_any(self, error: Exception | None) -> None:
        """Raise ``error`` (this rank's failure, if any) or the first other rank's, on every
        rank; return if no rank failed."""
        statuses = self.all_gather(None if error is None else (type(error), str(error)))
        if error is not None:
            raise error
        for rank, status in enumerate(statuses):
            if status is not None:
                raise _rebuild(status[0], status[1], rank)

    def close(self) -> None:
        """Destroy the group :func:`open_coordinator` created for this run."""
        if self._group is not None:
            dist.destroy_process_group(self._group)
            self._group = None


def _rebuild(kind: type[BaseException], message: str, rank: int) -> Exception:
    text = f"rank {rank} failed: {message}"
    if kind in (TypeError, ValueError, IndexError, KeyError, PermissionError, FileNotFoundError):
        return kind(text)
    return RuntimeError(f"rank {rank} failed: {kind.__name__}: {message}")


def _launched() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets the
    ``env://`` variables) as one of several."""
    if not all(name in os.environ for name in _LAUNCH_VARIABLES):
        return False
    try:
        return int(os.environ["WORLD_SIZE"]) > 1
    except ValueError:
        return False


def open_coordinator(distributed: bool | None) -> Coordinator:
    """Join the run's ranks.

    Args:
        distributed: ``None``: use the initialized process group, or initialize one (gloo)
            when the torchrun environment variables say this is one of several processes,
            else run alone. ``True``: the same, but running alone is an error. ``False``:
            run alone whatever the environment says.

    Raises:
        ValueError: if ``distributed=True`` and there is no group to join.
    """
    if distributed is not None and not isinstance(distributed, bool):
        raise TypeError(f"`distributed` must be None or a bool, got {type(distributed).__name__}")
    if distributed is False or not dist.is_available():
        if distributed:
            raise ValueError("`distributed=True`, but this torch build has no torch.distributed")
        return Coordinator(0, 1)
    if not dist.is_initialized():
        if not _launched():
            if distributed:
                raise ValueError(
                    "`distributed=True`, but no process group is initialized and the torchrun "
                    "variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) are not set; "
                    "launch with torchrun --nproc-per-node N"
                )
            return Coordinator(0, 1)
        # The default group stays for the process's lifetime: torchrun's store cannot host
        # a second default group after the first is destroyed.
        dist.init_process_group("gloo", init_method="env://", timeout=TIMEOUT)
    world_size = dist.get_world_size()
    if world_size == 1:
        return Coordinator(0, 1)
    group = dist.new_group(backend="gloo", timeout=TIMEOUT)
    return Coordinator(dist.get_rank(), world_size, group)

"""The checks that make a run resumable: every rank runs the same thing, ``out`` holds
nothing or this very run (same method, arguments, model, targets, data and library
versions), and each completed shard on disk holds the examples this run gives it."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from attrkit.dataset._distributed import Coordinator
from attrkit.dataset._identity import versions
from attrkit.dataset._store import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    check_writable,
    clean_temporary,
    read_manifest,
    save_json,
)

__all__ = [
    "RESUME_VERSIONS",
    "IterableCheck",
    "check_ranks_agree",
    "check_shard",
    "differences",
    "prepare_out",
]

#: Library versions that must match when a run is resumed (numpy and Python do not
#: change the attributions).
RESUME_VERSIONS = ("attrkit", "torch", "captum")


def differences(old: Any, new: Any, where: str, path: str = "") -> list[str]:
    """Where ``new`` differs from ``old`` (found ``where``, e.g. "in manifest.json").

    Example:
        >>> differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}}, "on rank 1")
        ['b.c: 2 on rank 1, 3 now']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            key_path = f"{path}.{key}" if path else key
            found += differences(old.get(key), new.get(key), where, key_path)
        return found
    return [] if old == new else [f"{path}: {json.dumps(old)} {where}, {json.dumps(new)} now"]


def check_ranks_agree(coordinator: Coordinator, identity: dict[str, Any]) -> None:
    """Raise ``ValueError`` if another rank runs something other than ``identity``."""
    for rank, other in enumerate(coordinator.all_gather(identity)):
        found = differences(other, identity, f"on rank {rank}")
        if found:
            raise ValueError(
                f"rank {coordinator.rank} and rank {rank} run different things "
                f"(every process must load the same model, weights and data): "
                + "; ".join(found[:5])
            )


def prepare_out(
    root: Path, identity: dict[str, Any], resume: bool, world_size: int
) -> dict[str, Any]:
    """Check ``out`` against the run ``identity`` describes and make it ready (rank 0):
    the manifest of the run there (resumed) or of a new one (written).

    Raises:
        FileExistsError: if ``out`` holds other files, or a run and ``resume`` is false.
        ValueError: if the run in ``out`` differs from this one (nothing is changed).
    """
    existing = read_manifest(root)
    if existing is None:
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise FileExistsError(
                f"`out` {str(root)!r} is not an empty folder and holds no attrkit run; "
                "choose a new or empty folder"
            )
    elif not resume:
        state = "complete" if existing.get("complete") else "incomplete"
        raise FileExistsError(
            f"`out` {str(root)!r} already holds a{'n' if state[0] == 'i' else ''} {state} "
            "run; pass resume=True (--resume) to continue it, or choose another folder"
        )
    else:
        _check_resumable(root, existing, identity)
    if existing is not None and existing.get("complete"):
        return existing
    check_writable(root)
    if existing is not None:
        clean_temporary(root)
        return existing
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "complete": False,
        "run": identity,
        "versions": versions(),
        "world_size": world_size,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    save_json(root / MANIFEST, manifest, sync=True)
    return manifest


def _check_resumable(root: Path, existing: dict[str, Any], identity: dict[str, Any]) -> None:
    found = differences(existing["run"], identity, f"in {MANIFEST}")
    old_versions = existing.get("versions", {})
    now = versions()
    found += [
        f"versions.{name}: {old_versions.get(name)!r} in {MANIFEST}, {now[name]!r} now"
        for name in RESUME_VERSIONS
        if old_versions.get(name) != now[name]
    ]
    if found:
        raise ValueError(
            f"`out` {str(root)!r} holds a run that differs from this one, so it cannot "
            f"be resumed (nothing was changed): {'; '.join(found[:5])}"
            + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        )


def check_shard(
    root: Path, shard: int, record: dict[str, Any], samples: list[int], first_batch: int
) -> None:
    """Raise ``ValueError`` unless completed shard ``shard`` of an indexed source holds
    ``samples``, from batch ``first_batch`` on."""
    if record["indices"] != samples or record["first_batch"] != first_batch:
        raise ValueError(
            f"`out` {str(root)!r}: shard {shard} on disk holds other samples than "
            "this run gives it; was it written by another run?"
        )


class IterableCheck:
    """Checks, as an iterable's batches go by, that its completed shards on disk hold the
    examples this run gives them: each starts at the same example (:meth:`check_start`)
    and holds as many (:meth:`skip` while its batches go by, :meth:`check_skipped` once
    they have)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._skipped: dict[int, tuple[dict[str, Any], int]] = {}  # shard -> record, samples

    def check_start(self, shard: int, record: dict[str, Any], offset: int) -> None:
        """A batch of completed shard ``shard`` starts at example ``offset``: check it
        if it is the shard's first."""
        if shard not in self._skipped and record["indices"][:1] != [offset]:
            raise self._changed(shard)

    def skip(self, shard: int, record: dict[str, Any], size: int) -> None:
        """A batch of ``size`` examples of completed shard ``shard`` went by."""
        counted = self._skipped.get(shard, (record, 0))[1]
        self._skipped[shard] = (record, counted + size)

    def check_skipped(self) -> None:
        """Every completed shard that went by held as many examples as its record."""
        for shard, (record, count) in self._skipped.items():
            if record["rows"] != count:
                raise self._changed(shard)
        self._skipped.clear()

    def _changed(self, shard: int) -> ValueError:
        return ValueError(
            f"`data` gives shard {shard} other examples than the run in `out` "
            f"{str(self.root)!r} recorded; an iterable must yield the same batches in every run"
        )

"""The on-disk format of a dataset attribution run, and its writing.

A run's folder holds a JSON manifest, ``.npy`` shards and, once complete, the sample indices
and targets as ``.npy`` arrays::

    out/
      manifest.json          # the run (method, arguments, model fingerprint, versions, ...)
      indices.npy            # dataset index of every row (complete runs)
      targets.npy            # the target used for every row (complete runs, if any)
      shards/
        000000.attributions.npy   # rows of shard 0; one file per attribution tensor
        000000.json               # shard 0's record: written last, marks it complete
        ...

Every file is written to a temporary name and renamed into place, so a file that exists
under its final name was written whole; a shard counts as done when its record exists and
its arrays have the shapes and dtypes it records. Shards are not flushed to the disk
(``fsync``) one by one, which would cost a third of a small model's time: a shard whose
files did not reach the disk before a power failure fails that check, and a resumed run
redoes it. The manifest is flushed when written, and the shards before the manifest that
marks the run complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "SHARDS",
    "check_writable",
    "clean_temporary",
    "finalize",
    "read_manifest",
    "read_record",
    "save_json",
    "write_shard",
]

FORMAT = "attrkit-attributions"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARDS = "shards"
_TEMPORARY = ".tmp-"


def _temporary(path: Path) -> Path:
    return path.with_name(f"{path.name}{_TEMPORARY}{os.getpid()}")


@contextlib.contextmanager
def _atomic(path: Path, mode: str, sync: bool = False) -> Iterator[IO[Any]]:
    """A file opened (``mode``) under a temporary name, renamed to ``path`` when the block
    succeeds (after flushing it to the disk if ``sync``), removed when it fails."""
    temporary = _temporary(path)
    handle = open(temporary, mode, encoding=None if "b" in mode else "utf-8")  # noqa: SIM115
    try:
        with handle:
            yield handle
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (a temporary file, then a rename)."""
    with _atomic(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def save_json(path: Path, value: Any, sync: bool = False) -> None:
    """Write ``value`` as JSON to ``path`` atomically, flushed to the disk if ``sync``."""
    with _atomic(path, "w", sync) as handle:
        json.dump(value, handle, indent=1)
        handle.write("\n")


def shard_stem(index: int) -> str:
    return f"{index:06d}"


def write_shard(
    root: Path, index: int, arrays: dict[str, np.ndarray], record: dict[str, Any]
) -> None:
    """Write shard ``index``: its arrays, then its record (which makes it complete)."""
    stem = shard_stem(index)
    files = {}
    for name, array in arrays.items():
        file = f"{stem}.{name}.npy"
        save_npy(root / SHARDS / file, array)
        files[name] = {"file": file, "shape": list(array.shape), "dtype": array.dtype.str}
    save_json(root / SHARDS / f"{stem}.json", {**record, "shard": index, "arrays": files})


def read_record(root: Path, index: int) -> dict[str, Any] | None:
    """Shard ``index``'s record if the shard is complete, else ``None``."""
    path = root / SHARDS / f"{shard_stem(index)}.json"
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    arrays = record.get("arrays", {})
    if not arrays or not all(_holds(root / SHARDS / a["file"], a) for a in arrays.values()):
        return None
    return record


def _holds(path: Path, spec: dict[str, Any]) -> bool:
    """Whether ``path`` is a whole ``.npy`` file of the recorded shape and dtype."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    return bool(list(array.shape) == spec["shape"] and array.dtype.str == spec["dtype"])


def read_manifest(root: Path, argument: str = "out") -> dict[str, Any] | None:
    """The manifest of the run in ``root``, or ``None`` if there is none.

    Raises:
        ValueError: if ``root`` holds a manifest that is not an attrkit one.
    """
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"`{argument}` {str(root)!r}: {MANIFEST} is not JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(
            f"`{argument}` {str(root)!r}: {MANIFEST} is not an attrkit attribution manifest"
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"`{argument}` {str(root)!r}: format version {manifest.get('format_version')!r} is not "
            f"supported by this attrkit (it reads version {FORMAT_VERSION})"
        )
    return manifest


def check_writable(root: Path) -> None:
    """Create ``root`` (and its shard folder) and prove that files can be written there.

    Raises:
        PermissionError: naming ``out``, if the folder cannot be created or written.
    """
    probe = root / f".attrkit-write-test-{os.getpid()}"
    try:
        (root / SHARDS).mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise PermissionError(f"`out` {str(root)!r} is not writable: {reason}") from None


def clean_temporary(root: Path) -> None:
    """Remove the temporary files an interrupted run left behind."""
    for folder in (root, root / SHARDS):
        for path in folder.glob(f"*{_TEMPORARY}*"):
            path.unlink(missing_ok=True)


def finalize(root: Path, manifest: dict[str, Any], num_shards: int) -> None:
    """Gather the shard records into the complete manifest; write it with the indices and
    targets.

    Raises:
        ValueError: if a shard is missing or the shards disagree on shapes or dtypes.
    """
    records = []
    for index in range(num_shards):
        record = read_record(root, index)
        if record is None:
            raise ValueError(f"`out` {str(root)!r}: shard {index} is missing")
        records.append(record)
    if not records:
        raise ValueError("`data` yielded no batches")
    first = records[0]
    layout = _layout(first)
    start = 0
    shards = []
    for record in records:
        if _layout(record) != layout:
            raise ValueError(
                f"shard {record['shard']} has attributions {_layout(record)} but shard 0 has "
                f"{layout}; every batch must give the same per-example shapes and dtypes"
            )
        shards.append({"index": record["shard"], "start": start, "stop": start + record["rows"]})
        start += record["rows"]
    _flush(root / SHARDS / a["file"] for r in records for a in r["arrays"].values())
    save_npy(root / "indices.npy", np.asarray([i for r in records for i in r["indices"]], np.int64))
    has_targets = first["targets"] is not None
    if has_targets:
        targets = np.asarray([t for r in records for t in r["targets"]], dtype=np.int64)
        save_npy(root / "targets.npy", targets)
    arrays = {
        name: {
            "shape": [start, *spec["shape"][1:]],
            "dtype": spec["dtype"],
            "shards": [f"{SHARDS}/{r['arrays'][name]['file']}" for r in records],
        }
        for name, spec in first["arrays"].items()
    }
    complete = {
        **manifest,
        "complete": True,
        "num_samples": start,
        "inputs": first["inputs"],
        "inputs_tuple": first["inputs_tuple"],
        "attributions": first["attributions"],
        "result_tuple": first["result_tuple"],
        "convergence_delta": first["convergence_delta"],
        "arrays": arrays,
        "shards": shards,
        "indices": "indices.npy",
        "targets": "targets.npy" if has_targets else None,
    }
    save_json(root / MANIFEST, complete, sync=True)


def _flush(paths: Iterable[Path]) -> None:
    """Flush the files to the disk, so that a complete manifest never outlives them."""
    for path in paths:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _layout(record: dict[str, Any]) -> Any:
    return (
        record["inputs"],
        {name: (spec["shape"][1:], spec["dtype"]) for name, spec in record["arrays"].items()},
    )

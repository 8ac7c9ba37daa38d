"""Reading a dataset attribution run back: lazily, memory-mapped, in the run's row order."""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from attrkit.dataset._store import read_manifest

__all__ = ["AttributionSet", "ShardedArray", "load_attributions"]


class ShardedArray:
    """A read-only array stored as ``.npy`` shards along dimension 0.

    Shards are memory-mapped when first touched; indexing reads only the rows asked for.
    Integers, slices, integer or boolean arrays, and tuples starting with one of these
    index it like a NumPy array; ``np.asarray(array)`` reads it all.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> np.save(folder / "a.npy", np.arange(6).reshape(3, 2))
        >>> np.save(folder / "b.npy", np.arange(6, 10).reshape(2, 2))
        >>> array = ShardedArray([folder / "a.npy", folder / "b.npy"], [3, 2], (2,), "<i8")
        >>> array.shape, array[3].tolist(), array[2:4, 1].tolist()
        ((5, 2), [6, 7], [5, 7])
    """

    def __init__(
        self,
        files: list[Path],
        rows: list[int],
        row_shape: tuple[int, ...],
        dtype: str,
        mmap_mode: Literal["r"] | None = "r",
    ) -> None:
        self._files = files
        self._starts = [0, *np.cumsum(rows).tolist()]
        self._open: dict[int, np.ndarray] = {}
        self._mmap_mode = mmap_mode
        self.shape: tuple[int, ...] = (self._starts[-1], *row_shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def num_shards(self) -> int:
        return len(self._files)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ShardedArray(shape={self.shape}, dtype={self.dtype}, shards={self.num_shards})"

    def shard(self, index: int) -> np.ndarray:
        """Shard ``index`` as a (memory-mapped) array."""
        if index not in self._open:
            array = np.load(self._files[index], mmap_mode=self._mmap_mode, allow_pickle=False)
            expected = (self._starts[index + 1] - self._starts[index], *self.shape[1:])
            if array.shape != expected or array.dtype != self.dtype:
                raise ValueError(
                    f"{self._files[index]} holds {array.dtype} {array.shape}, but the manifest "
                    f"says {self.dtype} {expected}"
                )
            self._open[index] = array
        return self._open[index]

    def _row(self, index: int) -> np.ndarray:
        shard = bisect.bisect_right(self._starts, index) - 1
        return self.shard(shard)[index - self._starts[shard]]  # type: ignore[no-any-return]

    def _rows(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), *self.shape[1:]), dtype=self.dtype)
        shards = np.searchsorted(self._starts, index, side="right") - 1
        for shard in np.unique(shards):
            where = np.nonzero(shards == shard)[0]
            out[where] = self.shard(int(shard))[index[where] - self._starts[shard]]
        return out

    def _normalize(self, index: Any) -> int | np.ndarray:
        length = len(self)
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            position = int(index) + length if index < 0 else int(index)
            if not 0 <= position < length:
                raise IndexError(f"index {index} is out of range for {length} rows")
            return position
        if isinstance(index, slice):
            return np.arange(*index.indices(length))
        array = np.asarray(index)
        if array.size == 0 and array.ndim == 1:
            return np.empty(0, dtype=np.int64)
        if array.dtype == bool:
            if array.shape != (length,):
                raise IndexError(f"a boolean index must have shape ({length},), got {array.shape}")
            return np.nonzero(array)[0]
        if not np.issubdtype(array.dtype, np.integer) or array.ndim != 1:
            raise IndexError(
                "index rows with an int, a slice, or a 1-D integer or boolean array; "
                f"got {type(index).__name__}"
            )
        if array.size and (array.min() < -length or array.max() >= length):
            raise IndexError(f"an index is out of range for {length} rows")
        return np.where(array < 0, array + length, array)

    def __getitem__(self, key: Any) -> Any:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        if key is Ellipsis:
            return np.asarray(self)[(Ellipsis, *rest)]
        rows = self._normalize(key)
        if isinstance(rows, int):
            return self._row(rows)[rest] if rest else self._row(rows)
        selected = self._rows(rows)
        return selected[(slice(None), *rest)] if rest else selected

    def __iter__(self) -> Iterator[np.ndarray]:
        for shard in range(self.num_shards):
            yield from self.shard(shard)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if not self._files:
            whole = np.empty(self.shape, dtype=self.dtype)
        else:
            whole = np.concatenate([self.shard(i) for i in range(self.num_shards)])
        return whole if dtype is None else whole.astype(dtype, copy=False)


class AttributionSet:
    """The attributions of a dataset, as :func:`load_attributions` returns them.

    It behaves like the result of ``attribute`` on the whole dataset: when the method
    returned a tensor, indexing gives NumPy arrays (``attributions[i]``,
    ``attributions[10:20]``); when it returned a tuple (several inputs), indexing gives a
    tuple with one array per tensor. Rows are in the run's order, which is the dataset's
    order unless a sampler chose another (:attr:`indices` gives each row's dataset index).

    Attributes:
        path: The run's folder.
        manifest: The manifest, as a dict (method, arguments, model fingerprint, versions,
            input shapes, shards).
        arrays: One :class:`ShardedArray` per attribution tensor.
        indices: The dataset index of every row (int64, shape ``(N,)``).
        targets: The target used for every row (int64, shape ``(N,)`` or ``(N, k)``), or
            ``None`` when the model returns one value per example.
        convergence_delta: The convergence deltas (``return_convergence_delta=True``), or
            ``None``.
    """

    def __init__(
        self, path: Path, manifest: dict[str, Any], mmap_mode: Literal["r"] | None
    ) -> None:
        self.path = path
        self.manifest = manifest
        rows = [shard["stop"] - shard["start"] for shard in manifest["shards"]]

        def array(name: str) -> ShardedArray:
            spec = manifest["arrays"][name]
            files = [path / file for file in spec["shards"]]
            return ShardedArray(files, rows, tuple(spec["shape"][1:]), spec["dtype"], mmap_mode)

        self.arrays = tuple(array(name) for name in manifest["attributions"])
        delta = manifest["convergence_delta"]
        self.convergence_delta = array(delta) if delta else None
        self.indices: np.ndarray = np.load(path / manifest["indices"], allow_pickle=False)
        targets = manifest["targets"]
        self.targets = None if targets is None else np.load(path / targets, allow_pickle=False)

    @property
    def is_tuple(self) -> bool:
        """Whether the method returned a tuple (then rows are tuples of arrays)."""
        return bool(self.manifest["result_tuple"])

    @property
    def method(self) -> str:
        """The method's name."""
        return str(self.manifest["run"]["method"]["name"])

    @property
    def shape(self) -> Any:
        """The shape of the attributions, or a tuple of shapes (one per tensor)."""
        shapes = tuple(a.shape for a in self.arrays)
        return shapes if self.is_tuple else shapes[0]

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, key: Any) -> Any:
        if self.is_tuple:
            return tuple(a[key] for a in self.arrays)
        return self.arrays[0][key]

    def __iter__(self) -> Iterator[Any]:
        if self.is_tuple:
            return zip(*self.arrays, strict=True)
        return iter(self.arrays[0])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if self.is_tuple:
            raise TypeError(
                "these attributions are a tuple (one array per input); convert "
                "`attributions.arrays[i]` instead"
            )
        return self.arrays[0].__array__(dtype)

    def __repr__(self) -> str:
        return (
            f"AttributionSet({self.method!r}, {len(self)} rows, shape={self.shape}, "
            f"path={str(self.path)!r})"
        )


def load_attributions(path: str | os.PathLike[str], mmap: bool = True) -> AttributionSet:
    """Open the attributions that :func:`~attrkit.attribute_dataset` wrote to ``path``.

    Nothing is read until it is indexed: shards are memory-mapped on first use (or read
    whole, with ``mmap=False``).

    Args:
        path: The run's folder (``out`` of :func:`~attrkit.attribute_dataset`).
        mmap: Memory-map the shards (default) rather than reading them into memory.

    Returns:
        AttributionSet: Array-like access to the attributions, with the manifest.

    Raises:
        FileNotFoundError: if ``path`` holds no manifest.
        ValueError: if the run is not complete (resume it), or the manifest is not one
            that this version of attrkit reads.
    """
    root = Path(path)
    manifest = read_manifest(root, "path")
    if manifest is None:
        raise FileNotFoundError(f"`path` {str(root)!r} holds no attrkit manifest.json")
    if not manifest.get("complete"):
        raise ValueError(
            f"`path` {str(root)!r} holds an incomplete run; finish it with "
            "attribute_dataset(..., resume=True)"
        )
    return AttributionSet(root, manifest, "r" if mmap else None)

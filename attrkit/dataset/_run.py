"""``attribute_dataset``: every batch of a dataset through one attribution method, to disk,
on one process or many: the loop. Which batches a rank attributes is
:mod:`~attrkit.dataset._assignment`'s; the checks that make a run resumable are
:mod:`~attrkit.dataset._resume`'s."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attrkit.core.random import seeded
from attrkit.dataset._assignment import Assignment, indexed_stream, iterable_stream
from attrkit.dataset._batches import Batch, BatchFn, TargetSpec, parse_target_spec
from attrkit.dataset._distributed import Coordinator, open_coordinator
from attrkit.dataset._identity import Method, _module_of, model_fingerprint, resolve_method
from attrkit.dataset._plan import Source, make_source
from attrkit.dataset._reader import AttributionSet, load_attributions
from attrkit.dataset._resume import check_ranks_agree, prepare_out
from attrkit.dataset._store import finalize, write_shard

__all__ = ["attribute_dataset"]


def attribute_dataset(
    method: Any,
    data: Any,
    *,
    target: int | tuple[int, ...] | str | None,
    out: str | os.PathLike[str],
    model: Callable[..., Any] | None = None,
    batch_fn: BatchFn | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    batches_per_shard: int = 1,
    device: str | torch.device | None = None,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
    distributed: bool | None = None,
    **method_kwargs: Any,
) -> AttributionSet:
    """Attribute every example of a dataset and write the attributions to ``out``.

    The same call runs on one process, or unchanged on N processes started by
    ``torchrun --nproc-per-node N``: batches are grouped into shards of
    ``batches_per_shard`` consecutive batches, shard ``s`` is attributed by rank
    ``s % N``, and the folder is the same as one process writes (rank 0 writes the
    manifest once every rank is done). A ``Dataset`` or a ``DataLoader`` over one is
    split before loading (each process loads only its own batches); any other iterable
    is iterated by every process, which skips the other processes' batches.

    Every batch is attributed under its own random seed (from ``seed`` and the batch's
    number), so stochastic methods (NoiseTunnel) and dropout give the same result on
    one process, on N, and after a resume.

    Args:
        method (str or attribution object): A registered method name
            (:func:`attrkit.available_methods`), built with :func:`attrkit.create` for
            ``model``; or an attribution object already built (an attrkit or Captum
            method), whose ``forward_func`` is the model.
        data (Dataset, DataLoader or iterable): The examples. A map-style ``Dataset`` is
            batched in order (``batch_size``, ``num_workers``); a ``DataLoader`` is used
            with its own batch sampler, collate function and workers (it must not
            shuffle); any other iterable must yield batches, in the same order every time.
            A batch is a tensor (the inputs), an ``(inputs, labels)`` pair or list, or a
            dict with an ``"inputs"`` key and optionally ``"labels"`` (or ``"label"``) and
            ``"additional_forward_args"``; the inputs are a tensor or a tuple of tensors
            (several model inputs, one array family each).
        target (int, tuple, str or None): ``"label"``: each example's label from its
            batch; ``"predicted"``: the model's top class (an extra forward pass without
            gradients); an int or a tuple of ints: that output for every example; ``None``:
            the model returns one value per example.
        out (str or os.PathLike): The folder to write (created if needed; it must be new,
            empty, or hold a run to ``resume``).
        model (Callable, optional): The model, required when ``method`` is a name.
        batch_fn (Callable, optional): Takes the inputs, labels and additional forward
            arguments from a batch of another layout: ``batch_fn(batch)`` returns
            ``(inputs, labels or None, additional_forward_args or None)``.
        batch_size (int, optional): Batch size for a ``Dataset`` (default 32).
        num_workers (int, optional): Loader worker processes for a ``Dataset`` (default 0).
        batches_per_shard (int): Batches per shard file: the unit of resumption and of
            the split between processes. Default: 1.
        device (str or torch.device, optional): Where the batches go; default: the device
            of the model's first parameter (CPU if it has none).
        seed (int): Base of the per-batch random seeds. Default: 0.
        resume (bool): Continue the run in ``out`` (skipping its completed shards) or
            start one there. Default: ``False``: ``out`` must not hold a run yet.
        progress (bool): Show a progress bar with samples per second on stderr (rank 0).
            Default: ``True``.
        distributed (bool, optional): ``None``: split the work between processes when a
            process group is initialized or torchrun started this process, else run
            alone; ``True``: require that; ``False``: run alone. Default: ``None``.
        **method_kwargs: The method's constructor arguments (such as ``layer``, when
            ``method`` is a name) and ``attribute`` arguments (such as ``n_steps``),
            split by name. ``return_convergence_delta=True`` stores the deltas too.

    Returns:
        AttributionSet: The attributions, read back from ``out`` (as
        :func:`attrkit.load_attributions` does), on every process.

    Raises:
        TypeError, ValueError: for a bad argument, a malformed batch (naming it), or a
            run in ``out`` made with another method, other arguments, model weights,
            targets or data (nothing in ``out`` is changed).
        FileExistsError: if ``out`` holds a run and ``resume`` is ``False``, or holds
            other files.
        PermissionError: if ``out`` cannot be written (before any work).

    Example:
        >>> import tempfile, torch, attrkit
        >>> from torch.utils.data import TensorDataset
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
        ...                             torch.nn.Linear(4, 2))
        >>> dataset = TensorDataset(torch.randn(10, 3), torch.randint(0, 2, (10,)))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     result = attrkit.attribute_dataset("guided_backprop", dataset, model=model,
        ...         target="label", out=folder, batch_size=4, progress=False)
        ...     result.shape, result[0].shape, result.manifest["run"]["method"]["name"]
        ((10, 3), (3,), 'guided_backprop')
    """
    root = _check_options(out, batches_per_shard, seed, resume, progress, batch_fn)
    spec = parse_target_spec(target)
    resolved = resolve_method(method, model, dict(method_kwargs))
    if not resolved.takes_target and spec.mode != "none":
        raise TypeError(
            f"`target` must be None: {type(resolved.explainer).__name__}.attribute takes no "
            "target (it attributes what its own arguments select, e.g. `neuron_selector`)"
        )
    where = _device(device, resolved.forward)
    source = make_source(data, batch_size, num_workers, pin_memory=where.type == "cuda")
    coordinator = open_coordinator(distributed)
    try:
        run = _Run(
            coordinator,
            root,
            resolved,
            spec,
            source,
            where,
            batch_fn,
            batches_per_shard,
            seed,
            progress,
        )
        return run.execute(resume)
    finally:
        coordinator.close()


def _check_options(
    out: object,
    batches_per_shard: object,
    seed: object,
    resume: object,
    progress: object,
    batch_fn: object,
) -> Path:
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(
            f"`out` must be a folder path (str or os.PathLike), got {type(out).__name__}"
        )
    for name, value in (("batches_per_shard", batches_per_shard), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if batches_per_shard < 1:  # type: ignore[operator]
        raise ValueError(f"`batches_per_shard` must be >= 1, got {batches_per_shard}")
    for name, value in (("resume", resume), ("progress", progress)):
        if not isinstance(value, bool):
            raise TypeError(f"`{name}` must be a bool, got {type(value).__name__}")
    if batch_fn is not None and not callable(batch_fn):
        raise TypeError(f"`batch_fn` must be callable, got {type(batch_fn).__name__}")
    return Path(out)


def _device(device: str | torch.device | None, forward: Callable[..., Any]) -> torch.device:
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"`device` {device!r} is not a device: {error}") from None
    module = _module_of(forward)
    if module is not None:
        for tensor in (*module.parameters(), *module.buffers()):
            return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def _isolated_rng(seed: int, device: torch.device, batch: int | None = None) -> Iterator[None]:
    """Run with the CPU (and ``device``'s) generator seeded from ``seed`` (and the batch
    number); the caller's random state is restored afterwards. The data loaders draw
    their seeds inside the run's context; each batch is attributed inside its own."""
    key = f"{seed}" if batch is None else f"{seed}:{batch}"
    value = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1
    with seeded(value, (device,)):
        yield


@dataclass
class _Shard:
    """The batches of one shard attributed so far."""

    index: int
    first_batch: int
    arrays: dict[str, list[np.ndarray]] = field(default_factory=dict)
    indices: list[int] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)
    layout: dict[str, Any] | None = None
    batches: int = 0


class _Run:
    """One process's part of one run."""

    def __init__(
        self,
        coordinator: Coordinator,
        root: Path,
        method: Method,
        spec: TargetSpec,
        source: Source,
        device: torch.device,
        batch_fn: BatchFn | None,
        batches_per_shard: int,
        seed: int,
        progress: bool,
    ) -> None:
        self.coordinator = coordinator
        self.root = root
        self.method = method
        self.spec = spec
        self.source = source
        self.device = device
        self.batch_fn = batch_fn
        self.assignment = Assignment(coordinator.rank, coordinator.world_size, batches_per_shard)
        self.seed = seed
        self.progress = progress

    def execute(self, resume: bool) -> AttributionSet:
        coordinator = self.coordinator
        plan = coordinator.on_rank0(self.source.plan)
        if plan is not None and not plan:
            raise ValueError("`data` holds no examples")
        identity = self._identity(plan)
        check_ranks_agree(coordinator, identity)
        manifest = coordinator.on_rank0(
            lambda: prepare_out(self.root, identity, resume, coordinator.world_size)
        )
        if not manifest.get("complete"):
            error: Exception | None = None
            num_shards = 0
            try:
                with _isolated_rng(self.seed, self.device):
                    num_shards = self._work(plan)
            except Exception as caught:
                error = caught
            coordinator.raise_any(error)
            coordinator.on_rank0(lambda: finalize(self.root, manifest, num_shards))
        return load_attributions(self.root)

    def _identity(self, plan: list[list[int]] | None) -> dict[str, Any]:
        identity = {
            "method": self.method.description,
            "target": self.spec.describe(),
            "model": model_fingerprint(self.method.forward),
            "data": self.source.describe(plan),
            "batches_per_shard": self.assignment.batches_per_shard,
            "seed": self.seed,
        }
        return json.loads(json.dumps(identity))  # type: ignore[no-any-return]

    def _work(self, plan: list[list[int]] | None) -> int:
        """Attribute this rank's pending batches; return the number of shards of the run."""
        assignment, source, root, batch_fn = self.assignment, self.source, self.root, self.batch_fn
        if plan is not None:
            stream, total, done = indexed_stream(assignment, plan, source, root, batch_fn)
        else:
            stream, total, done = iterable_stream(assignment, source, root, batch_fn), None, 0
        bar = self._bar(total, done)
        shard: _Shard | None = None
        try:
            while True:
                try:
                    number, indices, batch = next(stream)
                except StopIteration as end:  # the stream returns the run's number of batches
                    num_batches: int = end.value
                    break
                if shard is None:  # shards are attributed whole, in order
                    shard = _Shard(assignment.shard_of(number), number)
                self._attribute(shard, number, indices, batch)
                bar.update(len(indices))
                if shard.batches == assignment.batches_per_shard:
                    self._write(shard)
                    shard = None
            if shard is not None:  # the last shard of the data
                self._write(shard)
        finally:
            bar.close()
        return assignment.num_shards(num_batches)

    def _bar(self, total: int | None, done: int) -> Any:
        from tqdm import tqdm

        world = self.coordinator.world_size
        rank = f" [rank 0 of {world}]" if world > 1 else ""
        return tqdm(
            total=total,
            initial=done,
            desc=f"{self.method.description['name']}{rank}",
            unit=" samples",
            file=sys.stderr,
            disable=not self.progress or self.coordinator.rank != 0,
            dynamic_ncols=True,
            mininterval=0.1 if sys.stderr.isatty() else 10.0,  # a log file gets few lines
        )

    def _attribute(self, shard: _Shard, number: int, indices: list[int], batch: Batch) -> None:
        batch = batch.to(self.device)
        method = self.method
        with _isolated_rng(self.seed, self.device, number):
            target, targets = self.spec.resolve(batch, number, method.forward)
            kwargs = dict(method.attribute_kwargs)
            if method.takes_target:
                kwargs["target"] = target
            try:
                result = method.explainer.attribute(
                    batch.inputs if batch.is_tuple else batch.inputs[0],
                    additional_forward_args=batch.additional_forward_args or None,
                    **kwargs,
                )
            except (TypeError, ValueError, IndexError) as error:
                raise type(error)(f"batch {number} of `data`: {error}") from error
        arrays, layout = self._arrays(result, batch, number)
        if shard.layout is None:
            shard.layout = layout
        elif layout != shard.layout:
            raise ValueError(
                f"batch {number} of `data` has inputs or attributions {layout}, but batch "
                f"{shard.first_batch} has {shard.layout}; every batch must give the same "
                "per-example shapes and dtypes"
            )
        for name, array in arrays.items():
            shard.arrays.setdefault(name, []).append(array)
        shard.indices += indices
        if targets is not None:
            shard.targets.extend(targets.tolist())
        shard.batches += 1

    def _arrays(
        self, result: Any, batch: Batch, number: int
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        delta = None
        if self.method.has_delta:
            result, delta = result
        is_tuple = isinstance(result, tuple)
        tensors: tuple[Any, ...] = result if is_tuple else (result,)
        names = [f"attributions_{i}" for i in range(len(tensors))] if is_tuple else ["attributions"]
        named = dict(zip(names, tensors, strict=True))
        if delta is not None:
            named["convergence_delta"] = delta
        arrays = {}
        for name, tensor in named.items():
            if not isinstance(tensor, Tensor) or tensor.dim() == 0 or len(tensor) != batch.size:
                shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor)
                raise ValueError(
                    f"batch {number} of `data`: the method returned {name} of {shape}; "
                    f"expected one row per example ({batch.size})"
                )
            tensor = tensor.detach()
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            arrays[name] = tensor.cpu().numpy()
        layout = {
            "inputs": [{"shape": list(x.shape[1:]), "dtype": str(x.dtype)} for x in batch.inputs],
            "inputs_tuple": batch.is_tuple,
            "attributions": names,
            "result_tuple": is_tuple,
            "convergence_delta": "convergence_delta" if delta is not None else None,
            "rows": {name: [list(a.shape[1:]), a.dtype.str] for name, a in arrays.items()},
        }
        return arrays, layout

    def _write(self, shard: _Shard) -> None:
        assert shard.layout is not None  # a shard holds at least one batch
        layout = {k: v for k, v in shard.layout.items() if k != "rows"}
        record = {
            **layout,
            "first_batch": shard.first_batch,
            "batches": shard.batches,
            "rows": len(shard.indices),
            "indices": shard.indices,
            "targets": None if self.spec.mode == "none" else shard.targets,
        }
        arrays = {name: np.concatenate(parts) for name, parts in shard.arrays.items()}
        write_shard(self.root, shard.index, arrays, record)

"""Samples per second of ``attrkit.attribute_dataset`` on one process and on two (torchrun).

A small CNN (``tests.models.SmallCNN``, 10 classes) on synthetic 3x32x32 images,
Guided Backpropagation, target = label. Every variant runs in a fresh subprocess, the
variants interleaved, ``--repeats`` times; the table gives medians. Times cover the
``attribute_dataset`` call (loading, attribution, writing shards and the manifest), not
the start of Python; for two processes, rank 0's time, which ends after the other rank's.

Variants:
  loop, 1 process   a plain loop of ``attribute`` calls over the DataLoader, nothing
                    written (the cost of attribution alone)
  1 process         ``attribute_dataset``, one process, ``--threads`` intra-op threads
  2 processes       ``torchrun --nproc-per-node 2``, one thread each

Run from the repository root::

    python benchmarks/dataset_throughput.py --samples 4096 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _data(samples: int):  # type: ignore[no-untyped-def]
    import torch
    from torch.utils.data import TensorDataset

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(samples, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (samples,), generator=generator)
    return TensorDataset(images, labels)


def _model():  # type: ignore[no-untyped-def]
    import torch

    from tests.models import SmallCNN

    torch.manual_seed(0)
    return SmallCNN(classes=10).eval()


def worker(mode: str, out: str, samples: int, batch_size: int) -> None:
    """Run one variant and print ``{"seconds": ..., "samples": ...}`` (rank 0)."""
    import torch
    from torch.utils.data import DataLoader

    import attrkit

    data, model = _data(samples), _model()
    start = time.perf_counter()
    if mode == "loop":
        explainer = attrkit.GuidedBackprop(model)
        for images, labels in DataLoader(data, batch_size=batch_size):
            explainer.attribute(images, target=labels)
    else:
        attrkit.attribute_dataset(
            "guided_backprop",
            data,
            model=model,
            target="label",
            out=out,
            batch_size=batch_size,
            progress=False,
        )
    seconds = time.perf_counter() - start
    if os.environ.get("RANK", "0") == "0":
        threads = torch.get_num_threads()
        print(json.dumps({"seconds": seconds, "samples": samples, "threads": threads}))


def _run(command: list[str], threads: int) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads of the 1-process runs")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.samples, args.batch_size)
        return

    script = [str(Path(__file__).resolve()), "--samples", str(args.samples)]
    script += ["--batch-size", str(args.batch_size)]
    variants = {
        "loop, 1 process": ([sys.executable, *script, "--worker", "loop", "{out}"], args.threads),
        "1 process": ([sys.executable, *script, "--worker", "run", "{out}"], args.threads),
        "2 processes": (
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
             "2", *script, "--worker", "run", "{out}"],
            1,
        ),
    }  # fmt: skip
    rates: dict[str, list[float]] = {name: [] for name in variants}
    threads: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for name, (command, thread_count) in variants.items():
                out = str(Path(folder) / f"{repeat}-{name.replace(' ', '_').replace(',', '')}")
                result = _run([part.replace("{out}", out) for part in command], thread_count)
                rates[name].append(result["samples"] / result["seconds"])
                threads[name] = int(result["threads"])
    print(
        f"SmallCNN, 3x32x32, guided_backprop, {args.samples} samples, batch {args.batch_size}, "
        f"{os.cpu_count()} CPUs, medians of {args.repeats}"
    )
    print(f"{'variant':<18} {'threads/process':>15} {'samples/s':>10}")
    for name, values in rates.items():
        print(f"{name:<18} {threads[name]:>15} {statistics.median(values):>10.0f}")


if __name__ == "__main__":
    main()

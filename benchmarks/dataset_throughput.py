"""Samples per second of ``attrkit.attribute_dataset`` on one process and on two (torchrun).

A small CNN (``tests.models.SmallCNN``, 10 classes) on synthetic 3x32x32 images,
Guided Backpropagation, target = label. Every variant runs in a fresh subprocess, the
variants interleaved, ``--repeats`` times; the table gives medians. Times cover the
``attribute_dataset`` call (loading, attribution, writing shards and the manifest), not
the start of Python; for two processes, rank 0's time from the moment both processes are
ready, which ends after the other rank's.

Variants:
  loop, 1 process    a plain loop of ``attribute`` calls over the DataLoader, nothing
                     written (the cost of attribution alone), one thread
  loop, 2 processes  two such loops at the same time, each over half the samples: what
                     the machine gives two processes, with no attrkit machinery
  1 process          ``attribute_dataset``, one process, one intra-op thread
  1 process, 2 thr.  the same with two intra-op threads
  2 processes        ``torchrun --nproc-per-node 2``, one thread each

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


def worker(mode: str, out: str, samples: int, batch_size: int, device: str) -> None:
    """Run one variant and print ``{"seconds": ..., "samples": ...}`` (rank 0)."""
    import torch
    from torch.utils.data import DataLoader

    import attrkit

    where = torch.device(device)
    if where.type == "cuda":  # the process's own GPU, shared when there are fewer
        where = torch.device(
            "cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
        )
    data, model = _data(samples), _model().to(where)
    if "RANK" in os.environ:  # start the clock when every process is ready
        import torch.distributed as dist

        dist.init_process_group("gloo")
        dist.barrier()
    start = time.perf_counter()
    if mode == "loop":
        explainer = attrkit.GuidedBackprop(model)
        for images, labels in DataLoader(data, batch_size=batch_size):
            explainer.attribute(images.to(where), target=labels.to(where))
        if where.type == "cuda":
            torch.cuda.synchronize(where)
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


def _run(commands: list[list[str]], threads: int) -> tuple[float, int]:
    """Run ``commands`` at the same time; return their samples per second (all samples
    over the slowest one's time) and the threads per process."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=path)
    processes = [
        subprocess.Popen(
            c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        for c in commands
    ]
    results = []
    for command, process in zip(commands, processes, strict=True):
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{err[-2000:]}")
        results.append(json.loads([line for line in out.splitlines() if line.startswith("{")][-1]))
    samples = sum(r["samples"] for r in results)
    return samples / max(r["seconds"] for r in results), int(results[0]["threads"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.samples, args.batch_size, args.device)
        return

    def script(samples: int, mode: str) -> list[str]:
        return [
            str(Path(__file__).resolve()), "--samples", str(samples), "--batch-size",
            str(args.batch_size), "--device", args.device, "--worker", mode, "{out}",
        ]  # fmt: skip

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    half = args.samples // 2
    variants = {
        "loop, 1 process": ([[sys.executable, *script(args.samples, "loop")]], 1),
        "loop, 2 processes": ([[sys.executable, *script(half, "loop")]] * 2, 1),
        "1 process": ([[sys.executable, *script(args.samples, "run")]], 1),
        "1 process, 2 thr.": ([[sys.executable, *script(args.samples, "run")]], 2),
        "2 processes": ([[*torchrun, "--nproc-per-node", "2", *script(args.samples, "run")]], 1),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    threads: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for name, (commands, thread_count) in variants.items():
                out = str(Path(folder) / f"{repeat}-{name.replace(' ', '_').replace(',', '')}")
                commands = [[part.replace("{out}", out) for part in c] for c in commands]
                rate, threads[name] = _run(commands, thread_count)
                rates[name].append(rate)
    print(
        f"SmallCNN, 3x32x32, guided_backprop, {args.samples} samples, batch {args.batch_size}, "
        f"{args.device}, {os.cpu_count()} CPUs, medians of {args.repeats}"
    )
    print(f"{'variant':<18} {'threads/process':>15} {'samples/s':>10} {'min':>6} {'max':>6}")
    for name, values in rates.items():
        print(
            f"{name:<18} {threads[name]:>15} {statistics.median(values):>10.0f} "
            f"{min(values):>6.0f} {max(values):>6.0f}"
        )


if __name__ == "__main__":
    main()

"""``attrkit attribute-dataset``: attribute a whole dataset to a folder of ``.npy`` shards,
on one process or under ``torchrun`` on many."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch

from attrkit.cli._common import (
    CLIError,
    add_command,
    add_model_options,
    add_option_argument,
    call_factory,
    comma_separated_ints,
    load_model,
    parse_options,
)

HELP = "attribute every example of a dataset and write the attributions to a folder"
EPILOG = """examples:
  attrkit attribute-dataset --model mypkg.models:resnet --weights resnet.pt \\
      --data mypkg.data:validation_set --method guided_backprop --target label \\
      --batch-size 64 --out attributions/
  torchrun --nproc-per-node 4 -m attrkit attribute-dataset ...same options... --resume

--data names a function returning a torch Dataset, a DataLoader (not shuffled) or an
iterable of batches; read the result with attrkit.load_attributions(DIR) or with numpy
(see manifest.json).
"""


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, "attribute-dataset", HELP, EPILOG)
    add_model_options(parser)
    parser.add_argument(
        "--data",
        required=True,
        metavar="MODULE:FACTORY",
        help="a function returning a Dataset, a DataLoader or an iterable of batches",
    )
    parser.add_argument(
        "--method", required=True, metavar="NAME", help="method name (see `attrkit methods`)"
    )
    parser.add_argument(
        "--target",
        required=True,
        metavar="label|predicted|none|N[,M...]",
        help="each example's label, the model's prediction, nothing (one output per "
        "example), or a fixed output index (comma-separated for a multi-index output)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    parser.add_argument(
        "--batch-size", type=int, metavar="B", help="batch size for a Dataset (default: 32)"
    )
    parser.add_argument(
        "--num-workers", type=int, metavar="W", help="loader processes for a Dataset (default: 0)"
    )
    parser.add_argument(
        "--batches-per-shard",
        type=int,
        default=1,
        metavar="K",
        help="batches per shard file, the unit of resumption (default: 1)",
    )
    parser.add_argument("--layer", metavar="NAME", help="layer, for the methods that take one")
    add_option_argument(parser, "n_steps=32 or neuron_selector=(3,1,1)")
    parser.add_argument(
        "--device",
        metavar="DEVICE",
        help="cpu or cuda (default: cuda if available); under torchrun, cuda means the "
        "process's own GPU, cuda:LOCAL_RANK",
    )
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default: 0)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out (or start it there)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(run=run)


def parse_target(text: str) -> int | tuple[int, ...] | str | None:
    """``--target``: ``label``, ``predicted``, ``none``, an int, or comma-separated ints (one
    multi-index target shared by every example)."""
    if text in ("label", "predicted"):
        return text
    if text == "none":
        return None
    values = comma_separated_ints(
        text, f"--target {text!r} must be label, predicted, none, an int or comma-separated ints"
    )
    return values[0] if len(values) == 1 else values


def _device(text: str | None) -> torch.device:
    if text is None:
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError as error:
        raise CLIError(f"--device {text!r}: {error}") from None
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        # One GPU per process under torchrun; processes share GPUs when there are more.
        count = max(torch.cuda.device_count(), 1)
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]) % count)
    return device


def run(args: argparse.Namespace) -> int:
    from attrkit.dataset import attribute_dataset

    target = parse_target(args.target)
    options = parse_options(args.option)
    if args.layer is not None:
        options["layer"] = args.layer
    device = _device(args.device)
    model = load_model(args.model, args.weights).to(device)
    data = call_factory(args.data, "--data")
    start = time.perf_counter()
    try:
        result = attribute_dataset(
            args.method,
            data,
            model=model,
            target=target,
            out=args.out,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            batches_per_shard=args.batches_per_shard,
            device=device,
            seed=args.seed,
            resume=args.resume,
            progress=not args.quiet,
            **options,
        )
    except (TypeError, ValueError, IndexError, KeyError, OSError, RuntimeError) as error:
        raise CLIError(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    if not args.quiet and os.environ.get("RANK", "0") == "0":
        seconds = time.perf_counter() - start
        print(
            f"{len(result)} attributions by {result.method}, shape {result.shape}, in "
            f"{args.out} ({seconds:.1f} s)"
        )
    return 0

"""``attrkit demo``: attrkit next to Captum on the built-in model, no arguments needed."""

from __future__ import annotations

import argparse
from typing import Any

from attrkit.demo import run_demo

HELP = "attribute the built-in model with attrkit and Captum and print their agreement"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help=HELP, description=HELP)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = run_demo(seed=args.seed)
    print("attrkit demo: built-in 1x8x8 CNN, 4 random images, target = predicted class\n")
    header = f"{'model variant':<20} {'method':<15} {'max |diff|':>10} {'rel. L2':>9}  verdict"
    print(header)
    print("-" * len(header))
    for row in rows:
        verdict = "agree" if row.agrees else "differ: Captum does not hook functional ReLU"
        print(
            f"{row.variant:<20} {row.method:<15} {row.max_abs_difference:>10.2e} "
            f"{row.relative_l2_error:>9.2%}  {verdict}"
        )
    print(
        "\nWith nn.ReLU modules both libraries follow the definition and agree. With F.relu, "
        "Captum\nsilently falls back to the plain gradient; attrkit still applies the method's "
        "ReLU rule."
    )
    return 0

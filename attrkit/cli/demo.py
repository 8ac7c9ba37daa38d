"""``attrkit demo``: every registered method on the built-in digits model, a figure, and
a table of attrkit-vs-Captum agreement; no arguments, no network."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from attrkit.cli._common import CLIError, add_command
from attrkit.core.registry import UnknownMethodError

HELP = "attribute held-out digits with each family's methods, save a figure, compare with Captum"
FIGURE_NAME = "attrkit-demo.png"


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, "demo", HELP)
    parser.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help=f"folder for the figure {FIGURE_NAME} (default: the current folder)",
    )
    parser.add_argument(
        "--digits", type=int, default=6, metavar="N", help="how many digits (default: 6)"
    )
    parser.add_argument(
        "--method",
        action="append",
        metavar="NAME|all",
        help="method(s) to run, separated by commas or repeated; 'all' runs every "
        "method that takes images and no constructor arguments of its own (slower); "
        "default: one or two of each family",
    )
    parser.set_defaults(run=run)


def _methods(values: list[str] | None) -> list[str] | None:
    """The ``--method`` names (``None``: the demo's default set; ``all``: every method
    the demo can run)."""
    from attrkit.demo import demo_methods

    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return demo_methods() if "all" in names else names


def run(args: argparse.Namespace) -> int:
    from attrkit.demo import demo_figure, format_agreement, load_demo_metadata, run_demo

    start = time.perf_counter()
    metadata = load_demo_metadata()
    methods = _methods(args.method)
    try:
        result = run_demo(n_digits=args.digits, methods=methods)
    except ValueError as error:
        raise CLIError(str(error).replace("`n_digits`", "--digits")) from None
    except UnknownMethodError as error:
        raise CLIError(f"--method: {error}") from None
    print(
        f"attrkit demo: the built-in digits CNN ({metadata['test_accuracy']:.1%} accuracy on "
        f"{metadata['n_test']} held-out digits),\n{len(result.labels)} held-out digits, "
        "target = the predicted class\n"
    )
    print(format_agreement(result.reports))
    print(
        "\nThe model's convolutions use nn.ReLU modules and its hidden layer F.relu. Captum "
        "hooks only\nthe modules, so methods that change ReLU's backward rule differ from "
        "their definition\nthere; attrkit applies the rule to every ReLU."
    )
    try:
        from attrkit.viz import save_figure
    except ImportError:
        print('\nfigure: skipped, it needs matplotlib: pip install "attrkit[viz]"')
    else:
        path = Path(args.out) / FIGURE_NAME
        try:
            save_figure(demo_figure(result), path)
        except OSError as error:
            raise CLIError(f"--out {args.out!r}: cannot write {path}: {error.strerror}") from None
        print(f"\nfigure: {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0

"""The ``attrkit`` command line: one module per subcommand, each with ``add_parser`` and
``run``; errors are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import attrkit
from attrkit.cli._common import CLIError

__all__ = ["COMMANDS", "main"]

#: Subcommand name -> module under attrkit.cli that implements it.
COMMANDS: dict[str, str] = {
    "attribute-dataset": "attrkit.cli.attribute_dataset",
    "audit": "attrkit.cli.audit",
    "compare": "attrkit.cli.compare",
    "demo": "attrkit.cli.demo",
    "evaluate": "attrkit.cli.evaluate",
    "explain": "attrkit.cli.explain",
    "methods": "attrkit.cli.methods",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attrkit",
        description="Gradient attribution for PyTorch, Captum-compatible and definition-exact.",
    )
    parser.add_argument("--version", action="version", version=f"attrkit {attrkit.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except CLIError as error:
        print(f"attrkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"attrkit {args.command}: interrupted", file=sys.stderr)
        return 130
    return status
